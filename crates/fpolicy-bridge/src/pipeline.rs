//! One delivery pipeline per sink: read durable records from the spool at
//! the sink's cursor, coalesce write-complete notifications, deliver, then
//! move the cursor. Runs on its own thread, so a slow sink never reaches a
//! socket reader.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fpolicy_event::{CoalesceConfig, Coalescer, Emitted, record};
use fpolicy_spool::{FsyncPolicy, SpoolReader, write_cursor};

use crate::ingest::Committed;
use crate::metrics::SinkMetrics;
use crate::sink::Sink;

/// Records read per delivery.
const READ_BATCH: usize = 8192;
/// How often the cursor file is rewritten while events flow.
const CURSOR_EVERY: Duration = Duration::from_millis(250);
/// Wake-up interval when idle (drives the coalescer's quiet window).
const IDLE_WAIT: Duration = Duration::from_millis(100);

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
    /// Set on shutdown: deliver what is committed until then, at most.
    pub drain_deadline: Arc<std::sync::Mutex<Option<Instant>>>,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Pipeline {
    /// Runs until the spool writer has closed and everything committed is
    /// delivered, or the drain deadline passes.
    pub fn run(mut self) {
        let name = self.sink.name().to_owned();
        let mut coalescer = Coalescer::new(self.coalesce);
        let mut records = Vec::with_capacity(READ_BATCH);
        let mut out: Vec<Emitted> = Vec::with_capacity(READ_BATCH);
        let mut persisted = self.reader.position();
        self.cursor.store(persisted, Release);
        self.metrics.cursor.store(persisted, Relaxed);
        let mut last_persist = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let deadline = *self
                .drain_deadline
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let closed = self.committed.is_closed();
            let upto = self.committed.seq();
            if out.is_empty() {
                records.clear();
                if let Err(e) = self.reader.read_batch(upto, READ_BATCH, &mut records) {
                    tracing::error!(sink = %name, error = %e, "cannot read the spool; delivery stopped");
                    return;
                }
                for (seq, bytes) in &records {
                    match record::decode(bytes) {
                        Ok(view) => coalescer.push(*seq, &view, &mut out),
                        Err(e) => {
                            tracing::error!(sink = %name, seq, error = %e, "undecodable spool record skipped");
                            self.metrics.errors.fetch_add(1, Relaxed);
                        }
                    }
                }
                let at_end = self.reader.position() >= upto;
                if closed && at_end {
                    // Graceful stop: nothing more will arrive.
                    coalescer.flush_all(&mut out);
                } else {
                    coalescer.expire(now_nanos(), &mut out);
                }
            }
            if !out.is_empty() {
                match self.sink.deliver(&out) {
                    Ok(()) => {
                        self.metrics.delivered.fetch_add(out.len() as u64, Relaxed);
                        out.clear();
                        backoff = Duration::from_millis(50);
                    }
                    Err(e) => {
                        self.metrics.errors.fetch_add(1, Relaxed);
                        tracing::warn!(sink = %name, error = %e, retry_in_ms = backoff.as_millis() as u64, "delivery failed; will retry");
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            tracing::error!(sink = %name, "drain deadline passed with undelivered events; they stay in the spool");
                            return;
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
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
            let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
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
