//! GTID sets live with the MySQL position, which compares by them.

pub use headwater_core::position::gtid::*;
