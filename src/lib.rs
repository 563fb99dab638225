//! The `headwater` daemon: configuration assembly, the pipeline runtime,
//! the HTTP endpoint. The command line is in `main.rs`.

pub mod api;
pub mod check;
pub mod config;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod replay;
pub mod runtime;

/// Exit code for a runtime failure.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code for a configuration problem.
pub const EXIT_CONFIG: u8 = 2;
