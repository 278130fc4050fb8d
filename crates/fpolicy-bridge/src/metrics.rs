//! Process metrics: atomics with fixed, bounded label sets, rendered as
//! Prometheus text by the admin server.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fpolicy_event::Operation;
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
const FSYNC_BUCKETS: [f64; 12] = [
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

/// Per-sink numbers.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    pub delivered: AtomicU64,
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
    pub sessions_closed: [AtomicU64; 11],
    pub connections_accepted: AtomicU64,
    pub connections_rejected: [AtomicU64; 4],
    pub frames: [AtomicU64; 13],
    pub events: [AtomicU64; 15],
    pub parse_errors: [AtomicU64; 5],
    pub alerts: [AtomicU64; 3],
    pub screen_allow: AtomicU64,
    pub screen_deny: AtomicU64,
    pub status_queries: AtomicU64,
    pub screen_cancels: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_first_seq: AtomicU64,
    pub spool_next_seq: AtomicU64,
    pub spool_commits: AtomicU64,
    fsync_buckets: [AtomicU64; 12],
    fsync_count: AtomicU64,
    fsync_sum_nanos: AtomicU64,
    pub back_pressure_active: AtomicU64,
    pub back_pressure_transitions: AtomicU64,
    pub events_dropped: AtomicU64,
    pub spool_records: AtomicU64,
    /// 1 while group commits fail (disk full, I/O error).
    pub spool_write_failing: AtomicU64,
    pub spool_write_errors: [AtomicU64; 2],
    spool_write_error: Mutex<Option<String>>,
    /// Records recovery found damaged and quarantined (their sequence
    /// numbers are in the log line and `spool check`).
    pub spool_damaged_records: AtomicU64,
    pub spool_quarantined_bytes: AtomicU64,
    spool_recovery: Mutex<Option<String>>,
    /// JSON Lines files whose torn last line was cut at start.
    pub jsonl_torn_tails: AtomicU64,
    /// Bytes held by frames being read, against server.max_buffered_bytes.
    pub buffered_bytes: AtomicU64,
    pub ready: AtomicU64,
    /// Self-registration: 0 = not configured, 1 = registered, 2 = pending.
    pub ontap_registered: AtomicU64,
    ontap_error: Mutex<Option<String>>,
    pub polls: PollRegistry,
    sinks: Mutex<BTreeMap<String, Arc<SinkMetrics>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
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
            spool_write_error: Mutex::new(None),
            spool_damaged_records: AtomicU64::new(0),
            spool_quarantined_bytes: AtomicU64::new(0),
            spool_recovery: Mutex::new(None),
            jsonl_torn_tails: AtomicU64::new(0),
            buffered_bytes: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            ontap_registered: AtomicU64::new(0),
            ontap_error: Mutex::new(None),
            polls: Default::default(),
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
    /// again).
    pub fn set_spool_write_error(&self, e: Option<(WriteErrorKind, String)>) {
        let mut cur = self
            .spool_write_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match e {
            Some((kind, why)) => {
                self.spool_write_errors[kind as usize].fetch_add(1, Relaxed);
                self.spool_write_failing.store(1, Relaxed);
                *cur = Some(why);
            }
            None => {
                self.spool_write_failing.store(0, Relaxed);
                *cur = None;
            }
        }
    }

    pub fn spool_write_error(&self) -> Option<String> {
        self.spool_write_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What recovery found at start, when it found damage.
    pub fn set_spool_recovery(&self, summary: Option<String>) {
        *self
            .spool_recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = summary;
    }

    pub fn spool_recovery(&self) -> Option<String> {
        self.spool_recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_ontap_error(&self, e: Option<String>) {
        *self.ontap_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    pub fn ontap_error(&self) -> Option<String> {
        self.ontap_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(8192);
        let g = |o: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(
                o,
                "# HELP fpolicy_{name} {help}\n# TYPE fpolicy_{name} {kind}"
            );
        };
        g(&mut o, "sessions", "Open ONTAP sessions by state.", "gauge");
        let _ = writeln!(
            o,
            "fpolicy_sessions{{state=\"handshaking\"}} {}",
            self.sessions_handshaking.load(Relaxed)
        );
        let _ = writeln!(
            o,
            "fpolicy_sessions{{state=\"active\"}} {}",
            self.sessions_active.load(Relaxed)
        );
        g(
            &mut o,
            "sessions_closed_total",
            "Sessions closed, by reason.",
            "counter",
        );
        for r in CloseReason::ALL {
            let _ = writeln!(
                o,
                "fpolicy_sessions_closed_total{{reason=\"{}\"}} {}",
                r.label(),
                self.sessions_closed[*r as usize].load(Relaxed)
            );
        }
        g(
            &mut o,
            "connections_accepted_total",
            "TCP connections accepted.",
            "counter",
        );
        let _ = writeln!(
            o,
            "fpolicy_connections_accepted_total {}",
            self.connections_accepted.load(Relaxed)
        );
        g(
            &mut o,
            "connections_rejected_total",
            "Connections closed before the handshake, by reason.",
            "counter",
        );
        for r in RejectReason::ALL {
            let _ = writeln!(
                o,
                "fpolicy_connections_rejected_total{{reason=\"{}\"}} {}",
                r.label(),
                self.connections_rejected[*r as usize].load(Relaxed)
            );
        }
        g(
            &mut o,
            "frames_total",
            "Frames received or sent, by NotfType.",
            "counter",
        );
        for (i, t) in NotfType::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "fpolicy_frames_total{{type=\"{}\"}} {}",
                t.as_str(),
                self.frames[i].load(Relaxed)
            );
        }
        g(
            &mut o,
            "events_total",
            "Events written to the spool, by operation.",
            "counter",
        );
        for op in Operation::ALL {
            let _ = writeln!(
                o,
                "fpolicy_events_total{{operation=\"{}\"}} {}",
                op.as_str(),
                self.events[op.index()].load(Relaxed)
            );
        }
        g(
            &mut o,
            "parse_errors_total",
            "Input that could not be decoded, by kind.",
            "counter",
        );
        for e in ParseError::ALL {
            let _ = writeln!(
                o,
                "fpolicy_parse_errors_total{{kind=\"{}\"}} {}",
                e.label(),
                self.parse_errors[*e as usize].load(Relaxed)
            );
        }
        g(
            &mut o,
            "alerts_total",
            "ALERT_MSG received, by severity.",
            "counter",
        );
        for s in AlertSeverity::ALL {
            let _ = writeln!(
                o,
                "fpolicy_alerts_total{{severity=\"{}\"}} {}",
                s.label(),
                self.alerts[*s as usize].load(Relaxed)
            );
        }
        g(
            &mut o,
            "screen_responses_total",
            "SCREEN_RESP sent, by decision.",
            "counter",
        );
        let _ = writeln!(
            o,
            "fpolicy_screen_responses_total{{decision=\"allow\"}} {}",
            self.screen_allow.load(Relaxed)
        );
        let _ = writeln!(
            o,
            "fpolicy_screen_responses_total{{decision=\"deny\"}} {}",
            self.screen_deny.load(Relaxed)
        );
        g(
            &mut o,
            "status_queries_total",
            "STATUS_QUERY_REQ answered.",
            "counter",
        );
        let _ = writeln!(
            o,
            "fpolicy_status_queries_total {}",
            self.status_queries.load(Relaxed)
        );
        g(
            &mut o,
            "screen_cancels_total",
            "SCREEN_CANCEL received.",
            "counter",
        );
        let _ = writeln!(
            o,
            "fpolicy_screen_cancels_total {}",
            self.screen_cancels.load(Relaxed)
        );
        let first = self.spool_first_seq.load(Relaxed);
        let next = self.spool_next_seq.load(Relaxed);
        g(
            &mut o,
            "spool_bytes",
            "Bytes stored in spool segments.",
            "gauge",
        );
        let _ = writeln!(o, "fpolicy_spool_bytes {}", self.spool_bytes.load(Relaxed));
        g(
            &mut o,
            "spool_records",
            "Records stored in the spool.",
            "gauge",
        );
        let _ = first;
        let _ = writeln!(
            o,
            "fpolicy_spool_records {}",
            self.spool_records.load(Relaxed)
        );
        g(
            &mut o,
            "spool_committed_seq",
            "Next sequence number of the spool (all below are durable).",
            "gauge",
        );
        let _ = writeln!(o, "fpolicy_spool_committed_seq {next}");
        g(&mut o, "spool_commits_total", "Group commits.", "counter");
        let _ = writeln!(
            o,
            "fpolicy_spool_commits_total {}",
            self.spool_commits.load(Relaxed)
        );
        g(
            &mut o,
            "spool_fsync_seconds",
            "fdatasync latency of group commits.",
            "histogram",
        );
        for (i, b) in FSYNC_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "fpolicy_spool_fsync_seconds_bucket{{le=\"{b}\"}} {}",
                self.fsync_buckets[i].load(Relaxed)
            );
        }
        let count = self.fsync_count.load(Relaxed);
        let _ = writeln!(
            o,
            "fpolicy_spool_fsync_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "fpolicy_spool_fsync_seconds_sum {}",
            self.fsync_sum_nanos.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(o, "fpolicy_spool_fsync_seconds_count {count}");
        g(
            &mut o,
            "back_pressure_active",
            "1 while BACK_PRESSURE_APPLY is in force.",
            "gauge",
        );
        let _ = writeln!(
            o,
            "fpolicy_back_pressure_active {}",
            self.back_pressure_active.load(Relaxed)
        );
        g(
            &mut o,
            "back_pressure_transitions_total",
            "Back pressure applied or removed.",
            "counter",
        );
        let _ = writeln!(
            o,
            "fpolicy_back_pressure_transitions_total {}",
            self.back_pressure_transitions.load(Relaxed)
        );
        g(
            &mut o,
            "ontap_registered",
            "Self-registration: 0 off, 1 registered, 2 pending (see /readyz).",
            "gauge",
        );
        let _ = writeln!(
            o,
            "fpolicy_ontap_registered {}",
            self.ontap_registered.load(Relaxed)
        );
        g(
            &mut o,
            "events_dropped_total",
            "Events dropped because the spool was full.",
            "counter",
        );
        let _ = writeln!(
            o,
            "fpolicy_events_dropped_total {}",
            self.events_dropped.load(Relaxed)
        );
        self.render_faults(&mut o);
        let polls = self.polls.snapshot();
        for (name, kind, help, f) in [
            (
                "poll_cycles_total",
                "counter",
                "Poll cycles completed.",
                (|m: &PollMetrics| m.cycles.load(Relaxed) as f64) as fn(&PollMetrics) -> f64,
            ),
            (
                "poll_errors_total",
                "counter",
                "Poll cycles that failed (retried with backoff).",
                |m| m.errors.load(Relaxed) as f64,
            ),
            (
                "poll_objects",
                "gauge",
                "Objects seen by the last cycle.",
                |m| m.objects.load(Relaxed) as f64,
            ),
            (
                "poll_events_total",
                "counter",
                "Events emitted by polling (in HYBRID: what FPolicy missed).",
                |m| m.emitted.load(Relaxed) as f64,
            ),
            (
                "poll_suppressed_total",
                "counter",
                "HYBRID: changes FPolicy had already reported.",
                |m| m.suppressed.load(Relaxed) as f64,
            ),
            (
                "poll_next_run_timestamp_seconds",
                "gauge",
                "When the next cycle runs (Unix seconds).",
                |m| m.next_run_unix.load(Relaxed) as f64,
            ),
            (
                "poll_estimated_monthly_savings_usd",
                "gauge",
                "LIST cost the schedule saves per month against polling at the business interval around the clock.",
                |m| m.savings_millicents.load(Relaxed) as f64 / 100_000.0,
            ),
            (
                "poll_prefixes_in_flight",
                "gauge",
                "Prefixes listed at once in the last cycle: max(1, min(prefixes, list_calls_per_sec, max_concurrent_prefixes)).",
                |m| m.prefixes_in_flight.load(Relaxed) as f64,
            ),
            (
                "poll_up",
                "gauge",
                "1 after a successful cycle, 0 after a failed one.",
                |m| m.up.load(Relaxed) as f64,
            ),
        ] {
            if polls.is_empty() {
                break;
            }
            g(&mut o, name, help, kind);
            for (poll, m) in &polls {
                let _ = writeln!(o, "fpolicy_{name}{{poll=\"{poll}\"}} {}", f(m));
            }
        }
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        for (name, kind, help, f) in [
            (
                "sink_delivered_total",
                "counter",
                "Events delivered by the sink.",
                (|s: &SinkMetrics| s.delivered.load(Relaxed)) as fn(&SinkMetrics) -> u64,
            ),
            (
                "sink_errors_total",
                "counter",
                "Failed delivery attempts.",
                |s| s.errors.load(Relaxed),
            ),
            (
                "sink_coalesced_total",
                "counter",
                "Notifications folded into an earlier event.",
                |s| s.coalesced.load(Relaxed),
            ),
            (
                "sink_coalesce_overflow_total",
                "counter",
                "Events emitted early because too many paths were pending.",
                |s| s.coalesce_overflow.load(Relaxed),
            ),
            (
                "sink_pending_paths",
                "gauge",
                "Paths held by write-complete coalescing.",
                |s| s.pending_paths.load(Relaxed),
            ),
            (
                "sink_dead_letters_total",
                "counter",
                "Events the service rejected for good, written to the dead-letter file.",
                |s| s.dead_letters.load(Relaxed),
            ),
            (
                "sink_throttled_total",
                "counter",
                "Deliveries the service throttled.",
                |s| s.throttled.load(Relaxed),
            ),
            (
                "sink_in_flight",
                "gauge",
                "API calls in flight for the last batch: max(1, min(calls pending, api_calls_per_sec, max_in_flight)).",
                |s| s.in_flight.load(Relaxed),
            ),
            (
                "sink_up",
                "gauge",
                "1 while the sink's destination is usable; 0 after a failed check or 30 s of failures.",
                |s| s.up.load(Relaxed),
            ),
            (
                "sink_spool_read_failing",
                "gauge",
                "1 while the sink cannot read the spool (delivery stopped; see /readyz).",
                |s| s.spool_read_failing.load(Relaxed),
            ),
            (
                "sink_spool_read_errors_total",
                "counter",
                "Failed reads of the spool by the sink.",
                |s| s.spool_read_errors.load(Relaxed),
            ),
        ] {
            g(&mut o, name, help, kind);
            for (sink, m) in sinks.iter() {
                let _ = writeln!(o, "fpolicy_{name}{{sink=\"{sink}\"}} {}", f(m));
            }
        }
        g(
            &mut o,
            "sink_lag_events",
            "Durable events the sink has not confirmed.",
            "gauge",
        );
        for (sink, m) in sinks.iter() {
            let _ = writeln!(
                o,
                "fpolicy_sink_lag_events{{sink=\"{sink}\"}} {}",
                next.saturating_sub(m.cursor.load(Relaxed))
            );
        }
        o
    }

    /// The fault-tolerance metrics: spool write failures, recovery damage,
    /// torn JSON Lines tails, buffered bytes, suppressed log lines.
    fn render_faults(&self, o: &mut String) {
        let mut one = |name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(
                o,
                "# HELP fpolicy_{name} {help}\n# TYPE fpolicy_{name} {kind}\nfpolicy_{name} {value}"
            );
        };
        one(
            "spool_write_failing",
            "1 while group commits fail (disk full or I/O error): new events are refused with back pressure.",
            "gauge",
            self.spool_write_failing.load(Relaxed),
        );
        one(
            "spool_damaged_records",
            "Records the last recovery found damaged (lost; bytes in quarantine/).",
            "gauge",
            self.spool_damaged_records.load(Relaxed),
        );
        one(
            "spool_quarantined_bytes",
            "Bytes the last recovery moved to quarantine/.",
            "gauge",
            self.spool_quarantined_bytes.load(Relaxed),
        );
        one(
            "jsonl_torn_tails_repaired_total",
            "JSON Lines files whose torn last line was cut at open (the event is delivered again from the spool).",
            "counter",
            self.jsonl_torn_tails.load(Relaxed),
        );
        one(
            "buffered_bytes",
            "Bytes reserved by frames being read, against server.max_buffered_bytes.",
            "gauge",
            self.buffered_bytes.load(Relaxed),
        );
        one(
            "log_lines_suppressed_total",
            "Log lines withheld by rate limiting (each limited line carries the count).",
            "counter",
            crate::log_limit::SUPPRESSED.load(Relaxed),
        );
        let _ = writeln!(
            o,
            "# HELP fpolicy_spool_write_errors_total Failed group commits, by kind.\n# TYPE fpolicy_spool_write_errors_total counter"
        );
        for k in WriteErrorKind::ALL {
            let _ = writeln!(
                o,
                "fpolicy_spool_write_errors_total{{kind=\"{}\"}} {}",
                k.label(),
                self.spool_write_errors[*k as usize].load(Relaxed)
            );
        }
    }
}
