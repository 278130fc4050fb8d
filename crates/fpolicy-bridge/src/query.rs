//! `fpolicy-bridge query`: streams matching events out of the JSON Lines
//! files (never loading a whole file), oldest file first.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use fpolicy_event::Operation;
use fpolicy_event::time::{UnixNanos, parse_rfc3339, utc_date};
use serde::Deserialize;

/// Longest line considered; longer lines are skipped and counted.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Query {
    pub from: UnixNanos,
    pub to: UnixNanos,
    pub path_prefix: Option<String>,
    pub operations: Vec<Operation>,
    pub limit: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueryStats {
    pub files: usize,
    pub lines: u64,
    pub matched: u64,
    pub skipped: u64,
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    operation_type: Operation,
    #[serde(borrow)]
    file_path: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    previous_path: Option<std::borrow::Cow<'a, str>>,
}

/// Files whose date could hold events in [from, to), in order. Files are
/// named by receive date, while `timestamp` may be ONTAP's generation time:
/// one day of slack on each side.
fn candidate_files(dir: &Path, q: &Query) -> std::io::Result<Vec<PathBuf>> {
    const DAY: i64 = 86_400_000_000_000;
    let lo = utc_date(q.from.saturating_sub(DAY));
    let hi = utc_date(q.to.saturating_add(DAY));
    let mut files: Vec<(String, u32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix("fpolicy_events_")
            .and_then(|r| r.strip_suffix(".jsonl"))
        else {
            continue;
        };
        let (date, index) = match rest.split_once('.') {
            Some((d, i)) => (d, i.parse().unwrap_or(u32::MAX)),
            None => (rest, 0),
        };
        if date.len() == 10 && date >= lo.as_str() && date <= hi.as_str() {
            files.push((date.to_owned(), index, entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, _, p)| p).collect())
}

/// Writes every matching line to `out`.
pub fn run(dir: &Path, q: &Query, out: &mut dyn Write) -> std::io::Result<QueryStats> {
    let mut stats = QueryStats::default();
    let mut line = Vec::with_capacity(4096);
    for path in candidate_files(dir, q)? {
        stats.files += 1;
        let mut reader = BufReader::with_capacity(256 * 1024, File::open(&path)?);
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') && n > MAX_LINE {
                // Skip the rest of an over-long line.
                stats.skipped += 1;
                let mut sink = Vec::new();
                reader.read_until(b'\n', &mut sink)?;
                continue;
            }
            stats.lines += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let Ok(probe) = serde_json::from_slice::<Probe>(text) else {
                stats.skipped += 1;
                continue;
            };
            let Ok(ts) = parse_rfc3339(&probe.timestamp) else {
                stats.skipped += 1;
                continue;
            };
            if ts < q.from || ts >= q.to {
                continue;
            }
            if !q.operations.is_empty() && !q.operations.contains(&probe.operation_type) {
                continue;
            }
            if let Some(prefix) = &q.path_prefix {
                let hit = probe.file_path.starts_with(prefix.as_str())
                    || probe
                        .previous_path
                        .as_deref()
                        .is_some_and(|p| p.starts_with(prefix.as_str()));
                if !hit {
                    continue;
                }
            }
            out.write_all(text)?;
            out.write_all(b"\n")?;
            stats.matched += 1;
            if q.limit.is_some_and(|l| stats.matched >= l) {
                return Ok(stats);
            }
        }
    }
    Ok(stats)
}
