//! The spool against a model (a Vec of committed records, a Vec of pending
//! ones, cursors), through appends, commits, reads, cursor moves,
//! retention, clean reopens and crashes with a torn write.

use std::collections::BTreeMap;

use fpolicy_spool::{FsyncPolicy, Spool, SpoolConfig};
use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Commit,
    Read { from: u64, max: usize },
    Advance { sink: usize, by: u64 },
    Retain,
    Reopen,
    Crash { keep: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..300).prop_map(Op::Append),
        3 => Just(Op::Commit),
        2 => (0u64..400, 1usize..50).prop_map(|(from, max)| Op::Read { from, max }),
        2 => (0usize..2, 0u64..40).prop_map(|(sink, by)| Op::Advance { sink, by }),
        1 => Just(Op::Retain),
        1 => Just(Op::Reopen),
        1 => (0usize..2000).prop_map(|keep| Op::Crash { keep }),
    ]
}

fn config(dir: &std::path::Path) -> SpoolConfig {
    let mut cfg = SpoolConfig::new(dir);
    // Small segments so that rolling and retention happen often.
    cfg.segment_bytes = 2048;
    cfg.max_record_bytes = 1024;
    cfg.fsync = FsyncPolicy::Never;
    cfg
}

const SINKS: [&str; 2] = ["jsonl", "sqs-ingest"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn spool_matches_model(ops in vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(config(dir.path())).unwrap();
        let mut committed: Vec<Vec<u8>> = Vec::new();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut cursors: BTreeMap<&str, u64> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Append(p) => {
                    let seq = spool.append(&p).unwrap();
                    prop_assert_eq!(seq, (committed.len() + pending.len()) as u64);
                    // Rolling a full segment commits what was buffered before.
                    if spool.committed_seq() != committed.len() as u64 {
                        prop_assert_eq!(spool.committed_seq(), seq);
                        committed.append(&mut pending);
                    }
                    pending.push(p);
                }
                Op::Commit => {
                    committed.append(&mut pending);
                    prop_assert_eq!(spool.commit().unwrap(), committed.len() as u64);
                }
                Op::Read { from, max } => {
                    let got = spool.read(from, max).unwrap();
                    let start = from.max(spool.first_seq());
                    let want: Vec<(u64, Vec<u8>)> = committed
                        .iter()
                        .enumerate()
                        .skip(start as usize)
                        .take(max)
                        .map(|(i, p)| (i as u64, p.clone()))
                        .collect();
                    prop_assert_eq!(got, want);
                }
                Op::Advance { sink, by } => {
                    let name = SINKS[sink];
                    let next = (spool.cursor(name) + by).min(committed.len() as u64);
                    spool.set_cursor(name, next).unwrap();
                    cursors.insert(name, next);
                }
                Op::Retain => {
                    spool.retain().unwrap();
                    // Nothing at or after the slowest cursor is ever deleted.
                    if let Some(&min) = cursors.values().min() {
                        prop_assert!(spool.first_seq() <= min);
                    } else {
                        prop_assert_eq!(spool.first_seq(), 0);
                    }
                }
                Op::Reopen => {
                    // A clean stop without commit loses only the uncommitted.
                    drop(spool);
                    pending.clear();
                    let (s, recovery) = Spool::open(config(dir.path())).unwrap();
                    prop_assert_eq!(recovery.truncated_bytes, 0);
                    spool = s;
                }
                Op::Crash { keep } => {
                    spool.crash_with_torn_write(keep);
                    // Records that reached the file whole are valid and
                    // recovered; the torn one and everything after are not.
                    let mut written = 0;
                    for p in pending.drain(..) {
                        written += 16 + p.len();
                        if written > keep {
                            break;
                        }
                        committed.push(p);
                    }
                    let (s, _) = Spool::open(config(dir.path())).unwrap();
                    spool = s;
                }
            }
            prop_assert_eq!(spool.committed_seq(), committed.len() as u64);
            for (name, &next) in &cursors {
                prop_assert_eq!(spool.cursor(name), next);
            }
        }
        // Everything committed and still retained reads back intact.
        let first = spool.first_seq();
        let all = spool.read(first, usize::MAX).unwrap();
        prop_assert_eq!(all.len(), committed.len() - first as usize);
        for (seq, payload) in all {
            prop_assert_eq!(&payload, &committed[seq as usize]);
        }
    }
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.fsync = FsyncPolicy::Always;
    let (mut spool, _) = Spool::open(cfg.clone()).unwrap();
    for i in 0..10u8 {
        spool.append(&[i; 40]).unwrap();
    }
    spool.commit().unwrap();
    spool.append(&[0xee; 100]).unwrap();
    spool.crash_with_torn_write(30);
    let (spool, recovery) = Spool::open(cfg).unwrap();
    assert_eq!(recovery.truncated_bytes, 30);
    assert_eq!(recovery.records, 10);
    assert_eq!(spool.committed_seq(), 10);
}

#[test]
fn damage_in_an_earlier_segment_loses_only_the_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (mut spool, _) = Spool::open(cfg.clone()).unwrap();
    for i in 0..200u32 {
        spool.append(&i.to_le_bytes().repeat(20)).unwrap();
    }
    spool.commit().unwrap();
    assert!(spool.stats().segments > 2);
    drop(spool);
    // Flip a payload byte of the first record of the first segment.
    let first = dir.path().join("segments").join(format!("{:020}.seg", 0));
    let mut bytes = std::fs::read(&first).unwrap();
    let damaged = bytes[8..8 + 16 + 80].to_vec();
    bytes[8 + 16 + 3] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    // Inspection reports it and changes nothing.
    let (stats, found) = Spool::inspect(&cfg).unwrap();
    assert_eq!(stats.records, 199);
    assert_eq!(found.lost_records(), 1);
    assert!(found.damage[0].quarantined.is_none());
    assert!(!dir.path().join("quarantine").exists());
    let (spool, recovery) = Spool::open(cfg.clone()).unwrap();
    assert_eq!(recovery.records, 199);
    assert_eq!(recovery.lost_records(), 1);
    assert_eq!(recovery.damage[0].region.lost, Some((0, Some(0))));
    assert!(recovery.describe()[0].contains("records 0..=0 lost"));
    // The damaged bytes are kept aside, with the flip.
    let q = recovery.damage[0].quarantined.clone().unwrap();
    let kept = std::fs::read(q).unwrap();
    assert_eq!(kept.len(), damaged.len());
    assert_ne!(kept, damaged);
    let all = spool.read(0, usize::MAX).unwrap();
    assert_eq!(all.len(), 199);
    for (seq, payload) in all {
        assert_eq!(payload, (seq as u32).to_le_bytes().repeat(20));
    }
    drop(spool);
    // Recovery repaired it: the next open finds nothing.
    let (_, again) = Spool::open(cfg).unwrap();
    assert!(again.damage.is_empty(), "{again:?}");
}

#[test]
fn lowering_the_append_limit_keeps_records_written_under_a_higher_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 1 << 20;
    cfg.max_record_bytes = 100_000;
    let (mut spool, _) = Spool::open(cfg.clone()).unwrap();
    spool.append(&[7u8; 90_000]).unwrap();
    spool.append(b"small").unwrap();
    spool.commit().unwrap();
    drop(spool);
    cfg.max_record_bytes = 1_000;
    let (spool, recovery) = Spool::open(cfg).unwrap();
    assert!(recovery.damage.is_empty());
    assert_eq!(spool.read(0, 10).unwrap().len(), 2);
}

#[test]
fn cursor_damage_resets_it_and_a_cursor_past_a_cut_moves_the_log_on() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (mut spool, _) = Spool::open(cfg.clone()).unwrap();
    for i in 0..30u8 {
        spool.append(&[i; 30]).unwrap();
    }
    spool.commit().unwrap();
    spool.set_cursor("jsonl", 30).unwrap();
    spool.set_cursor("sqs", 5).unwrap();
    drop(spool);
    // Cut the last segment's last record as a torn tail would.
    let mut segs: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let tail = segs.last().unwrap().clone();
    let len = std::fs::metadata(&tail).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    // And damage the sqs cursor.
    std::fs::write(dir.path().join("cursors/sqs.cur"), b"garbage").unwrap();
    let (mut spool, recovery) = Spool::open(cfg).unwrap();
    assert_eq!(recovery.cursors_reset, vec!["sqs".to_owned()]);
    assert_eq!(recovery.cursors_past_end, vec!["jsonl".to_owned()]);
    assert_eq!(spool.cursor("sqs"), spool.first_seq());
    // New records land after the jsonl cursor, so that sink sees them.
    assert_eq!(spool.append(b"next").unwrap(), 30);
    spool.commit().unwrap();
    assert_eq!(
        spool.read(spool.cursor("jsonl"), 10).unwrap(),
        vec![(30, b"next".to_vec())]
    );
    // Everything before the cut reads back for the reset sink.
    assert_eq!(spool.read(0, 100).unwrap().len(), 30);
}

#[test]
fn oversized_records_and_bad_sink_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = Spool::open(config(dir.path())).unwrap();
    assert!(spool.append(&[0; 2000]).is_err());
    assert!(spool.set_cursor("../etc", 0).is_err());
    assert!(spool.set_cursor("", 0).is_err());
}

/// Reads through the sparse index (one entry per 256 records) from many
/// starting points, with the index built by commits of uneven size and
/// then again by recovery.
#[test]
fn reads_through_the_sparse_index_from_any_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_bytes = 64 * 1024 * 1024;
    let payload = |i: u64| format!("record {i} {}", "x".repeat((i % 37) as usize)).into_bytes();
    let (mut spool, _) = Spool::open(cfg.clone()).unwrap();
    let mut batch = 1;
    let mut i = 0;
    while i < 3_000 {
        for _ in 0..batch {
            spool.append(&payload(i)).unwrap();
            i += 1;
        }
        spool.commit().unwrap();
        batch = batch % 300 + 7;
    }
    let check = |spool: &Spool| {
        for from in (0..i).step_by(97).chain([255, 256, 257, 511, 512, i - 1]) {
            let got = spool.read(from, 5).unwrap();
            let want: Vec<(u64, Vec<u8>)> =
                (from..(from + 5).min(i)).map(|s| (s, payload(s))).collect();
            assert_eq!(got, want, "from {from}");
        }
    };
    assert_eq!(spool.stats().segments, 1);
    check(&spool);
    drop(spool);
    let (spool, recovery) = Spool::open(cfg).unwrap();
    assert_eq!(recovery.records, i);
    check(&spool);
}
