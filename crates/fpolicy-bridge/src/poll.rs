//! Trigger modes: the S3 Access Point pollers in `serve`, and `poll once`.
//!
//! A cycle lists the access point a page at a time, merges the listing
//! with the stored state (fpolicy-poll), turns each change into an event
//! (same schema as FPolicy events, `metadata.origin = "poll"`), routes it
//! and hands it to the spool writer like a session does. The new state
//! replaces the old one only after those events are durable. In HYBRID
//! mode a change already covered by an FPolicy event is counted and not
//! emitted.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fpolicy_event::id::IdBuilder;
use fpolicy_event::time::rfc3339;
use fpolicy_event::{Event, Metadata, Operation};

use fpolicy_poll::model::{SavingsInputs, monthly_savings_usd};
use fpolicy_poll::state::{Change, ChangeKind, Merger, file_path};
use fpolicy_poll::store::{StateReader, StateWriter, exists};
use tokio::sync::{mpsc, watch};

use crate::config::{Config, PollConfig, TriggerMode};
use crate::ingest::{EventIngestor, IngestBatch, IngestRules};
pub use crate::metrics::{PollMetrics, PollRegistry};

/// What one cycle found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub pages: u64,
    pub objects: u64,
    pub created: u64,
    pub written: u64,
    pub deleted: u64,
    pub emitted: u64,
    pub suppressed: u64,
    pub baseline: bool,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The event for a change found by polling.
pub fn change_event(p: &PollConfig, change: &Change) -> Event {
    let o = &change.object;
    let (op, kind) = match change.kind {
        ChangeKind::Create => (Operation::Create, "create"),
        ChangeKind::Write => (Operation::Write, "write"),
        ChangeKind::Delete => (Operation::Delete, "delete"),
    };
    let now = now_secs();
    let when = if change.kind == ChangeKind::Delete {
        now
    } else {
        o.last_modified
    };
    let path = file_path(&p.path_prefix, &o.key);
    Event {
        event_id: IdBuilder::new()
            .str("poll")
            .str(&p.bucket)
            .str(&o.key)
            .str(&o.etag)
            .str(kind)
            .finish(),
        operation_type: op,
        file_path: path,
        previous_path: None,
        volume_name: p.volume_name.clone(),
        svm_name: p.svm_name.clone(),
        timestamp: rfc3339(when.saturating_mul(1_000_000_000)),
        file_size: o.size,
        client_ip: None,
        metadata: Metadata {
            protocol: "s3".into(),
            req_type: "S3_LIST".into(),
            policy_name: p.name.clone(),
            ontap_peer: p.bucket.clone(),
            s3_key: o.key.clone(),
            received_at: rfc3339(now.saturating_mul(1_000_000_000)),
            engine: "poll".into(),
            origin: Some("poll".into()),
            ..Metadata::default()
        },
    }
}

/// Everything a poller needs from the server.
pub struct PollContext {
    pub cfg: Arc<Config>,
    /// Routing and the HYBRID index, shared with the FPolicy sessions.
    pub ingest_rules: Arc<IngestRules>,
    pub ingest: mpsc::Sender<IngestBatch>,
    pub metrics: Arc<PollMetrics>,
}

/// Runs one cycle. With `dry_run`, prints nothing, stores nothing, emits
/// nothing: the changes are returned for `poll once`.
/// One prefix's part of a cycle: its listing merged with its own state.
struct PrefixScan {
    pages: u64,
    objects: u64,
    baseline: bool,
    changes: Vec<Change>,
    writer: Option<StateWriter>,
}

/// The state file of a prefix: the poll's name when it has one prefix,
/// else the name plus the prefix's position (prefixes are listed in their
/// configured order).
fn state_name(p: &PollConfig, index: usize) -> String {
    if p.prefixes().len() == 1 {
        p.name.clone()
    } else {
        format!("{}.{index}", p.name)
    }
}

async fn scan_prefix(
    dir: &std::path::Path,
    state: &str,
    p: &PollConfig,
    prefix: &str,
    client: &aws_sdk_s3::Client,
    dry_run: bool,
) -> anyhow::Result<PrefixScan> {
    let baseline = !exists(dir, state);
    let mut reader = StateReader::open(dir, state)?;
    let mut writer = if dry_run {
        None
    } else {
        Some(StateWriter::create(dir, state)?)
    };
    let mut changes = Vec::new();
    let mut write_error = None;
    let mut objects = 0;
    let pages = {
        let mut merger = Merger::new(&mut reader);
        let mut on_change = |c: Change| changes.push(c);
        let mut keep = |o: &fpolicy_poll::state::ObjectState| {
            if let Some(w) = writer.as_mut()
                && let Err(e) = w.push(o)
            {
                write_error.get_or_insert(e);
            }
        };
        let pages = fpolicy_poll::s3::list(client, &p.bucket, prefix, &p.suffixes, |page| {
            for o in page {
                objects += 1;
                merger.push(o, &mut on_change, &mut keep);
            }
        })
        .await?;
        merger.finish(&mut on_change);
        pages
    };
    if let Some(e) = reader.error.take() {
        return Err(e.into());
    }
    if reader.skipped > 0 {
        tracing::warn!(poll = %p.name, state = %state, skipped = reader.skipped, "damaged lines in the poll state were skipped; the objects they described are reported again");
    }
    if let Some(e) = write_error {
        return Err(e.into());
    }
    Ok(PrefixScan {
        pages,
        objects,
        baseline,
        changes,
        writer,
    })
}

/// Runs one cycle. With `dry_run`, stores nothing and emits nothing: the
/// changes are returned for `poll once`. The poll's prefixes are listed
/// concurrently, as many at once as the concurrency formula allows.
pub async fn run_cycle(
    ctx: &PollContext,
    p: &PollConfig,
    client: &aws_sdk_s3::Client,
    dry_run: bool,
) -> anyhow::Result<(CycleReport, Vec<Change>)> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let dir = ctx.cfg.poll_dir();
    let prefixes = p.prefixes();
    let at_once = crate::concurrency::concurrency(
        prefixes.len() as u64,
        ctx.cfg.trigger.list_calls_per_sec,
        1.0,
        ctx.cfg.trigger.max_concurrent_prefixes,
    ) as usize;
    ctx.metrics
        .prefixes_in_flight
        .store(at_once as u64, Relaxed);
    let mut scans: Vec<Option<PrefixScan>> = (0..prefixes.len()).map(|_| None).collect();
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    loop {
        while running.len() < at_once && next < prefixes.len() {
            let (i, prefix, state) = (next, prefixes[next].clone(), state_name(p, next));
            let dir = dir.clone();
            running.push(async move {
                (
                    i,
                    scan_prefix(&dir, &state, p, &prefix, client, dry_run).await,
                )
            });
            next += 1;
        }
        match running.next().await {
            Some((i, scan)) => scans[i] = Some(scan?),
            None => break,
        }
    }
    let mut report = CycleReport::default();
    let mut changes = Vec::new();
    let mut writers = Vec::new();
    for scan in scans.into_iter().flatten() {
        report.pages += scan.pages;
        report.objects += scan.objects;
        report.baseline |= scan.baseline;
        // A prefix seen for the first time is a baseline (unless emit_existing).
        let emit_this = !scan.baseline || p.emit_existing;
        changes.extend(scan.changes.into_iter().map(|c| (c, emit_this)));
        writers.extend(scan.writer);
    }
    for (c, _) in &changes {
        match c.kind {
            ChangeKind::Create => report.created += 1,
            ChangeKind::Write => report.written += 1,
            ChangeKind::Delete => report.deleted += 1,
        }
    }
    if dry_run {
        return Ok((report, changes.into_iter().map(|(c, _)| c).collect()));
    }
    let batch = changes_batch(ctx, p, &changes, &mut report)?;
    if batch.count > 0 {
        commit_batch(ctx, batch).await?;
    }
    for w in writers {
        w.commit()?;
    }
    Ok((report, changes.into_iter().map(|(c, _)| c).collect()))
}

/// The events of a cycle's changes as one batch, through the same ingest
/// step as FPolicy events; in HYBRID, without what FPolicy already
/// reported.
fn changes_batch(
    ctx: &PollContext,
    p: &PollConfig,
    changes: &[(Change, bool)],
    report: &mut CycleReport,
) -> anyhow::Result<IngestBatch> {
    let hybrid = ctx.cfg.trigger.mode == TriggerMode::Hybrid;
    let skew = ctx.cfg.trigger.clock_skew.as_secs() as i64;
    let mut ingestor = EventIngestor::new(ctx.ingest_rules.clone());
    let mut batch = IngestBatch::default();
    let received = now_secs().saturating_mul(1_000_000_000);
    for (c, emit) in changes {
        if !emit {
            continue;
        }
        let mut event = change_event(p, c);
        if !ingestor.admit(&mut event) {
            continue;
        }
        if hybrid && ingestor.covered(&event, c.object.last_modified, skew) {
            report.suppressed += 1;
            continue;
        }
        ingestor.push(&mut event, received, &mut batch)?;
        report.emitted += 1;
    }
    Ok(batch)
}

/// Hands the batch to the spool writer and waits until it is durable, so
/// that the poll state moves only after its events are safe.
async fn commit_batch(ctx: &PollContext, mut batch: IngestBatch) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    batch.durable = Some(tx);
    ctx.ingest
        .send(batch)
        .await
        .map_err(|_| anyhow::anyhow!("the server is stopping"))?;
    tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .map_err(|_| anyhow::anyhow!("the spool did not confirm the poll's events in 60 s (full?); the cycle will be repeated"))?
        .map_err(|_| anyhow::anyhow!("the spool dropped the poll's events; the cycle will be repeated"))
}

/// One poller: runs at start, then on its schedule, until shutdown.
pub async fn run_poller(ctx: Arc<PollContext>, p: PollConfig, mut shutdown: watch::Receiver<bool>) {
    let Ok(schedule) = p.schedule() else { return };
    let client = fpolicy_poll::s3::client(p.endpoint_url.as_deref()).await;
    let m = ctx.metrics.clone();
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
    loop {
        let started = fpolicy_poll::jiff::Timestamp::now();
        let result = tokio::select! {
            r = run_cycle(&ctx, &p, &client, false) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let wait = match result {
            Ok((r, _)) => {
                m.cycles.fetch_add(1, Relaxed);
                m.objects.store(r.objects, Relaxed);
                m.emitted.fetch_add(r.emitted, Relaxed);
                m.suppressed.fetch_add(r.suppressed, Relaxed);
                m.up.store(1, Relaxed);
                backoff.reset();
                let savings = monthly_savings_usd(
                    &schedule,
                    p.business_interval(),
                    SavingsInputs {
                        pages_per_cycle: r.pages,
                        price_per_1000: ctx.cfg.trigger.list_price_per_1000,
                    },
                    started,
                );
                m.savings_millicents
                    .store((savings * 100_000.0).round() as u64, Relaxed);
                let next = schedule.next_run(started);
                m.next_run_unix
                    .store(next.as_second().max(0) as u64, Relaxed);
                tracing::info!(poll = %p.name, objects = r.objects, pages = r.pages, created = r.created, written = r.written, deleted = r.deleted, emitted = r.emitted, suppressed = r.suppressed, baseline = r.baseline, next_run = %next, "poll cycle done");
                Duration::try_from(next.duration_since(fpolicy_poll::jiff::Timestamp::now()))
                    .unwrap_or(Duration::ZERO)
            }
            Err(e) => {
                m.errors.fetch_add(1, Relaxed);
                m.up.store(0, Relaxed);
                let wait = backoff.next_delay().min(schedule.interval_at(started));
                tracing::error!(poll = %p.name, error = %e, retry_in_s = wait.as_secs(), "poll cycle failed; FPolicy ingestion is not affected");
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
