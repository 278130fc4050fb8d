//! S3 Access Point polling for fpolicy-bridge (issue "Trigger modes").
//!
//! This crate holds the parts that do no I/O: the schedule (fixed or
//! business hours, DST-correct), the savings and concurrency models,
//! change detection by streaming merge, the key → path mapping, and the
//! HYBRID dedup index.

pub mod hybrid;
pub mod model;
pub mod schedule;
pub mod state;
