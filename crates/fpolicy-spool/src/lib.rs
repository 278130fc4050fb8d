//! The durable local log between FPolicy sessions and sinks.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/segments/<first seq, 20 digits>.seg
//! <dir>/cursors/<sink name>.cur
//! <dir>/quarantine/<segment or cursor file>.<byte offset>.bin
//! ```
//!
//! A segment starts with the 8-byte magic `FPSPOOL1`, then records:
//!
//! ```text
//! u32 LE  payload length (at most FORMAT_MAX_RECORD_BYTES, a format constant)
//! u32 LE  CRC-32 (IEEE) of the 8 seq bytes followed by the payload
//! u64 LE  sequence number
//! [u8]    payload
//! ```
//!
//! Sequence numbers increase through the log; they are consecutive except
//! where recovery removed damaged records (a reported gap). A segment's
//! file name is a lower bound of its sequence numbers: the sequence number
//! of the first record written to it. A cursor file holds the next
//! sequence number the sink has not yet confirmed (u64 LE) and the CRC-32
//! of those 8 bytes; it is replaced atomically (write to `.tmp`, fsync,
//! rename, fsync the directory).
//!
//! # Durability
//!
//! [`Spool::append`] buffers; [`Spool::commit`] reserves the space ahead
//! (`fallocate` with `KEEP_SIZE`, so a full disk is found before a byte is
//! written), writes the buffer and, under [`FsyncPolicy::Always`], calls
//! `fdatasync` once for the whole batch (group commit). Only committed
//! records are readable, and only they survive a crash.
//!
//! # Faults
//!
//! A commit that fails (ENOSPC, EIO, a failed fsync) cuts the segment back
//! to its last good byte before returning the error, and keeps the batch:
//! the next commit writes it again from a clean end, so no fragment is
//! ever followed by later records. Until a commit succeeds, nothing in the
//! batch is durable and the caller must not acknowledge it.
//!
//! # Recovery
//!
//! [`Spool::open`] verifies every record. A record that fails its checks
//! in the middle of a segment is skipped: the scan resynchronises on the
//! next valid record, the damaged bytes are copied to `quarantine/`, the
//! segment is rewritten without them, and the lost sequence range is
//! reported in [`Recovery`]. Bad bytes with nothing valid after them (a
//! torn write, or damage to the last records) are quarantined and cut.
//! Unreadable cursor files are quarantined and reset to the oldest record
//! (redelivery, never loss); a cursor past the end of a cut log makes the
//! log continue after it, so new records are never below a cursor.
//! [`Spool::inspect`] runs the same checks without changing anything.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod io_ops;
pub mod lease;
mod reader;
mod recover;
mod scan;

pub use io_ops::{FaultHook, InjectedFault, IoOp, free_bytes, is_no_space};
pub use reader::SpoolReader;
pub use recover::{Damage, DamageKind, Recovery};
pub use scan::Region;

use io_ops::Faults;
use scan::INDEX_EVERY;

const MAGIC: &[u8; 8] = b"FPSPOOL1";
const RECORD_HEADER: usize = 16;
/// The largest payload the format holds. Recovery and readers believe
/// lengths up to this, whatever the configured append limit is, so that
/// lowering a limit can never orphan records written under a higher one.
pub const FORMAT_MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

/// When commit makes data durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` once per commit: a committed record survives power loss.
    Always,
    /// Leave it to the OS: survives a process crash, not power loss. Tests only.
    Never,
}

/// Spool settings.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Roll to a new segment once the active one would pass this size.
    pub segment_bytes: u64,
    /// Largest payload `append` accepts (at most [`FORMAT_MAX_RECORD_BYTES`]).
    pub max_record_bytes: usize,
    pub fsync: FsyncPolicy,
    /// Space reserved ahead of the data in the active segment (0: none).
    pub reserve_bytes: u64,
    /// Test support: makes chosen file operations fail.
    #[doc(hidden)]
    pub faults: Option<Arc<dyn FaultHook>>,
}

impl SpoolConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            segment_bytes: 64 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            fsync: FsyncPolicy::Always,
            reserve_bytes: 8 * 1024 * 1024,
            faults: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool segment {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("record of {len} bytes exceeds the limit of {max}")]
    RecordTooLarge { len: usize, max: usize },
    #[error("invalid sink name {0:?}: use letters, digits, '-' and '_'")]
    InvalidSinkName(String),
    #[error("no spool at {0}")]
    NotFound(PathBuf),
}

impl SpoolError {
    /// The disk (or quota) is full: retry once space is back.
    pub fn is_no_space(&self) -> bool {
        matches!(self, SpoolError::Io { source, .. } if is_no_space(source))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// From the file name: a lower bound of its sequence numbers.
    first_seq: u64,
    /// One past the highest sequence number in it (`first_seq` if empty).
    end_seq: u64,
    records: u64,
    /// Bytes of valid data (where the next record goes).
    bytes: u64,
    /// (seq, byte offset) every INDEX_EVERY records.
    index: Vec<(u64, u64)>,
}

impl Segment {
    fn empty(path: PathBuf, first_seq: u64) -> Segment {
        Segment {
            path,
            first_seq,
            end_seq: first_seq,
            records: 0,
            bytes: MAGIC.len() as u64,
            index: Vec::new(),
        }
    }

    /// The indexed (seq, byte offset) closest at or before `seq`: where a
    /// scan for `seq` starts.
    fn position_before(&self, seq: u64) -> (u64, u64) {
        self.index
            .iter()
            .rev()
            .find(|(s, _)| *s <= seq)
            .copied()
            .unwrap_or((self.first_seq, MAGIC.len() as u64))
    }
}

/// Counts for `spool stats` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStats {
    pub segments: usize,
    pub bytes: u64,
    pub records: u64,
    pub first_seq: u64,
    pub next_seq: u64,
    pub cursors: BTreeMap<String, u64>,
}

/// The segmented log.
#[derive(Debug)]
pub struct Spool {
    cfg: SpoolConfig,
    faults: Faults,
    segments: BTreeMap<u64, Segment>,
    active: File,
    /// End of the space reserved in the active segment.
    reserved_to: u64,
    /// False once the file system said it cannot reserve.
    can_reserve: bool,
    /// A failed write may have left bytes past the active segment's data
    /// that could not be cut yet: cut them before the next write.
    tail_dirty: bool,
    /// Encoded records appended but not yet committed.
    pending: Vec<u8>,
    pending_records: u64,
    /// Index entries (seq, file offset) of the buffered records.
    pending_index: Vec<(u64, u64)>,
    /// Next sequence number that commit will make durable.
    committed_seq: u64,
    cursors: BTreeMap<String, u64>,
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join("segments").join(format!("{first_seq:020}.seg"))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn crc(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn open_append(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

impl Spool {
    /// Opens (or creates) the spool and recovers it: damaged records are
    /// quarantined and reported, every intact one is kept.
    pub fn open(cfg: SpoolConfig) -> Result<(Spool, Recovery), SpoolError> {
        let faults = Faults(cfg.faults.clone());
        for sub in ["segments", "cursors"] {
            let d = cfg.dir.join(sub);
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        let recovered = recover::recover(&cfg.dir, &faults, true)?;
        let mut segments = recovered.segments;
        let mut recovery = recovered.report;
        let mut committed_seq = recovered.next_seq;
        let cursors = recovered.cursors;
        // A cursor past the end (the log was cut after delivery): continue
        // after it, in a new segment, so no new record falls below it.
        let max_cursor = cursors.values().copied().max().unwrap_or(0);
        let jump = max_cursor > committed_seq;
        if jump {
            recovery.cursors_past_end = cursors
                .iter()
                .filter(|(_, c)| **c > committed_seq)
                .map(|(s, _)| s.clone())
                .collect();
            committed_seq = max_cursor;
        }
        if segments.is_empty() || jump {
            let seg = create_segment(&cfg.dir, committed_seq, &faults)?;
            segments.insert(committed_seq, seg);
        }
        let last = segments.values().next_back().expect("an active segment");
        let active = open_append(&last.path)?;
        let reserved_to = last.bytes;
        Ok((
            Spool {
                cfg,
                faults,
                segments,
                active,
                reserved_to,
                can_reserve: true,
                tail_dirty: false,
                pending: Vec::with_capacity(256 * 1024),
                pending_records: 0,
                pending_index: Vec::new(),
                committed_seq,
                cursors,
            },
            recovery,
        ))
    }

    /// Checks the spool without changing a byte: what [`Spool::open`]
    /// would keep, and what it would quarantine. An error if there is no
    /// spool at `cfg.dir`.
    pub fn inspect(cfg: &SpoolConfig) -> Result<(SpoolStats, Recovery), SpoolError> {
        if !cfg.dir.join("segments").is_dir() {
            return Err(SpoolError::NotFound(cfg.dir.clone()));
        }
        let r = recover::recover(&cfg.dir, &Faults::default(), false)?;
        let stats = SpoolStats {
            segments: r.segments.len(),
            bytes: r.segments.values().map(|s| s.bytes).sum(),
            records: r.segments.values().map(|s| s.records).sum(),
            first_seq: r.segments.values().next().map_or(0, |s| s.first_seq),
            next_seq: r
                .next_seq
                .max(r.cursors.values().copied().max().unwrap_or(0)),
            cursors: r.cursors,
        };
        Ok((stats, r.report))
    }

    /// Buffers one record and returns its sequence number. Not durable,
    /// and not readable, until [`Spool::commit`]. When the record does not
    /// fit in the active segment, the records buffered before it are
    /// committed first and a new segment is started.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, SpoolError> {
        let max = self.cfg.max_record_bytes.min(FORMAT_MAX_RECORD_BYTES);
        if payload.len() > max {
            return Err(SpoolError::RecordTooLarge {
                len: payload.len(),
                max,
            });
        }
        let record_len = (RECORD_HEADER + payload.len()) as u64;
        let active = self.active_segment();
        let active_has_data = active.records > 0 || self.pending_records > 0;
        if active_has_data
            && active.bytes + self.pending.len() as u64 + record_len > self.cfg.segment_bytes
        {
            self.commit()?;
            self.roll()?;
        }
        let seq = self.committed_seq + self.pending_records;
        let active = self.active_segment();
        if (active.records + self.pending_records).is_multiple_of(INDEX_EVERY) {
            let offset = active.bytes + self.pending.len() as u64;
            self.pending_index.push((seq, offset));
        }
        self.pending
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.pending
            .extend_from_slice(&crc(seq, payload).to_le_bytes());
        self.pending.extend_from_slice(&seq.to_le_bytes());
        self.pending.extend_from_slice(payload);
        self.pending_records += 1;
        Ok(seq)
    }

    /// Records buffered and not yet durable.
    pub fn pending_records(&self) -> u64 {
        self.pending_records
    }

    /// Writes every buffered record with one write and (per the policy) one
    /// `fdatasync`. Returns the next sequence number, i.e. every record
    /// below it is durable. On an error nothing of the batch is durable,
    /// the segment ends at its last good byte again (or will before the
    /// next write), and the batch stays buffered for the next commit.
    pub fn commit(&mut self) -> Result<u64, SpoolError> {
        if self.pending_records == 0 {
            return Ok(self.committed_seq);
        }
        let good = self.active_segment().bytes;
        let path = self.active_segment().path.clone();
        if self.tail_dirty {
            self.faults
                .set_len(&self.active, good)
                .map_err(io_err(&path))?;
            self.tail_dirty = false;
            self.reserved_to = good;
        }
        self.reserve_for(good + self.pending.len() as u64)?;
        let written = self
            .faults
            .write_all(&mut self.active, &self.pending)
            .and_then(|()| match self.cfg.fsync {
                FsyncPolicy::Always => self.faults.sync_data(&self.active),
                FsyncPolicy::Never => Ok(()),
            });
        if let Err(source) = written {
            // Whatever reached the file is not durable: cut it now, or
            // before the next write if even that fails.
            self.tail_dirty = true;
            if self.faults.set_len(&self.active, good).is_ok() {
                self.tail_dirty = false;
                self.reserved_to = good;
            }
            return Err(SpoolError::Io { path, source });
        }
        let seg = self
            .segments
            .values_mut()
            .next_back()
            .expect("an active segment");
        seg.index.append(&mut self.pending_index);
        seg.bytes += self.pending.len() as u64;
        seg.records += self.pending_records;
        self.committed_seq += self.pending_records;
        seg.end_seq = self.committed_seq;
        self.pending.clear();
        self.pending_records = 0;
        Ok(self.committed_seq)
    }

    /// Reserves space for the active segment to reach `end` (and a chunk
    /// beyond), so that a full disk fails here, before any byte is written.
    fn reserve_for(&mut self, end: u64) -> Result<(), SpoolError> {
        if !self.can_reserve || self.cfg.reserve_bytes == 0 || end <= self.reserved_to {
            return Ok(());
        }
        let target = (end + self.cfg.reserve_bytes).min(end.max(self.cfg.segment_bytes));
        let path = &self.segments.values().next_back().expect("active").path;
        match self
            .faults
            .reserve(&self.active, self.reserved_to, target - self.reserved_to)
        {
            Ok(true) => self.reserved_to = target,
            Ok(false) => self.can_reserve = false,
            Err(e) => return Err(io_err(path)(e)),
        }
        Ok(())
    }

    fn active_segment(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("an active segment")
    }

    fn roll(&mut self) -> Result<(), SpoolError> {
        let seg = create_segment(&self.cfg.dir, self.committed_seq, &self.faults)?;
        let active = open_append(&seg.path)?;
        // The sealed segment gives back the space reserved past its data.
        let sealed_end = self.active_segment().bytes;
        self.faults.release(
            &self.active,
            sealed_end,
            self.reserved_to.saturating_sub(sealed_end),
        );
        self.active = active;
        self.reserved_to = seg.bytes;
        self.segments.insert(seg.first_seq, seg);
        Ok(())
    }

    /// The next sequence number commit will assign durability to.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq
    }

    /// Oldest sequence number still stored (a lower bound).
    pub fn first_seq(&self) -> u64 {
        self.segments.values().next().map_or(0, |s| s.first_seq)
    }

    /// Reads up to `max` committed records starting at `from` (or at the
    /// oldest stored record if `from` was already deleted).
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, SpoolError> {
        let mut out = Vec::new();
        if max > 0 && from < self.committed_seq {
            self.reader(from)?
                .read_batch(self.committed_seq, max, &mut out)?;
        }
        Ok(out)
    }

    /// A lock-free sequential reader positioned at `from` (or at the oldest
    /// stored record). It may outlive this borrow and run on another thread;
    /// pass it the committed sequence number the writer publishes.
    pub fn reader(&self, from: u64) -> Result<SpoolReader, SpoolError> {
        let from = from.max(self.first_seq());
        let seg = self
            .segments
            .range(..=from)
            .next_back()
            .map(|(_, s)| s)
            .or_else(|| self.segments.values().next())
            .expect("an active segment");
        let (seq, offset) = seg.position_before(from);
        SpoolReader::open(&self.cfg.dir, seg.first_seq, offset, seq, from)
    }

    /// Deletes whole segments that end at or below `min_cursor` (the lowest
    /// cursor of every sink, tracked by the caller). Returns how many.
    pub fn retain_below(&mut self, min_cursor: u64) -> Result<usize, SpoolError> {
        let active_key = *self.segments.keys().next_back().expect("an active segment");
        let doomed: Vec<u64> = self
            .segments
            .values()
            .filter(|s| s.first_seq != active_key && s.end_seq <= min_cursor)
            .map(|s| s.first_seq)
            .collect();
        for key in &doomed {
            if let Some(seg) = self.segments.remove(key) {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            }
        }
        if !doomed.is_empty() && self.cfg.fsync == FsyncPolicy::Always {
            sync_dir(&self.cfg.dir.join("segments"))?;
        }
        Ok(doomed.len())
    }

    /// Bytes of records stored (all segments) and buffered.
    pub fn stored_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.bytes).sum::<u64>() + self.pending.len() as u64
    }

    /// The next sequence number `sink` has not confirmed; a new sink starts
    /// at the oldest stored record.
    pub fn cursor(&self, sink: &str) -> u64 {
        self.cursors
            .get(sink)
            .copied()
            .unwrap_or_else(|| self.first_seq())
    }

    /// Records that `sink` has delivered everything below `next`.
    /// Durable when this returns.
    pub fn set_cursor(&mut self, sink: &str, next: u64) -> Result<(), SpoolError> {
        let next = next.min(self.committed_seq);
        write_cursor(&self.cfg.dir, sink, next, self.cfg.fsync)?;
        self.cursors.insert(sink.to_owned(), next);
        Ok(())
    }

    /// Deletes whole segments that every cursor has passed. With no cursor,
    /// nothing is deleted. Returns how many segments were removed.
    pub fn retain(&mut self) -> Result<usize, SpoolError> {
        let Some(&min) = self.cursors.values().min() else {
            return Ok(0);
        };
        self.retain_below(min)
    }

    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            segments: self.segments.len(),
            bytes: self.segments.values().map(|s| s.bytes).sum(),
            records: self.segments.values().map(|s| s.records).sum(),
            first_seq: self.first_seq(),
            next_seq: self.committed_seq,
            cursors: self.cursors.clone(),
        }
    }

    /// Test support: simulates a crash in the middle of a commit's write:
    /// the first `keep` bytes of the uncommitted buffer reach the file, the
    /// rest never does, and the process stops without syncing.
    #[doc(hidden)]
    pub fn crash_with_torn_write(mut self, keep: usize) {
        let keep = keep.min(self.pending.len());
        if self.tail_dirty {
            let _ = self.active.set_len(self.active_segment().bytes);
        }
        let _ = self.active.write_all(&self.pending[..keep]);
    }
}

/// Durably records that `sink` has delivered everything below `next`
/// (write to `.tmp`, fsync, rename, fsync the directory). Sinks call this
/// from their own threads; the cursor files are theirs alone.
pub fn write_cursor(
    dir: &Path,
    sink: &str,
    next: u64,
    fsync: FsyncPolicy,
) -> Result<(), SpoolError> {
    if sink.is_empty()
        || !sink
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SpoolError::InvalidSinkName(sink.to_owned()));
    }
    let dir = dir.join("cursors");
    let tmp = dir.join(format!("{sink}.tmp"));
    let path = dir.join(format!("{sink}.cur"));
    let mut bytes = next.to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&next.to_le_bytes()).to_le_bytes());
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&bytes).map_err(io_err(&tmp))?;
    if fsync == FsyncPolicy::Always {
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    if fsync == FsyncPolicy::Always {
        sync_dir(&dir)?;
    }
    Ok(())
}

/// Creates a segment atomically (a temporary name, then a rename), so a
/// failure never leaves a half-made segment behind.
fn create_segment(dir: &Path, first_seq: u64, faults: &Faults) -> Result<Segment, SpoolError> {
    let path = segment_path(dir, first_seq);
    let tmp = path.with_extension("seg.tmp");
    faults
        .create_file(IoOp::Create, &tmp, MAGIC)
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(&dir.join("segments"))?;
    Ok(Segment::empty(path, first_seq))
}
