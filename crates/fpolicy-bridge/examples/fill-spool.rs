//! Benchmark helper: writes N realistic events into `<data-dir>/spool`
//! without delivering them, so that `scripts/bench-serve.sh` can time how
//! long a restart takes to reopen the spool and resume delivery.
//!
//! Usage: fill-spool DATA_DIR [N]

use fpolicy_event::*;
use fpolicy_proto::ProtocolVersion;
use fpolicy_sim::workload::Workload;
use fpolicy_spool::{FsyncPolicy, Spool, SpoolConfig};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: fill-spool DATA_DIR [N]"))?,
    );
    let n: u64 = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let (mut spool, _) = Spool::open(SpoolConfig {
        fsync: FsyncPolicy::Always,
        ..SpoolConfig::new(dir.join("spool"))
    })?;
    let names = StaticNames::new([], [], "vol0", "svm0");
    let normalizer = Normalizer {
        names: &names,
        generation_time: GenerationTimeUnit::Auto,
    };
    let session = SessionInfo {
        svm_uuid: "5b701784-7459-11e8-8e95-00a098bc5a13".into(),
        policy_name: "bench".into(),
        session_id: "bench-1".into(),
        peer: "127.0.0.1:1".into(),
        engine: EngineType::Asynchronous,
    };
    let mut workload = Workload::new(1, 0);
    let mut buf = Vec::with_capacity(2048);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as i64;
    for i in 0..n {
        let req = workload
            .next_operation()
            .to_request(i + 1, ProtocolVersion::V2_0, now as u64);
        let event = normalizer.normalize(&req, &session, now);
        buf.clear();
        record::encode(&event, now, [], &mut buf)?;
        spool.append(&buf)?;
        if i % 1000 == 999 {
            spool.commit()?;
        }
    }
    spool.commit()?;
    let s = spool.stats();
    println!(
        "fill-spool: {} records, {} segments, {} bytes",
        s.next_seq - s.first_seq,
        s.segments,
        s.bytes
    );
    Ok(())
}
