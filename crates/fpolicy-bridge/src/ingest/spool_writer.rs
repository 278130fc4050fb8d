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
use fpolicy_spool::{Spool, SpoolError};
use tokio::sync::{mpsc, watch};

use crate::log_limit::LogLimit;
use crate::metrics::{Metrics, WriteErrorKind};

/// Most records taken into one commit.
const MAX_COMMIT_RECORDS: usize = 16_384;
/// Housekeeping (retention, gauges) when idle.
const TICK: Duration = Duration::from_millis(200);

/// What a session (or poller) hands to the writer: encoded records and,
/// for synchronous engines, the answers to send once they are durable.
#[derive(Debug, Default)]
pub struct IngestBatch {
    /// Records, each prefixed by its u32 LE length.
    pub records: Vec<u8>,
    pub count: usize,
    pub replies: Option<Replies>,
    /// Told once the batch is durable (dropped, unsent, if it never is).
    pub durable: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Debug)]
pub struct Replies {
    pub to: mpsc::UnboundedSender<Vec<ScreenResponse>>,
    pub responses: Vec<ScreenResponse>,
}

impl IngestBatch {
    /// Room for `bytes` of records up front: a batch grown by doubling
    /// copies itself several times (a record is smaller than the frame it
    /// came from, so the frames' size is a good bound).
    pub fn with_capacity(bytes: usize) -> Self {
        IngestBatch {
            records: Vec::with_capacity(bytes),
            ..IngestBatch::default()
        }
    }

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

    pub(crate) fn publish(&self, seq: u64) {
        self.seq.store(seq, Release);
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.cv.notify_all();
    }

    pub(crate) fn close(&self) {
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
    /// With spool.shared_root: answers go out only while this instance's
    /// lease is fresh.
    pub lease: Option<Arc<crate::shared_spool::LeaseClock>>,
}

/// While commits fail, how often to try again.
const RETRY_COMMIT: Duration = Duration::from_millis(500);
/// On shutdown with commits failing, how long to keep trying.
const FINAL_COMMIT_TRIES: u32 = 10;

static DROPPED_FULL: LogLimit = LogLimit::new(Duration::from_secs(10));
static DROPPED_FAILING: LogLimit = LogLimit::new(Duration::from_secs(10));
static APPEND_REFUSED: LogLimit = LogLimit::new(Duration::from_secs(10));
static COMMIT_FAILING: LogLimit = LogLimit::new(Duration::from_secs(10));

/// The writer's state between loops.
struct WriterLoop {
    spool: Spool,
    committed: Arc<Committed>,
    metrics: Arc<Metrics>,
    limits: IngestLimits,
    /// Answers (and durability notices) waiting for their records' commit.
    replies: Vec<Replies>,
    notices: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Since when commits fail (disk full, I/O error), and the last try.
    failing: Option<(Instant, Instant)>,
    lease: Option<Arc<crate::shared_spool::LeaseClock>>,
}

fn error_kind(e: &SpoolError) -> WriteErrorKind {
    if e.is_no_space() {
        WriteErrorKind::NoSpace
    } else {
        WriteErrorKind::Io
    }
}

impl WriterLoop {
    /// Appends a session's batch, or drops it loudly when the spool is
    /// full or cannot be written. A dropped batch's synchronous answers
    /// are withheld, so ONTAP cancels and resends those requests.
    fn take(&mut self, batch: IngestBatch) {
        let m = &self.metrics;
        if batch.count > 0 && self.failing.is_some() {
            m.events_dropped.fetch_add(batch.count as u64, Relaxed);
            crate::limited!(
                DROPPED_FAILING,
                error,
                error = self
                    .metrics
                    .readiness
                    .spool_write_error()
                    .unwrap_or_default(),
                "spool cannot be written (disk full?): dropping new events until a commit succeeds"
            );
            return;
        }
        if batch.count > 0 && self.spool.stored_bytes() >= self.limits.capacity_bytes {
            m.events_dropped.fetch_add(batch.count as u64, Relaxed);
            crate::limited!(
                DROPPED_FULL,
                error,
                capacity_bytes = self.limits.capacity_bytes,
                "spool is full: dropping events until sinks catch up"
            );
            return;
        }
        let mut failed = false;
        for rec in batch.records() {
            match self.spool.append(rec) {
                Ok(_) => {
                    if let Some(op) = rec.get(1).and_then(|c| Operation::from_code(*c)) {
                        m.event(op);
                    }
                }
                Err(e @ SpoolError::RecordTooLarge { .. }) => {
                    m.events_dropped.fetch_add(1, Relaxed);
                    crate::limited!(APPEND_REFUSED, error, error = %e, "event refused by the spool; dropped");
                    failed = true;
                }
                Err(e) => {
                    // Rolling to a new segment failed: what is buffered
                    // stays; the rest of this batch is dropped.
                    self.commit_failed(&e);
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            return;
        }
        if let Some(r) = batch.replies {
            self.replies.push(r);
        }
        if let Some(n) = batch.durable {
            self.notices.push(n);
        }
    }

    fn commit_failed(&mut self, e: &SpoolError) {
        let now = Instant::now();
        let kind = error_kind(e);
        self.metrics
            .set_spool_write_error(Some((kind, e.to_string())));
        match self.failing {
            None => {
                tracing::error!(error = %e, kind = kind.label(), pending = self.spool.pending_records(), "spool commit failed: nothing of the batch is acknowledged; new events are refused (back pressure) and the commit is retried every 500 ms");
                self.failing = Some((now, now));
            }
            Some((since, _)) => {
                crate::limited!(COMMIT_FAILING, error, error = %e, failing_secs = since.elapsed().as_secs(), "spool commit still failing");
                self.failing = Some((since, now));
            }
        }
    }

    /// Commits what was appended (not more often than RETRY_COMMIT while
    /// commits fail), then publishes and answers.
    fn commit(&mut self) {
        if let Some((_, last_try)) = self.failing
            && last_try.elapsed() < RETRY_COMMIT
        {
            return;
        }
        self.commit_now();
    }

    /// Commits, publishes and answers, or records the failure.
    fn commit_now(&mut self) {
        let started = Instant::now();
        match self.spool.commit() {
            Ok(seq) => {
                if let Some((since, _)) = self.failing.take() {
                    tracing::warn!(
                        failing_secs = since.elapsed().as_secs(),
                        next_seq = seq,
                        "spool commits succeed again; taking events"
                    );
                    self.metrics.set_spool_write_error(None);
                }
                if !self.replies.is_empty() || seq != self.committed.seq() {
                    self.metrics.fsync(started.elapsed());
                    self.metrics.spool_commits.fetch_add(1, Relaxed);
                }
                self.committed.publish(seq);
                self.metrics.spool_next_seq.store(seq, Relaxed);
                if let Some(lease) = &self.lease
                    && !(self.replies.is_empty() && self.notices.is_empty())
                {
                    lease.wait_fresh();
                }
                for r in self.replies.drain(..) {
                    // A closed session no longer needs its answers.
                    let _ = r.to.send(r.responses);
                }
                for n in self.notices.drain(..) {
                    let _ = n.send(());
                }
            }
            // The batch stays buffered and its answers wait: both go out
            // once a commit succeeds.
            Err(e) => self.commit_failed(&e),
        }
    }

    /// The last commit at shutdown: a few more tries if commits fail.
    fn close(mut self) {
        for _ in 0..FINAL_COMMIT_TRIES {
            self.commit_now();
            if self.spool.pending_records() == 0 {
                break;
            }
            std::thread::sleep(RETRY_COMMIT);
        }
        let lost = self.spool.pending_records();
        if lost > 0 {
            tracing::error!(
                lost,
                "spool could not commit at shutdown: these events were never acknowledged and are lost"
            );
        }
        self.committed.publish(self.spool.committed_seq());
        self.committed.close();
        tracing::info!(
            next_seq = self.spool.committed_seq(),
            "spool writer stopped"
        );
    }
}

/// Runs the writer until every sender is dropped, then commits and closes.
pub fn run_writer(w: Writer) {
    let Writer {
        spool,
        mut rx,
        rt,
        committed,
        sink_cursors,
        back_pressure,
        limits,
        metrics,
        lease,
    } = w;
    let mut wl = WriterLoop {
        spool,
        committed,
        metrics,
        limits,
        replies: Vec::new(),
        notices: Vec::new(),
        failing: None,
        lease,
    };
    let mut last_housekeeping = Instant::now();
    loop {
        let wait = if wl.failing.is_some() {
            RETRY_COMMIT
        } else {
            TICK
        };
        let first = rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await });
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
            wl.take(batch);
        }
        wl.commit();
        let failing = wl.failing.is_some();
        if last_housekeeping.elapsed() >= TICK {
            last_housekeeping = Instant::now();
            housekeeping(
                &mut wl.spool,
                &sink_cursors,
                &back_pressure,
                limits,
                &wl.metrics,
                failing,
            );
        } else {
            apply_back_pressure(
                &wl.spool,
                &sink_cursors,
                &back_pressure,
                limits,
                &wl.metrics,
                failing,
            );
        }
    }
    wl.close();
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
    write_failing: bool,
) {
    let committed = spool.committed_seq();
    let lag = committed - min_cursor(sink_cursors, committed).min(committed);
    // Near capacity, or unable to write at all, counts as high too: push
    // back before dropping.
    let nearly_full = spool.stored_bytes() >= limits.capacity_bytes / 10 * 9 || write_failing;
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
    write_failing: bool,
) {
    let min = min_cursor(sink_cursors, spool.committed_seq());
    if let Err(e) = spool.retain_below(min) {
        static RETENTION: LogLimit = LogLimit::new(Duration::from_secs(60));
        crate::limited!(RETENTION, error, error = %e, "spool retention failed");
    }
    metrics.spool_bytes.store(spool.stored_bytes(), Relaxed);
    metrics.spool_first_seq.store(spool.first_seq(), Relaxed);
    metrics.spool_next_seq.store(spool.committed_seq(), Relaxed);
    metrics.spool_records.store(spool.stats().records, Relaxed);
    apply_back_pressure(
        spool,
        sink_cursors,
        back_pressure,
        limits,
        metrics,
        write_failing,
    );
}
