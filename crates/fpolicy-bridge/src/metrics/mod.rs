//! Process metrics: atomics with fixed, bounded label sets, updated on the
//! hot paths and read at scrape time by one prometheus-client collector per
//! subsystem (`render.rs`). A leaf module: it imports no feature module.

mod readiness;
mod render;
mod sessions;

pub use readiness::{Readiness, Registration};
pub use sessions::{Registered, SessionStat, SessionTable};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fpolicy_event::{FilterReason, Operation};
use fpolicy_proto::NotfType;

macro_rules! labelled {
    ($name:ident { $($variant:ident = $label:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),* }
            }
        }
    };
}

labelled!(CloseReason {
    PeerClosed = "peer_closed",
    IdleTimeout = "idle_timeout",
    HandshakeTimeout = "handshake_timeout",
    HandshakeRejected = "handshake_rejected",
    FrameTimeout = "frame_timeout",
    ProtocolError = "protocol_error",
    IoError = "io_error",
    TlsError = "tls_error",
    Shutdown = "shutdown",
    TooManySessions = "too_many_sessions",
    HandshakeEvicted = "handshake_evicted",
});

labelled!(RejectReason {
    PeerNotAllowed = "peer_not_allowed",
    TooManyConnections = "too_many_connections",
    TooManyHandshakes = "too_many_handshakes",
    TooManyFromPeer = "too_many_from_peer",
});

labelled!(WriteErrorKind {
    NoSpace = "no_space",
    Io = "io",
});

labelled!(ParseError {
    Frame = "frame",
    Message = "message",
    UnknownReqType = "unknown_req_type",
    ContentLenMismatch = "content_len_mismatch",
    UnexpectedMessage = "unexpected_message",
});

labelled!(AlertSeverity {
    Fatal = "fatal",
    Warning = "warning",
    Other = "other",
});

/// fsync latency buckets, in seconds.
pub(crate) const FSYNC_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// Per-poll numbers for /metrics.
#[derive(Debug, Default)]
pub struct PollMetrics {
    pub cycles: AtomicU64,
    pub errors: AtomicU64,
    pub objects: AtomicU64,
    pub emitted: AtomicU64,
    /// HYBRID: changes FPolicy had already reported.
    pub suppressed: AtomicU64,
    pub next_run_unix: AtomicU64,
    /// Estimated USD per month saved by the schedule, in millidollars.
    pub savings_millicents: AtomicU64,
    /// Prefixes listed at once in the last cycle (the concurrency formula).
    pub prefixes_in_flight: AtomicU64,
    pub up: AtomicU64,
}

/// Metrics of every poll, by name (configured, so bounded).
#[derive(Debug, Default)]
pub struct PollRegistry(Mutex<BTreeMap<String, Arc<PollMetrics>>>);

impl PollRegistry {
    pub fn get(&self, name: &str) -> Arc<PollMetrics> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub fn snapshot(&self) -> Vec<(String, Arc<PollMetrics>)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// What the ingest step did beyond writing: identity resolution, noise
/// filters, names that had to be defaulted. Shared with the ingest rules.
#[derive(Debug)]
pub struct IngestMetrics {
    pub filtered: [AtomicU64; FilterReason::ALL.len()],
    /// Events that carry a SID or UID, by whether a name was found.
    pub users_resolved: AtomicU64,
    pub users_unknown: AtomicU64,
    /// Users in the identity table now.
    pub identity_users: AtomicU64,
    pub identity_syncs_ok: AtomicU64,
    pub identity_sync_errors: AtomicU64,
    pub identity_last_sync_unix: AtomicU64,
    /// 1 while the last refresh failed (the previous table stays in use).
    pub identity_sync_failing: AtomicU64,
    /// Events that went on with a default volume or SVM name after the
    /// bounded wait for ONTAP.
    pub names_defaulted: AtomicU64,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        IngestMetrics {
            filtered: counters(),
            users_resolved: AtomicU64::new(0),
            users_unknown: AtomicU64::new(0),
            identity_users: AtomicU64::new(0),
            identity_syncs_ok: AtomicU64::new(0),
            identity_sync_errors: AtomicU64::new(0),
            identity_last_sync_unix: AtomicU64::new(0),
            identity_sync_failing: AtomicU64::new(0),
            names_defaulted: AtomicU64::new(0),
        }
    }
}

impl IngestMetrics {
    pub fn filtered(&self, reason: FilterReason) {
        self.filtered[reason.index()].fetch_add(1, Relaxed);
    }
}

/// Per-sink numbers.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    pub delivered: AtomicU64,
    /// Events the sink's format does not send, by [`fpolicy_event::format::Skip`].
    pub skipped: [AtomicU64; fpolicy_event::format::Skip::ALL.len()],
    /// Connections opened again after one broke or was closed.
    pub reconnects: AtomicU64,
    pub errors: AtomicU64,
    pub cursor: AtomicU64,
    pub coalesced: AtomicU64,
    pub coalesce_overflow: AtomicU64,
    pub pending_paths: AtomicU64,
    pub dead_letters: AtomicU64,
    pub throttled: AtomicU64,
    /// 1 while the destination is usable.
    pub up: AtomicU64,
    /// Calls kept in flight for the last batch (the concurrency formula).
    pub in_flight: AtomicU64,
    /// 1 while the sink cannot read the spool (delivery stopped).
    pub spool_read_failing: AtomicU64,
    pub spool_read_errors: AtomicU64,
    /// Why the sink is down, for /readyz.
    pub down_reason: Mutex<Option<String>>,
}

#[derive(Debug)]
pub struct Metrics {
    pub sessions_handshaking: AtomicU64,
    pub sessions_active: AtomicU64,
    pub sessions_closed: [AtomicU64; CloseReason::ALL.len()],
    pub connections_accepted: AtomicU64,
    pub connections_rejected: [AtomicU64; RejectReason::ALL.len()],
    pub frames: [AtomicU64; NotfType::ALL.len()],
    pub events: [AtomicU64; Operation::ALL.len()],
    pub parse_errors: [AtomicU64; ParseError::ALL.len()],
    pub alerts: [AtomicU64; AlertSeverity::ALL.len()],
    pub screen_allow: AtomicU64,
    pub screen_deny: AtomicU64,
    pub status_queries: AtomicU64,
    pub screen_cancels: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_first_seq: AtomicU64,
    pub spool_next_seq: AtomicU64,
    pub spool_commits: AtomicU64,
    pub(crate) fsync_buckets: [AtomicU64; FSYNC_BUCKETS.len()],
    pub(crate) fsync_count: AtomicU64,
    pub(crate) fsync_sum_nanos: AtomicU64,
    pub back_pressure_active: AtomicU64,
    pub back_pressure_transitions: AtomicU64,
    pub events_dropped: AtomicU64,
    pub spool_records: AtomicU64,
    /// 1 while group commits fail (disk full, I/O error).
    pub spool_write_failing: AtomicU64,
    pub spool_write_errors: [AtomicU64; WriteErrorKind::ALL.len()],
    /// Records recovery found damaged and quarantined (their sequence
    /// numbers are in the log line and `spool check`).
    pub spool_damaged_records: AtomicU64,
    pub spool_quarantined_bytes: AtomicU64,
    /// JSON Lines files whose torn last line was cut at start.
    pub jsonl_torn_tails: AtomicU64,
    /// Bytes held by frames being read, against server.max_buffered_bytes.
    pub buffered_bytes: AtomicU64,
    /// spool.capacity_bytes, and the space left on the data directory's
    /// file system (for "disk near full" alerts).
    pub spool_capacity_bytes: AtomicU64,
    pub data_dir_free_bytes: AtomicU64,
    /// What /readyz answers from.
    pub readiness: Readiness,
    pub polls: PollRegistry,
    pub ingest: Arc<IngestMetrics>,
    /// The established sessions, for `/sessions` and `top`.
    pub live_sessions: SessionTable,
    sinks: Mutex<BTreeMap<String, Arc<SinkMetrics>>>,
    /// Orphaned spools this instance took over (spool.shared_root).
    pub spool_adopted: AtomicU64,
    /// Adopted spools being drained: events not yet delivered by every
    /// sink, by the instance the spool belonged to.
    pub adopted_lag: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            spool_adopted: AtomicU64::new(0),
            adopted_lag: Mutex::default(),
            sessions_handshaking: AtomicU64::new(0),
            sessions_active: AtomicU64::new(0),
            sessions_closed: counters(),
            connections_accepted: AtomicU64::new(0),
            connections_rejected: counters(),
            frames: counters(),
            events: counters(),
            parse_errors: counters(),
            alerts: counters(),
            screen_allow: AtomicU64::new(0),
            screen_deny: AtomicU64::new(0),
            status_queries: AtomicU64::new(0),
            screen_cancels: AtomicU64::new(0),
            spool_bytes: AtomicU64::new(0),
            spool_first_seq: AtomicU64::new(0),
            spool_next_seq: AtomicU64::new(0),
            spool_commits: AtomicU64::new(0),
            fsync_buckets: counters(),
            fsync_count: AtomicU64::new(0),
            fsync_sum_nanos: AtomicU64::new(0),
            back_pressure_active: AtomicU64::new(0),
            back_pressure_transitions: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            spool_records: AtomicU64::new(0),
            spool_write_failing: AtomicU64::new(0),
            spool_write_errors: counters(),
            spool_damaged_records: AtomicU64::new(0),
            spool_quarantined_bytes: AtomicU64::new(0),
            jsonl_torn_tails: AtomicU64::new(0),
            buffered_bytes: AtomicU64::new(0),
            readiness: Readiness::default(),
            polls: Default::default(),
            spool_capacity_bytes: AtomicU64::new(0),
            data_dir_free_bytes: AtomicU64::new(0),
            ingest: Arc::default(),
            live_sessions: SessionTable::default(),
            sinks: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    pub fn closed(&self, r: CloseReason) {
        self.sessions_closed[r as usize].fetch_add(1, Relaxed);
    }
    pub fn rejected(&self, r: RejectReason) {
        self.connections_rejected[r as usize].fetch_add(1, Relaxed);
    }
    pub fn frame(&self, t: NotfType) {
        if let Some(i) = NotfType::ALL.iter().position(|x| *x == t) {
            self.frames[i].fetch_add(1, Relaxed);
        }
    }
    pub fn event(&self, op: Operation) {
        self.events[op.index()].fetch_add(1, Relaxed);
    }
    pub fn parse_error(&self, e: ParseError) {
        self.parse_errors[e as usize].fetch_add(1, Relaxed);
    }
    pub fn alert(&self, s: AlertSeverity) {
        self.alerts[s as usize].fetch_add(1, Relaxed);
    }
    pub fn fsync(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in FSYNC_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.fsync_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.fsync_count.fetch_add(1, Relaxed);
        self.fsync_sum_nanos
            .fetch_add(d.as_nanos().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// The metrics of a sink, created on first use (sinks are configured,
    /// so the label set stays bounded).
    pub fn sink(&self, name: &str) -> Arc<SinkMetrics> {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks
            .entry(name.to_owned())
            .or_insert_with(|| {
                // Assumed usable until its check or deliveries say otherwise.
                Arc::new(SinkMetrics {
                    up: AtomicU64::new(1),
                    ..SinkMetrics::default()
                })
            })
            .clone()
    }

    /// Records a failed group commit (or, with `None`, that commits work
    /// again): the gauge, the counter by kind, and the reason for /readyz.
    pub fn set_spool_write_error(&self, e: Option<(WriteErrorKind, String)>) {
        match e {
            Some((kind, why)) => {
                self.spool_write_errors[kind as usize].fetch_add(1, Relaxed);
                self.spool_write_failing.store(1, Relaxed);
                self.readiness.set_spool_write_error(Some(why));
            }
            None => {
                self.spool_write_failing.store(0, Relaxed);
                self.readiness.set_spool_write_error(None);
            }
        }
    }

    /// Every sink's metrics.
    pub fn sink_snapshot(&self) -> Vec<(String, Arc<SinkMetrics>)> {
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Polls whose last cycle failed.
    pub fn polls_down(&self) -> Vec<String> {
        self.polls
            .snapshot()
            .into_iter()
            .filter(|(_, m)| m.up.load(Relaxed) == 0 && m.errors.load(Relaxed) > 0)
            .map(|(n, _)| n)
            .collect()
    }

    /// Names of sinks whose destination is not usable, or that cannot
    /// read the spool, with the reason when known.
    pub fn sinks_down(&self) -> Vec<String> {
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks
            .iter()
            .filter(|(_, m)| m.up.load(Relaxed) == 0 || m.spool_read_failing.load(Relaxed) == 1)
            .map(|(n, m)| {
                match m
                    .down_reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_deref()
                {
                    Some(why) => format!("{n} ({why})"),
                    None => n.clone(),
                }
            })
            .collect()
    }

    pub fn events_total(&self) -> u64 {
        self.events.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The text exposition (OpenMetrics, through prometheus-client): one
    /// collector per subsystem, each reading its atomics at scrape time.
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(render::Session(self.clone())));
        registry.register_collector(Box::new(render::Spool(self.clone())));
        registry.register_collector(Box::new(render::Ontap(self.clone())));
        registry.register_collector(Box::new(render::Polls(self.clone())));
        registry.register_collector(Box::new(render::Sinks(self.clone())));
        registry.register_collector(Box::new(render::Ingest(self.ingest.clone())));
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}
