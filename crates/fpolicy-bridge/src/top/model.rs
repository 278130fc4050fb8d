//! What `top` shows, computed from two scrapes of `/metrics` and
//! `/sessions` a second apart. No I/O and no terminal: tested from
//! recorded text.

use std::collections::{BTreeMap, HashMap};

/// One scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Seconds (any monotonic origin) when it was taken.
    pub at: f64,
    /// `name{labels}` (exactly as rendered) → value.
    samples: HashMap<String, f64>,
    pub sessions: Vec<SessionRow>,
}

/// One line of `/sessions`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct SessionRow {
    pub peer: String,
    pub policy: String,
    pub svm_uuid: String,
    pub svm_name: String,
    pub session_id: String,
    pub engine: String,
    pub since: u64,
    pub events: u64,
}

impl Snapshot {
    /// From the `/metrics` text and the `/sessions` JSON (`None`: an older
    /// server without it).
    pub fn parse(at: f64, metrics: &str, sessions: Option<&str>) -> Snapshot {
        let samples = metrics
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.trim().parse().ok()?))
            })
            .collect();
        let sessions = sessions
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Snapshot {
            at,
            samples,
            sessions,
        }
    }

    fn get(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// Every series of `name` by the value of label `key`.
    fn by(&self, name: &str, key: &str) -> BTreeMap<String, f64> {
        let prefix = format!("{name}{{");
        let needle = format!("{key}=\"");
        let mut out = BTreeMap::new();
        for (series, v) in &self.samples {
            let Some(labels) = series.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(start) = labels.find(&needle) {
                let rest = &labels[start + needle.len()..];
                let value = rest.split('"').next().unwrap_or("").to_owned();
                *out.entry(value).or_insert(0.0) += v;
            }
        }
        out
    }

    fn sum(&self, name: &str) -> f64 {
        let prefix = format!("{name}{{");
        self.samples
            .iter()
            .filter(|(s, _)| *s == name || s.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

/// A sink's line.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkView {
    pub name: String,
    pub up: bool,
    pub delivered_per_sec: f64,
    pub lag: f64,
    pub errors_per_sec: f64,
    pub dead_letters: f64,
}

/// A session's line.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub node: String,
    pub svm: String,
    pub policy: String,
    pub engine: String,
    pub events_per_sec: f64,
    pub events: u64,
}

/// A poll's line.
#[derive(Debug, Clone, PartialEq)]
pub struct PollView {
    pub name: String,
    pub up: bool,
    pub next_run_unix: f64,
}

/// Everything on the screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub events_per_sec: f64,
    pub events_total: f64,
    pub sessions_active: f64,
    pub sessions_handshaking: f64,
    pub commits_per_sec: f64,
    /// Mean fsync time over the interval, in milliseconds.
    pub fsync_ms: Option<f64>,
    pub spool_bytes: f64,
    pub back_pressure: bool,
    pub spool_write_failing: bool,
    pub dropped_total: f64,
    pub filtered_per_sec: f64,
    pub parse_errors_per_sec: f64,
    pub sinks: Vec<SinkView>,
    pub sessions: Vec<SessionView>,
    pub polls: Vec<PollView>,
    /// `off`, `registered` or `pending`.
    pub registration: &'static str,
    pub names_defaulted: f64,
    pub identity_users: f64,
    pub identity_sync_failing: bool,
}

fn rate(now: f64, prev: f64, dt: f64) -> f64 {
    if dt > 0.0 && now >= prev {
        (now - prev) / dt
    } else {
        0.0
    }
}

/// The view of `now`, with rates since `prev` (none on the first scrape).
pub fn view(prev: Option<&Snapshot>, now: &Snapshot) -> View {
    let empty = Snapshot::default();
    let p = prev.unwrap_or(&empty);
    let dt = if prev.is_some() { now.at - p.at } else { 0.0 };
    let per_sec = |name: &str| rate(now.sum(name), p.sum(name), dt);
    let states = now.by("fpolicy_sessions", "state");
    let fsyncs =
        now.get("fpolicy_spool_fsync_seconds_count") - p.get("fpolicy_spool_fsync_seconds_count");
    let fsync_sum =
        now.get("fpolicy_spool_fsync_seconds_sum") - p.get("fpolicy_spool_fsync_seconds_sum");
    View {
        events_per_sec: per_sec("fpolicy_events_total"),
        events_total: now.sum("fpolicy_events_total"),
        sessions_active: states.get("active").copied().unwrap_or(0.0),
        sessions_handshaking: states.get("handshaking").copied().unwrap_or(0.0),
        commits_per_sec: per_sec("fpolicy_spool_commits_total"),
        fsync_ms: (prev.is_some() && fsyncs > 0.0).then(|| 1000.0 * fsync_sum / fsyncs),
        spool_bytes: now.get("fpolicy_spool_bytes"),
        back_pressure: now.get("fpolicy_back_pressure_active") > 0.0,
        spool_write_failing: now.get("fpolicy_spool_write_failing") > 0.0,
        dropped_total: now.sum("fpolicy_events_dropped_total"),
        filtered_per_sec: per_sec("fpolicy_events_filtered_total"),
        parse_errors_per_sec: per_sec("fpolicy_parse_errors_total"),
        sinks: sinks(p, now, dt),
        sessions: sessions(p, now, dt),
        polls: polls(now),
        registration: match now.get("fpolicy_ontap_registered") as u8 {
            1 => "registered",
            2 => "pending",
            _ => "off",
        },
        names_defaulted: now.sum("fpolicy_names_defaulted_total"),
        identity_users: now.get("fpolicy_identity_users"),
        identity_sync_failing: now.get("fpolicy_identity_sync_failing") > 0.0,
    }
}

fn sinks(p: &Snapshot, now: &Snapshot, dt: f64) -> Vec<SinkView> {
    let up = now.by("fpolicy_sink_up", "sink");
    let delivered = now.by("fpolicy_sink_delivered_total", "sink");
    let delivered_before = p.by("fpolicy_sink_delivered_total", "sink");
    let errors = now.by("fpolicy_sink_errors_total", "sink");
    let errors_before = p.by("fpolicy_sink_errors_total", "sink");
    let lag = now.by("fpolicy_sink_lag_events", "sink");
    let dead = now.by("fpolicy_sink_dead_letters_total", "sink");
    let at = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    delivered
        .keys()
        .map(|name| SinkView {
            name: name.clone(),
            up: at(&up, name) > 0.0,
            delivered_per_sec: rate(at(&delivered, name), at(&delivered_before, name), dt),
            lag: at(&lag, name),
            errors_per_sec: rate(at(&errors, name), at(&errors_before, name), dt),
            dead_letters: at(&dead, name),
        })
        .collect()
}

fn sessions(p: &Snapshot, now: &Snapshot, dt: f64) -> Vec<SessionView> {
    now.sessions
        .iter()
        .map(|s| {
            let before = p
                .sessions
                .iter()
                .find(|b| b.session_id == s.session_id && b.peer == s.peer)
                .map_or(s.events, |b| b.events);
            SessionView {
                node: s
                    .peer
                    .rsplit_once(':')
                    .map_or(s.peer.as_str(), |(ip, _)| ip)
                    .to_owned(),
                svm: if s.svm_name.is_empty() || s.svm_name == "unknown" {
                    s.svm_uuid.chars().take(8).collect()
                } else {
                    s.svm_name.clone()
                },
                policy: s.policy.clone(),
                engine: s.engine.clone(),
                events_per_sec: rate(s.events as f64, before as f64, dt),
                events: s.events,
            }
        })
        .collect()
}

fn polls(now: &Snapshot) -> Vec<PollView> {
    let up = now.by("fpolicy_poll_up", "poll");
    let next = now.by("fpolicy_poll_next_run_timestamp_seconds", "poll");
    up.iter()
        .map(|(name, u)| PollView {
            name: name.clone(),
            up: *u > 0.0,
            next_run_unix: next.get(name).copied().unwrap_or(0.0),
        })
        .collect()
}

/// How the session table is ordered (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Events,
    Node,
    Svm,
    Policy,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Events => SortKey::Node,
            SortKey::Node => SortKey::Svm,
            SortKey::Svm => SortKey::Policy,
            SortKey::Policy => SortKey::Events,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Events => "events/s",
            SortKey::Node => "node",
            SortKey::Svm => "svm",
            SortKey::Policy => "policy",
        }
    }
}

/// The sessions whose node, SVM or policy contains `filter`, sorted.
pub fn session_rows<'a>(v: &'a View, filter: &str, sort: SortKey) -> Vec<&'a SessionView> {
    let f = filter.to_lowercase();
    let mut rows: Vec<&SessionView> = v
        .sessions
        .iter()
        .filter(|s| {
            f.is_empty()
                || [&s.node, &s.svm, &s.policy]
                    .iter()
                    .any(|x| x.to_lowercase().contains(&f))
        })
        .collect();
    match sort {
        SortKey::Events => rows.sort_by(|a, b| b.events_per_sec.total_cmp(&a.events_per_sec)),
        SortKey::Node => rows.sort_by(|a, b| a.node.cmp(&b.node)),
        SortKey::Svm => rows.sort_by(|a, b| a.svm.cmp(&b.svm)),
        SortKey::Policy => rows.sort_by(|a, b| a.policy.cmp(&b.policy)),
    }
    rows
}

/// One line per refresh when not on a terminal.
pub fn plain_line(v: &View) -> String {
    let sinks: Vec<String> = v
        .sinks
        .iter()
        .map(|s| {
            format!(
                "{}={:.0}/s lag {:.0}{}",
                s.name,
                s.delivered_per_sec,
                s.lag,
                if s.up { "" } else { " DOWN" }
            )
        })
        .collect();
    format!(
        "events {:.0}/s sessions {:.0} commits {:.0}/s fsync {} dropped {:.0} filtered {:.0}/s sinks: {}",
        v.events_per_sec,
        v.sessions_active,
        v.commits_per_sec,
        v.fsync_ms.map_or("-".to_owned(), |ms| format!("{ms:.2}ms")),
        v.dropped_total,
        v.filtered_per_sec,
        sinks.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# TYPE fpolicy_events counter
fpolicy_events_total{operation="create"} 100
fpolicy_events_total{operation="write"} 50
fpolicy_sessions{state="handshaking"} 0
fpolicy_sessions{state="active"} 2
fpolicy_spool_commits_total 10
fpolicy_spool_fsync_seconds_sum 0.01
fpolicy_spool_fsync_seconds_count 10
fpolicy_sink_up{sink="jsonl"} 1
fpolicy_sink_up{sink="bus"} 0
fpolicy_sink_delivered_total{sink="jsonl"} 150
fpolicy_sink_delivered_total{sink="bus"} 40
fpolicy_sink_errors_total{sink="bus"} 3
fpolicy_sink_lag_events{sink="jsonl"} 0
fpolicy_sink_lag_events{sink="bus"} 110
fpolicy_events_dropped_total 0
fpolicy_ontap_registered 2
"#;

    fn after() -> String {
        BEFORE
            .replace("operation=\"create\"} 100", "operation=\"create\"} 300")
            .replace(
                "fpolicy_spool_commits_total 10",
                "fpolicy_spool_commits_total 30",
            )
            .replace(
                "fpolicy_spool_fsync_seconds_sum 0.01",
                "fpolicy_spool_fsync_seconds_sum 0.05",
            )
            .replace(
                "fpolicy_spool_fsync_seconds_count 10",
                "fpolicy_spool_fsync_seconds_count 30",
            )
            .replace("sink=\"jsonl\"} 150", "sink=\"jsonl\"} 350")
            .replace(
                "fpolicy_sink_errors_total{sink=\"bus\"} 3",
                "fpolicy_sink_errors_total{sink=\"bus\"} 5",
            )
    }

    const SESSIONS: &str = r#"[{"peer":"10.0.0.11:5001","policy":"audit","svm_uuid":"5b70-1","svm_name":"svm1","session_id":"a","engine":"async","since":1,"events":100},
{"peer":"10.0.0.12:5002","policy":"av","svm_uuid":"5b70-1","svm_name":"svm1","session_id":"b","engine":"sync","since":1,"events":50}]"#;

    #[test]
    fn rates_come_from_two_scrapes_two_seconds_apart() {
        let a = Snapshot::parse(10.0, BEFORE, Some(SESSIONS));
        let b = Snapshot::parse(
            12.0,
            &after(),
            Some(&SESSIONS.replace("\"events\":100", "\"events\":300")),
        );
        let v = view(Some(&a), &b);
        assert_eq!(v.events_per_sec, 100.0);
        assert_eq!(v.events_total, 350.0);
        assert_eq!((v.sessions_active, v.commits_per_sec), (2.0, 10.0));
        assert_eq!(v.fsync_ms.map(|m| (m * 1000.0).round() / 1000.0), Some(2.0));
        assert_eq!(v.registration, "pending");
        let bus = v.sinks.iter().find(|s| s.name == "bus").unwrap();
        assert!(!bus.up);
        assert_eq!((bus.lag, bus.errors_per_sec), (110.0, 1.0));
        let jsonl = v.sinks.iter().find(|s| s.name == "jsonl").unwrap();
        assert_eq!(jsonl.delivered_per_sec, 100.0);
        let rows = session_rows(&v, "", SortKey::Events);
        assert_eq!(
            (rows[0].node.as_str(), rows[0].events_per_sec),
            ("10.0.0.11", 100.0)
        );
        assert_eq!(session_rows(&v, "AV", SortKey::Events).len(), 1);
        assert_eq!(session_rows(&v, "", SortKey::Policy)[0].policy, "audit");
        let line = plain_line(&v);
        assert!(
            line.contains("events 100/s") && line.contains("bus=0/s lag 110 DOWN"),
            "{line}"
        );
    }

    #[test]
    fn the_first_scrape_has_no_rates_and_bad_text_is_ignored() {
        let s = Snapshot::parse(
            1.0,
            "garbage\nfpolicy_events_total{operation=\"create\"} x\n",
            Some("not json"),
        );
        let v = view(None, &s);
        assert_eq!(v.events_per_sec, 0.0);
        assert!(v.sessions.is_empty() && v.fsync_ms.is_none());
        assert_eq!(SortKey::Policy.next(), SortKey::Events);
    }
}
