//! `--sink stdout`: one JSON line per event on standard output (logs go to
//! standard error), in the sink's `format`.

use std::io::Write;

use fpolicy_event::Emitted;

use super::{Delivered, Sink, SinkError};

#[derive(Debug, Default)]
pub struct StdoutSink {
    buf: Vec<u8>,
    formatter: super::Formatter,
}

impl StdoutSink {
    /// Events in `formatter`'s format (default: as they are).
    pub fn new(formatter: super::Formatter) -> StdoutSink {
        StdoutSink {
            buf: Vec::new(),
            formatter,
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
        self.buf.clear();
        let mut delivered = Delivered::default();
        for (_, body) in self.formatter.bodies(events, &mut delivered) {
            self.buf.extend_from_slice(&body);
            self.buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)
            .and_then(|_| out.flush())
            .map_err(|source| SinkError::Io {
                sink: "stdout",
                path: "<stdout>".into(),
                source,
            })?;
        Ok(delivered)
    }
}
