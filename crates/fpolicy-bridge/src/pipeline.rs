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

use crate::backoff::Backoff;
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
    /// How many the sink's format does not send.
    skipped: usize,
    throttled: bool,
    /// The first reason for a retry, for the log.
    error: Option<String>,
}

/// What a pipeline carries from one step to the next.
struct State {
    name: String,
    routed: bool,
    coalescer: Coalescer,
    rate: Option<RateLimit>,
    records: Vec<(u64, Vec<u8>)>,
    /// Events to deliver; only the failed ones stay after an attempt.
    out: Vec<Emitted>,
    /// The cursor last written to the cursor file.
    persisted: u64,
    last_persist: Instant,
    retry: Backoff,
    read_retry: Backoff,
    failing_since: Option<Instant>,
}

/// Whether the pipeline goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    /// Try again from the top of the loop (after a bounded sleep).
    Again,
    Stop,
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
                    skipped: 0,
                    throttled: e.is_throttling(),
                    error: Some(e.to_string()),
                };
            }
        };
        self.metrics
            .reconnects
            .fetch_add(u64::from(d.reconnects), Relaxed);
        for (_, skip) in &d.skipped {
            self.metrics.skipped[skip.index()].fetch_add(1, Relaxed);
        }
        let mut retry = Vec::new();
        let mut rejected = Vec::new();
        for (i, f) in &d.failures {
            match f {
                EntryFailure::Retry(_) => retry.push(*i),
                EntryFailure::Reject(why) => rejected.push((*i, why.as_str())),
            }
        }
        // One event may be several entries (an S3 rename is two events on
        // EventBridge): each position counts once, a retry before a reject.
        retry.sort_unstable();
        retry.dedup();
        rejected.sort_by_key(|(i, _)| *i);
        rejected.dedup_by_key(|(i, _)| *i);
        rejected.retain(|(i, _)| retry.binary_search(i).is_err());
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
            skipped: d.skipped.len(),
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

    fn down_reason(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.metrics
            .down_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the sink's destination answers its check, or shutdown.
    fn wait_until_usable(&mut self, name: &str) -> bool {
        let mut backoff = Backoff::new(MIN_BACKOFF * 10, MAX_BACKOFF);
        loop {
            match self.sink.check() {
                Ok(()) => {
                    self.metrics.up.store(1, Relaxed);
                    if self.metrics.spool_read_failing.load(Relaxed) == 0 {
                        *self.down_reason() = None;
                    }
                    return true;
                }
                Err(e) => {
                    self.metrics.up.store(0, Relaxed);
                    // /readyz says why, as the log does.
                    *self.down_reason() = Some(e.to_string());
                    self.metrics.errors.fetch_add(1, Relaxed);
                    tracing::error!(sink = %name, error = %e, retry_in_ms = backoff.current().as_millis() as u64, "sink destination is not usable (missing, access denied or unreachable); events wait in the spool");
                    if self.sleep_bounded(backoff.next_delay()) {
                        return false;
                    }
                }
            }
        }
    }

    /// Runs until the spool writer has closed and everything committed is
    /// delivered, or the drain deadline passes.
    pub fn run(mut self) {
        let name = self.sink.name().to_owned();
        if !self.wait_until_usable(&name) {
            return;
        }
        let persisted = self.reader.position();
        self.cursor.store(persisted, Release);
        self.metrics.cursor.store(persisted, Relaxed);
        let mut st = State {
            routed: self.sink.routed(),
            name,
            coalescer: Coalescer::new(self.coalesce),
            rate: RateLimit::new(self.max_events_per_sec),
            records: Vec::with_capacity(READ_BATCH),
            out: Vec::with_capacity(READ_BATCH),
            persisted,
            last_persist: Instant::now(),
            retry: Backoff::new(MIN_BACKOFF, MAX_BACKOFF),
            read_retry: Backoff::new(MIN_BACKOFF, MAX_BACKOFF),
            failing_since: None,
        };
        loop {
            let closed = self.committed.is_closed();
            if st.out.is_empty() {
                match self.fill(&mut st, closed) {
                    Step::Go => {}
                    Step::Again => continue,
                    Step::Stop => return,
                }
            }
            if !st.out.is_empty() {
                match self.deliver_once(&mut st) {
                    Step::Go => {}
                    Step::Again => continue,
                    Step::Stop => return,
                }
            }
            if self.persist_cursor(&mut st, closed) == Step::Stop {
                return;
            }
            if self.reader.position() >= self.committed.seq() {
                self.committed.wait_past(self.reader.position(), IDLE_WAIT);
            }
        }
    }

    /// Reads what is committed, keeps what is routed here, and lets the
    /// coalescer emit what is due (everything, once the writer has closed
    /// and the reader is at its end).
    fn fill(&mut self, st: &mut State, closed: bool) -> Step {
        let upto = self.committed.seq();
        st.records.clear();
        match self.reader.read_batch(upto, READ_BATCH, &mut st.records) {
            Ok(_) => {
                st.read_retry.reset();
                self.read_ok(&st.name);
            }
            Err(e) => {
                self.read_failed(&st.name, &e);
                if st.records.is_empty() {
                    if self.sleep_bounded(st.read_retry.next_delay()) {
                        tracing::error!(sink = %st.name, "drain deadline passed while the spool could not be read");
                        return Step::Stop;
                    }
                    return Step::Again;
                }
            }
        }
        for (seq, bytes) in &st.records {
            match record::decode(bytes) {
                Ok(view) if !st.routed || view.routed_to(&st.name) => {
                    st.coalescer.push(*seq, &view, &mut st.out)
                }
                Ok(_) => {}
                Err(e) => {
                    static UNDECODABLE: crate::log_limit::LogLimit =
                        crate::log_limit::LogLimit::new(Duration::from_secs(10));
                    crate::limited!(UNDECODABLE, error, sink = %st.name, seq, error = %e, "undecodable spool record skipped");
                    self.metrics.errors.fetch_add(1, Relaxed);
                }
            }
        }
        if closed && self.reader.position() >= upto {
            // Graceful stop: nothing more will arrive.
            st.coalescer.flush_all(&mut st.out);
        } else {
            st.coalescer.expire(now_nanos(), &mut st.out);
        }
        Step::Go
    }

    /// One delivery attempt of `st.out` (after the rate limit): on success
    /// `out` is empty; otherwise only the entries to resend stay, in
    /// order, and the pipeline sleeps its backoff (never past the drain
    /// deadline).
    fn deliver_once(&mut self, st: &mut State) -> Step {
        if let Some(r) = st.rate.as_mut() {
            let wait = r.take(st.out.len());
            if !wait.is_zero() && self.sleep_bounded(wait) {
                tracing::warn!(sink = %st.name, undelivered = st.out.len(), "drain deadline passed while rate-limited; the rest stays in the spool");
                return Step::Stop;
            }
        }
        let attempted = st.out.len();
        let result = self.sink.deliver(&st.out);
        let settled = self.settle(&st.name, &st.out, result);
        let delivered = attempted - settled.retry.len() - settled.dead_lettered - settled.skipped;
        self.metrics.delivered.fetch_add(delivered as u64, Relaxed);
        if settled.retry.is_empty() {
            st.out.clear();
            st.retry.reset();
            if st.failing_since.take().is_some() {
                tracing::info!(sink = %st.name, "delivery recovered");
                self.metrics.up.store(1, Relaxed);
            }
            return Step::Go;
        }
        keep_only(&mut st.out, &settled.retry);
        self.metrics.errors.fetch_add(1, Relaxed);
        if settled.throttled {
            self.metrics.throttled.fetch_add(1, Relaxed);
            st.retry.at_least(MIN_BACKOFF * 5);
        }
        let since = *st.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() > Duration::from_secs(30) {
            self.metrics.up.store(0, Relaxed);
        }
        let delay = st.retry.next_delay();
        tracing::warn!(sink = %st.name, failed = st.out.len(), delivered, throttled = settled.throttled, error = settled.error.as_deref().unwrap_or(""), retry_in_ms = delay.as_millis() as u64, "delivery incomplete; resending the failed entries");
        if self.sleep_bounded(delay) {
            tracing::error!(sink = %st.name, undelivered = st.out.len(), "drain deadline passed with undelivered events; they stay in the spool");
            return Step::Stop;
        }
        Step::Again
    }

    /// Moves the durable cursor to what is delivered and not held by the
    /// coalescer (every 250 ms, and at the end); says when to stop.
    fn persist_cursor(&mut self, st: &mut State, closed: bool) -> Step {
        let stats = st.coalescer.stats();
        self.metrics.coalesced.store(stats.merged, Relaxed);
        self.metrics
            .coalesce_overflow
            .store(stats.overflow, Relaxed);
        self.metrics
            .pending_paths
            .store(st.coalescer.pending_len() as u64, Relaxed);
        let position = self.reader.position();
        let safe = st
            .coalescer
            .oldest_pending_seq()
            .map_or(position, |p| p.min(position));
        let finished =
            closed && position >= self.committed.seq() && st.coalescer.pending_len() == 0;
        let past_deadline = self.deadline_passed();
        if safe != st.persisted
            && (st.last_persist.elapsed() >= CURSOR_EVERY || finished || past_deadline)
        {
            match write_cursor(&self.spool_dir, &st.name, safe, self.fsync) {
                Ok(()) => {
                    st.persisted = safe;
                    st.last_persist = Instant::now();
                    self.cursor.store(safe, Release);
                    self.metrics.cursor.store(safe, Relaxed);
                }
                Err(e) => {
                    static CURSOR: crate::log_limit::LogLimit =
                        crate::log_limit::LogLimit::new(Duration::from_secs(10));
                    crate::limited!(CURSOR, error, sink = %st.name, error = %e, "cannot store the sink cursor (retried; deliveries since the last one repeat after a crash)");
                }
            }
        }
        if finished {
            tracing::info!(sink = %st.name, cursor = st.persisted, "sink drained");
            return Step::Stop;
        }
        if past_deadline {
            tracing::warn!(sink = %st.name, cursor = st.persisted, behind = self.committed.seq() - st.persisted, "drain deadline passed; the rest stays in the spool");
            return Step::Stop;
        }
        Step::Go
    }
}

/// Keeps the entries at `positions` (ascending or not), in their order.
fn keep_only(out: &mut Vec<Emitted>, positions: &[usize]) {
    let mut keep = vec![false; out.len()];
    for i in positions {
        if let Some(k) = keep.get_mut(*i) {
            *k = true;
        }
    }
    let mut k = keep.into_iter();
    out.retain(|_| k.next().unwrap_or(false));
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use fpolicy_event::normalize::EngineType;
    use fpolicy_event::{GenerationTimeUnit, Normalizer, SessionInfo, StaticNames};
    use fpolicy_proto::{ProtocolVersion, ReqType, sample};
    use fpolicy_spool::{Spool, SpoolConfig};

    use super::*;
    use crate::sink::{Delivered, SinkError};

    /// What the in-memory sink answers to one call.
    enum Answer {
        AllOk,
        WholeCallFails,
        Entries(Vec<(usize, EntryFailure)>),
    }

    /// Accepts events into a shared list, answering from a script (all
    /// accepted once the script is used up, or never with `fail_forever`).
    struct MemorySink {
        script: VecDeque<Answer>,
        fail_forever: bool,
        accepted: Arc<Mutex<Vec<u64>>>,
        calls: Arc<Mutex<Vec<usize>>>,
    }

    impl Sink for MemorySink {
        fn name(&self) -> &str {
            "mem"
        }

        fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
            self.calls.lock().unwrap().push(events.len());
            let answer = match self.script.pop_front() {
                Some(a) => a,
                None if self.fail_forever => Answer::WholeCallFails,
                None => Answer::AllOk,
            };
            let failures = match answer {
                Answer::AllOk => Vec::new(),
                Answer::WholeCallFails => {
                    return Err(SinkError::Transient {
                        sink: "mem".into(),
                        message: "unreachable".into(),
                        throttled: false,
                    });
                }
                Answer::Entries(f) => f,
            };
            let mut accepted = self.accepted.lock().unwrap();
            for (i, e) in events.iter().enumerate() {
                if !failures.iter().any(|(f, _)| *f == i) {
                    accepted.push(e.seq);
                }
            }
            Ok(Delivered {
                failures,
                ..Delivered::default()
            })
        }
    }

    struct Harness {
        dir: tempfile::TempDir,
        accepted: Arc<Mutex<Vec<u64>>>,
        calls: Arc<Mutex<Vec<usize>>>,
        cursor: Arc<AtomicU64>,
        metrics: Arc<SinkMetrics>,
        deadline: Arc<std::sync::Mutex<Option<Instant>>>,
    }

    /// A spool of `n` committed events (the writer already closed) and a
    /// pipeline over it into a scripted in-memory sink.
    fn harness(n: u64, script: Vec<Answer>, fail_forever: bool, rate: u32) -> (Harness, Pipeline) {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(SpoolConfig {
            fsync: FsyncPolicy::Never,
            ..SpoolConfig::new(dir.path().join("spool"))
        })
        .unwrap();
        let names = StaticNames::new([], [], "vol", "svm");
        let normalizer = Normalizer {
            names: &names,
            generation_time: GenerationTimeUnit::Auto,
        };
        let session = SessionInfo {
            svm_uuid: "svm-uuid".into(),
            policy_name: "p".into(),
            session_id: "s".into(),
            peer: "127.0.0.1:1".into(),
            engine: EngineType::Asynchronous,
        };
        let mut buf = Vec::new();
        for id in 1..=n {
            let req = sample::screen_request(
                id,
                ReqType::NfsWr,
                &format!("/f{id}"),
                ProtocolVersion::V2_0,
            );
            let event = normalizer.normalize(&req, &session, 1_700_000_000_000_000_000);
            buf.clear();
            record::encode(&event, 1_700_000_000_000_000_000, [], &mut buf).unwrap();
            spool.append(&buf).unwrap();
        }
        let next = spool.commit().unwrap();
        let committed = Arc::new(Committed::new(next));
        committed.close();
        let h = Harness {
            accepted: Arc::default(),
            calls: Arc::default(),
            cursor: Arc::new(AtomicU64::new(0)),
            metrics: Arc::new(SinkMetrics::default()),
            deadline: Arc::default(),
            dir,
        };
        let p = Pipeline {
            sink: Box::new(MemorySink {
                script: script.into(),
                fail_forever,
                accepted: h.accepted.clone(),
                calls: h.calls.clone(),
            }),
            reader: spool.reader(0).unwrap(),
            spool_dir: h.dir.path().join("spool"),
            fsync: FsyncPolicy::Never,
            coalesce: CoalesceConfig {
                window: 0,
                max_hold: 0,
                max_pending: 1000,
            },
            committed,
            cursor: h.cursor.clone(),
            metrics: h.metrics.clone(),
            dead_letters: DeadLetters::new(&h.dir.path().join("dead-letter"), "mem"),
            max_events_per_sec: rate,
            drain_deadline: h.deadline.clone(),
        };
        (h, p)
    }

    #[test]
    fn a_partial_failure_resends_only_the_failed_entries() {
        let retry = |i| (i, EntryFailure::Retry("throttled entry".into()));
        let (h, p) = harness(5, vec![Answer::Entries(vec![retry(1), retry(3)])], false, 0);
        p.run();
        let mut accepted = h.accepted.lock().unwrap().clone();
        accepted.sort_unstable();
        assert_eq!(accepted, vec![0, 1, 2, 3, 4], "each once");
        assert_eq!(*h.calls.lock().unwrap(), vec![5, 2]);
        assert_eq!(h.metrics.delivered.load(Relaxed), 5);
        assert_eq!(h.metrics.errors.load(Relaxed), 1);
        assert_eq!(h.cursor.load(Relaxed), 5);
    }

    #[test]
    fn a_failed_call_is_retried_whole() {
        let (h, p) = harness(
            3,
            vec![Answer::WholeCallFails, Answer::WholeCallFails],
            false,
            0,
        );
        p.run();
        assert_eq!(*h.calls.lock().unwrap(), vec![3, 3, 3]);
        assert_eq!(h.accepted.lock().unwrap().len(), 3);
        assert_eq!(h.metrics.errors.load(Relaxed), 2);
    }

    #[test]
    fn rejected_entries_go_to_the_dead_letter_file_and_the_cursor_moves_on() {
        let reject = (2, EntryFailure::Reject("message too long".into()));
        let (h, p) = harness(4, vec![Answer::Entries(vec![reject])], false, 0);
        p.run();
        assert_eq!(*h.calls.lock().unwrap(), vec![4]);
        assert_eq!(h.metrics.dead_letters.load(Relaxed), 1);
        assert_eq!(h.metrics.delivered.load(Relaxed), 3);
        assert_eq!(h.cursor.load(Relaxed), 4);
        let dead = std::fs::read_to_string(h.dir.path().join("dead-letter/mem.jsonl")).unwrap();
        assert_eq!(dead.lines().count(), 1);
        assert!(dead.contains("message too long"), "{dead}");
    }

    #[test]
    fn the_rate_limit_spaces_deliveries() {
        // 600 events at 400/s: the bucket holds one second (400), so the
        // batch waits about half a second.
        let (h, p) = harness(600, vec![], false, 400);
        let started = Instant::now();
        p.run();
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(h.accepted.lock().unwrap().len(), 600);
    }

    #[test]
    fn the_drain_deadline_ends_a_failing_sink_and_keeps_the_cursor() {
        let (h, p) = harness(10, vec![], true, 0);
        *h.deadline.lock().unwrap() = Some(Instant::now() + Duration::from_millis(400));
        let started = Instant::now();
        p.run();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(h.calls.lock().unwrap().len() >= 2);
        assert!(h.accepted.lock().unwrap().is_empty());
        assert_eq!(h.cursor.load(Relaxed), 0, "nothing confirmed");
    }
}
