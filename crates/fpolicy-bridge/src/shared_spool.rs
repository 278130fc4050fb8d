//! `[spool] shared_root`: the spool on storage that outlives the instance
//! (Amazon EFS on Fargate, NFS), under `<shared_root>/<instance_id>/`,
//! with a lease (fpolicy-spool's `lease` module has the protocol), and the
//! adoption of orphans: spools of instances that are gone are taken over,
//! delivered through this instance's sinks with the routes recorded in
//! them, and removed once every sink has delivered all of it.
//!
//! One thread renews the leases every `lease / 3` and looks for orphans
//! every `lease`; each adopted spool is drained by its own delivery
//! pipelines (fresh sink instances; JSON Lines into
//! `<jsonl dir>/adopted-<instance>/`, dead letters into
//! `<data_dir>/dead-letter/adopted-<instance>/`).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use fpolicy_spool::lease::{self, FsLeaseStore, Held, LeaseStore, OwnClaim, Renewal, Watch};
use fpolicy_spool::{Spool, SpoolConfig};

use crate::config::Config;
use crate::metrics::Metrics;

/// `spool.instance_id` when it is empty: the ECS task id (from the task
/// metadata endpoint), else the host name.
pub fn resolve_instance_id(cfg: &mut Config) {
    if cfg.spool.shared_root.as_os_str().is_empty() || !cfg.spool.instance_id.is_empty() {
        return;
    }
    let id = ecs_task_id()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|id| lease::valid_instance_id(id))
        .unwrap_or_else(|| format!("pid-{}", std::process::id()));
    cfg.spool.instance_id = id;
}

/// The task id from `${ECS_CONTAINER_METADATA_URI_V4}/task` (`TaskARN`'s
/// last part); `None` outside ECS or when the endpoint does not answer.
fn ecs_task_id() -> Option<String> {
    use std::io::{Read, Write};
    let uri = std::env::var("ECS_CONTAINER_METADATA_URI_V4").ok()?;
    let rest = uri.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&host)
        .ok()?
        .next()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /{path}/task HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.take(1 << 20).read_to_string(&mut body).ok()?;
    let json = body.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(v["TaskARN"].as_str()?.rsplit('/').next()?.to_owned())
}

fn nonce() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    xxhash_rust::xxh3::xxh3_64(
        &[t.to_le_bytes(), u64::from(std::process::id()).to_le_bytes()].concat(),
    )
}

/// When this instance last renewed its own lease, on its monotonic clock,
/// for the spool writer: a synchronous answer goes out only while the
/// lease is fresh (renewed less than half a lease ago). A process that
/// was frozen (and may have been taken over meanwhile) thus answers
/// nothing until its lease thread has renewed, or found it fenced and
/// stopped the process.
#[derive(Debug)]
pub struct LeaseClock {
    epoch: Instant,
    renewed_ms: std::sync::atomic::AtomicU64,
    lease_ms: u64,
}

impl LeaseClock {
    pub fn new(lease: Duration) -> LeaseClock {
        LeaseClock {
            epoch: Instant::now(),
            renewed_ms: std::sync::atomic::AtomicU64::new(0),
            lease_ms: lease::millis(lease),
        }
    }

    fn now_ms(&self) -> u64 {
        lease::millis(self.epoch.elapsed())
    }

    /// The lease was just renewed (or claimed).
    pub fn renewed(&self) {
        self.renewed_ms.store(self.now_ms(), Ordering::Release);
    }

    pub fn fresh(&self) -> bool {
        self.now_ms()
            .saturating_sub(self.renewed_ms.load(Ordering::Acquire))
            < self.lease_ms / 2
    }

    /// Waits until the lease is fresh.
    pub fn wait_fresh(&self) {
        let mut said = false;
        while !self.fresh() {
            if !said {
                tracing::warn!(
                    "the spool lease was not renewed for half a lease (a stall, or a slow shared file system); answers wait for the renewal"
                );
                said = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// This instance's place under the shared root.
pub struct SharedSpool {
    store: FsLeaseStore,
    id: String,
    lease: Duration,
    own: Held,
    epoch: Instant,
    watch: Watch,
    /// The spool's advisory lock, held for the life of the process.
    _lock: std::fs::File,
    clock: Arc<LeaseClock>,
}

impl SharedSpool {
    /// For the spool writer: whether the own lease is fresh.
    pub fn clock(&self) -> Arc<LeaseClock> {
        self.clock.clone()
    }

    fn now_ms(&self) -> u64 {
        lease::millis(self.epoch.elapsed())
    }

    /// Claims this instance's spool directory, waiting while another
    /// instance holds it (adopting it, or one with the same id still runs):
    /// until its lease expires or it moves away.
    pub fn claim(cfg: &Config) -> anyhow::Result<SharedSpool> {
        let root = cfg.spool.shared_root.clone();
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create spool.shared_root {}", root.display()))?;
        let store = FsLeaseStore::new(&root);
        let id = cfg.spool.instance_id.clone();
        let lease_ms = lease::millis(cfg.spool.lease);
        let epoch = Instant::now();
        let mut watch = Watch::default();
        let mut said = false;
        loop {
            let now = lease::millis(epoch.elapsed());
            match lease::claim_own(&store, &id, &mut watch, now, lease_ms, nonce())
                .with_context(|| format!("cannot claim the spool {}", root.join(&id).display()))?
            {
                OwnClaim::Held(own) => {
                    let lock = wait_for_lock(&store, &id, || false)?
                        .context("stopped while waiting for the spool's lock")?;
                    tracing::info!(instance = %id, dir = %root.join(&id).display(), generation = own.generation, "claimed this instance's spool under spool.shared_root");
                    let clock = Arc::new(LeaseClock::new(cfg.spool.lease));
                    clock.renewed();
                    return Ok(SharedSpool {
                        clock,
                        store,
                        id,
                        lease: cfg.spool.lease,
                        own,
                        epoch,
                        watch,
                        _lock: lock,
                    });
                }
                OwnClaim::Busy { owner } => {
                    if !said {
                        tracing::warn!(instance = %id, holder = %owner, "this instance's spool is held by another instance; waiting until it moves away or its lease expires");
                        said = true;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
}

/// Takes a spool's advisory lock, waiting while another process holds it
/// (a previous holder that stalled rather than died); `None` if `give_up`
/// says so first.
fn wait_for_lock(
    store: &FsLeaseStore,
    spool: &str,
    give_up: impl Fn() -> bool,
) -> anyhow::Result<Option<std::fs::File>> {
    let mut said = false;
    loop {
        if let Some(f) = store
            .lock(spool)
            .with_context(|| format!("cannot lock {}", store.path(spool).display()))?
        {
            return Ok(Some(f));
        }
        if give_up() {
            return Ok(None);
        }
        if !said {
            tracing::warn!(spool = %spool, "another process still holds this spool's lock (a holder that stalled rather than died); waiting for it to stop");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What the adoption drains need from the daemon.
pub struct AdoptionContext {
    pub cfg: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub rt: tokio::runtime::Handle,
    /// Set at shutdown: the lease thread stops, adoption drains get the
    /// drain deadline.
    pub stop: Arc<AtomicBool>,
}

/// One adopted spool being drained.
struct Adoption {
    held: Held,
    /// Cleared when another instance took it over: the drain stops.
    ours: Arc<AtomicBool>,
    deadline: Arc<Mutex<Option<Instant>>>,
    thread: std::thread::JoinHandle<()>,
}

/// The lease thread: renews every `lease / 3`, fences, adopts orphans.
pub fn spawn(
    mut shared: SharedSpool,
    ctx: AdoptionContext,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("spool-lease".into())
        .spawn(move || {
            let mut adoptions: Vec<Adoption> = Vec::new();
            let mut last_scan: Option<Instant> = None;
            let tick = shared.lease / 3;
            while !ctx.stop.load(Ordering::Acquire) {
                match lease::renew(&shared.store, &shared.id, &mut shared.own) {
                    Ok(Renewal::Renewed) => shared.clock.renewed(),
                    Ok(Renewal::Fenced) => {
                        // Another instance took this spool over: writing on
                        // would race with its drain. Acknowledged events are
                        // in the spool, which the other instance delivers.
                        tracing::error!(instance = %shared.id, "this instance's spool was taken over by another instance (its lease was not renewed in time); stopping at once");
                        std::process::exit(75);
                    }
                    Err(e) => tracing::warn!(instance = %shared.id, error = %e, "cannot renew the spool lease; retrying"),
                }
                adoptions.retain_mut(|a| {
                    if a.thread.is_finished() {
                        return false;
                    }
                    match lease::renew(&shared.store, &shared.id, &mut a.held) {
                        Ok(Renewal::Fenced) => {
                            tracing::warn!(spool = %a.held.spool, "an adopted spool was taken over by another instance; stopping its delivery");
                            a.ours.store(false, Relaxed);
                            *a.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                        }
                        Ok(Renewal::Renewed) => {}
                        Err(e) => tracing::warn!(spool = %a.held.spool, error = %e, "cannot renew an adopted spool's lease; retrying"),
                    }
                    true
                });
                let due = last_scan.is_none_or(|t| t.elapsed() >= shared.lease);
                if ctx.cfg.spool.adopt_orphans && due {
                    last_scan = Some(Instant::now());
                    adopt_orphans(&mut shared, &ctx, &mut adoptions);
                }
                sleep_unless_stopped(tick, &ctx.stop);
            }
            // Shutdown: adoption drains get the same drain time as the sinks.
            for a in &adoptions {
                *a.deadline.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Instant::now() + ctx.cfg.shutdown.drain_timeout);
            }
            for a in adoptions {
                let _ = a.thread.join();
            }
        })?)
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(50).min(d));
    }
}

fn adopt_orphans(shared: &mut SharedSpool, ctx: &AdoptionContext, adoptions: &mut Vec<Adoption>) {
    let now = shared.now_ms();
    let lease_ms = lease::millis(shared.lease);
    let orphans = match lease::orphans(&shared.store, &shared.id, &mut shared.watch, now, lease_ms)
    {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for orphaned spools");
            return;
        }
    };
    for (spool, seen) in orphans {
        if adoptions.iter().any(|a| a.held.spool == spool) {
            continue;
        }
        let held = match lease::adopt(&shared.store, &shared.id, &spool, seen.as_ref(), nonce()) {
            Ok(Some(h)) => h,
            Ok(None) => continue, // another instance was first
            Err(e) => {
                tracing::warn!(spool = %spool, error = %e, "cannot adopt an orphaned spool");
                continue;
            }
        };
        let previous = seen.map_or_else(String::new, |l| l.owner);
        tracing::warn!(spool = %spool, dir = %shared.store.path(&held.spool).display(), previous_holder = %previous, "adopting an orphaned spool: its lease expired; delivering what it holds through this instance's sinks");
        ctx.metrics.spool_adopted.fetch_add(1, Relaxed);
        let ours = Arc::new(AtomicBool::new(true));
        let deadline: Arc<Mutex<Option<Instant>>> = Arc::default();
        let job = Drain {
            cfg: ctx.cfg.clone(),
            metrics: ctx.metrics.clone(),
            rt: ctx.rt.clone(),
            store: shared.store.clone(),
            spool: held.spool.clone(),
            ours: ours.clone(),
            deadline: deadline.clone(),
        };
        match std::thread::Builder::new()
            .name("spool-adopted".into())
            .spawn(move || job.run())
        {
            Ok(thread) => adoptions.push(Adoption {
                held,
                ours,
                deadline,
                thread,
            }),
            Err(e) => tracing::error!(error = %e, "cannot start the drain of an adopted spool"),
        }
    }
}

struct Drain {
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    rt: tokio::runtime::Handle,
    store: FsLeaseStore,
    spool: String,
    ours: Arc<AtomicBool>,
    deadline: Arc<Mutex<Option<Instant>>>,
}

impl Drain {
    fn run(self) {
        let label = lease::original_owner(&self.spool).to_owned();
        match self.drain_until_settled(&label) {
            Ok(true) => {
                tracing::info!(spool = %self.spool, "adopted spool delivered by every sink and removed")
            }
            Ok(false) => {
                tracing::warn!(spool = %self.spool, "adopted spool not finished (stopping or taken over); it stays for the next holder")
            }
            Err(e) => {
                tracing::error!(spool = %self.spool, error = format!("{e:#}"), "cannot drain an adopted spool; it stays for the next holder")
            }
        }
        self.metrics
            .adopted_lag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&label);
    }

    /// Drains, then removes the spool once it stayed at its end for a
    /// lease after the adoption: a previous holder that was only stalled
    /// has had a renewal period to notice it was fenced and stop, and
    /// anything it appended meanwhile is drained first.
    fn drain_until_settled(&self, label: &str) -> anyhow::Result<bool> {
        let adopted_at = Instant::now();
        let Some(_lock) = wait_for_lock(&self.store, &self.spool, || {
            !self.ours.load(Relaxed) || self.stopping()
        })?
        else {
            return Ok(false);
        };
        loop {
            let Some(end) = self.drain(label)? else {
                return Ok(false);
            };
            let settle = adopted_at + self.cfg.spool.lease;
            while Instant::now() < settle {
                if !self.ours.load(Relaxed) || self.stopping() {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let dir = self.store.path(&self.spool);
            let spool_cfg = SpoolConfig {
                dir: dir.clone(),
                ..crate::app::spool_config(&self.cfg)
            };
            let (stats, _) =
                Spool::inspect(&spool_cfg).context("cannot re-read the adopted spool")?;
            if stats.next_seq > end {
                tracing::warn!(spool = %self.spool, appended = stats.next_seq - end, "the adopted spool grew after adoption (its previous holder was stalled); delivering that too");
                continue;
            }
            if !self.ours.load(Relaxed) {
                return Ok(false);
            }
            self.store
                .remove(&self.spool)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
            return Ok(true);
        }
    }

    fn stopping(&self) -> bool {
        self.deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Delivers the whole spool as it is now; its end when every sink
    /// reached it (`None`: stopped or taken over first).
    fn drain(&self, label: &str) -> anyhow::Result<Option<u64>> {
        let dir = self.store.path(&self.spool);
        let spool_cfg = SpoolConfig {
            dir: dir.clone(),
            ..crate::app::spool_config(&self.cfg)
        };
        let (spool, recovery) = Spool::open(spool_cfg).context("cannot open the adopted spool")?;
        tracing::info!(spool = %self.spool, records = recovery.records, next_seq = spool.committed_seq(), "adopted spool opened");
        let jsonl_dir = self.cfg.jsonl_dir().join(format!("adopted-{label}"));
        let dead_letters = self
            .cfg
            .data_dir
            .join("dead-letter")
            .join(format!("adopted-{label}"));
        // The adopted spool's own sink numbers stay out of /metrics; its lag
        // is fpolicy_spool_adopted_lag_events.
        let own_metrics = Arc::new(Metrics::default());
        let sinks =
            self.rt
                .block_on(crate::app::build_sinks(&self.cfg, &own_metrics, jsonl_dir))?;
        let end = spool.committed_seq();
        let mut delivery = crate::app::spawn_pipelines(
            &self.cfg,
            &spool,
            &dir,
            &dead_letters,
            sinks,
            &own_metrics,
        )?;
        delivery.drain_deadline = self.deadline.clone();
        delivery.committed.close();
        loop {
            let done = delivery
                .cursors
                .iter()
                .map(|c| c.load(Ordering::Acquire))
                .min()
                .unwrap_or(end);
            self.metrics
                .adopted_lag
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(label.to_owned(), end.saturating_sub(done));
            if delivery.threads.iter().all(|t| t.is_finished()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for t in delivery.threads.drain(..) {
            let _ = t.join();
        }
        let delivered = delivery
            .cursors
            .iter()
            .all(|c| c.load(Ordering::Acquire) >= end);
        drop(spool);
        Ok((delivered && self.ours.load(Relaxed)).then_some(end))
    }
}

/// For `spool stats --shared-root`: every spool under the root with its
/// lease.
pub fn list(
    root: &std::path::Path,
) -> anyhow::Result<Vec<(String, Option<lease::LeaseRecord>, PathBuf)>> {
    let store = FsLeaseStore::new(root);
    let mut spools = store.spools()?;
    spools.sort();
    Ok(spools
        .into_iter()
        .map(|s| {
            let l = store.current(&s).ok().flatten();
            let p = store.path(&s);
            (s, l, p)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_clock_is_fresh_for_half_a_lease() {
        let clock = LeaseClock::new(Duration::from_millis(200));
        assert!(!clock.fresh() || clock.now_ms() < 100);
        clock.renewed();
        assert!(clock.fresh());
        std::thread::sleep(Duration::from_millis(120));
        assert!(!clock.fresh(), "stale after half a lease");
        clock.renewed();
        let t = Instant::now();
        clock.wait_fresh();
        assert!(t.elapsed() < Duration::from_millis(50));
    }
}
