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
}
