//! The durable local log between FPolicy sessions and sinks.
//!
//! # On-disk format
//!
//! ```text
//! <dir>/segments/<first seq, 20 digits>.seg
//! <dir>/cursors/<sink name>.cur
//! ```
//!
//! A segment starts with the 8-byte magic `FPSPOOL1`, then records:
//!
//! ```text
//! u32 LE  payload length
//! u32 LE  CRC-32 (IEEE) of the 8 seq bytes followed by the payload
//! u64 LE  sequence number
//! [u8]    payload
//! ```
//!
//! Sequence numbers are consecutive across the whole log; a segment's file
//! name is the sequence number of its first record. A cursor file holds the
//! next sequence number the sink has not yet confirmed (u64 LE) and the
//! CRC-32 of those 8 bytes; it is replaced atomically (write to `.tmp`,
//! fsync, rename, fsync the directory).
//!
//! # Durability
//!
//! [`Spool::append`] buffers; [`Spool::commit`] writes the buffer and, under
//! [`FsyncPolicy::Always`], calls `fdatasync` once for the whole batch
//! (group commit). Only committed records are readable, and only they
//! survive a crash. Recovery on [`Spool::open`] verifies every record; a
//! torn or corrupt tail of the last segment is truncated and reported in
//! [`Recovery`]; corruption anywhere else is an error, never a silent skip.
//! Whole segments are deleted by [`Spool::retain`] only once every cursor
//! has passed them.
//!
//! Status: this crate covers the log, cursors, recovery and retention. The
//! capacity limit with back pressure, the bounded commit delay driven by a
//! task, and segment preallocation come with the server (issue "serve").

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

mod reader;
pub use reader::SpoolReader;

const MAGIC: &[u8; 8] = b"FPSPOOL1";
const RECORD_HEADER: usize = 16;
/// One sparse index entry per this many records of a segment.
const INDEX_EVERY: u64 = 256;

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
    /// Largest payload accepted (and believed during recovery).
    pub max_record_bytes: usize,
    pub fsync: FsyncPolicy,
}

impl SpoolConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            segment_bytes: 64 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            fsync: FsyncPolicy::Always,
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
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What recovery found when the spool was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub records: u64,
    /// Bytes cut from the end of the last segment (a torn write).
    pub truncated_bytes: u64,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    first_seq: u64,
    records: u64,
    bytes: u64,
    /// (seq, byte offset) every INDEX_EVERY records.
    index: Vec<(u64, u64)>,
}

impl Segment {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.records
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
    pub first_seq: u64,
    pub next_seq: u64,
    pub cursors: BTreeMap<String, u64>,
}

/// The segmented log.
#[derive(Debug)]
pub struct Spool {
    cfg: SpoolConfig,
    segments: BTreeMap<u64, Segment>,
    active: File,
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

impl Spool {
    /// Opens (or creates) the spool and recovers it.
    pub fn open(cfg: SpoolConfig) -> Result<(Spool, Recovery), SpoolError> {
        let seg_dir = cfg.dir.join("segments");
        let cur_dir = cfg.dir.join("cursors");
        fs::create_dir_all(&seg_dir).map_err(io_err(&seg_dir))?;
        fs::create_dir_all(&cur_dir).map_err(io_err(&cur_dir))?;

        let mut firsts: Vec<u64> = Vec::new();
        for entry in fs::read_dir(&seg_dir).map_err(io_err(&seg_dir))? {
            let entry = entry.map_err(io_err(&seg_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                firsts.push(n);
            }
        }
        firsts.sort_unstable();

        let mut recovery = Recovery::default();
        let mut segments = BTreeMap::new();
        let mut expected: Option<u64> = None;
        let count = firsts.len();
        for (i, first) in firsts.into_iter().enumerate() {
            let path = segment_path(&cfg.dir, first);
            if let Some(e) = expected
                && e != first
            {
                return Err(SpoolError::Corrupt {
                    path,
                    offset: 0,
                    reason: format!("sequence gap: expected a segment starting at {e}"),
                });
            }
            let is_last = i + 1 == count;
            let (seg, truncated) =
                scan_segment(&cfg.dir, &path, first, cfg.max_record_bytes, is_last)?;
            recovery.truncated_bytes += truncated;
            recovery.records += seg.records;
            expected = Some(seg.end_seq());
            segments.insert(first, seg);
        }
        recovery.segments = segments.len();

        let committed_seq = expected.unwrap_or(0);
        if segments.is_empty() {
            let seg = create_segment(&cfg.dir, 0)?;
            segments.insert(0, seg);
        }
        let active_path = segments
            .values()
            .next_back()
            .map(|s| s.path.clone())
            .unwrap_or_default();
        let active = OpenOptions::new()
            .append(true)
            .open(&active_path)
            .map_err(io_err(&active_path))?;

        let mut cursors = BTreeMap::new();
        for entry in fs::read_dir(&cur_dir).map_err(io_err(&cur_dir))? {
            let entry = entry.map_err(io_err(&cur_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(sink) = name.strip_suffix(".cur") else {
                continue;
            };
            let path = entry.path();
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let valid = bytes.len() == 12 && {
                let v = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
                crc32fast::hash(&bytes[..8]).to_le_bytes() == bytes[8..12] && v <= committed_seq
            };
            if !valid {
                return Err(SpoolError::Corrupt {
                    path,
                    offset: 0,
                    reason: "invalid cursor file".into(),
                });
            }
            cursors.insert(
                sink.to_owned(),
                u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()),
            );
        }

        Ok((
            Spool {
                cfg,
                segments,
                active,
                pending: Vec::with_capacity(256 * 1024),
                pending_records: 0,
                pending_index: Vec::new(),
                committed_seq,
                cursors,
            },
            recovery,
        ))
    }

    /// Buffers one record and returns its sequence number. Not durable,
    /// and not readable, until [`Spool::commit`]. When the record does not
    /// fit in the active segment, the records buffered before it are
    /// committed first and a new segment is started.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, SpoolError> {
        if payload.len() > self.cfg.max_record_bytes {
            return Err(SpoolError::RecordTooLarge {
                len: payload.len(),
                max: self.cfg.max_record_bytes,
            });
        }
        let record_len = (RECORD_HEADER + payload.len()) as u64;
        let active_bytes = self.active_segment().bytes;
        let active_has_data = self.active_segment().records > 0 || self.pending_records > 0;
        if active_has_data
            && active_bytes + self.pending.len() as u64 + record_len > self.cfg.segment_bytes
        {
            self.commit()?;
            self.roll()?;
        }
        let seq = self.committed_seq + self.pending_records;
        let active = self.active_segment();
        if (seq - active.first_seq).is_multiple_of(INDEX_EVERY) {
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

    /// Writes every buffered record with one write and (per the policy) one
    /// `fdatasync`. Returns the next sequence number, i.e. every record
    /// below it is durable.
    pub fn commit(&mut self) -> Result<u64, SpoolError> {
        if self.pending_records == 0 {
            return Ok(self.committed_seq);
        }
        let path = self.active_segment().path.clone();
        self.active
            .write_all(&self.pending)
            .map_err(io_err(&path))?;
        if self.cfg.fsync == FsyncPolicy::Always {
            self.active.sync_data().map_err(io_err(&path))?;
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
        self.pending.clear();
        self.pending_records = 0;
        Ok(self.committed_seq)
    }

    fn active_segment(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("an active segment")
    }

    fn roll(&mut self) -> Result<(), SpoolError> {
        let seg = create_segment(&self.cfg.dir, self.committed_seq)?;
        self.active = OpenOptions::new()
            .append(true)
            .open(&seg.path)
            .map_err(io_err(&seg.path))?;
        self.segments.insert(seg.first_seq, seg);
        Ok(())
    }

    /// The next sequence number commit will assign durability to.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq
    }

    /// Oldest sequence number still stored.
    pub fn first_seq(&self) -> u64 {
        self.segments.values().next().map_or(0, |s| s.first_seq)
    }

    /// Reads up to `max` committed records starting at `from` (or at the
    /// oldest stored record if `from` was already deleted).
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, SpoolError> {
        let from = from.max(self.first_seq());
        let mut out = Vec::new();
        if from >= self.committed_seq || max == 0 {
            return Ok(out);
        }
        let start_key = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(0, |(k, _)| *k);
        for seg in self.segments.range(start_key..).map(|(_, s)| s) {
            if out.len() >= max {
                break;
            }
            let (mut seq, offset) = seg.position_before(from);
            let mut file = File::open(&seg.path).map_err(io_err(&seg.path))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(io_err(&seg.path))?;
            let mut reader = io::BufReader::with_capacity(64 * 1024, file);
            let mut header = [0u8; RECORD_HEADER];
            while seq < seg.end_seq() && out.len() < max {
                reader.read_exact(&mut header).map_err(io_err(&seg.path))?;
                let len = u32::from_le_bytes(header[..4].try_into().unwrap_or_default()) as usize;
                let mut payload = vec![0u8; len];
                reader.read_exact(&mut payload).map_err(io_err(&seg.path))?;
                if seq >= from {
                    out.push((seq, payload));
                }
                seq += 1;
            }
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
        SpoolReader::open(
            &self.cfg.dir,
            self.cfg.max_record_bytes,
            seg.first_seq,
            offset,
            seq,
            from,
        )
    }

    /// Deletes whole segments that end at or below `min_cursor` (the lowest
    /// cursor of every sink, tracked by the caller). Returns how many.
    pub fn retain_below(&mut self, min_cursor: u64) -> Result<usize, SpoolError> {
        let active_key = *self.segments.keys().next_back().expect("an active segment");
        let doomed: Vec<u64> = self
            .segments
            .values()
            .filter(|s| s.first_seq != active_key && s.end_seq() <= min_cursor)
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

    /// Bytes of records stored (all segments).
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

fn create_segment(dir: &Path, first_seq: u64) -> Result<Segment, SpoolError> {
    let path = segment_path(dir, first_seq);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all(MAGIC).map_err(io_err(&path))?;
    f.sync_all().map_err(io_err(&path))?;
    sync_dir(&dir.join("segments"))?;
    Ok(Segment {
        path,
        first_seq,
        records: 0,
        bytes: MAGIC.len() as u64,
        index: Vec::new(),
    })
}

/// Verifies a segment. For the last segment, a bad tail is truncated and
/// its length returned; elsewhere it is corruption.
fn scan_segment(
    dir: &Path,
    path: &Path,
    first_seq: u64,
    max_record: usize,
    is_last: bool,
) -> Result<(Segment, u64), SpoolError> {
    let data = fs::read(path).map_err(io_err(path))?;
    let corrupt = |offset: usize, reason: &str| SpoolError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        reason: reason.to_owned(),
    };
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        if is_last && data.len() < MAGIC.len() && MAGIC.starts_with(&data) {
            // Crashed while creating the segment: start it again.
            let seg = create_segment(dir, first_seq)?;
            return Ok((seg, data.len() as u64));
        }
        return Err(corrupt(0, "bad magic"));
    }
    let mut at = MAGIC.len();
    let mut seq = first_seq;
    let mut index = Vec::new();
    let bad = loop {
        if at == data.len() {
            break None;
        }
        if data.len() - at < RECORD_HEADER {
            break Some("torn record header");
        }
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap_or_default()) as usize;
        let sum = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap_or_default());
        let rec_seq = u64::from_le_bytes(data[at + 8..at + 16].try_into().unwrap_or_default());
        if len > max_record {
            break Some("record length above the limit");
        }
        if data.len() - at - RECORD_HEADER < len {
            break Some("torn record payload");
        }
        let payload = &data[at + RECORD_HEADER..at + RECORD_HEADER + len];
        if rec_seq != seq || crc(rec_seq, payload) != sum {
            break Some("checksum or sequence mismatch");
        }
        if (seq - first_seq).is_multiple_of(INDEX_EVERY) {
            index.push((seq, at as u64));
        }
        at += RECORD_HEADER + len;
        seq += 1;
    };
    let mut truncated = 0;
    if let Some(reason) = bad {
        if !is_last {
            return Err(corrupt(at, reason));
        }
        truncated = (data.len() - at) as u64;
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        f.set_len(at as u64).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
    }
    Ok((
        Segment {
            path: path.to_owned(),
            first_seq,
            records: seq - first_seq,
            bytes: at as u64,
            index,
        },
        truncated,
    ))
}
