//! Spool throughput and reopen time. Results: docs/spool.md.
//!
//! `cargo run --release -p fpolicy-spool --example spool-bench -- DIR [RECORDS] [BATCH]`
//! Appends RECORDS (default 1,000,000) records of 600 bytes in commits of
//! BATCH (default 100) with one fdatasync each, then reopens the spool
//! (full recovery scan) and reads every record back.

use std::time::Instant;

use fpolicy_spool::{Spool, SpoolConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: spool-bench DIR [RECORDS] [BATCH]")?;
    let records: u64 = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let batch: u64 = args.next().map_or(Ok(100), |s| s.parse())?;
    let _ = std::fs::remove_dir_all(&dir);
    let payload = vec![b'x'; 600];

    let mut cfg = SpoolConfig::new(&dir);
    if let Ok(r) = std::env::var("SPOOL_RESERVE_BYTES") {
        cfg.reserve_bytes = r.parse()?;
    }
    let (mut spool, _) = Spool::open(cfg)?;
    let t = Instant::now();
    for i in 0..records {
        spool.append(&payload)?;
        if (i + 1) % batch == 0 {
            spool.commit()?;
        }
    }
    spool.commit()?;
    let append = t.elapsed();
    drop(spool);

    let t = Instant::now();
    let (spool, recovery) = Spool::open(SpoolConfig::new(&dir))?;
    let reopen = t.elapsed();

    let t = Instant::now();
    let mut next = spool.first_seq();
    let mut read = 0u64;
    loop {
        let chunk = spool.read(next, 10_000)?;
        let Some(last) = chunk.last() else { break };
        next = last.0 + 1;
        read += chunk.len() as u64;
    }
    let read_time = t.elapsed();

    println!(
        "append+commit: {records} records of 600 B in batches of {batch}: {:.2} s = {:.0} records/s",
        append.as_secs_f64(),
        records as f64 / append.as_secs_f64()
    );
    println!(
        "reopen (verify {} records in {} segments): {:.2} s",
        recovery.records,
        recovery.segments,
        reopen.as_secs_f64()
    );
    println!("read back {read} records: {:.2} s", read_time.as_secs_f64());
    Ok(())
}
