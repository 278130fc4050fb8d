//! The series (names, label keys and values) and types `/metrics` exposes, compared with the list in
//! `metric_names.txt`: dashboards, alert rules and the CloudFormation
//! alarms depend on them, so a change must be deliberate (regenerate the
//! list with `FPOLICY_UPDATE_METRIC_NAMES=1 cargo test --test metric_names`
//! and say why in the commit).

mod common;

use std::collections::BTreeSet;

use common::*;
use fpolicy_sim::SimConfig;

/// Every series (name and labels, without the value), and every family's
/// type (a counter family under its sample name: OpenMetrics names the
/// family `x` and the sample `x_total`).
fn shapes(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with('#') || l.starts_with("# TYPE "))
        .map(|l| match l.strip_prefix("# TYPE ") {
            Some(t) => match t.strip_suffix(" counter") {
                Some(name) if !name.ends_with("_total") => format!("TYPE {name}_total counter"),
                _ => format!("TYPE {t}"),
            },
            None => l.rsplit_once(' ').map_or(l, |(s, _)| s).to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_names_and_labels_stay_as_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.sinks.stdout.enabled = false;
    let mut server = TestServer::start(cfg).await;
    let mut sim = SimConfig::new(server.addr);
    sim.count = Some(100);
    let report = fpolicy_sim::run(sim).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (code, text) = http_get(server.admin, "/metrics").await;
    assert_eq!(code, 200);
    server.stop().await;
    let got: Vec<String> = shapes(&text).into_iter().collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metric_names.txt");
    if std::env::var_os("FPOLICY_UPDATE_METRIC_NAMES").is_some() {
        std::fs::write(path, got.join("\n") + "\n").unwrap();
    }
    let want: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, want, "the /metrics names or labels changed");
    dashboards_and_rules_query_live_metrics(&text);
}

/// Every metric the Grafana dashboard and the Prometheus alert rules
/// query is one this run's `/metrics` exposes.
fn dashboards_and_rules_query_live_metrics(live: &str) {
    let exposed: BTreeSet<&str> = live
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    for file in [
        "grafana/fpolicy-bridge.json",
        "prometheus/fpolicy-bridge.rules.yml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let mut queried = BTreeSet::new();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("fpolicy_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            queried.insert(name);
        }
        assert!(queried.len() >= 5, "{file}: queries found");
        for name in &queried {
            assert!(
                exposed.contains(name.as_str()),
                "{file} queries {name}, which /metrics does not expose"
            );
        }
    }
}
