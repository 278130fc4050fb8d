//! Ingest: what becomes of an event between a session (or a poller) and
//! the spool. [`EventIngestor`] screens, routes and encodes; the
//! [`spool_writer`] thread makes batches durable and answers.

mod ingestor;
pub mod spool_writer;

pub use ingestor::{EventIngestor, IngestRules};
pub use spool_writer::{Committed, IngestBatch, IngestLimits, Replies, Writer, run_writer};
