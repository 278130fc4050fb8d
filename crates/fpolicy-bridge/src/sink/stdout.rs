//! `--sink stdout`: one JSON line per event on standard output (logs go to
//! standard error).

use std::io::Write;

use fpolicy_event::Emitted;

use super::{Delivered, Sink, SinkError};

#[derive(Debug, Default)]
pub struct StdoutSink {
    buf: Vec<u8>,
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
        self.buf.clear();
        for e in events {
            self.buf.extend_from_slice(&e.json);
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
        Ok(Delivered::default())
    }
}
