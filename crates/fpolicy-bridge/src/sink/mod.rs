//! Sinks: where events go. Each sink runs in its own delivery pipeline
//! ([`crate::pipeline`]) with its own spool cursor, so a slow or failing
//! sink delays only itself.

mod jsonl;
mod stdout;

pub use jsonl::{JsonlSink, jsonl_file_name};
pub use stdout::StdoutSink;

use fpolicy_event::Emitted;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{sink}: I/O on {path}: {source}")]
    Io {
        sink: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A destination for events. `deliver` returns `Ok` only once the events
/// are durable (or accepted) at the destination: the pipeline advances the
/// sink's cursor after it, and repeats the batch after an error or a crash
/// (at-least-once, with unchanged `event_id`s).
pub trait Sink: Send {
    /// Stable name: the cursor file and the metrics label.
    fn name(&self) -> &str;
    fn deliver(&mut self, events: &[Emitted]) -> Result<(), SinkError>;
}
