//! The lock-free reader against a writer on another thread, across
//! segment rolls, from arbitrary start points, and after retention.

use fpolicy_spool::{FsyncPolicy, Spool, SpoolConfig};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn cfg(dir: &std::path::Path) -> SpoolConfig {
    SpoolConfig {
        segment_bytes: 4096,
        max_record_bytes: 1024,
        fsync: FsyncPolicy::Never,
        ..SpoolConfig::new(dir)
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 97) as usize)).into_bytes()
}

#[test]
fn concurrent_reader_sees_every_committed_record_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = Spool::open(cfg(dir.path())).unwrap();
    let mut reader = spool.reader(0).unwrap();
    let committed = Arc::new(AtomicU64::new(0));
    const N: u64 = 5_000;
    let c = committed.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..N {
            spool.append(&payload(i)).unwrap();
            if i % 37 == 0 {
                c.store(spool.commit().unwrap(), Ordering::Release);
            }
        }
        c.store(spool.commit().unwrap(), Ordering::Release);
        spool
    });
    let mut got = Vec::new();
    while (got.len() as u64) < N {
        let upto = committed.load(Ordering::Acquire);
        reader.read_batch(upto, 100, &mut got).unwrap();
    }
    let spool = writer.join().unwrap();
    assert!(
        spool.stats().segments > 10,
        "the test must cross segment rolls"
    );
    for (i, (seq, p)) in got.iter().enumerate() {
        assert_eq!(*seq, i as u64);
        assert_eq!(*p, payload(i as u64));
    }
    assert_eq!(reader.position(), N);
}

#[test]
fn reader_starts_anywhere_and_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = Spool::open(cfg(dir.path())).unwrap();
    for i in 0..2_000 {
        spool.append(&payload(i)).unwrap();
    }
    let end = spool.commit().unwrap();
    for from in [0, 1, 255, 256, 257, 1_000, 1_999, 2_000] {
        let mut r = spool.reader(from).unwrap();
        let mut out = Vec::new();
        r.read_batch(end, usize::MAX, &mut out).unwrap();
        assert_eq!(out.len() as u64, end - from, "from {from}");
        assert!(out.iter().all(|(s, p)| *p == payload(*s)));
        assert_eq!(out.first().map(|(s, _)| *s), (from < end).then_some(from));
    }
    let removed = spool.retain_below(1_500).unwrap();
    assert!(removed > 0);
    let first = spool.first_seq();
    assert!(first <= 1_500 && first > 0);
    let mut r = spool.reader(0).unwrap();
    let mut out = Vec::new();
    r.read_batch(end, 10, &mut out).unwrap();
    assert_eq!(
        out[0].0, first,
        "a deleted start point resumes at the oldest stored record"
    );
}

#[test]
fn reader_reports_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = Spool::open(cfg(dir.path())).unwrap();
    for i in 0..10 {
        spool.append(&payload(i)).unwrap();
    }
    let end = spool.commit().unwrap();
    let seg = dir.path().join("segments").join(format!("{:020}.seg", 0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let mut r = spool.reader(0).unwrap();
    let mut out = Vec::new();
    let err = r.read_batch(end, 100, &mut out).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(out.len(), 9);
}
