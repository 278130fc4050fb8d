//! Sinks: where events go. Each sink runs in its own delivery pipeline
//! ([`crate::pipeline`]) with its own spool cursor, so a slow or failing
//! sink delays only itself.

mod aws;
mod dead_letter;
mod eventbridge;
mod format;
mod jsonl;
pub mod nats;
mod sqs;
mod stdout;
pub mod syslog;

pub use aws::aws_config;
pub use dead_letter::DeadLetters;
pub use eventbridge::{EventBridgeSink, EventBridgeSinkConfig};
pub use format::{Formatter, NotSent, VERSION};
pub use jsonl::{JsonlSink, jsonl_file_name};
pub use nats::{NatsSink, NatsSinkConfig};
pub use sqs::{SqsSink, SqsSinkConfig};
pub use stdout::StdoutSink;
pub use syslog::{SyslogSink, SyslogSinkConfig};

use fpolicy_event::Emitted;
use fpolicy_event::format::Skip;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{sink}: I/O on {path}: {source}")]
    Io {
        sink: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The whole call failed; worth retrying (network, 5xx, throttling).
    #[error("{sink}: {message}")]
    Transient {
        sink: String,
        message: String,
        throttled: bool,
    },
    #[error("{0}")]
    Other(String),
}

impl SinkError {
    pub fn is_throttling(&self) -> bool {
        matches!(
            self,
            SinkError::Transient {
                throttled: true,
                ..
            }
        )
    }
}

/// Why one entry of a batch was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryFailure {
    /// Try again later (service error, throttling of that entry).
    Retry(String),
    /// The service refuses it for good (too large, invalid): dead letter.
    Reject(String),
}

/// The outcome of a batch the service answered: which entries failed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// (index into the batch, why).
    pub failures: Vec<(usize, EntryFailure)>,
    /// The service throttled some of it: back off longer.
    pub throttled: bool,
    /// Calls kept in flight for this batch (the concurrency formula).
    pub in_flight: usize,
    /// Entries the sink's format has no representation of (an S3
    /// notification of a directory): not sent, counted, not retried.
    pub skipped: Vec<(usize, Skip)>,
    /// Connections the sink had to open again before this delivery (a
    /// broken or closed connection).
    pub reconnects: u32,
}

/// A destination for events. `deliver` returns `Ok` once the service has
/// answered for every entry: accepted (durable at the destination) or listed
/// in [`Delivered::failures`]. The pipeline resends only the entries marked
/// [`EntryFailure::Retry`], writes [`EntryFailure::Reject`]ed ones to the
/// dead-letter file, and advances the sink's cursor only when nothing of
/// the batch is left; `Err` means the whole call failed and is retried.
/// After a crash the batch may be delivered again (at least once, with
/// unchanged `event_id`s).
pub trait Sink: Send {
    /// Stable name: the cursor file and the metrics label.
    fn name(&self) -> &str;
    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError>;
    /// Whether the destination is usable (queue or bus exists, access
    /// allowed). Checked at start and after failures; the default says yes.
    fn check(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// True for sinks that take only the events routed to them (cloud
    /// sinks); JSON Lines and stdout take every event.
    fn routed(&self) -> bool {
        false
    }
}
