//! One delivery pipeline per sink: read durable records from the spool at
//! the sink's cursor, keep those routed to the sink, coalesce
//! write-complete notifications, deliver (rate-limited, resending only the
//! entries that failed, dead-lettering the rejected), then move the cursor.
//! Runs on its own thread, so a slow or broken sink never reaches a socket
//! reader or another sink.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fpolicy_event::{CoalesceConfig, Coalescer, Emitted, record};
use fpolicy_spool::{FsyncPolicy, SpoolReader, write_cursor};

use crate::ingest::Committed;
use crate::metrics::SinkMetrics;
use crate::sink::{DeadLetters, EntryFailure, Sink};

/// Records read per delivery.
const READ_BATCH: usize = 8192;
/// How often the cursor file is rewritten while events flow.
const CURSOR_EVERY: Duration = Duration::from_millis(250);
/// Wake-up interval when idle (drives the coalescer's quiet window).
const IDLE_WAIT: Duration = Duration::from_millis(100);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Pipeline {
    pub sink: Box<dyn Sink>,
    pub reader: SpoolReader,
    pub spool_dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub coalesce: CoalesceConfig,
    pub committed: Arc<Committed>,
    /// Published durable cursor (retention and back pressure read it).
    pub cursor: Arc<AtomicU64>,
    pub metrics: Arc<SinkMetrics>,
    pub dead_letters: DeadLetters,
    /// Events per second at most (0 = no limit).
    pub max_events_per_sec: u32,
    /// Set on shutdown: deliver what is committed until then, at most.
    pub drain_deadline: Arc<std::sync::Mutex<Option<Instant>>>,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Exponential backoff with full jitter (`rand`-free: the clock's low bits).
fn jittered(backoff: Duration) -> Duration {
    let nanos = backoff.as_nanos().max(1) as u64;
    let noise = (now_nanos() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % nanos;
    Duration::from_nanos(nanos / 2 + noise / 2)
}

/// Token bucket: `rate` events per second, one second of burst.
struct RateLimit {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    fn new(rate: u32) -> Option<RateLimit> {
        (rate > 0).then(|| RateLimit {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            at: Instant::now(),
        })
    }

    /// How long to wait before sending `n` events.
    fn take(&mut self, n: usize) -> Duration {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate);
        self.at = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// What became of one delivery attempt.
struct Settled {
    /// Positions in the batch to send again.
    retry: Vec<usize>,
    /// How many were written to the dead-letter file.
    dead_lettered: usize,
    throttled: bool,
    /// The first reason for a retry, for the log.
    error: Option<String>,
}

impl Pipeline {
    /// Sorts a delivery's outcome: rejected entries go to the dead-letter
    /// file (or are retried when that cannot be written), failed ones are
    /// retried.
    fn settle(
        &mut self,
        name: &str,
        out: &[Emitted],
        result: Result<crate::sink::Delivered, crate::sink::SinkError>,
    ) -> Settled {
        let d = match result {
            Ok(d) => {
                if d.in_flight > 0 {
                    self.metrics.in_flight.store(d.in_flight as u64, Relaxed);
                }
                d
            }
            Err(e) => {
                return Settled {
                    retry: (0..out.len()).collect(),
                    dead_lettered: 0,
                    throttled: e.is_throttling(),
                    error: Some(e.to_string()),
                };
            }
        };
        let mut retry = Vec::new();
        let mut rejected = Vec::new();
        for (i, f) in &d.failures {
            match f {
                EntryFailure::Retry(_) => retry.push(*i),
                EntryFailure::Reject(why) => rejected.push((*i, why.as_str())),
            }
        }
        let mut dead_lettered = 0;
        if !rejected.is_empty() {
            let entries: Vec<(&Emitted, &str)> = rejected
                .iter()
                .filter_map(|(i, why)| out.get(*i).map(|e| (e, *why)))
                .collect();
            match self.dead_letters.write(&entries, now_nanos()) {
                Ok(()) => {
                    dead_lettered = entries.len();
                    self.metrics
                        .dead_letters
                        .fetch_add(dead_lettered as u64, Relaxed);
                    tracing::warn!(sink = %name, count = dead_lettered, reason = rejected[0].1, file = %self.dead_letters.path().display(), "events rejected by the service for good; written to the dead-letter file");
                }
                Err(e) => {
                    // Cannot record them: keep them and try again.
                    tracing::error!(sink = %name, error = %e, "cannot write the dead-letter file");
                    retry.extend(rejected.iter().map(|(i, _)| *i));
                }
            }
        }
        let error = d.failures.iter().find_map(|(_, f)| match f {
            EntryFailure::Retry(w) => Some(w.clone()),
            EntryFailure::Reject(_) => None,
        });
        Settled {
            retry,
            dead_lettered,
            throttled: d.throttled,
            error,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        *self
            .drain_deadline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn deadline_passed(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Sleeps `d`, but never past the drain deadline (which may be set
    /// while sleeping). Returns true when the deadline has passed.
    fn sleep_bounded(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            let now = Instant::now();
            let stop = self.deadline().map_or(until, |dl| dl.min(until));
            if now >= stop {
                return self.deadline_passed();
            }
            std::thread::sleep((stop - now).min(IDLE_WAIT));
        }
    }

    /// A read of the spool failed: the sink is down and not ready until a
    /// read succeeds again (an I/O error may clear; damage needs a restart,
    /// whose recovery quarantines it).
    fn read_failed(&self, name: &str, e: &fpolicy_spool::SpoolError) {
        static READ_FAILED: crate::log_limit::LogLimit =
            crate::log_limit::LogLimit::new(Duration::from_secs(10));
        self.metrics.spool_read_errors.fetch_add(1, Relaxed);
        self.metrics.spool_read_failing.store(1, Relaxed);
        *self
            .metrics
            .down_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(format!("cannot read the spool: {e}"));
        crate::limited!(READ_FAILED, error, sink = %name, error = %e, "cannot read the spool; delivery stopped until a read succeeds (restart to quarantine damaged records: fpolicy-bridge spool check)");
    }

    fn read_ok(&self, name: &str) {
        if self.metrics.spool_read_failing.swap(0, Relaxed) == 1 {
            *self
                .metrics
                .down_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
            tracing::info!(sink = %name, "spool reads succeed again");
        }
    }

    /// Waits until the sink's destination answers its check, or shutdown.
    fn wait_until_usable(&mut self, name: &str) -> bool {
        let mut backoff = MIN_BACKOFF * 10;
        loop {
            match self.sink.check() {
                Ok(()) => {
                    self.metrics.up.store(1, Relaxed);
                    return true;
                }
                Err(e) => {
                    self.metrics.up.store(0, Relaxed);
                    self.metrics.errors.fetch_add(1, Relaxed);
                    tracing::error!(sink = %name, error = %e, retry_in_ms = backoff.as_millis() as u64, "sink destination is not usable (missing, access denied or unreachable); events wait in the spool");
                    if self.sleep_bounded(jittered(backoff)) {
                        return false;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Runs until the spool writer has closed and everything committed is
    /// delivered, or the drain deadline passes.
    pub fn run(mut self) {
        let name = self.sink.name().to_owned();
        let routed = self.sink.routed();
        if !self.wait_until_usable(&name) {
            return;
        }
        let mut coalescer = Coalescer::new(self.coalesce);
        let mut rate = RateLimit::new(self.max_events_per_sec);
        let mut records = Vec::with_capacity(READ_BATCH);
        let mut out: Vec<Emitted> = Vec::with_capacity(READ_BATCH);
        let mut persisted = self.reader.position();
        self.cursor.store(persisted, Release);
        self.metrics.cursor.store(persisted, Relaxed);
        let mut last_persist = Instant::now();
        let mut backoff = MIN_BACKOFF;
        let mut read_backoff = MIN_BACKOFF;
        let mut failing_since: Option<Instant> = None;
        loop {
            let closed = self.committed.is_closed();
            let upto = self.committed.seq();
            if out.is_empty() {
                records.clear();
                match self.reader.read_batch(upto, READ_BATCH, &mut records) {
                    Ok(_) => {
                        read_backoff = MIN_BACKOFF;
                        self.read_ok(&name);
                    }
                    Err(e) => {
                        self.read_failed(&name, &e);
                        if records.is_empty() {
                            if self.sleep_bounded(jittered(read_backoff)) {
                                tracing::error!(sink = %name, "drain deadline passed while the spool could not be read");
                                return;
                            }
                            read_backoff = (read_backoff * 2).min(MAX_BACKOFF);
                            continue;
                        }
                    }
                }
                for (seq, bytes) in &records {
                    match record::decode(bytes) {
                        Ok(view) if !routed || view.routed_to(&name) => {
                            coalescer.push(*seq, &view, &mut out)
                        }
                        Ok(_) => {}
                        Err(e) => {
                            static UNDECODABLE: crate::log_limit::LogLimit =
                                crate::log_limit::LogLimit::new(Duration::from_secs(10));
                            crate::limited!(UNDECODABLE, error, sink = %name, seq, error = %e, "undecodable spool record skipped");
                            self.metrics.errors.fetch_add(1, Relaxed);
                        }
                    }
                }
                if closed && self.reader.position() >= upto {
                    // Graceful stop: nothing more will arrive.
                    coalescer.flush_all(&mut out);
                } else {
                    coalescer.expire(now_nanos(), &mut out);
                }
            }
            if !out.is_empty() {
                if let Some(r) = rate.as_mut() {
                    let wait = r.take(out.len());
                    if !wait.is_zero() && self.sleep_bounded(wait) {
                        tracing::warn!(sink = %name, undelivered = out.len(), "drain deadline passed while rate-limited; the rest stays in the spool");
                        return;
                    }
                }
                let attempted = out.len();
                let result = self.sink.deliver(&out);
                let Settled {
                    retry,
                    dead_lettered,
                    throttled,
                    error,
                } = self.settle(&name, &out, result);
                let delivered = attempted - retry.len() - dead_lettered;
                self.metrics.delivered.fetch_add(delivered as u64, Relaxed);
                if retry.is_empty() {
                    out.clear();
                    backoff = MIN_BACKOFF;
                    if failing_since.take().is_some() {
                        tracing::info!(sink = %name, "delivery recovered");
                        self.metrics.up.store(1, Relaxed);
                    }
                } else {
                    // Keep only what must be resent, in order.
                    let mut keep = vec![false; out.len()];
                    for i in &retry {
                        if let Some(k) = keep.get_mut(*i) {
                            *k = true;
                        }
                    }
                    let mut k = keep.into_iter();
                    out.retain(|_| k.next().unwrap_or(false));
                    self.metrics.errors.fetch_add(1, Relaxed);
                    if throttled {
                        self.metrics.throttled.fetch_add(1, Relaxed);
                        backoff = backoff.max(MIN_BACKOFF * 5);
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(30) {
                        self.metrics.up.store(0, Relaxed);
                    }
                    tracing::warn!(sink = %name, failed = out.len(), delivered, throttled, error = error.as_deref().unwrap_or(""), retry_in_ms = backoff.as_millis() as u64, "delivery incomplete; resending the failed entries");
                    if self.sleep_bounded(jittered(backoff)) {
                        tracing::error!(sink = %name, undelivered = out.len(), "drain deadline passed with undelivered events; they stay in the spool");
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            let stats = coalescer.stats();
            self.metrics.coalesced.store(stats.merged, Relaxed);
            self.metrics
                .coalesce_overflow
                .store(stats.overflow, Relaxed);
            self.metrics
                .pending_paths
                .store(coalescer.pending_len() as u64, Relaxed);
            let position = self.reader.position();
            let safe = coalescer
                .oldest_pending_seq()
                .map_or(position, |p| p.min(position));
            let finished =
                closed && position >= self.committed.seq() && coalescer.pending_len() == 0;
            let past_deadline = self.deadline_passed();
            if safe != persisted
                && (last_persist.elapsed() >= CURSOR_EVERY || finished || past_deadline)
            {
                match write_cursor(&self.spool_dir, &name, safe, self.fsync) {
                    Ok(()) => {
                        persisted = safe;
                        last_persist = Instant::now();
                        self.cursor.store(safe, Release);
                        self.metrics.cursor.store(safe, Relaxed);
                    }
                    Err(e) => {
                        tracing::error!(sink = %name, error = %e, "cannot store the sink cursor")
                    }
                }
            }
            if finished {
                tracing::info!(sink = %name, cursor = persisted, "sink drained");
                return;
            }
            if past_deadline {
                tracing::warn!(sink = %name, cursor = persisted, behind = self.committed.seq() - persisted, "drain deadline passed; the rest stays in the spool");
                return;
            }
            if self.reader.position() >= self.committed.seq() {
                self.committed.wait_past(self.reader.position(), IDLE_WAIT);
            }
        }
    }
}
