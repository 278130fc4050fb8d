//! Fault injection against a model: ENOSPC and EIO at any write-side
//! operation (with short writes), crashes with torn writes, and bytes
//! flipped anywhere in any segment followed by a reopen.
//!
//! After every reopen: every record whose commit returned `Ok` (the only
//! records a caller may acknowledge) reads back intact, unless a flipped
//! byte fell into it, in which case recovery reported its sequence number
//! as lost; at most one record is lost per flipped byte; no record ever
//! reads back with other bytes than were appended under its number; and
//! without a flip, recovery finds no damage (a failed write never leaves
//! a fragment that later records follow).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fpolicy_spool::{
    DamageKind, FaultHook, FsyncPolicy, InjectedFault, IoOp, Recovery, Spool, SpoolConfig,
};
use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Debug, Default)]
struct Armed(Mutex<Option<(IoOp, InjectedFault)>>);

impl FaultHook for Armed {
    fn before(&self, op: IoOp, _len: usize) -> Option<InjectedFault> {
        let mut armed = self.0.lock().unwrap();
        match *armed {
            Some((o, f)) if o == op => {
                *armed = None;
                Some(f)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Commit,
    Fail {
        op: IoOp,
        errno: i32,
        partial: usize,
    },
    Reopen,
    Crash {
        keep: usize,
    },
    Flip {
        segment: usize,
        byte: usize,
        xor: u8,
    },
}

fn io_op() -> impl Strategy<Value = IoOp> {
    prop_oneof![
        Just(IoOp::Write),
        Just(IoOp::Sync),
        Just(IoOp::Reserve),
        Just(IoOp::Truncate),
        Just(IoOp::Create),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..200).prop_map(Op::Append),
        3 => Just(Op::Commit),
        3 => (io_op(), prop_oneof![Just(libc::ENOSPC), Just(libc::EIO)], 0usize..600)
            .prop_map(|(op, errno, partial)| Op::Fail { op, errno, partial }),
        1 => Just(Op::Reopen),
        1 => (0usize..1500).prop_map(|keep| Op::Crash { keep }),
        1 => (any::<usize>(), any::<usize>(), 1u8..=255)
            .prop_map(|(segment, byte, xor)| Op::Flip { segment, byte, xor }),
    ]
}

fn config(dir: &std::path::Path, hook: Arc<Armed>) -> SpoolConfig {
    SpoolConfig {
        segment_bytes: 2048,
        max_record_bytes: 1024,
        fsync: FsyncPolicy::Always,
        reserve_bytes: 512,
        faults: Some(hook),
        ..SpoolConfig::new(dir)
    }
}

struct Model {
    /// What was appended under each number since it was last reassigned.
    history: BTreeMap<u64, Vec<u8>>,
    /// Numbers whose commit returned Ok.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Appended, not yet committed.
    pending: Vec<(u64, Vec<u8>)>,
    flips_since_open: usize,
}

impl Model {
    /// Everything pending is durable once the spool has nothing buffered.
    fn settle(&mut self, spool: &Spool) {
        if spool.pending_records() == 0 {
            for (seq, p) in self.pending.drain(..) {
                self.acked.insert(seq, p);
            }
        }
    }

    fn check_reopened(&mut self, spool: &Spool, recovery: &Recovery) -> Result<(), TestCaseError> {
        let next = spool.committed_seq();
        // Numbers at or above the new end will be handed out again.
        self.history.retain(|s, _| *s < next);
        self.pending.clear();
        let all: BTreeMap<u64, Vec<u8>> = spool.read(0, usize::MAX).unwrap().into_iter().collect();
        for (seq, payload) in &all {
            prop_assert_eq!(
                Some(payload),
                self.history.get(seq),
                "seq {} has foreign bytes",
                seq
            );
        }
        let lost_ranges: Vec<(u64, Option<u64>)> = recovery
            .damage
            .iter()
            .filter_map(|d| d.region.lost)
            .collect();
        let mut missing = 0;
        for seq in self.acked.keys() {
            if !all.contains_key(seq) {
                missing += 1;
                let reported = lost_ranges
                    .iter()
                    .any(|(a, b)| *seq >= *a && b.is_none_or(|b| *seq <= b));
                prop_assert!(
                    reported,
                    "acknowledged seq {} lost without a report: {:?}",
                    seq,
                    recovery
                );
            }
        }
        prop_assert!(
            missing <= self.flips_since_open,
            "{} acknowledged records lost to {} flipped bytes",
            missing,
            self.flips_since_open
        );
        if self.flips_since_open == 0 {
            for d in &recovery.damage {
                prop_assert!(
                    d.kind == DamageKind::Tail && d.region.lost_records() == 0,
                    "damage without a flip: {:?}",
                    recovery
                );
            }
        }
        // What was acknowledged and is gone stays gone; forget it.
        self.acked.retain(|s, _| all.contains_key(s));
        self.flips_since_open = 0;
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn faults_never_lose_or_forge_an_acknowledged_record(ops in vec(op(), 1..100)) {
        let dir = tempfile::tempdir().unwrap();
        let hook = Arc::new(Armed::default());
        let (mut spool, _) = Spool::open(config(dir.path(), hook.clone())).unwrap();
        let mut m = Model {
            history: BTreeMap::new(),
            acked: BTreeMap::new(),
            pending: Vec::new(),
            flips_since_open: 0,
        };
        for op in ops {
            match op {
                Op::Append(p) => {
                    let expect = spool.committed_seq() + spool.pending_records();
                    let before = spool.pending_records();
                    match spool.append(&p) {
                        Ok(seq) => {
                            // A roll commits what was buffered first.
                            if spool.pending_records() == 1 && before > 0 {
                                m.settle_all();
                            }
                            prop_assert!(seq >= expect);
                            m.history.insert(seq, p.clone());
                            m.pending.push((seq, p));
                        }
                        Err(_) => m.settle(&spool),
                    }
                }
                Op::Commit => {
                    if spool.commit().is_ok() {
                        prop_assert_eq!(spool.pending_records(), 0);
                    }
                    m.settle(&spool);
                }
                Op::Fail { op, errno, partial } => {
                    *hook.0.lock().unwrap() = Some((op, InjectedFault { errno, partial }));
                }
                Op::Reopen => {
                    drop(spool);
                    *hook.0.lock().unwrap() = None;
                    let (s, recovery) = Spool::open(config(dir.path(), hook.clone())).unwrap();
                    spool = s;
                    m.check_reopened(&spool, &recovery)?;
                }
                Op::Crash { keep } => {
                    spool.crash_with_torn_write(keep);
                    *hook.0.lock().unwrap() = None;
                    let (s, recovery) = Spool::open(config(dir.path(), hook.clone())).unwrap();
                    spool = s;
                    m.check_reopened(&spool, &recovery)?;
                }
                Op::Flip { segment, byte, xor } => {
                    let mut segs: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
                        .collect();
                    segs.sort();
                    let path = &segs[segment % segs.len()];
                    let mut bytes = std::fs::read(path).unwrap();
                    if bytes.is_empty() {
                        continue;
                    }
                    let at = byte % bytes.len();
                    bytes[at] ^= xor;
                    drop(spool);
                    std::fs::write(path, bytes).unwrap();
                    m.flips_since_open += 1;
                    *hook.0.lock().unwrap() = None;
                    let (s, recovery) = Spool::open(config(dir.path(), hook.clone())).unwrap();
                    spool = s;
                    m.check_reopened(&spool, &recovery)?;
                }
            }
        }
        // A last clean reopen: everything acknowledged is there.
        *hook.0.lock().unwrap() = None;
        let _ = spool.commit();
        m.settle(&spool);
        drop(spool);
        let (spool, recovery) = Spool::open(config(dir.path(), hook)).unwrap();
        m.check_reopened(&spool, &recovery)?;
    }
}

impl Model {
    fn settle_all(&mut self) {
        // Everything but the record just appended became durable.
        for (seq, p) in self.pending.drain(..) {
            self.acked.insert(seq, p);
        }
    }
}
