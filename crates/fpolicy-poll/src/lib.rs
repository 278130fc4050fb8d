//! S3 Access Point polling for fpolicy-bridge (issue "Trigger modes").
//!
//! Without I/O (tested exhaustively): the schedule (fixed or business
//! hours, DST-correct), the savings model, change
//! detection by streaming merge, the key → path mapping, the HYBRID dedup
//! index. With I/O: the S3 lister ([`s3`]) and the state files ([`store`]).
//! The daemon wiring (events, spool, metrics) is in fpolicy-bridge.

pub mod hybrid;
pub mod model;
pub mod s3;
pub mod schedule;
pub mod state;
pub mod store;
pub use jiff;
