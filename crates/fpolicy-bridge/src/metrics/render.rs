//! One prometheus-client collector per subsystem (sessions, spool, ONTAP,
//! polls, sinks). Each reads its atomics at scrape time, so the hot paths
//! keep plain relaxed increments; label sets are fixed enums or configured
//! names, so the series count stays bounded.
//!
//! Counters are named here without `_total`: the encoder adds it, so the
//! sample names are the ones documented in docs/operations.md.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use fpolicy_event::{FilterReason, Operation};
use fpolicy_proto::NotfType;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;

use super::{
    AlertSeverity, CloseReason, FSYNC_BUCKETS, IngestMetrics, Metrics, ParseError, PollMetrics,
    RejectReason, SinkMetrics, WriteErrorKind,
};

/// A number a sample can carry.
trait Sample: Copy {
    fn gauge(self, e: prometheus_client::encoding::MetricEncoder<'_>) -> fmt::Result;
}

impl Sample for u64 {
    fn gauge(self, mut e: prometheus_client::encoding::MetricEncoder<'_>) -> fmt::Result {
        e.encode_gauge(&self)
    }
}

impl Sample for f64 {
    fn gauge(self, mut e: prometheus_client::encoding::MetricEncoder<'_>) -> fmt::Result {
        e.encode_gauge(&self)
    }
}

/// One unlabelled counter.
fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    m.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// One unlabelled gauge.
fn gauge<V: Sample>(enc: &mut DescriptorEncoder, name: &str, help: &str, v: V) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    v.gauge(m)
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

/// Sessions, connections, frames, parse errors, alerts, answers, back
/// pressure: the FPolicy server.
#[derive(Debug)]
pub struct Session(pub Arc<Metrics>);

impl Collector for Session {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let m = &self.0;
        let states = [
            ("handshaking", load(&m.sessions_handshaking)),
            ("active", load(&m.sessions_active)),
        ];
        counters_by(
            &mut enc,
            MetricType::Gauge,
            ("fpolicy_sessions", "Open ONTAP sessions by state.", "state"),
            states,
        )?;
        let closed = CloseReason::ALL
            .iter()
            .map(|r| (r.label(), load(&m.sessions_closed[*r as usize])));
        counters_by(
            &mut enc,
            MetricType::Counter,
            (
                "fpolicy_sessions_closed",
                "Sessions closed, by reason.",
                "reason",
            ),
            closed,
        )?;
        counter(
            &mut enc,
            "fpolicy_connections_accepted",
            "TCP connections accepted.",
            load(&m.connections_accepted),
        )?;
        let rejected = RejectReason::ALL
            .iter()
            .map(|r| (r.label(), load(&m.connections_rejected[*r as usize])));
        counters_by(
            &mut enc,
            MetricType::Counter,
            (
                "fpolicy_connections_rejected",
                "Connections closed before the handshake, by reason.",
                "reason",
            ),
            rejected,
        )?;
        self.traffic(&mut enc)?;
        self.answers(&mut enc)
    }
}

impl Session {
    /// Frames, events, bad input and alerts.
    fn traffic(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &self.0;
        let frames = NotfType::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), load(&m.frames[i])));
        counters_by(
            enc,
            MetricType::Counter,
            (
                "fpolicy_frames",
                "Frames received or sent, by NotfType.",
                "type",
            ),
            frames,
        )?;
        let events = Operation::ALL
            .iter()
            .map(|op| (op.as_str(), load(&m.events[op.index()])));
        counters_by(
            enc,
            MetricType::Counter,
            (
                "fpolicy_events",
                "Events written to the spool, by operation.",
                "operation",
            ),
            events,
        )?;
        let parse = ParseError::ALL
            .iter()
            .map(|e| (e.label(), load(&m.parse_errors[*e as usize])));
        counters_by(
            enc,
            MetricType::Counter,
            (
                "fpolicy_parse_errors",
                "Input that could not be decoded, by kind.",
                "kind",
            ),
            parse,
        )?;
        let alerts = AlertSeverity::ALL
            .iter()
            .map(|s| (s.label(), load(&m.alerts[*s as usize])));
        counters_by(
            enc,
            MetricType::Counter,
            (
                "fpolicy_alerts",
                "ALERT_MSG received, by severity.",
                "severity",
            ),
            alerts,
        )?;
        Ok(())
    }

    fn answers(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &self.0;
        let decisions = [
            ("allow", load(&m.screen_allow)),
            ("deny", load(&m.screen_deny)),
        ];
        counters_by(
            enc,
            MetricType::Counter,
            (
                "fpolicy_screen_responses",
                "SCREEN_RESP sent, by decision.",
                "decision",
            ),
            decisions,
        )?;
        counter(
            enc,
            "fpolicy_status_queries",
            "STATUS_QUERY_REQ answered.",
            load(&m.status_queries),
        )?;
        counter(
            enc,
            "fpolicy_screen_cancels",
            "SCREEN_CANCEL received.",
            load(&m.screen_cancels),
        )?;
        gauge(
            enc,
            "fpolicy_back_pressure_active",
            "1 while BACK_PRESSURE_APPLY is in force.",
            load(&m.back_pressure_active),
        )?;
        counter(
            enc,
            "fpolicy_back_pressure_transitions",
            "Back pressure applied or removed.",
            load(&m.back_pressure_transitions),
        )?;
        gauge(
            enc,
            "fpolicy_buffered_bytes",
            "Bytes reserved by frames being read, against server.max_buffered_bytes.",
            load(&m.buffered_bytes),
        )?;
        counter(
            enc,
            "fpolicy_log_lines_suppressed",
            "Log lines withheld by rate limiting (each limited line carries the count).",
            crate::log_limit::SUPPRESSED.load(Relaxed),
        )
    }
}

/// A one-label family of u64 samples.
fn counters_by<'a>(
    enc: &mut DescriptorEncoder,
    kind: MetricType,
    (name, help, key): (&str, &str, &str),
    samples: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (label, v) in samples {
        let labels = [(key, label)];
        let mut f = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => f.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
            _ => f.encode_gauge(&v)?,
        }
    }
    Ok(())
}

/// The spool: size, position, group commits and their fsync latency,
/// drops, write failures, what recovery found.
#[derive(Debug)]
pub struct Spool(pub Arc<Metrics>);

impl Collector for Spool {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let m = &self.0;
        let enc = &mut enc;
        gauge(
            enc,
            "fpolicy_spool_bytes",
            "Bytes stored in spool segments.",
            load(&m.spool_bytes),
        )?;
        gauge(
            enc,
            "fpolicy_spool_capacity_bytes",
            "spool.capacity_bytes: above it new events are dropped.",
            load(&m.spool_capacity_bytes),
        )?;
        gauge(
            enc,
            "fpolicy_data_dir_free_bytes",
            "Bytes free on the data directory's file system (refreshed every 10 s).",
            load(&m.data_dir_free_bytes),
        )?;
        gauge(
            enc,
            "fpolicy_spool_records",
            "Records stored in the spool.",
            load(&m.spool_records),
        )?;
        gauge(
            enc,
            "fpolicy_spool_committed_seq",
            "Next sequence number of the spool (all below are durable).",
            load(&m.spool_next_seq),
        )?;
        counter(
            enc,
            "fpolicy_spool_commits",
            "Group commits.",
            load(&m.spool_commits),
        )?;
        self.fsync(enc)?;
        counter(
            enc,
            "fpolicy_events_dropped",
            "Events dropped because the spool was full or could not be written.",
            load(&m.events_dropped),
        )?;
        gauge(
            enc,
            "fpolicy_spool_write_failing",
            "1 while group commits fail (disk full or I/O error): new events are refused with back pressure.",
            load(&m.spool_write_failing),
        )?;
        let kinds = WriteErrorKind::ALL
            .iter()
            .map(|k| (k.label(), load(&m.spool_write_errors[*k as usize])));
        counters_by(
            enc,
            MetricType::Counter,
            (
                "fpolicy_spool_write_errors",
                "Failed group commits, by kind.",
                "kind",
            ),
            kinds,
        )?;
        gauge(
            enc,
            "fpolicy_spool_damaged_records",
            "Records the last recovery found damaged (lost; bytes in quarantine/).",
            load(&m.spool_damaged_records),
        )?;
        gauge(
            enc,
            "fpolicy_spool_quarantined_bytes",
            "Bytes the last recovery moved to quarantine/.",
            load(&m.spool_quarantined_bytes),
        )?;
        counter(
            enc,
            "fpolicy_jsonl_torn_tails_repaired",
            "JSON Lines files whose torn last line was cut at open (the event is delivered again from the spool).",
            load(&m.jsonl_torn_tails),
        )?;
        counter(
            enc,
            "fpolicy_spool_adopted",
            "Orphaned spools (spool.shared_root) this instance took over to deliver.",
            load(&m.spool_adopted),
        )?;
        let lags: Vec<(String, u64)> = m
            .adopted_lag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        counters_by(
            enc,
            MetricType::Gauge,
            (
                "fpolicy_spool_adopted_lag_events",
                "Events of an adopted spool not yet delivered by every sink, by the instance it belonged to.",
                "spool",
            ),
            lags.iter().map(|(k, v)| (k.as_str(), *v)),
        )
    }
}

impl Spool {
    /// The fsync histogram: our buckets count cumulatively, the encoder
    /// wants each bucket's own count.
    fn fsync(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let m = &self.0;
        let count = load(&m.fsync_count);
        let mut buckets = Vec::with_capacity(FSYNC_BUCKETS.len() + 1);
        let mut below = 0;
        for (i, b) in FSYNC_BUCKETS.iter().enumerate() {
            let cumulative = load(&m.fsync_buckets[i]);
            buckets.push((*b, cumulative.saturating_sub(below)));
            below = cumulative;
        }
        buckets.push((f64::INFINITY, count.saturating_sub(below)));
        let sum = load(&m.fsync_sum_nanos) as f64 / 1e9;
        let mut h = enc.encode_descriptor(
            "fpolicy_spool_fsync_seconds",
            "fdatasync latency of group commits.",
            None,
            MetricType::Histogram,
        )?;
        h.encode_histogram::<NoLabelSet>(
            sum,
            count,
            &buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }
}

/// Self-registration with ONTAP.
#[derive(Debug)]
pub struct Ontap(pub Arc<Metrics>);

impl Collector for Ontap {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        gauge(
            &mut enc,
            "fpolicy_ontap_registered",
            "Self-registration: 0 off, 1 registered, 2 pending (see /readyz).",
            self.0.readiness.registration_code(),
        )
    }
}

/// The S3 Access Point pollers (nothing when none is configured).
#[derive(Debug)]
pub struct Polls(pub Arc<Metrics>);

type PollFamily = (
    &'static str,
    MetricType,
    &'static str,
    fn(&PollMetrics) -> f64,
);

const POLL_FAMILIES: [PollFamily; 9] = [
    (
        "fpolicy_poll_cycles",
        MetricType::Counter,
        "Poll cycles completed.",
        |m| m.cycles.load(Relaxed) as f64,
    ),
    (
        "fpolicy_poll_errors",
        MetricType::Counter,
        "Poll cycles that failed (retried with backoff).",
        |m| m.errors.load(Relaxed) as f64,
    ),
    (
        "fpolicy_poll_objects",
        MetricType::Gauge,
        "Objects seen by the last cycle.",
        |m| m.objects.load(Relaxed) as f64,
    ),
    (
        "fpolicy_poll_events",
        MetricType::Counter,
        "Events emitted by polling (in HYBRID: what FPolicy missed).",
        |m| m.emitted.load(Relaxed) as f64,
    ),
    (
        "fpolicy_poll_suppressed",
        MetricType::Counter,
        "HYBRID: changes FPolicy had already reported.",
        |m| m.suppressed.load(Relaxed) as f64,
    ),
    (
        "fpolicy_poll_next_run_timestamp_seconds",
        MetricType::Gauge,
        "When the next cycle runs (Unix seconds).",
        |m| m.next_run_unix.load(Relaxed) as f64,
    ),
    (
        "fpolicy_poll_estimated_monthly_savings_usd",
        MetricType::Gauge,
        "LIST cost the schedule saves per month against polling at the business interval around the clock.",
        |m| m.savings_millicents.load(Relaxed) as f64 / 100_000.0,
    ),
    (
        "fpolicy_poll_prefixes_in_flight",
        MetricType::Gauge,
        "Prefixes listed at once in the last cycle: max(1, min(prefixes, list_calls_per_sec, max_concurrent_prefixes)).",
        |m| m.prefixes_in_flight.load(Relaxed) as f64,
    ),
    (
        "fpolicy_poll_up",
        MetricType::Gauge,
        "1 after a successful cycle, 0 after a failed one.",
        |m| m.up.load(Relaxed) as f64,
    ),
];

impl Collector for Polls {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let polls = self.0.polls.snapshot();
        if polls.is_empty() {
            return Ok(());
        }
        for (name, kind, help, value) in POLL_FAMILIES {
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            for (poll, pm) in &polls {
                let labels = [("poll", poll.as_str())];
                let mut f = m.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => {
                        f.encode_counter::<NoLabelSet, _, u64>(&(value(pm) as u64), None)?
                    }
                    _ => f.encode_gauge(&value(pm))?,
                }
            }
        }
        Ok(())
    }
}

/// The sinks: deliveries, errors, coalescing, dead letters, state, lag.
#[derive(Debug)]
pub struct Sinks(pub Arc<Metrics>);

type SinkFamily = (
    &'static str,
    MetricType,
    &'static str,
    fn(&SinkMetrics) -> u64,
);

const SINK_FAMILIES: [SinkFamily; 12] = [
    (
        "fpolicy_sink_delivered",
        MetricType::Counter,
        "Events delivered by the sink.",
        |s| s.delivered.load(Relaxed),
    ),
    (
        "fpolicy_sink_reconnects",
        MetricType::Counter,
        "Connections the sink opened again after one broke or the receiver closed it (syslog: TCP and TLS may have lost what was in flight; the last batch is sent again).",
        |s| s.reconnects.load(Relaxed),
    ),
    (
        "fpolicy_sink_errors",
        MetricType::Counter,
        "Failed delivery attempts.",
        |s| s.errors.load(Relaxed),
    ),
    (
        "fpolicy_sink_coalesced",
        MetricType::Counter,
        "Notifications folded into an earlier event.",
        |s| s.coalesced.load(Relaxed),
    ),
    (
        "fpolicy_sink_coalesce_overflow",
        MetricType::Counter,
        "Events emitted early because too many paths were pending.",
        |s| s.coalesce_overflow.load(Relaxed),
    ),
    (
        "fpolicy_sink_pending_paths",
        MetricType::Gauge,
        "Paths held by write-complete coalescing.",
        |s| s.pending_paths.load(Relaxed),
    ),
    (
        "fpolicy_sink_dead_letters",
        MetricType::Counter,
        "Events the service rejected for good, written to the dead-letter file.",
        |s| s.dead_letters.load(Relaxed),
    ),
    (
        "fpolicy_sink_throttled",
        MetricType::Counter,
        "Deliveries the service throttled.",
        |s| s.throttled.load(Relaxed),
    ),
    (
        "fpolicy_sink_in_flight",
        MetricType::Gauge,
        "API calls in flight for the last batch: max(1, min(calls pending, api_calls_per_sec, max_in_flight)).",
        |s| s.in_flight.load(Relaxed),
    ),
    (
        "fpolicy_sink_up",
        MetricType::Gauge,
        "1 while the sink's destination is usable; 0 after a failed check or 30 s of failures.",
        |s| s.up.load(Relaxed),
    ),
    (
        "fpolicy_sink_spool_read_failing",
        MetricType::Gauge,
        "1 while the sink cannot read the spool (delivery stopped; see /readyz).",
        |s| s.spool_read_failing.load(Relaxed),
    ),
    (
        "fpolicy_sink_spool_read_errors",
        MetricType::Counter,
        "Failed reads of the spool by the sink.",
        |s| s.spool_read_errors.load(Relaxed),
    ),
];

impl Collector for Sinks {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let sinks = self.0.sink_snapshot();
        for (name, kind, help, value) in SINK_FAMILIES {
            let samples = sinks.iter().map(|(sink, m)| (sink.as_str(), value(m)));
            counters_by(&mut enc, kind, (name, help, "sink"), samples)?;
        }
        let mut skipped = enc.encode_descriptor(
            "fpolicy_sink_skipped",
            "Events a sink's format does not send (format = \"s3\": directories and other non-objects, paths under no access point), by reason.",
            None,
            MetricType::Counter,
        )?;
        for (sink, m) in &sinks {
            for reason in fpolicy_event::format::Skip::ALL {
                let labels = [("sink", sink.as_str()), ("reason", reason.as_str())];
                let v = load(&m.skipped[reason.index()]);
                skipped
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
            }
        }
        let next = load(&self.0.spool_next_seq);
        let lag = sinks
            .iter()
            .map(|(sink, m)| (sink.as_str(), next.saturating_sub(load(&m.cursor))));
        counters_by(
            &mut enc,
            MetricType::Gauge,
            (
                "fpolicy_sink_lag_events",
                "Durable events the sink has not confirmed.",
                "sink",
            ),
            lag,
        )
    }
}

/// The ingest step: noise filters, user identity, defaulted names.
#[derive(Debug)]
pub struct Ingest(pub Arc<IngestMetrics>);

impl Collector for Ingest {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let m = &self.0;
        let filtered = FilterReason::ALL
            .iter()
            .map(|r| (r.as_str(), load(&m.filtered[r.index()])));
        counters_by(
            &mut enc,
            MetricType::Counter,
            (
                "fpolicy_events_filtered",
                "Events dropped by [filters] before the spool, by reason.",
                "reason",
            ),
            filtered,
        )?;
        counters_by(
            &mut enc,
            MetricType::Counter,
            (
                "fpolicy_identity_events",
                "Events carrying a SID or UID, by whether a user name was found.",
                "result",
            ),
            [
                ("resolved", load(&m.users_resolved)),
                ("unknown", load(&m.users_unknown)),
            ],
        )?;
        gauge(
            &mut enc,
            "fpolicy_identity_users",
            "Users in the identity table.",
            load(&m.identity_users),
        )?;
        counters_by(
            &mut enc,
            MetricType::Counter,
            (
                "fpolicy_identity_syncs",
                "Identity table refreshes, by result.",
                "result",
            ),
            [
                ("ok", load(&m.identity_syncs_ok)),
                ("error", load(&m.identity_sync_errors)),
            ],
        )?;
        gauge(
            &mut enc,
            "fpolicy_identity_last_sync_timestamp_seconds",
            "When the identity table was last refreshed (Unix time; 0: never).",
            load(&m.identity_last_sync_unix),
        )?;
        gauge(
            &mut enc,
            "fpolicy_identity_sync_failing",
            "1 while the last identity refresh failed (the previous table stays in use).",
            load(&m.identity_sync_failing),
        )?;
        counter(
            &mut enc,
            "fpolicy_names_defaulted",
            "Events that went on with a default volume or SVM name after the bounded wait for ONTAP.",
            load(&m.names_defaulted),
        )
    }
}
