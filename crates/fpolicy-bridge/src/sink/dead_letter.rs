//! Events a service refused for good: one JSON line each in
//! `<data_dir>/dead-letter/<sink>.jsonl`, with the reason, written and
//! fdatasynced before the sink's cursor moves past them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use fpolicy_event::Emitted;
use fpolicy_event::time::rfc3339;

use super::SinkError;

#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
    sink: String,
}

impl DeadLetters {
    pub fn new(dir: &Path, sink: &str) -> DeadLetters {
        DeadLetters {
            path: dir.join(format!("{sink}.jsonl")),
            file: None,
            sink: sink.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `(event, reason)` pairs durably.
    pub fn write(&mut self, entries: &[(&Emitted, &str)], now: i64) -> Result<(), SinkError> {
        let path = self.path.clone();
        let io = |source| SinkError::Io {
            sink: "dead-letter",
            path: path.clone(),
            source,
        };
        if self.file.is_none() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io)?;
            self.file = Some(f);
        }
        let mut buf = Vec::new();
        for (event, reason) in entries {
            // The event as it was (it came from the spool, so it is JSON);
            // anything else is kept as a string.
            let raw = String::from_utf8_lossy(&event.json).into_owned();
            let event =
                serde_json::value::RawValue::from_string(raw.clone()).unwrap_or_else(|_| {
                    serde_json::value::to_raw_value(&raw).expect("a string serializes")
                });
            let line = serde_json::json!({
                "sink": self.sink,
                "reason": reason,
                "rejected_at": rfc3339(now),
                "event": event,
            });
            serde_json::to_writer(&mut buf, &line).map_err(|e| SinkError::Other(e.to_string()))?;
            buf.push(b'\n');
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(&buf).and_then(|()| f.sync_data()).map_err(io)
    }
}
