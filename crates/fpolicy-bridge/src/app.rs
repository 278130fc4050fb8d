//! `serve`: wires spool, writer, sinks, listener and admin together, and
//! shuts them down in order (stop accepting → close sessions → final
//! commit → sinks drain up to a deadline).

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use fpolicy_event::{CoalesceConfig, NameResolver, StaticNames};
use fpolicy_spool::{FsyncPolicy, Spool, SpoolConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::cidr::Cidr;
use crate::config::{CloudSinkType, Config, FsyncSetting};
use crate::ingest::{Committed, IngestLimits, Writer, run_writer};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::server::{ServerContext, serve_listener, tls};
use crate::sink::{DeadLetters, EventBridgeSink, JsonlSink, Sink, SqsSink, StdoutSink, aws_config};

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
        metrics.set_spool_recovery(Some(summary));
    }
    metrics
        .spool_damaged_records
        .store(recovery.lost_records(), Relaxed);
    metrics
        .spool_quarantined_bytes
        .store(recovery.damaged_bytes(), Relaxed);
}

/// Configured names, plus ONTAP's when `[ontap]` is set up for it.
fn name_resolver(cfg: &Config) -> anyhow::Result<Arc<dyn NameResolver>> {
    let volumes: std::collections::HashMap<u64, String> = cfg
        .events
        .volumes
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
        .collect();
    let svms: std::collections::HashMap<String, String> =
        cfg.events.svms.clone().into_iter().collect();
    if cfg.ontap.cluster_url.is_empty() || !cfg.ontap.resolve_names {
        return Ok(Arc::new(StaticNames::new(
            volumes,
            svms,
            &cfg.events.default_volume,
            &cfg.events.default_svm,
        )));
    }
    let client = fpolicy_ontap::OntapClient::new(&crate::ontap::endpoint(cfg)?)?;
    let (names, worker) = fpolicy_ontap::OntapNames::new(
        client,
        volumes,
        svms,
        &cfg.events.default_volume,
        &cfg.events.default_svm,
        Duration::from_secs(cfg.ontap.name_cache_ttl_secs.max(1)),
    );
    tokio::spawn(worker);
    Ok(names)
}

/// Opens everything and starts serving. Returns once listening.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    cfg.validate()?;
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let lock = lock_data_dir(&cfg.data_dir)?;
    let names = name_resolver(&cfg)?;
    let spool_cfg = spool_config(&cfg);
    let opened = Instant::now();
    let (spool, recovery) = Spool::open(spool_cfg.clone()).context("cannot open the spool")?;
    report_recovery(&recovery, &metrics);
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

    // (sink, events per second at most)
    let mut sinks: Vec<(Box<dyn Sink>, u32)> = Vec::new();
    if cfg.sinks.jsonl.enabled {
        let fsync = cfg.spool.fsync == FsyncSetting::Always;
        sinks.push((
            Box::new(
                JsonlSink::new(&cfg.jsonl_dir(), cfg.sinks.jsonl.max_file_bytes, fsync)?
                    .with_metrics(metrics.clone()),
            ),
            0,
        ));
    }
    if cfg.sinks.stdout.enabled {
        sinks.push((Box::new(StdoutSink::default()), 0));
    }
    for c in &cfg.cloud_sinks {
        let sdk = aws_config(c.endpoint_url.as_deref()).await;
        let sink: Box<dyn Sink> = match c.kind {
            CloudSinkType::Sqs => Box::new(SqsSink::new(
                &c.name,
                &sdk,
                &c.queue_url,
                c.max_in_flight,
                c.api_calls_per_sec,
            )),
            CloudSinkType::Eventbridge => Box::new(EventBridgeSink::new(
                &c.name,
                &sdk,
                &c.event_bus_name,
                &c.source,
                &c.detail_type,
                c.max_in_flight,
                c.api_calls_per_sec,
            )),
        };
        sinks.push((sink, c.max_events_per_sec));
    }
    let committed = Arc::new(Committed::new(spool.committed_seq()));
    let drain_deadline: Arc<Mutex<Option<Instant>>> = Arc::default();
    let delay_nanos = (cfg.events.write_complete_delay_secs * 1e9) as i64;
    let coalesce = CoalesceConfig {
        window: delay_nanos,
        max_hold: (cfg.events.max_hold_secs as i64 * 1_000_000_000).max(delay_nanos),
        max_pending: cfg.events.max_pending_paths,
    };
    let mut cursors = Vec::new();
    let mut pipelines = Vec::new();
    for (sink, max_events_per_sec) in sinks {
        let name = sink.name().to_owned();
        let start_at = spool.cursor(&name);
        let cursor = Arc::new(AtomicU64::new(start_at));
        cursors.push(cursor.clone());
        let pipeline = Pipeline {
            reader: spool.reader(start_at)?,
            sink,
            spool_dir: spool_cfg.dir.clone(),
            fsync: spool_cfg.fsync,
            coalesce,
            committed: committed.clone(),
            cursor,
            metrics: metrics.sink(&name),
            dead_letters: DeadLetters::new(&cfg.data_dir.join("dead-letter"), &name),
            max_events_per_sec,
            drain_deadline: drain_deadline.clone(),
        };
        tracing::info!(sink = %name, cursor = start_at, behind = spool.committed_seq() - start_at.min(spool.committed_seq()), "sink starting");
        pipelines.push(
            std::thread::Builder::new()
                .name(format!("sink-{name}"))
                .spawn(move || pipeline.run())?,
        );
    }

    let (ingest_tx, ingest_rx) = mpsc::channel(INGEST_QUEUE);
    let (bp_tx, bp_rx) = watch::channel(false);
    let limits = IngestLimits {
        capacity_bytes: cfg.spool.capacity_bytes,
        high_watermark: cfg.spool.high_watermark_events,
        low_watermark: cfg.spool.low_watermark_events,
    };
    let writer = {
        let rt = tokio::runtime::Handle::current();
        let committed = committed.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || {
                run_writer(Writer {
                    spool,
                    rx: ingest_rx,
                    rt,
                    committed,
                    sink_cursors: cursors,
                    back_pressure: bp_tx,
                    limits,
                    metrics,
                })
            })?
    };

    let listener = TcpListener::bind(&cfg.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
    let admin = TcpListener::bind(&cfg.admin.listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin)", cfg.admin.listen))?;
    let listen_addr = listener.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let polling = cfg.trigger.mode != crate::config::TriggerMode::EventDriven;
    let recent = (cfg.trigger.mode == crate::config::TriggerMode::Hybrid).then(|| {
        Arc::new(Mutex::new(fpolicy_poll::hybrid::RecentEvents::new(
            cfg.trigger.recent_events,
        )))
    });
    let poll_ctx = polling.then(|| {
        Arc::new(crate::poll::PollContext {
            cfg: cfg.clone(),
            router: cfg.router().expect("validated"),
            ingest: ingest_tx.clone(),
            recent: recent.clone(),
            metrics: Arc::default(),
        })
    });
    let ctx = Arc::new(ServerContext {
        cfg: cfg.clone(),
        metrics: metrics.clone(),
        names,
        rules: cfg.screening_rules()?,
        router: cfg.router()?,
        recent: recent.clone(),
        ingest: ingest_tx,
        back_pressure: bp_rx,
        allowed_peers: cfg
            .server
            .allowed_peers
            .iter()
            .map(|p| p.parse::<Cidr>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?,
        tls: tls::acceptor(&cfg.server.tls)?,
        frame_budget: Arc::new(tokio::sync::Semaphore::new(
            (cfg.server.max_buffered_bytes / 1024).min(u64::from(u32::MAX)) as usize,
        )),
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tracing::info!(listen = %listen_addr, admin = %admin_addr, tls = ?cfg.server.tls.mode, "fpolicy-bridge listening");
    metrics.ready.store(1, Relaxed);

    let admin_task = tokio::spawn(crate::admin::serve_admin(
        admin,
        metrics.clone(),
        shutdown_rx.clone(),
    ));
    let drain = Duration::from_secs(cfg.shutdown.drain_timeout_secs);
    let task_metrics = metrics.clone();
    if cfg.cloudwatch.emf {
        tokio::spawn(crate::emf::run(
            cfg.cloudwatch.namespace.clone(),
            cfg.cloudwatch.service.clone(),
            metrics.clone(),
            Duration::from_secs(cfg.cloudwatch.interval_secs.max(1)),
        ));
    }
    // Self-registration; on a stop, the instance leaves the engine before
    // its sessions close, so ONTAP sends to the other instances.
    let registered: Arc<Mutex<Option<std::net::IpAddr>>> = Arc::default();
    if cfg.ontap.register_on_start {
        metrics.ontap_registered.store(2, Relaxed);
        tokio::spawn(crate::ontap::self_register(
            cfg.clone(),
            metrics.clone(),
            registered.clone(),
        ));
    }
    let (sessions_stop_tx, sessions_stop_rx) = watch::channel(false);
    {
        let mut shutdown = shutdown_rx.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|s| *s).await;
            let addr = *registered.lock().unwrap_or_else(|p| p.into_inner());
            if let (true, Some(addr)) = (cfg.ontap.remove_on_shutdown, addr) {
                crate::ontap::deregister(&cfg, addr).await;
            }
            let _ = sessions_stop_tx.send(true);
        });
    }
    if let Some(poll_ctx) = poll_ctx {
        for p in cfg.polls.clone() {
            let pctx = Arc::new(crate::poll::PollContext {
                cfg: poll_ctx.cfg.clone(),
                router: poll_ctx.router.clone(),
                ingest: poll_ctx.ingest.clone(),
                recent: poll_ctx.recent.clone(),
                metrics: metrics.polls.get(&p.name),
            });
            tokio::spawn(crate::poll::run_poller(pctx, p, sessions_stop_rx.clone()));
        }
    }
    let task = tokio::spawn(async move {
        serve_listener(listener, ctx, sessions_stop_rx).await;
        task_metrics.ready.store(0, Relaxed);
        // The sessions are gone; the listener's context held the last
        // spool sender, so the writer now commits and stops.
        *drain_deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + drain);
        tokio::task::spawn_blocking(move || {
            let _ = writer.join();
            for p in pipelines {
                let _ = p.join();
            }
        })
        .await?;
        admin_task.abort();
        drop(lock);
        tracing::info!("fpolicy-bridge stopped");
        Ok(())
    });
    Ok(Running {
        listen_addr,
        admin_addr,
        metrics,
        shutdown: shutdown_tx,
        task,
    })
}
