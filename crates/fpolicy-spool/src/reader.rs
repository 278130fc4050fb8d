//! A sequential reader that runs beside the writer without a lock.
//!
//! Records are immutable once written and the log is append-only, so a
//! reader that never reads at or past the committed sequence number (which
//! the writer publishes after the bytes are written) needs no coordination.
//! At the end of a segment file it continues in the next segment file.
//! Sequence numbers may have gaps where recovery removed damaged records:
//! the reader accepts any increasing sequence number.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::recover::next_segment;
use crate::{FORMAT_MAX_RECORD_BYTES, MAGIC, RECORD_HEADER, SpoolError, crc, io_err, segment_path};

/// Reads committed records in order, starting at a given sequence number.
#[derive(Debug)]
pub struct SpoolReader {
    dir: PathBuf,
    path: PathBuf,
    segment_first: u64,
    file: File,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    next_seq: u64,
    /// Records before this are skipped (positioning inside a segment).
    skip_below: u64,
}

impl SpoolReader {
    pub(crate) fn open(
        dir: &Path,
        segment_first: u64,
        offset: u64,
        offset_seq: u64,
        from: u64,
    ) -> Result<SpoolReader, SpoolError> {
        let path = segment_path(dir, segment_first);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
        Ok(SpoolReader {
            dir: dir.to_owned(),
            path,
            segment_first,
            file,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
            next_seq: offset_seq,
            skip_below: from,
        })
    }

    /// The sequence number of the next record this reader returns (every
    /// record below it has been returned or never existed).
    pub fn position(&self) -> u64 {
        self.next_seq.max(self.skip_below)
    }

    /// Appends up to `max` records below `committed` to `out` as
    /// (sequence number, payload). Returns how many were added.
    pub fn read_batch(
        &mut self,
        committed: u64,
        max: usize,
        out: &mut Vec<(u64, Vec<u8>)>,
    ) -> Result<usize, SpoolError> {
        let mut added = 0;
        let skip_below = self.skip_below;
        while added < max && self.next_seq < committed {
            let Some(header) = self.fill(RECORD_HEADER)? else {
                // End of this segment file: continue in the next one. With
                // none, every number below `committed` is a recovery gap.
                if !self.switch_segment()? {
                    self.next_seq = committed;
                }
                continue;
            };
            let len = u32::from_le_bytes(header[..4].try_into().unwrap_or_default()) as usize;
            let sum = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
            let seq = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
            if len > FORMAT_MAX_RECORD_BYTES || seq < self.next_seq {
                return Err(self.corrupt("record header does not match the expected sequence"));
            }
            if seq >= committed {
                // Past a gap, only uncommitted records follow.
                self.next_seq = committed;
                break;
            }
            let total = RECORD_HEADER + len;
            let Some(record) = self.fill(total)? else {
                return Err(self.corrupt("committed record is truncated"));
            };
            let payload = &record[RECORD_HEADER..];
            if crc(seq, payload) != sum {
                return Err(self.corrupt("checksum mismatch"));
            }
            if seq >= skip_below {
                out.push((seq, payload.to_vec()));
                added += 1;
            }
            self.start += total;
            self.next_seq = seq + 1;
        }
        Ok(added)
    }

    /// Ensures `n` buffered bytes; `None` at a clean end of file.
    fn fill(&mut self, n: usize) -> Result<Option<&[u8]>, SpoolError> {
        if self.end - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            while self.end < n {
                let got = self
                    .file
                    .read(&mut self.buf[self.end..])
                    .map_err(io_err(&self.path))?;
                if got == 0 {
                    return Ok(None);
                }
                self.end += got;
            }
        }
        Ok(Some(&self.buf[self.start..self.start + n]))
    }

    /// Moves to the next segment file; false when there is none.
    fn switch_segment(&mut self) -> Result<bool, SpoolError> {
        if self.end != self.start {
            return Err(self.corrupt("partial record at the end of a segment"));
        }
        let Some(first) = next_segment(&self.dir, self.segment_first)? else {
            return Ok(false);
        };
        let path = segment_path(&self.dir, first);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        let mut magic = [0u8; 8];
        file.read_exact(&mut magic).map_err(io_err(&path))?;
        if &magic != MAGIC {
            return Err(SpoolError::Corrupt {
                path,
                offset: 0,
                reason: "bad magic".into(),
            });
        }
        self.path = path;
        self.file = file;
        self.segment_first = first;
        // A segment holds nothing below its name.
        self.next_seq = self.next_seq.max(first);
        Ok(true)
    }

    fn corrupt(&self, reason: &str) -> SpoolError {
        let pos = self.file.try_clone().and_then(|mut f| f.stream_position());
        SpoolError::Corrupt {
            path: self.path.clone(),
            offset: pos
                .unwrap_or(0)
                .saturating_sub((self.end - self.start) as u64),
            reason: reason.to_owned(),
        }
    }
}
