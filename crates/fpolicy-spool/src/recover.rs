//! Recovery: scans every segment and cursor, and (when repairing) moves
//! damaged bytes to `quarantine/`, rewrites segments without them, and
//! cuts bad tails. Read-only when not repairing (`spool check`, `spool
//! stats`), so that a diagnostic never changes what it diagnoses.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::io_ops::{Faults, IoOp};
use crate::scan::{Region, Scan, scan};
use crate::{MAGIC, Segment, SpoolError, io_err, segment_path, sync_dir};

/// Where a damaged region was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// The segment's magic was wrong or missing.
    BadMagic,
    /// Bad bytes with valid records after them: skipped.
    Middle,
    /// Bad bytes up to the end of the segment: cut. At the end of the log
    /// this is usually a torn write that was never acknowledged.
    Tail,
}

impl DamageKind {
    pub fn label(self) -> &'static str {
        match self {
            DamageKind::BadMagic => "bad_magic",
            DamageKind::Middle => "middle",
            DamageKind::Tail => "tail",
        }
    }
}

/// One damaged region found by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment (or cursor) file.
    pub file: PathBuf,
    pub kind: DamageKind,
    pub region: Region,
    /// Where the bytes were copied (None when only inspected).
    pub quarantined: Option<PathBuf>,
}

/// What recovery found when the spool was opened or inspected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    /// Valid records kept.
    pub records: u64,
    /// Bytes cut from the end of the log (the last segment's tail).
    pub truncated_bytes: u64,
    /// Every damaged region, in log order.
    pub damage: Vec<Damage>,
    /// Sinks whose cursor file was unreadable: they start again at the
    /// oldest record (redelivery, not loss).
    pub cursors_reset: Vec<String>,
    /// Sinks whose cursor was past the end of the log after a cut; the log
    /// continues after the highest cursor.
    pub cursors_past_end: Vec<String>,
}

impl Recovery {
    /// Records known lost to damage (open-ended tails count 0).
    pub fn lost_records(&self) -> u64 {
        self.damage.iter().map(|d| d.region.lost_records()).sum()
    }

    /// Bytes that were not part of any valid record.
    pub fn damaged_bytes(&self) -> u64 {
        self.damage.iter().map(|d| d.region.len).sum()
    }

    /// Damage other than a torn tail at the very end of the log.
    pub fn has_damage(&self) -> bool {
        self.damage
            .iter()
            .any(|d| d.kind != DamageKind::Tail || d.region.lost_records() > 0)
            || !self.cursors_reset.is_empty()
    }

    /// One line per damaged region, for logs and `spool check`.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .damage
            .iter()
            .map(|d| {
                let lost = match d.region.lost {
                    Some((a, Some(b))) => format!("records {a}..={b} lost"),
                    Some((a, None)) => format!("records from {a} not recovered (torn write?)"),
                    None => "no whole record lost".to_owned(),
                };
                let moved = d
                    .quarantined
                    .as_ref()
                    .map(|q| format!("; bytes in {}", q.display()))
                    .unwrap_or_default();
                format!(
                    "{}: {} bytes at offset {} ({}): {lost}{moved}",
                    d.file.display(),
                    d.region.len,
                    d.region.offset,
                    d.kind.label()
                )
            })
            .collect();
        for s in &self.cursors_reset {
            out.push(format!(
                "cursor of sink {s:?} unreadable: starts again at the oldest record"
            ));
        }
        for s in &self.cursors_past_end {
            out.push(format!(
                "cursor of sink {s:?} was past the end of the log: the log continues after it"
            ));
        }
        out
    }
}

pub(crate) struct Recovered {
    pub segments: BTreeMap<u64, Segment>,
    pub next_seq: u64,
    pub cursors: BTreeMap<String, u64>,
    pub report: Recovery,
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, SpoolError> {
    let seg_dir = dir.join("segments");
    let mut firsts = Vec::new();
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
    Ok(firsts)
}

/// The first segment named above `after`, if any.
pub(crate) fn next_segment(dir: &Path, after: u64) -> Result<Option<u64>, SpoolError> {
    Ok(list_segments(dir)?.into_iter().find(|f| *f > after))
}

fn quarantine(
    dir: &Path,
    faults: &Faults,
    file: &Path,
    offset: u64,
    bytes: &[u8],
) -> Result<PathBuf, SpoolError> {
    let qdir = dir.join("quarantine");
    fs::create_dir_all(&qdir).map_err(io_err(&qdir))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = qdir.join(format!("{name}.{offset}.bin"));
    faults
        .create_file(IoOp::Repair, &path, bytes)
        .map_err(io_err(&path))?;
    sync_dir(&qdir)?;
    Ok(path)
}

/// Applies a scan to the file: quarantine first, then rewrite or cut, so
/// that a failure half-way leaves the original bytes in place.
fn repair_segment(
    dir: &Path,
    faults: &Faults,
    path: &Path,
    data: &[u8],
    found: &Scan,
    damage: &mut [Damage],
) -> Result<Option<Vec<u8>>, SpoolError> {
    for d in damage.iter_mut() {
        let (a, b) = (
            d.region.offset as usize,
            (d.region.offset + d.region.len) as usize,
        );
        if b > a {
            d.quarantined = Some(quarantine(dir, faults, path, d.region.offset, &data[a..b])?);
        }
    }
    if found.bad_magic || !found.damage.is_empty() {
        let mut clean = MAGIC.to_vec();
        for (_, off, len) in &found.records {
            clean.extend_from_slice(&data[*off as usize..(*off + *len) as usize]);
        }
        let tmp = path.with_extension("seg.repair");
        faults
            .create_file(IoOp::Repair, &tmp, &clean)
            .map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_dir(&dir.join("segments"))?;
        return Ok(Some(clean));
    }
    if found.tail.is_some() {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        faults.set_len(&f, found.end()).map_err(io_err(path))?;
    }
    Ok(None)
}

fn damage_of(path: &Path, found: &Scan, data_len: usize) -> Vec<Damage> {
    let mut out = Vec::new();
    let entry = |kind, region| Damage {
        file: path.to_owned(),
        kind,
        region,
        quarantined: None,
    };
    if found.bad_magic {
        out.push(entry(
            DamageKind::BadMagic,
            Region {
                offset: 0,
                len: data_len.min(MAGIC.len()) as u64,
                lost: None,
            },
        ));
    }
    for r in &found.damage {
        out.push(entry(DamageKind::Middle, r.clone()));
    }
    if let Some(t) = &found.tail {
        out.push(entry(DamageKind::Tail, t.clone()));
    }
    out
}

/// Leftovers of a segment creation or repair that did not finish: the
/// original (or no) segment is still in place, so they go.
fn remove_leftovers(dir: &Path) -> Result<(), SpoolError> {
    let seg_dir = dir.join("segments");
    for entry in fs::read_dir(&seg_dir).map_err(io_err(&seg_dir))? {
        let path = entry.map_err(io_err(&seg_dir))?.path();
        let name = path.to_string_lossy();
        if name.ends_with(".seg.tmp") || name.ends_with(".seg.repair") {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

pub(crate) fn recover(dir: &Path, faults: &Faults, repair: bool) -> Result<Recovered, SpoolError> {
    if repair {
        remove_leftovers(dir)?;
    }
    let firsts = list_segments(dir)?;
    let mut report = Recovery::default();
    let mut segments = BTreeMap::new();
    let mut next_seq = 0u64;
    for (i, &first) in firsts.iter().enumerate() {
        let path = segment_path(dir, first);
        let limit = firsts.get(i + 1).copied();
        let data = fs::read(&path).map_err(io_err(&path))?;
        let mut found = scan(&data, first, limit);
        let mut damage = damage_of(&path, &found, data.len());
        if repair
            && !found.is_clean()
            && let Some(clean) = repair_segment(dir, faults, &path, &data, &found, &mut damage)?
        {
            found = scan(&clean, first, limit);
        }
        if limit.is_none()
            && let Some(t) = &found.tail
        {
            report.truncated_bytes += t.len;
        }
        report.damage.extend(damage);
        let seg = Segment {
            path,
            first_seq: first,
            end_seq: found.end_seq().unwrap_or(first),
            records: found.records.len() as u64,
            bytes: found.end(),
            index: found.index(),
        };
        report.records += seg.records;
        next_seq = next_seq.max(seg.end_seq);
        segments.insert(first, seg);
    }
    report.segments = segments.len();
    let cursors = read_cursors(dir, faults, repair, &mut report)?;
    Ok(Recovered {
        segments,
        next_seq,
        cursors,
        report,
    })
}

fn read_cursors(
    dir: &Path,
    faults: &Faults,
    repair: bool,
    report: &mut Recovery,
) -> Result<BTreeMap<String, u64>, SpoolError> {
    let cur_dir = dir.join("cursors");
    let mut cursors = BTreeMap::new();
    if !cur_dir.is_dir() {
        return Ok(cursors);
    }
    for entry in fs::read_dir(&cur_dir).map_err(io_err(&cur_dir))? {
        let entry = entry.map_err(io_err(&cur_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(sink) = name.strip_suffix(".cur") else {
            continue;
        };
        let path = entry.path();
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let value = (bytes.len() == 12
            && crc32fast::hash(&bytes[..8]).to_le_bytes() == bytes[8..12])
            .then(|| u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()));
        match value {
            Some(v) => {
                cursors.insert(sink.to_owned(), v);
            }
            None => {
                report.cursors_reset.push(sink.to_owned());
                if repair {
                    quarantine(dir, faults, &path, 0, &bytes)?;
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    sync_dir(&cur_dir)?;
                }
            }
        }
    }
    Ok(cursors)
}
