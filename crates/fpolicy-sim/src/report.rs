//! The final report, as text and JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Counts kept per node and summed over the run.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub answered: u64,
    pub allowed: u64,
    pub denied: u64,
    pub other_decisions: u64,
    /// SCREEN_RESPs for requests already cancelled.
    pub late_responses: u64,
    pub status_queries: u64,
    pub status_answers: u64,
    pub cancelled: u64,
    pub unanswered: u64,
    pub back_pressure_applied: u64,
    pub back_pressure_removed: u64,
    pub keep_alives: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.answered += o.answered;
        self.allowed += o.allowed;
        self.denied += o.denied;
        self.other_decisions += o.other_decisions;
        self.late_responses += o.late_responses;
        self.status_queries += o.status_queries;
        self.status_answers += o.status_answers;
        self.cancelled += o.cancelled;
        self.unanswered += o.unanswered;
        self.back_pressure_applied += o.back_pressure_applied;
        self.back_pressure_removed += o.back_pressure_removed;
        self.keep_alives += o.keep_alives;
    }
}

/// Request→response latencies in microseconds: fixed memory however long
/// the run (1 µs to 1 h, 3 significant digits).
#[derive(Debug, Clone)]
pub struct LatencyHistogram(hdrhistogram::Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram(
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        )
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, micros: u64) {
        self.0.saturating_record(micros.max(1));
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// p50, p99 and max, or `None` when nothing was recorded.
    pub fn summary(&self) -> Option<Latency> {
        (!self.0.is_empty()).then(|| Latency {
            p50_us: self.0.value_at_quantile(0.50),
            p99_us: self.0.value_at_quantile(0.99),
            max_us: self.0.max(),
        })
    }
}

/// What one node saw.
#[derive(Debug, Default)]
pub struct NodeReport {
    pub negotiated: Option<String>,
    pub counters: Counters,
    pub by_req_type: BTreeMap<String, u64>,
    pub latency: LatencyHistogram,
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

/// Request→response latency, microseconds (synchronous mode).
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// The whole run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub nodes: usize,
    pub mode: String,
    pub negotiated_versions: Vec<String>,
    #[serde(flatten)]
    pub counters: Counters,
    pub elapsed_secs: f64,
    pub rate_per_sec: f64,
    pub latency: Option<Latency>,
    pub by_req_type: BTreeMap<String, u64>,
    pub errors: Vec<String>,
}

impl Report {
    pub fn from_nodes(mode: &str, nodes: Vec<NodeReport>) -> Report {
        let mut r = Report {
            nodes: nodes.len(),
            mode: mode.to_owned(),
            ..Report::default()
        };
        let mut latency = LatencyHistogram::default();
        let mut elapsed = Duration::ZERO;
        for (i, n) in nodes.into_iter().enumerate() {
            if let Some(v) = n.negotiated {
                r.negotiated_versions.push(v);
            }
            r.counters.add(&n.counters);
            for (k, v) in n.by_req_type {
                *r.by_req_type.entry(k).or_default() += v;
            }
            latency.merge(&n.latency);
            r.errors
                .extend(n.errors.into_iter().map(|e| format!("node {i}: {e}")));
            elapsed = elapsed.max(n.elapsed);
        }
        r.negotiated_versions.sort();
        r.negotiated_versions.dedup();
        r.elapsed_secs = elapsed.as_secs_f64();
        r.rate_per_sec = if r.elapsed_secs > 0.0 {
            r.counters.sent as f64 / r.elapsed_secs
        } else {
            0.0
        };
        r.latency = latency.summary();
        r
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        writeln!(
            f,
            "fpolicy-sim report ({} mode, {} nodes, versions {:?})",
            self.mode, self.nodes, self.negotiated_versions
        )?;
        writeln!(
            f,
            "  sent        {:>12}  in {:.2} s = {:.0}/s",
            c.sent, self.elapsed_secs, self.rate_per_sec
        )?;
        writeln!(
            f,
            "  answered    {:>12}  (allowed {}, denied {}, other {}, late {})",
            c.answered, c.allowed, c.denied, c.other_decisions, c.late_responses
        )?;
        writeln!(
            f,
            "  status      {:>12}  queries, {} answers",
            c.status_queries, c.status_answers
        )?;
        writeln!(
            f,
            "  cancelled   {:>12}  unanswered {}",
            c.cancelled, c.unanswered
        )?;
        writeln!(
            f,
            "  back press. {:>12}  applied, {} removed",
            c.back_pressure_applied, c.back_pressure_removed
        )?;
        writeln!(f, "  keep-alives {:>12}", c.keep_alives)?;
        if let Some(l) = self.latency {
            writeln!(
                f,
                "  latency     p50 {} µs, p99 {} µs, max {} µs",
                l.p50_us, l.p99_us, l.max_us
            )?;
        }
        writeln!(f, "  errors      {:>12}", self.errors.len())?;
        for e in &self.errors {
            writeln!(f, "    {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards against a histogram that clamps to a small initial range
    /// (hdrhistogram's `new` + `saturating_record` reports p50 = 2 here).
    #[test]
    fn latency_quantiles_are_right_over_a_wide_range() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        for v in 1..=5_000u64 {
            a.record(v);
            b.record(v + 5_000);
        }
        a.merge(&b);
        assert_eq!(a.count(), 10_000);
        let s = a.summary().unwrap();
        assert!((4_990..=5_010).contains(&s.p50_us), "{s:?}");
        assert!((9_880..=9_920).contains(&s.p99_us), "{s:?}");
        assert!((9_995..=10_010).contains(&s.max_us), "{s:?}");
        assert_eq!(LatencyHistogram::default().summary(), None);
    }
}
