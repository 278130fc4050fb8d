//! CloudWatch metrics without API calls: Embedded Metric Format log lines.
//! Every interval the server writes one JSON line to standard error; the
//! awslogs driver (ECS) or the CloudWatch agent (EC2) turns it into metrics
//! in the configured namespace, which the deployment's alarms use.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::metrics::Metrics;

/// Counters at the previous emission (EMF values are per interval).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub ingested: u64,
    pub delivered: u64,
    pub failed: u64,
    pub errors: u64,
}

impl Totals {
    pub fn read(m: &Metrics) -> Totals {
        let sinks = m.sink_snapshot();
        let failed: u64 = sinks
            .iter()
            .map(|(_, s)| s.errors.load(Relaxed) + s.dead_letters.load(Relaxed))
            .sum::<u64>()
            + m.events_dropped.load(Relaxed);
        let errors: u64 = m.parse_errors.iter().map(|c| c.load(Relaxed)).sum::<u64>()
            + m.polls
                .snapshot()
                .iter()
                .map(|(_, p)| p.errors.load(Relaxed))
                .sum::<u64>();
        Totals {
            ingested: m.events_total(),
            delivered: sinks.iter().map(|(_, s)| s.delivered.load(Relaxed)).sum(),
            failed,
            errors,
        }
    }
}

/// The EMF line for one interval: `EventsIngested`, `EventsDelivered`,
/// `EventsFailed`, `Errors` (deltas since `prev`), `SpoolLag` (the slowest
/// sink) and `ConnectedSessions` (gauges), dimension `Service`.
pub fn line(
    namespace: &str,
    service: &str,
    m: &Metrics,
    prev: Totals,
    now: Totals,
    unix_ms: u64,
) -> String {
    let next = m.spool_next_seq.load(Relaxed);
    let lag = m
        .sink_snapshot()
        .iter()
        .map(|(_, s)| next.saturating_sub(s.cursor.load(Relaxed)))
        .max()
        .unwrap_or(0);
    serde_json::json!({
        "_aws": {
            "Timestamp": unix_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Service"]],
                "Metrics": [
                    {"Name": "EventsIngested", "Unit": "Count"},
                    {"Name": "EventsDelivered", "Unit": "Count"},
                    {"Name": "EventsFailed", "Unit": "Count"},
                    {"Name": "Errors", "Unit": "Count"},
                    {"Name": "SpoolLag", "Unit": "Count"},
                    {"Name": "ConnectedSessions", "Unit": "Count"}
                ]
            }]
        },
        "Service": service,
        "EventsIngested": now.ingested.saturating_sub(prev.ingested),
        "EventsDelivered": now.delivered.saturating_sub(prev.delivered),
        "EventsFailed": now.failed.saturating_sub(prev.failed),
        "Errors": now.errors.saturating_sub(prev.errors),
        "SpoolLag": lag,
        "ConnectedSessions": m.sessions_active.load(Relaxed),
    })
    .to_string()
}

/// Per sink, the counters at the previous emission: (delivered, failed).
pub type SinkTotals = std::collections::BTreeMap<String, (u64, u64)>;

pub fn sink_totals(m: &Metrics) -> SinkTotals {
    m.sink_snapshot()
        .iter()
        .map(|(name, s)| {
            let failed = s.errors.load(Relaxed) + s.dead_letters.load(Relaxed);
            (name.clone(), (s.delivered.load(Relaxed), failed))
        })
        .collect()
}

/// One EMF line per sink: `SinkDelivered`, `SinkErrors` (deltas) and
/// `SinkLag`, dimensions `Service` and `Sink` (sink names come from the
/// configuration, so the metric count stays bounded).
pub fn sink_lines(
    namespace: &str,
    service: &str,
    m: &Metrics,
    prev: &SinkTotals,
    now: &SinkTotals,
    unix_ms: u64,
) -> Vec<String> {
    let next = m.spool_next_seq.load(Relaxed);
    m.sink_snapshot()
        .iter()
        .map(|(name, s)| {
            let (d1, f1) = now.get(name).copied().unwrap_or_default();
            let (d0, f0) = prev.get(name).copied().unwrap_or_default();
            serde_json::json!({
                "_aws": {
                    "Timestamp": unix_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [["Service", "Sink"]],
                        "Metrics": [
                            {"Name": "SinkDelivered", "Unit": "Count"},
                            {"Name": "SinkErrors", "Unit": "Count"},
                            {"Name": "SinkLag", "Unit": "Count"}
                        ]
                    }]
                },
                "Service": service,
                "Sink": name,
                "SinkDelivered": d1.saturating_sub(d0),
                "SinkErrors": f1.saturating_sub(f0),
                "SinkLag": next.saturating_sub(s.cursor.load(Relaxed)),
            })
            .to_string()
        })
        .collect()
}

/// Writes a line every `interval` until the process ends.
pub async fn run(
    namespace: String,
    service: String,
    metrics: Arc<Metrics>,
    interval: std::time::Duration,
) {
    let mut prev = Totals::read(&metrics);
    let mut prev_sinks = sink_totals(&metrics);
    loop {
        tokio::time::sleep(interval).await;
        let now = Totals::read(&metrics);
        let now_sinks = sink_totals(&metrics);
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        eprintln!("{}", line(&namespace, &service, &metrics, prev, now, ms));
        for l in sink_lines(&namespace, &service, &metrics, &prev_sinks, &now_sinks, ms) {
            eprintln!("{l}");
        }
        prev = now;
        prev_sinks = now_sinks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_has_the_shape_cloudwatch_expects() {
        let m = Metrics::default();
        m.sink("q").delivered.store(120, Relaxed);
        m.sink("q").errors.store(3, Relaxed);
        m.sessions_active.store(4, Relaxed);
        m.spool_next_seq.store(500, Relaxed);
        m.sink("q").cursor.store(450, Relaxed);
        let prev = Totals {
            ingested: 0,
            delivered: 100,
            failed: 1,
            errors: 0,
        };
        let now = Totals::read(&m);
        let v: serde_json::Value = serde_json::from_str(&line(
            "FPolicyBridge",
            "svc",
            &m,
            prev,
            now,
            1_700_000_000_000,
        ))
        .unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "FPolicyBridge"
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Service"
        );
        assert_eq!(v["Service"], "svc");
        assert_eq!(v["EventsDelivered"], 20);
        assert_eq!(v["EventsFailed"], 2);
        assert_eq!(v["SpoolLag"], 50);
        assert_eq!(v["ConnectedSessions"], 4);
        let names: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["Name"].as_str().unwrap())
            .collect();
        for n in &names {
            assert!(v.get(*n).is_some(), "{n} has a value");
        }
    }

    #[test]
    fn each_sink_gets_its_own_line_with_the_sink_dimension() {
        let m = Metrics::default();
        m.sink("bus").delivered.store(10, Relaxed);
        let before = sink_totals(&m);
        m.sink("bus").delivered.store(25, Relaxed);
        m.sink("bus").dead_letters.store(2, Relaxed);
        m.spool_next_seq.store(40, Relaxed);
        m.sink("bus").cursor.store(30, Relaxed);
        let lines = sink_lines("NS", "svc", &m, &before, &sink_totals(&m), 1);
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1],
            "Sink"
        );
        assert_eq!(
            (v["Sink"].as_str(), v["SinkDelivered"].as_u64()),
            (Some("bus"), Some(15))
        );
        assert_eq!(
            (v["SinkErrors"].as_u64(), v["SinkLag"].as_u64()),
            (Some(2), Some(10))
        );
    }
}
