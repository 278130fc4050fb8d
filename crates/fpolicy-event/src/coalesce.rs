//! Write-complete coalescing.
//!
//! NFSv3 has no close, so a create or write can be reported before the data
//! is complete. Create and write notifications of one path within the quiet
//! window become one event, emitted once the path has been quiet for the
//! window, when it is closed, or when it has been held for `max_hold`. The
//! event keeps the first notification's id and timestamp, `create` if the
//! file was created in the window, and the last size; `metadata.coalesced`
//! says how many notifications it stands for. A rename, delete or close of a
//! pending path (or of a directory above it) emits the pending event first,
//! so per-path order holds.
//!
//! The coalescer holds no state that is not in the spool: it reads records
//! after they are durable, and its sink's cursor never passes the oldest
//! record still pending ([`Coalescer::oldest_pending_seq`]). After a crash
//! the records are read again and the same events come out (with the same
//! ids). Pending paths are bounded; overflow emits the oldest early.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::{Event, Operation};
use crate::record::RecordView;
use crate::time::UnixNanos;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceConfig {
    /// Quiet window; 0 turns coalescing off.
    pub window: UnixNanos,
    /// Longest a path is held however busy it stays.
    pub max_hold: UnixNanos,
    /// Most paths pending at once.
    pub max_pending: usize,
}

/// An event ready for the sinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Sequence number of the (first) record it came from.
    pub seq: u64,
    pub operation: Operation,
    pub received: UnixNanos,
    pub json: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoalesceStats {
    /// Notifications folded into an earlier one.
    pub merged: u64,
    /// Events emitted early because `max_pending` was reached.
    pub overflow: u64,
}

#[derive(Debug)]
struct Pending {
    first_seq: u64,
    operation: Operation,
    received: UnixNanos,
    json: Vec<u8>,
    last_size: u64,
    count: u32,
    deadline: UnixNanos,
}

#[derive(Debug)]
pub struct Coalescer {
    cfg: CoalesceConfig,
    pending: BTreeMap<String, Pending>,
    /// (deadline, first seq, path) of every pending path.
    deadlines: BTreeSet<(UnixNanos, u64, String)>,
    /// first seq → path.
    by_seq: BTreeMap<u64, String>,
    stats: CoalesceStats,
}

impl Coalescer {
    pub fn new(cfg: CoalesceConfig) -> Self {
        Coalescer {
            cfg,
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            by_seq: BTreeMap::new(),
            stats: CoalesceStats::default(),
        }
    }

    pub fn stats(&self) -> CoalesceStats {
        self.stats
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The oldest record not yet emitted: a sink's cursor must stay at or
    /// below it.
    pub fn oldest_pending_seq(&self) -> Option<u64> {
        self.by_seq.keys().next().copied()
    }

    /// Feeds one durable record.
    pub fn push(&mut self, seq: u64, rec: &RecordView<'_>, out: &mut Vec<Emitted>) {
        let pass = |out: &mut Vec<Emitted>| {
            out.push(Emitted {
                seq,
                operation: rec.operation,
                received: rec.received,
                json: rec.json.to_vec(),
            })
        };
        if self.cfg.window <= 0 {
            return pass(out);
        }
        match rec.operation {
            Operation::Create | Operation::Write => self.hold(seq, rec, out),
            Operation::Rename
            | Operation::RenameDir
            | Operation::Delete
            | Operation::DeleteDir
            | Operation::Close
            | Operation::Link => {
                let is_dir = matches!(rec.operation, Operation::RenameDir | Operation::DeleteDir);
                for path in [rec.previous_path, Some(rec.file_path)]
                    .into_iter()
                    .flatten()
                {
                    self.flush_path(path, is_dir, out);
                }
                pass(out)
            }
            _ => pass(out),
        }
    }

    /// Emits every path quiet since `now - window` (or held too long).
    pub fn expire(&mut self, now: UnixNanos, out: &mut Vec<Emitted>) {
        while let Some((deadline, _, path)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.emit(&path, out);
        }
    }

    /// Emits everything pending (shutdown of a sink that drains fully).
    pub fn flush_all(&mut self, out: &mut Vec<Emitted>) {
        while let Some(path) = self.by_seq.values().next().cloned() {
            self.emit(&path, out);
        }
    }

    fn hold(&mut self, seq: u64, rec: &RecordView<'_>, out: &mut Vec<Emitted>) {
        if let Some(p) = self.pending.get_mut(rec.file_path) {
            let old = (p.deadline, p.first_seq, rec.file_path.to_owned());
            p.count = p.count.saturating_add(1);
            p.last_size = rec.file_size;
            if rec.operation == Operation::Create {
                p.operation = Operation::Create;
            }
            p.deadline = (rec.received.max(p.received) + self.cfg.window)
                .min(p.received + self.cfg.max_hold);
            let new = (p.deadline, p.first_seq, old.2.clone());
            self.deadlines.remove(&old);
            self.deadlines.insert(new);
            self.stats.merged += 1;
            return;
        }
        if self.pending.len() >= self.cfg.max_pending.max(1)
            && let Some(path) = self.by_seq.values().next().cloned()
        {
            self.stats.overflow += 1;
            self.emit(&path, out);
        }
        let deadline = rec.received + self.cfg.window.min(self.cfg.max_hold);
        let path = rec.file_path.to_owned();
        self.deadlines.insert((deadline, seq, path.clone()));
        self.by_seq.insert(seq, path.clone());
        self.pending.insert(
            path,
            Pending {
                first_seq: seq,
                operation: rec.operation,
                received: rec.received,
                json: rec.json.to_vec(),
                last_size: rec.file_size,
                count: 1,
                deadline,
            },
        );
    }

    fn flush_path(&mut self, path: &str, with_children: bool, out: &mut Vec<Emitted>) {
        if self.pending.contains_key(path) {
            self.emit(path, out);
        }
        if with_children {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            let below: Vec<String> = self
                .pending
                .range(prefix.clone()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            let mut below: Vec<(u64, String)> = below
                .into_iter()
                .filter_map(|k| self.pending.get(&k).map(|p| (p.first_seq, k)))
                .collect();
            below.sort_unstable();
            for (_, k) in below {
                self.emit(&k, out);
            }
        }
    }

    fn emit(&mut self, path: &str, out: &mut Vec<Emitted>) {
        let Some(p) = self.pending.remove(path) else {
            return;
        };
        self.deadlines
            .remove(&(p.deadline, p.first_seq, path.to_owned()));
        self.by_seq.remove(&p.first_seq);
        let json = if p.count == 1 {
            p.json
        } else {
            match serde_json::from_slice::<Event>(&p.json) {
                Ok(mut e) => {
                    e.operation_type = p.operation;
                    e.file_size = p.last_size;
                    e.metadata.coalesced = Some(p.count);
                    serde_json::to_vec(&e).unwrap_or(p.json)
                }
                // Written by this process, so this does not happen; keep the
                // first notification rather than lose the event.
                Err(_) => p.json,
            }
        };
        out.push(Emitted {
            seq: p.first_seq,
            operation: p.operation,
            received: p.received,
            json,
        });
    }
}
