//! `serve`: the startup steps (`open_spool`, `build_sinks`,
//! `spawn_pipelines`, `spawn_writer`, `serve`), and the [`Shutdown`] that
//! owns the stop order (deregister → stop accepting → sessions → final
//! commit → drain deadline).

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use fpolicy_event::{CoalesceConfig, NameResolver, StaticNames};
use fpolicy_spool::{FsyncPolicy, Spool, SpoolConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::config::{Config, FsyncSetting};
use crate::ingest::{Committed, IngestBatch, IngestLimits, IngestRules, Writer, run_writer};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::server::{ServerContext, serve_listener, tls};
use crate::sink::{DeadLetters, Formatter, JsonlSink, Sink, StdoutSink};

/// Batches queued to the spool writer before sessions wait.
const INGEST_QUEUE: usize = 256;

/// A running server.
pub struct Running {
    pub listen_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts the graceful shutdown and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("server task panicked")?
    }

    /// Waits for the server to end by itself (after a signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }

    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Holds the data directory for this process (two servers on one spool
/// would corrupt it).
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let path = dir.join("LOCK");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "data dir {} is in use by another fpolicy-bridge process",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

pub fn spool_config(cfg: &Config) -> SpoolConfig {
    SpoolConfig {
        segment_bytes: cfg.spool.segment_bytes,
        // What one event may take; records written under a higher limit
        // stay readable (the format's own limit is far above this).
        max_record_bytes: cfg.server.max_frame_bytes * 2 + 4096,
        fsync: match cfg.spool.fsync {
            FsyncSetting::Always => FsyncPolicy::Always,
            FsyncSetting::Never => FsyncPolicy::Never,
        },
        // The whole active segment is reserved when it is started, so
        // other writers on the disk (JSON Lines files) cannot take the
        // space its records need.
        reserve_bytes: cfg.spool.segment_bytes,
        ..SpoolConfig::new(cfg.spool_dir())
    }
}

/// Says what recovery found: one line per damaged region (error), a
/// summary for /readyz, and the damage metrics.
fn report_recovery(recovery: &fpolicy_spool::Recovery, metrics: &Metrics) {
    if recovery.truncated_bytes > 0 && !recovery.has_damage() {
        tracing::warn!(
            truncated_bytes = recovery.truncated_bytes,
            "spool recovery cut a torn write at the end of the log (never acknowledged; bytes kept in quarantine/)"
        );
    }
    if recovery.has_damage() {
        for line in recovery.describe() {
            tracing::error!(damage = %line, "spool recovery: damaged data quarantined");
        }
        let summary = format!(
            "spool recovery found damage: {} records lost, {} bytes in quarantine/ (fpolicy-bridge spool check)",
            recovery.lost_records(),
            recovery.damaged_bytes()
        );
        tracing::error!(
            lost_records = recovery.lost_records(),
            quarantined_bytes = recovery.damaged_bytes(),
            "{summary}"
        );
        metrics.readiness.set_recovery(Some(summary));
    }
    metrics
        .spool_damaged_records
        .store(recovery.lost_records(), Relaxed);
    metrics
        .spool_quarantined_bytes
        .store(recovery.damaged_bytes(), Relaxed);
}

/// Configured names, plus ONTAP's when `[ontap]` is set up for it (with
/// the configured SVM's volumes loading at once, and how long events may
/// wait for a name).
fn name_resolver(
    cfg: &Config,
) -> anyhow::Result<(
    Arc<dyn NameResolver>,
    Option<crate::server::names::NameWait>,
)> {
    let volumes: std::collections::HashMap<u64, String> = cfg
        .events
        .volumes
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
        .collect();
    let svms: std::collections::HashMap<String, String> =
        cfg.events.svms.clone().into_iter().collect();
    if cfg.ontap.cluster_url.is_empty() || !cfg.ontap.resolve_names {
        let names = StaticNames::new(
            volumes,
            svms,
            &cfg.events.default_volume,
            &cfg.events.default_svm,
        );
        return Ok((Arc::new(names), None));
    }
    let client = fpolicy_ontap::OntapClient::new(&crate::ontap::endpoint(cfg)?)?;
    let (names, worker) = fpolicy_ontap::OntapNames::new(
        client,
        volumes,
        svms,
        &cfg.events.default_volume,
        &cfg.events.default_svm,
        cfg.ontap.name_cache_ttl.max(Duration::from_secs(1)),
    );
    tokio::spawn(worker);
    if !cfg.ontap.svm.is_empty() {
        names.prefetch_svm_named(&cfg.ontap.svm);
    }
    let wait = crate::server::names::NameWait {
        done: names.subscribe(),
        bound: cfg.ontap.name_wait,
    };
    Ok((names, Some(wait)))
}

/// Opens the spool (recovering it) and reports what recovery found.
fn open_spool(
    cfg: &Config,
    metrics: &Metrics,
    faults: Option<Arc<dyn fpolicy_spool::FaultHook>>,
) -> anyhow::Result<Spool> {
    let spool_cfg = SpoolConfig {
        faults,
        ..spool_config(cfg)
    };
    let opened = Instant::now();
    let (spool, recovery) = Spool::open(spool_cfg.clone()).context("cannot open the spool")?;
    report_recovery(&recovery, metrics);
    tracing::info!(
        dir = %spool_cfg.dir.display(),
        segments = recovery.segments,
        records = recovery.records,
        next_seq = spool.committed_seq(),
        elapsed_ms = opened.elapsed().as_millis() as u64,
        "spool open"
    );
    let stats = spool.stats();
    metrics.spool_bytes.store(stats.bytes, Relaxed);
    metrics.spool_first_seq.store(stats.first_seq, Relaxed);
    metrics.spool_next_seq.store(stats.next_seq, Relaxed);
    metrics.spool_records.store(stats.records, Relaxed);
    Ok(spool)
}

/// A sink and the most events per second it may deliver (0: no limit).
type SinkPlan = (Box<dyn Sink>, u32);

/// Every configured sink, ready to deliver; JSON Lines into `jsonl_dir`.
pub(crate) async fn build_sinks(
    cfg: &Config,
    metrics: &Arc<Metrics>,
    jsonl_dir: PathBuf,
) -> anyhow::Result<Vec<SinkPlan>> {
    let mut sinks: Vec<SinkPlan> = Vec::new();
    // S3 notifications name the region; the AWS chain's, when set.
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_default();
    let access_points = Arc::new(cfg.access_point_map(&region));
    let formatter = |format| Formatter::new(format, access_points.clone());
    if cfg.sinks.jsonl.enabled {
        let fsync = cfg.spool.fsync == FsyncSetting::Always;
        sinks.push((
            Box::new(
                JsonlSink::new(&jsonl_dir, cfg.sinks.jsonl.max_file_bytes, fsync)?
                    .with_metrics(metrics.clone())
                    .with_format(formatter(cfg.sinks.jsonl.format)),
            ),
            0,
        ));
    }
    if cfg.sinks.stdout.enabled {
        sinks.push((
            Box::new(StdoutSink::new(formatter(cfg.sinks.stdout.format))),
            0,
        ));
    }
    for c in &cfg.cloud_sinks {
        sinks.push((c.build(&access_points).await, c.max_events_per_sec()));
    }
    Ok(sinks)
}

/// What the delivery pipelines share with the writer and the shutdown.
pub(crate) struct Delivery {
    pub committed: Arc<Committed>,
    pub drain_deadline: Arc<Mutex<Option<Instant>>>,
    /// Each sink's published durable cursor (retention, back pressure).
    pub cursors: Vec<Arc<AtomicU64>>,
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

/// One delivery pipeline thread per sink, each from its own cursor (kept
/// in `spool_dir`); rejected events go to `dead_letter_dir`.
pub(crate) fn spawn_pipelines(
    cfg: &Config,
    spool: &Spool,
    spool_dir: &Path,
    dead_letter_dir: &Path,
    sinks: Vec<SinkPlan>,
    metrics: &Metrics,
) -> anyhow::Result<Delivery> {
    let delay_nanos = cfg
        .events
        .write_complete_delay
        .as_nanos()
        .min(i64::MAX as u128) as i64;
    let coalesce = CoalesceConfig {
        window: delay_nanos,
        max_hold: (cfg.events.max_hold.as_nanos().min(i64::MAX as u128) as i64).max(delay_nanos),
        max_pending: cfg.events.max_pending_paths,
    };
    let mut d = Delivery {
        committed: Arc::new(Committed::new(spool.committed_seq())),
        drain_deadline: Arc::default(),
        cursors: Vec::new(),
        threads: Vec::new(),
    };
    for (sink, max_events_per_sec) in sinks {
        let name = sink.name().to_owned();
        let start_at = spool.cursor(&name);
        let cursor = Arc::new(AtomicU64::new(start_at));
        d.cursors.push(cursor.clone());
        let pipeline = Pipeline {
            reader: spool.reader(start_at)?,
            sink,
            spool_dir: spool_dir.to_owned(),
            fsync: spool_config(cfg).fsync,
            coalesce,
            committed: d.committed.clone(),
            cursor,
            metrics: metrics.sink(&name),
            dead_letters: DeadLetters::new(dead_letter_dir, &name),
            max_events_per_sec,
            drain_deadline: d.drain_deadline.clone(),
        };
        tracing::info!(sink = %name, cursor = start_at, behind = spool.committed_seq() - start_at.min(spool.committed_seq()), "sink starting");
        d.threads.push(
            std::thread::Builder::new()
                .name(format!("sink-{name}"))
                .spawn(move || pipeline.run())?,
        );
    }
    Ok(d)
}

/// The spool writer thread, with the queue sessions and pollers send to
/// and the back pressure it decides.
struct Ingest {
    tx: mpsc::Sender<IngestBatch>,
    back_pressure: watch::Receiver<bool>,
    writer: std::thread::JoinHandle<()>,
}

fn spawn_writer(
    cfg: &Config,
    spool: Spool,
    delivery: &Delivery,
    metrics: &Arc<Metrics>,
    lease: Option<Arc<crate::shared_spool::LeaseClock>>,
) -> anyhow::Result<Ingest> {
    let (tx, rx) = mpsc::channel(INGEST_QUEUE);
    let (bp_tx, back_pressure) = watch::channel(false);
    let w = Writer {
        spool,
        rx,
        rt: tokio::runtime::Handle::current(),
        committed: delivery.committed.clone(),
        sink_cursors: delivery.cursors.clone(),
        back_pressure: bp_tx,
        limits: IngestLimits {
            capacity_bytes: cfg.spool.capacity_bytes,
            high_watermark: cfg.spool.high_watermark_events,
            low_watermark: cfg.spool.low_watermark_events,
        },
        metrics: metrics.clone(),
        lease,
    };
    let writer = std::thread::Builder::new()
        .name("spool-writer".into())
        .spawn(move || run_writer(w))?;
    Ok(Ingest {
        tx,
        back_pressure,
        writer,
    })
}

/// User identity, filters, screening, routing and (HYBRID) the recent
/// FPolicy paths. The identity table starts with the well-known SIDs and
/// fixed entries; the directory and ONTAP sync in the background (nothing
/// waits for them).
fn ingest_rules(
    cfg: &Config,
    metrics: &Metrics,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Arc<IngestRules>> {
    let recent = (cfg.trigger.mode == crate::config::TriggerMode::Hybrid).then(|| {
        Arc::new(Mutex::new(fpolicy_poll::hybrid::RecentEvents::new(
            cfg.trigger.recent_events,
        )))
    });
    let sources = crate::identity::IdentitySources::from_config(cfg)?;
    let table = sources.initial_table();
    metrics
        .ingest
        .identity_users
        .store(table.users() as u64, Relaxed);
    let identities = Arc::new(fpolicy_identity::Identities::new(table));
    if sources.refreshes() {
        tokio::spawn(crate::identity::refresh_loop(
            sources,
            identities.clone(),
            metrics.ingest.clone(),
            stop.clone(),
        ));
    }
    Ok(Arc::new(IngestRules {
        router: cfg.router()?,
        screening: cfg.screening_rules()?,
        filter: cfg.noise_filter()?,
        identities,
        metrics: metrics.ingest.clone(),
        recent,
    }))
}

/// The stop order, in one place: leave ONTAP's engine (so it sends to the
/// other instances) → stop accepting and close sessions (pollers stop with
/// them) → the writer's final commit (it stops once the last sender is
/// gone) → the sinks' drain deadline.
pub struct Shutdown {
    cfg: Arc<Config>,
    requested: watch::Receiver<bool>,
    stop_sessions: watch::Sender<bool>,
    /// The address self-registration added, removed first.
    registered: Arc<Mutex<Option<std::net::IpAddr>>>,
    drain_deadline: Arc<Mutex<Option<Instant>>>,
}

impl Shutdown {
    /// Waits for the request, deregisters when configured, then stops the
    /// listener, the sessions and the pollers.
    async fn stop_accepting(mut self) {
        let _ = self.requested.wait_for(|s| *s).await;
        let addr = *self.registered.lock().unwrap_or_else(|p| p.into_inner());
        if let (true, Some(addr)) = (self.cfg.ontap.remove_on_shutdown, addr) {
            crate::ontap::deregister(&self.cfg, addr).await;
        }
        let _ = self.stop_sessions.send(true);
    }

    /// Sessions are gone: the sinks have until the drain deadline.
    fn start_drain(deadline: &Mutex<Option<Instant>>, drain: Duration) {
        *deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + drain);
    }
}

/// Background tasks beside the sessions: EMF metrics, self-registration
/// and pollers.
fn spawn_background(
    cfg: &Arc<Config>,
    metrics: &Arc<Metrics>,
    ingest: &Ingest,
    rules: &Arc<IngestRules>,
    sessions_stop: &watch::Receiver<bool>,
) -> Arc<Mutex<Option<std::net::IpAddr>>> {
    if cfg.cloudwatch.emf {
        tokio::spawn(crate::emf::run(
            cfg.cloudwatch.namespace.clone(),
            cfg.cloudwatch.service.clone(),
            metrics.clone(),
            cfg.cloudwatch.interval.max(Duration::from_secs(1)),
        ));
    }
    metrics
        .spool_capacity_bytes
        .store(cfg.spool.capacity_bytes, Relaxed);
    tokio::spawn(watch_free_space(
        cfg.data_dir.clone(),
        metrics.clone(),
        sessions_stop.clone(),
    ));
    let registered: Arc<Mutex<Option<std::net::IpAddr>>> = Arc::default();
    if cfg.ontap.register_on_start {
        metrics
            .readiness
            .set_registration(crate::metrics::Registration::Pending, None);
        tokio::spawn(crate::ontap::self_register(
            cfg.clone(),
            metrics.clone(),
            registered.clone(),
        ));
    }
    if cfg.trigger.mode != crate::config::TriggerMode::EventDriven {
        for p in cfg.polls.clone() {
            let pctx = Arc::new(crate::poll::PollContext {
                cfg: cfg.clone(),
                ingest_rules: rules.clone(),
                ingest: ingest.tx.clone(),
                metrics: metrics.polls.get(&p.name),
            });
            tokio::spawn(crate::poll::run_poller(pctx, p, sessions_stop.clone()));
        }
    }
    registered
}

/// Space left on the data directory's file system, every 10 s, for the
/// "disk near full" alert (before commits start failing).
async fn watch_free_space(dir: PathBuf, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok(free) = fpolicy_spool::free_bytes(&dir) {
            metrics.data_dir_free_bytes.store(free, Relaxed);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Opens everything and starts serving. Returns once listening.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    start_with_spool_faults(cfg, None).await
}

/// Test support: [`start`] with a hook on the spool's file operations
/// (failures, or latency such as a slow network file system's fsync).
#[doc(hidden)]
pub async fn start_with_spool_faults(
    mut cfg: Config,
    faults: Option<Arc<dyn fpolicy_spool::FaultHook>>,
) -> anyhow::Result<Running> {
    cfg.validate()?;
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    crate::shared_spool::resolve_instance_id(&mut cfg);
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let lock = lock_data_dir(&cfg.data_dir)?;
    let (names, name_wait) = name_resolver(&cfg)?;
    // With spool.shared_root: this instance's spool directory, once no
    // other instance holds it.
    let shared = if cfg.spool.shared_root.as_os_str().is_empty() {
        None
    } else {
        let c = cfg.clone();
        Some(
            tokio::task::spawn_blocking(move || crate::shared_spool::SharedSpool::claim(&c))
                .await??,
        )
    };
    let spool = open_spool(&cfg, &metrics, faults)?;
    let sinks = build_sinks(&cfg, &metrics, cfg.jsonl_dir()).await?;
    let delivery = spawn_pipelines(
        &cfg,
        &spool,
        &cfg.spool_dir(),
        &cfg.data_dir.join("dead-letter"),
        sinks,
        &metrics,
    )?;
    let ingest = spawn_writer(
        &cfg,
        spool,
        &delivery,
        &metrics,
        shared.as_ref().map(|s| s.clock()),
    )?;
    let lease_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lease_thread = match shared {
        Some(shared) => Some(crate::shared_spool::spawn(
            shared,
            crate::shared_spool::AdoptionContext {
                cfg: cfg.clone(),
                metrics: metrics.clone(),
                rt: tokio::runtime::Handle::current(),
                stop: lease_stop.clone(),
            },
        )?),
        None => None,
    };
    let listener = TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
    let admin = TcpListener::bind(&cfg.admin.listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin)", cfg.admin.listen))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (stop_sessions, sessions_stop) = watch::channel(false);
    let rules = ingest_rules(&cfg, &metrics, &sessions_stop)?;
    let registered = spawn_background(&cfg, &metrics, &ingest, &rules, &sessions_stop);
    let ctx = Arc::new(ServerContext {
        cfg: cfg.clone(),
        metrics: metrics.clone(),
        names,
        name_wait,
        ingest_rules: rules,
        ingest: ingest.tx.clone(),
        back_pressure: ingest.back_pressure.clone(),
        allowed_peers: cfg.server.allowed_peers.clone(),
        tls: tls::acceptor(&cfg.server.tls)?,
        frame_budget: Arc::new(tokio::sync::Semaphore::new(
            (cfg.server.max_buffered_bytes / 1024).min(u64::from(u32::MAX)) as usize,
        )),
    });
    let shutdown = Shutdown {
        cfg: cfg.clone(),
        requested: shutdown_rx.clone(),
        stop_sessions,
        registered,
        drain_deadline: delivery.drain_deadline.clone(),
    };
    let (listen_addr, admin_addr) = (listener.local_addr()?, admin.local_addr()?);
    tracing::info!(listen = %listen_addr, admin = %admin_addr, tls = ?cfg.server.tls.mode, "fpolicy-bridge listening");
    metrics.readiness.set_listening(true);
    let admin_task = tokio::spawn(crate::admin::serve_admin(
        admin,
        metrics.clone(),
        shutdown_rx,
    ));
    let task = tokio::spawn(
        Serving {
            listener,
            ctx,
            sessions_stop,
            shutdown,
            ingest,
            delivery,
            admin_task,
            lock,
            lease: (lease_stop, lease_thread),
        }
        .run(),
    );
    Ok(Running {
        listen_addr,
        admin_addr,
        metrics,
        shutdown: shutdown_tx,
        task,
    })
}

/// What the serving task owns until the end.
struct Serving {
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    sessions_stop: watch::Receiver<bool>,
    shutdown: Shutdown,
    ingest: Ingest,
    delivery: Delivery,
    admin_task: tokio::task::JoinHandle<()>,
    lock: File,
    /// With spool.shared_root: the lease thread and its stop flag. It stops
    /// after the writer and the sinks, so the spool stays held while they
    /// use it; what is left is adopted once the lease expires.
    lease: (
        Arc<std::sync::atomic::AtomicBool>,
        Option<std::thread::JoinHandle<()>>,
    ),
}

impl Serving {
    /// Serves until shutdown, then stops everything in order.
    async fn run(self) -> anyhow::Result<()> {
        let metrics = self.ctx.metrics.clone();
        let drain = self.ctx.cfg.shutdown.drain_timeout;
        let deadline = self.shutdown.drain_deadline.clone();
        tokio::spawn(self.shutdown.stop_accepting());
        // The last spool senders: the context (dropped by the listener once
        // every session is gone) and this queue handle.
        let Ingest { tx, writer, .. } = self.ingest;
        drop(tx);
        serve_listener(self.listener, self.ctx, self.sessions_stop).await;
        metrics.readiness.set_listening(false);
        Shutdown::start_drain(&deadline, drain);
        let threads = self.delivery.threads;
        let (lease_stop, lease_thread) = self.lease;
        tokio::task::spawn_blocking(move || {
            let _ = writer.join();
            for p in threads {
                let _ = p.join();
            }
            lease_stop.store(true, std::sync::atomic::Ordering::Release);
            if let Some(t) = lease_thread {
                let _ = t.join();
            }
        })
        .await?;
        self.admin_task.abort();
        drop(self.lock);
        tracing::info!("fpolicy-bridge stopped");
        Ok(())
    }
}
