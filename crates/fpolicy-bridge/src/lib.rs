//! fpolicy-bridge: the FPolicy external server daemon.
//!
//! Data flow (docs/ARCHITECTURE.md): ONTAP → [`server`] (sessions decode
//! with fpolicy-proto and normalize with fpolicy-event) → [`ingest`] (the
//! spool writer, group commit, sync answers, back pressure) → fpolicy-spool
//! → [`pipeline`] (one per sink: coalescing, delivery, cursor) → [`sink`].

pub mod admin;
pub mod app;
pub mod backoff;
pub mod concurrency;
pub mod config;
pub mod emf;
pub mod identity;
pub mod ingest;
pub mod log_limit;
pub mod metrics;
pub mod ontap;
pub mod pipeline;
pub mod poll;
pub mod query;
pub mod server;
pub mod shared_spool;
pub mod sink;
pub mod top;
