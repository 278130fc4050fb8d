//! The state of a poll on disk: `<dir>/<name>.state`, one JSON object per
//! line (key, etag, size, last_modified), sorted by key. Read lazily; the
//! next state is written to `<name>.state.tmp` during the cycle and renamed
//! over the old one (after fsync) only once the cycle's events are durable
//! in the spool, so a crash repeats a cycle's events (same ids) and never
//! loses them. A damaged line (it does not parse, or its key breaks the
//! sort order) is skipped and counted: the object it described looks new
//! to the next cycle and is reported again, rather than the poll failing
//! until someone removes the file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::state::ObjectState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("poll state {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "poll state {path} line {line} is corrupt: {message}; move the file away to start a new baseline"
    )]
    Corrupt {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

pub fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.state"))
}

/// Whether a previous cycle left a state (else this is the baseline run).
pub fn exists(dir: &Path, name: &str) -> bool {
    state_path(dir, name).exists()
}

/// Reads the stored state lazily. A missing file is an empty state.
pub struct StateReader {
    path: PathBuf,
    lines: Option<std::io::Lines<BufReader<File>>>,
    line: u64,
    /// The last key read, to check the order.
    last_key: Option<String>,
    pub error: Option<StoreError>,
    /// Damaged lines skipped.
    pub skipped: u64,
}

impl StateReader {
    pub fn open(dir: &Path, name: &str) -> Result<StateReader, StoreError> {
        let path = state_path(dir, name);
        let lines = match File::open(&path) {
            Ok(f) => Some(BufReader::new(f).lines()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        Ok(StateReader {
            path,
            lines,
            line: 0,
            last_key: None,
            error: None,
            skipped: 0,
        })
    }
}

impl Iterator for StateReader {
    type Item = ObjectState;
    fn next(&mut self) -> Option<ObjectState> {
        loop {
            let text = self.next_line()?;
            self.line += 1;
            match serde_json::from_str::<ObjectState>(&text) {
                Ok(o) if self.last_key.as_ref().is_none_or(|k| *k < o.key) => {
                    self.last_key = Some(o.key.clone());
                    return Some(o);
                }
                _ => self.skipped += 1,
            }
        }
    }
}

impl StateReader {
    /// The next line; an I/O error ends the reading and is kept.
    fn next_line(&mut self) -> Option<String> {
        match self.lines.as_mut()?.next()? {
            Ok(t) => Some(t),
            Err(source) => {
                self.error = Some(StoreError::Io {
                    path: self.path.clone(),
                    source,
                });
                self.lines = None;
                None
            }
        }
    }
}

/// Writes the next state; [`StateWriter::commit`] makes it the state.
pub struct StateWriter {
    dir: PathBuf,
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
}

impl StateWriter {
    pub fn create(dir: &Path, name: &str) -> Result<StateWriter, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = state_path(dir, name);
        let tmp = dir.join(format!("{name}.state.tmp"));
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        Ok(StateWriter {
            dir: dir.to_owned(),
            tmp,
            path,
            out: BufWriter::new(f),
        })
    }

    pub fn push(&mut self, o: &ObjectState) -> Result<(), StoreError> {
        let line = serde_json::to_string(o).map_err(|e| StoreError::Corrupt {
            path: self.tmp.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        writeln!(self.out, "{line}").map_err(|source| StoreError::Io {
            path: self.tmp.clone(),
            source,
        })
    }

    /// fsync, rename over the old state, fsync the directory.
    pub fn commit(self) -> Result<(), StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let f = self.out.into_inner().map_err(|e| StoreError::Io {
            path: self.tmp.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io(&self.tmp))?;
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }
}

#[cfg(test)]
mod damaged_state_tests {
    use super::*;

    #[test]
    fn damaged_lines_are_skipped_and_counted_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let line = |k: &str| {
            serde_json::to_string(&ObjectState {
                key: k.into(),
                etag: "e".into(),
                size: 1,
                last_modified: 2,
            })
            .unwrap()
        };
        let text = [
            line("a"),
            "{\"key\":\"b\",\"etag".to_owned(), // torn
            line("c"),
            line("bb"), // out of order: a damaged key
            line("d"),
        ]
        .join("\n");
        std::fs::write(state_path(dir.path(), "p"), text).unwrap();
        let mut r = StateReader::open(dir.path(), "p").unwrap();
        let keys: Vec<String> = r.by_ref().map(|o| o.key).collect();
        assert_eq!(keys, ["a", "c", "d"]);
        assert_eq!(r.skipped, 2);
        assert!(r.error.is_none());
    }
}
