//! JSON Lines files: `<dir>/fpolicy_events_YYYY-MM-DD.jsonl` by UTC date of
//! receipt; a file that reaches `max_file_bytes` continues in
//! `fpolicy_events_YYYY-MM-DD.1.jsonl`, `.2.jsonl`, …. Each delivered batch
//! is written and `fdatasync`ed before the cursor moves.
//!
//! A line is never written after a partial one: a file whose last line is
//! torn (a crash, or a full disk, in the middle of a write) is cut back to
//! its last newline when it is opened, and a failed write is cut back to
//! where it started. The cut event is delivered again from the spool, since
//! the cursor moves only after a whole batch is synced.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use fpolicy_event::Emitted;
use fpolicy_event::time::{NANOS_PER_DAY, utc_date};

use super::{Delivered, Sink, SinkError};

/// The file name for a date and rotation index.
pub fn jsonl_file_name(date: &str, index: u32) -> String {
    if index == 0 {
        format!("fpolicy_events_{date}.jsonl")
    } else {
        format!("fpolicy_events_{date}.{index}.jsonl")
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError {
    let path = path.to_owned();
    move |source| SinkError::Io {
        sink: "jsonl",
        path,
        source,
    }
}

#[derive(Debug)]
struct OpenFile {
    date: String,
    index: u32,
    path: PathBuf,
    file: File,
    size: u64,
}

#[derive(Debug)]
pub struct JsonlSink {
    dir: PathBuf,
    max_file_bytes: u64,
    fsync: bool,
    current: Option<OpenFile>,
    buf: Vec<u8>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    formatter: super::Formatter,
    /// The last event's UTC day and its `YYYY-MM-DD` (formatted once a day,
    /// not once per event).
    day: (i64, String),
}

/// Cuts a file back to just after its last newline when its last line is
/// incomplete. Returns the bytes cut.
pub fn repair_torn_tail(file: &mut File, size: u64) -> std::io::Result<u64> {
    if size == 0 {
        return Ok(0);
    }
    let mut chunk = vec![0u8; 64 * 1024];
    let mut end = size;
    loop {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if end == size && part.last() == Some(&b'\n') {
            return Ok(0);
        }
        if let Some(i) = memchr::memrchr(b'\n', part) {
            let keep = start + i as u64 + 1;
            file.set_len(keep)?;
            file.sync_all()?;
            return Ok(size - keep);
        }
        if start == 0 {
            file.set_len(0)?;
            file.sync_all()?;
            return Ok(size);
        }
        end = start;
    }
}

impl JsonlSink {
    pub fn new(dir: &Path, max_file_bytes: u64, fsync: bool) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            sink: "jsonl",
            path: dir.to_owned(),
            source,
        })?;
        Ok(JsonlSink {
            dir: dir.to_owned(),
            max_file_bytes,
            fsync,
            current: None,
            buf: Vec::with_capacity(1 << 20),
            metrics: None,
            formatter: super::Formatter::default(),
            day: (i64::MIN, String::new()),
        })
    }

    /// Lines in `formatter`'s format (default: the events as they are).
    pub fn with_format(mut self, formatter: super::Formatter) -> Self {
        self.formatter = formatter;
        self
    }

    /// Counts torn tails repaired in `fpolicy_jsonl_torn_tails_repaired_total`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Opens the newest file of `date` that still has room (continuing
    /// after a restart), or the next rotation index.
    fn open(&mut self, date: &str, min_index: u32) -> Result<(), SinkError> {
        let mut index = min_index;
        while self.dir.join(jsonl_file_name(date, index + 1)).exists() {
            index += 1;
        }
        loop {
            let path = self.dir.join(jsonl_file_name(date, index));
            let mut file = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&path)
                .map_err(io(&path))?;
            let mut size = file.metadata().map_err(io(&path))?.len();
            let cut = repair_torn_tail(&mut file, size).map_err(io(&path))?;
            if cut > 0 {
                size -= cut;
                tracing::warn!(file = %path.display(), cut_bytes = cut, "JSON Lines file ended in a torn line (crash or full disk during a write); cut back to the last whole line, the event is delivered again");
                if let Some(m) = &self.metrics {
                    m.jsonl_torn_tails.fetch_add(1, Relaxed);
                }
            }
            if size < self.max_file_bytes {
                self.current = Some(OpenFile {
                    date: date.to_owned(),
                    index,
                    path,
                    file,
                    size,
                });
                return Ok(());
            }
            index += 1;
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let path = cur.path.clone();
        let written = cur.file.write_all(&self.buf).and_then(|()| {
            if self.fsync {
                cur.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Leave no partial line: cut back to where this write started
            // (failing that, the next open cuts the torn line).
            if cur.file.set_len(cur.size).is_err() {
                self.current = None;
            }
            return Err(io(&path)(e));
        }
        cur.size += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
        let mut delivered = Delivered::default();
        let formatter = self.formatter.clone();
        let bodies = formatter.bodies(events, &mut delivered);
        let result = (|| {
            for (i, body) in bodies {
                let e = &events[i];
                let day = e.received.div_euclid(NANOS_PER_DAY);
                if day != self.day.0 {
                    self.day = (day, utc_date(e.received));
                }
                let date = &self.day.1;
                let rotate = match &self.current {
                    None => Some((date.clone(), 0)),
                    Some(c) if c.date != *date => Some((date.clone(), 0)),
                    Some(c) if c.size + self.buf.len() as u64 >= self.max_file_bytes => {
                        Some((date.clone(), c.index + 1))
                    }
                    Some(_) => None,
                };
                if let Some((date, index)) = rotate {
                    self.flush()?;
                    self.open(&date, index)?;
                }
                self.buf.extend_from_slice(&body);
                self.buf.push(b'\n');
            }
            self.flush()
        })();
        if result.is_err() {
            // Start the retry from a clean state; the batch is repeated
            // whole (lines already synced before a rotation may repeat).
            self.buf.clear();
            self.current = None;
        }
        result.map(|()| delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fpolicy_event::Operation;

    #[test]
    fn a_torn_last_line_is_cut_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let day = 20_000;
        let path = dir.path().join("fpolicy_events_2024-10-04.jsonl");
        std::fs::write(&path, "{\"n\":1}\n{\"n\":2}\n{\"session_id\":\"d").unwrap();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let mut s = JsonlSink::new(dir.path(), 1 << 20, true)
            .unwrap()
            .with_metrics(metrics.clone());
        s.deliver(&[ev(day, 3)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
        assert_eq!(metrics.jsonl_torn_tails.load(Relaxed), 1);
        // A file that is one partial line only is emptied.
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.set_len(0).unwrap();
        f.write_all(&[b'x'; 100_000]).unwrap();
        assert_eq!(repair_torn_tail(&mut f, 100_000).unwrap(), 100_000);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    fn ev(day: i64, n: usize) -> Emitted {
        Emitted {
            seq: n as u64,
            operation: Operation::Create,
            received: day * 86_400_000_000_000 + 1,
            json: format!("{{\"n\":{n}}}").into_bytes(),
        }
    }

    #[test]
    fn files_by_date_and_size_rotation_and_continuation() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = JsonlSink::new(dir.path(), 4096, true).unwrap();
        let day = 20_000; // 2024-10-04
        let batch: Vec<Emitted> = (0..1000).map(|n| ev(day, n)).collect();
        s.deliver(&batch).unwrap();
        s.deliver(&[ev(day + 1, 1000)]).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert!(names.contains(&"fpolicy_events_2024-10-04.jsonl".to_owned()));
        assert!(names.contains(&"fpolicy_events_2024-10-04.1.jsonl".to_owned()));
        assert!(names.contains(&"fpolicy_events_2024-10-05.jsonl".to_owned()));
        let mut lines = 0;
        for n in &names {
            let text = std::fs::read_to_string(dir.path().join(n)).unwrap();
            assert!(
                text.len() as u64 <= 4096 + 16,
                "{n} is {} bytes",
                text.len()
            );
            lines += text.lines().count();
        }
        assert_eq!(lines, 1001);
        // A new sink (restart) continues in the newest file of the day.
        let mut s = JsonlSink::new(dir.path(), 4096, true).unwrap();
        s.deliver(&[ev(day, 5000)]).unwrap();
        let last = names
            .iter()
            .filter(|n| n.contains("10-04"))
            .max_by_key(|n| n.len())
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(last)).unwrap();
        assert!(
            text.ends_with("{\"n\":5000}\n")
                || std::fs::read_dir(dir.path()).unwrap().count() > names.len()
        );
    }
}
