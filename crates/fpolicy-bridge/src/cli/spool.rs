//! `spool stats|check|repair`: read-only inspection, verification, and
//! the recovery `serve` does at start, with the server stopped.

use anyhow::Context;
use clap::Subcommand;
use fpolicy_bridge::app;
use fpolicy_bridge::config::Config;

use super::{CommonArgs, load};

#[derive(Subcommand)]
pub enum SpoolCommand {
    /// Segments, records, each sink's position and any damage (read-only;
    /// server must be stopped). With --shared-root: every spool under
    /// spool.shared_root (or the directory given), with its lease holder,
    /// read-only while the instances run.
    Stats {
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "DIR")]
        shared_root: Option<std::path::PathBuf>,
    },
    /// Verify every record and cursor without changing anything; exit 1
    /// when something is damaged (server must be stopped).
    Check,
    /// Do what `serve` does at start: move damaged bytes to quarantine/,
    /// keep every intact record, and report (server must be stopped).
    Repair,
}

pub fn run(common: &CommonArgs, command: SpoolCommand) -> anyhow::Result<()> {
    match command {
        SpoolCommand::Stats { shared_root: None } => spool_stats(common),
        SpoolCommand::Stats {
            shared_root: Some(root),
        } => shared_stats(common, root),
        SpoolCommand::Check => spool_check(common),
        SpoolCommand::Repair => spool_repair(common),
    }
}

/// Holds the data dir of a spool that must already exist (nothing is
/// created), so that a diagnostic never runs beside the server.
fn lock_existing_spool(cfg: &Config) -> anyhow::Result<Option<std::fs::File>> {
    let spool = cfg.spool_dir();
    anyhow::ensure!(
        spool.join("segments").is_dir(),
        "no spool at {} (wrong --data-dir or --config?)",
        spool.display()
    );
    let lock = cfg.data_dir.join("LOCK");
    let Ok(file) = std::fs::File::open(&lock) else {
        return Ok(None);
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "data dir {} is in use by a running fpolicy-bridge: stop the server first, or read /metrics",
            cfg.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", lock.display()))
        }
    }
}

fn spool_report(
    cfg: &Config,
    s: &fpolicy_spool::SpoolStats,
    recovery: &fpolicy_spool::Recovery,
) -> serde_json::Value {
    serde_json::json!({
        "dir": cfg.spool_dir(),
        "segments": s.segments,
        "bytes": s.bytes,
        "first_seq": s.first_seq,
        "next_seq": s.next_seq,
        "records": s.records,
        "torn_tail_bytes": recovery.truncated_bytes,
        "lost_records": recovery.lost_records(),
        "damaged_bytes": recovery.damaged_bytes(),
        "damage": recovery.describe(),
        "sinks": s.cursors.iter().map(|(k, v)| (k.clone(), serde_json::json!({"cursor": v, "lag": s.next_seq.saturating_sub(*v)}))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Every spool under the shared root: whose lease it is, and what it holds.
fn shared_stats(common: &CommonArgs, root: std::path::PathBuf) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let root = if root.as_os_str().is_empty() {
        cfg.spool.shared_root.clone()
    } else {
        root
    };
    anyhow::ensure!(
        !root.as_os_str().is_empty(),
        "no shared root: set spool.shared_root or give --shared-root DIR"
    );
    let mut out = Vec::new();
    for (name, lease, dir) in fpolicy_bridge::shared_spool::list(&root)? {
        let spool_cfg = fpolicy_spool::SpoolConfig {
            dir: dir.clone(),
            ..app::spool_config(&cfg)
        };
        let mut entry = serde_json::json!({
            "spool": name,
            "adopted": fpolicy_spool::lease::is_adopted(&name),
            "instance": fpolicy_spool::lease::original_owner(&name),
            "lease": lease.map(|l| serde_json::json!({"holder": l.owner, "generation": l.generation, "beat": l.beat})),
        });
        match fpolicy_spool::Spool::inspect(&spool_cfg) {
            Ok((s, _)) => {
                entry["records"] = s.records.into();
                entry["next_seq"] = s.next_seq.into();
                entry["sinks"] = s
                    .cursors
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            serde_json::json!({"cursor": v, "lag": s.next_seq.saturating_sub(*v)}),
                        )
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            Err(e) => entry["error"] = e.to_string().into(),
        }
        out.push(entry);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"shared_root": root, "spools": out}))?
    );
    Ok(())
}

fn spool_stats(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let _lock = lock_existing_spool(&cfg)?;
    let (stats, recovery) = fpolicy_spool::Spool::inspect(&app::spool_config(&cfg))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&spool_report(&cfg, &stats, &recovery))?
    );
    Ok(())
}

fn spool_check(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let _lock = lock_existing_spool(&cfg)?;
    let (stats, recovery) = fpolicy_spool::Spool::inspect(&app::spool_config(&cfg))?;
    for line in recovery.describe() {
        println!("{line}");
    }
    println!(
        "{} records in {} segments; {} damaged bytes, {} records lost, {} torn tail bytes",
        stats.records,
        stats.segments,
        recovery.damaged_bytes(),
        recovery.lost_records(),
        recovery.truncated_bytes
    );
    anyhow::ensure!(
        recovery.damage.is_empty() && recovery.cursors_reset.is_empty(),
        "the spool needs recovery: `fpolicy-bridge spool repair` (or `serve`, which repairs at start) keeps every intact record and moves the damaged bytes to quarantine/"
    );
    println!("ok");
    Ok(())
}

fn spool_repair(common: &CommonArgs) -> anyhow::Result<()> {
    let cfg = load(common)?;
    let _lock = lock_existing_spool(&cfg)?;
    let (spool, recovery) = fpolicy_spool::Spool::open(app::spool_config(&cfg))?;
    for line in recovery.describe() {
        println!("{line}");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&spool_report(&cfg, &spool.stats(), &recovery))?
    );
    Ok(())
}
