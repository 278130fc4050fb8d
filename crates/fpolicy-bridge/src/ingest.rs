//! The spool writer: one thread that appends what sessions decoded, commits
//! in groups (one `fdatasync` per batch of batches), then answers
//! synchronous requests, wakes the sinks, and applies back pressure.
//!
//! Group commit needs no timer: while one fdatasync runs, sessions keep
//! queueing, and the next loop takes everything queued. The commit delay is
//! therefore bounded by one fsync plus one batch.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fpolicy_event::Operation;
use fpolicy_proto::ScreenResponse;
use fpolicy_spool::Spool;
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;

/// Most records taken into one commit.
const MAX_COMMIT_RECORDS: usize = 16_384;
/// Housekeeping (retention, gauges) when idle.
const TICK: Duration = Duration::from_millis(200);

/// What a session hands to the writer: encoded records and, for
/// synchronous engines, the answers to send once they are durable.
#[derive(Debug, Default)]
pub struct IngestBatch {
    /// Records, each prefixed by its u32 LE length.
    pub records: Vec<u8>,
    pub count: usize,
    pub replies: Option<Replies>,
}

#[derive(Debug)]
pub struct Replies {
    pub to: mpsc::UnboundedSender<Vec<ScreenResponse>>,
    pub responses: Vec<ScreenResponse>,
}

impl IngestBatch {
    pub fn push(&mut self, record: &[u8]) {
        self.records
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.records.extend_from_slice(record);
        self.count += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.replies.as_ref().is_none_or(|r| r.responses.is_empty())
    }

    fn records(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.records.as_slice();
        std::iter::from_fn(move || {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let (rec, tail) = rest.get(4..)?.split_at_checked(len)?;
            rest = tail;
            Some(rec)
        })
    }
}

/// What the writer publishes to the sink threads.
#[derive(Debug, Default)]
pub struct Committed {
    seq: AtomicU64,
    closed: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Committed {
    pub fn new(seq: u64) -> Self {
        Committed {
            seq: AtomicU64::new(seq),
            ..Committed::default()
        }
    }

    /// Every record below this is durable.
    pub fn seq(&self) -> u64 {
        self.seq.load(Acquire)
    }

    /// True once the writer has committed its last record and stopped.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Acquire)
    }

    fn publish(&self, seq: u64) {
        self.seq.store(seq, Release);
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.cv.notify_all();
    }

    fn close(&self) {
        self.closed.store(true, Release);
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.cv.notify_all();
    }

    /// Waits until the committed sequence passes `seen`, the writer closes,
    /// or `timeout` elapses.
    pub fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.seq() > seen || self.is_closed() {
            return;
        }
        let _ = self.cv.wait_timeout(guard, timeout);
    }
}

/// Settings of the writer loop.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub capacity_bytes: u64,
    pub high_watermark: u64,
    pub low_watermark: u64,
}

/// Everything the writer thread owns.
pub struct Writer {
    pub spool: Spool,
    pub rx: mpsc::Receiver<IngestBatch>,
    /// To wait on the async queue from this plain thread.
    pub rt: tokio::runtime::Handle,
    pub committed: Arc<Committed>,
    /// Each sink's durable cursor (retention and back pressure).
    pub sink_cursors: Vec<Arc<AtomicU64>>,
    pub back_pressure: watch::Sender<bool>,
    pub limits: IngestLimits,
    pub metrics: Arc<Metrics>,
}

/// Runs the writer until every sender is dropped, then commits and closes.
pub fn run_writer(w: Writer) {
    let Writer {
        mut spool,
        mut rx,
        rt,
        committed,
        sink_cursors,
        back_pressure,
        limits,
        metrics,
    } = w;
    let mut replies: Vec<Replies> = Vec::new();
    let mut dropped_since_log = 0u64;
    let mut last_drop_log: Option<Instant> = None;
    let mut last_housekeeping = Instant::now();
    loop {
        let first = rt.block_on(async { tokio::time::timeout(TICK, rx.recv()).await });
        let mut batches = match first {
            Ok(Some(b)) => vec![b],
            Ok(None) => break,
            Err(_) => Vec::new(),
        };
        let mut taken: usize = batches.iter().map(|b| b.count).sum();
        while taken < MAX_COMMIT_RECORDS {
            match rx.try_recv() {
                Ok(b) => {
                    taken += b.count;
                    batches.push(b);
                }
                Err(_) => break,
            }
        }
        for batch in batches {
            if batch.count > 0 && spool.stored_bytes() >= limits.capacity_bytes {
                // Full: never silent. The synchronous answers are withheld,
                // so ONTAP cancels and resends those requests elsewhere.
                metrics
                    .events_dropped
                    .fetch_add(batch.count as u64, Relaxed);
                dropped_since_log += batch.count as u64;
                if last_drop_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::error!(
                        dropped = dropped_since_log,
                        capacity_bytes = limits.capacity_bytes,
                        "spool is full: dropping events until sinks catch up"
                    );
                    dropped_since_log = 0;
                    last_drop_log = Some(Instant::now());
                }
                continue;
            }
            let mut failed = false;
            for rec in batch.records() {
                if let Err(e) = spool.append(rec) {
                    tracing::error!(error = %e, "spool append failed; event dropped");
                    metrics.events_dropped.fetch_add(1, Relaxed);
                    failed = true;
                    continue;
                }
                if let Some(op) = rec.get(1).and_then(|c| Operation::from_code(*c)) {
                    metrics.event(op);
                }
            }
            if let Some(r) = batch.replies
                && !failed
            {
                replies.push(r);
            }
        }
        let started = Instant::now();
        match spool.commit() {
            Ok(seq) => {
                if !replies.is_empty() || seq != committed.seq() {
                    metrics.fsync(started.elapsed());
                    metrics.spool_commits.fetch_add(1, Relaxed);
                }
                committed.publish(seq);
                metrics.spool_next_seq.store(seq, Relaxed);
                for r in replies.drain(..) {
                    // A closed session no longer needs its answers.
                    let _ = r.to.send(r.responses);
                }
            }
            Err(e) => {
                // Nothing was acknowledged; the sessions' requests time out
                // on the ONTAP side and are resent.
                tracing::error!(error = %e, "spool commit failed");
                replies.clear();
            }
        }
        if last_housekeeping.elapsed() >= TICK {
            last_housekeeping = Instant::now();
            housekeeping(&mut spool, &sink_cursors, &back_pressure, limits, &metrics);
        } else {
            apply_back_pressure(&spool, &sink_cursors, &back_pressure, limits, &metrics);
        }
    }
    if let Err(e) = spool.commit() {
        tracing::error!(error = %e, "final spool commit failed");
    }
    committed.publish(spool.committed_seq());
    committed.close();
    tracing::info!(next_seq = spool.committed_seq(), "spool writer stopped");
}

fn min_cursor(sink_cursors: &[Arc<AtomicU64>], committed: u64) -> u64 {
    sink_cursors
        .iter()
        .map(|c| c.load(Acquire))
        .min()
        .unwrap_or(committed)
}

fn apply_back_pressure(
    spool: &Spool,
    sink_cursors: &[Arc<AtomicU64>],
    back_pressure: &watch::Sender<bool>,
    limits: IngestLimits,
    metrics: &Metrics,
) {
    let committed = spool.committed_seq();
    let lag = committed - min_cursor(sink_cursors, committed).min(committed);
    // Near capacity counts as high too: push back before dropping.
    let nearly_full = spool.stored_bytes() >= limits.capacity_bytes / 10 * 9;
    let on = *back_pressure.borrow();
    let want = if on {
        lag > limits.low_watermark || nearly_full
    } else {
        lag >= limits.high_watermark || nearly_full
    };
    if want != on {
        tracing::warn!(
            lag,
            applied = want,
            "back pressure {}",
            if want { "applied" } else { "removed" }
        );
        back_pressure.send_replace(want);
        metrics.back_pressure_active.store(u64::from(want), Relaxed);
        metrics.back_pressure_transitions.fetch_add(1, Relaxed);
    }
}

fn housekeeping(
    spool: &mut Spool,
    sink_cursors: &[Arc<AtomicU64>],
    back_pressure: &watch::Sender<bool>,
    limits: IngestLimits,
    metrics: &Metrics,
) {
    let min = min_cursor(sink_cursors, spool.committed_seq());
    if let Err(e) = spool.retain_below(min) {
        tracing::error!(error = %e, "spool retention failed");
    }
    metrics.spool_bytes.store(spool.stored_bytes(), Relaxed);
    metrics.spool_first_seq.store(spool.first_seq(), Relaxed);
    metrics.spool_next_seq.store(spool.committed_seq(), Relaxed);
    apply_back_pressure(spool, sink_cursors, back_pressure, limits, metrics);
}
