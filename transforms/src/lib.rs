//! The transform chain: pure steps applied to every change event, in the
//! order configured, before it is appended to the log.

pub mod chain;
mod columns;
pub mod config;
pub mod error;
mod filter;
mod mask;
pub mod outbox;
mod reshape;
mod route;
mod tables;

pub use chain::TransformChain;
pub use config::TransformConfig;
pub use error::TransformError;

#[cfg(test)]
mod outbox_tests;
#[cfg(test)]
mod tests;
