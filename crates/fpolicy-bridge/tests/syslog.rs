//! The syslog sink against a real rsyslog (started by the tests on
//! loopback ports, see support/rsyslog.rs): RFC 5424 with CEF over TCP,
//! read back by pycef; JSON (OCSF) over TLS with a generated CA, checked
//! against the OCSF schema; RELP with rsyslog restarted in the middle of
//! the run, every event present. Needs the `syslog-integration` feature
//! (scripts/test.sh installs rsyslog and the Python consumers and enables
//! it).

mod common;
#[path = "support/rsyslog.rs"]
mod rsyslog;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use fpolicy_bridge::config::CloudSinkConfig;
use fpolicy_bridge::sink::SyslogSinkConfig;
use fpolicy_bridge::sink::syslog::{Facility, Payload, Transport};
use fpolicy_event::Format;
use rsyslog::{Input, Rsyslog};

fn sink(r: &Rsyslog, transport: Transport) -> SyslogSinkConfig {
    SyslogSinkConfig {
        name: "siem".into(),
        address: format!("127.0.0.1:{}", r.port),
        transport,
        format: Payload::Cef,
        json_format: Format::Fpolicy,
        facility: Facility::Local0,
        app_name: "fpolicy-bridge".into(),
        hostname: Some("bridge-1".into()),
        ca_bundle: r.ca.clone(),
        client_cert: None,
        client_key: None,
        server_name: r.ca.as_ref().map(|_| "localhost".into()),
        max_in_flight: 256,
        timeout: Duration::from_secs(5),
        max_events_per_sec: 0,
    }
}

async fn lag_zero(server: &TestServer) -> bool {
    eventually(60, async || {
        server
            .metric("fpolicy_sink_lag_events{sink=\"siem\"}")
            .await
            == 0.0
            && server
                .metric("fpolicy_sink_delivered_total{sink=\"siem\"}")
                .await
                > 0.0
    })
    .await
}

/// The event ids the bridge took (its JSON Lines files).
fn taken_ids(dir: &std::path::Path) -> HashSet<String> {
    read_events(dir)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The `externalId` of every CEF line rsyslog wrote.
fn cef_ids(r: &Rsyslog) -> Vec<String> {
    r.lines()
        .iter()
        .filter_map(|[_, _, _, msg]| {
            let at = msg.find("externalId=")? + "externalId=".len();
            Some(msg[at..].split(' ').next()?.to_owned())
        })
        .collect()
}

async fn wait_for_lines(r: &Rsyslog, n: usize) -> bool {
    eventually(30, async || r.lines().len() >= n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_carries_rfc_5424_cef_that_a_cef_parser_reads() {
    let r = Rsyslog::start(Input::Tcp);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.cloud_sinks = vec![CloudSinkConfig::Syslog(sink(&r, Transport::Tcp))];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(2_000);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(lag_zero(&server).await, "delivered");
    server.stop().await;
    assert!(wait_for_lines(&r, 2_000).await, "{} lines", r.lines().len());
    let lines = r.lines();
    // rsyslog parsed the RFC 5424 header: our host name, app name, and the
    // operation as MSGID.
    for [host, app, msgid, msg] in &lines {
        assert_eq!(
            (host.as_str(), app.as_str()),
            ("bridge-1", "fpolicy-bridge")
        );
        assert!(
            msg.starts_with(&format!(
                "CEF:0|NetApp|ONTAP FPolicy|{}|{msgid}|",
                env!("CARGO_PKG_VERSION")
            )),
            "{msg}"
        );
    }
    let ids: HashSet<String> = cef_ids(&r).into_iter().collect();
    assert_eq!(ids, taken_ids(dir.path()), "every event, once each");
    check_formats("cef", &r.output, &["--expect", "2000", "--unique-ids"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_generated_ca_carries_ocsf_json() {
    let r = Rsyslog::start(Input::Tls);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.cloud_sinks = vec![CloudSinkConfig::Syslog(SyslogSinkConfig {
        format: Payload::Json,
        json_format: Format::Ocsf,
        ..sink(&r, Transport::Tls)
    })];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(1_000);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(lag_zero(&server).await, "delivered over TLS");
    server.stop().await;
    assert!(wait_for_lines(&r, 1_000).await, "{} lines", r.lines().len());
    let ocsf = dir.path().join("ocsf.jsonl");
    let body: String = r
        .lines()
        .iter()
        .map(|[.., msg]| format!("{msg}\n"))
        .collect();
    std::fs::write(&ocsf, body).unwrap();
    check_formats("ocsf", &ocsf, &["--expect", "1000", "--unique-ids"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_receiver_it_cannot_verify() {
    let r = Rsyslog::start(Input::Tls);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    // No CA bundle: the system roots do not know the test CA.
    cfg.cloud_sinks = vec![CloudSinkConfig::Syslog(SyslogSinkConfig {
        ca_bundle: None,
        ..sink(&r, Transport::Tls)
    })];
    let mut server = TestServer::start(cfg).await;
    let said = eventually(20, async || {
        let (code, body) = http_get(server.admin, "/readyz").await;
        code == 503 && body.contains("siem") && body.contains("TLS")
    })
    .await;
    assert!(said, "{}", http_get(server.admin, "/readyz").await.1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_delivers_with_the_client_certificate_only() {
    let r = Rsyslog::start(Input::MutualTls);
    let certs = r.ca.as_ref().unwrap().parent().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.cloud_sinks = vec![CloudSinkConfig::Syslog(SyslogSinkConfig {
        client_cert: Some(certs.join("client.pem")),
        client_key: Some(certs.join("client.key")),
        ..sink(&r, Transport::Tls)
    })];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(300);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(
        lag_zero(&server).await,
        "delivered with the client certificate"
    );
    server.stop().await;
    assert!(wait_for_lines(&r, 300).await, "{} lines", r.lines().len());
    // Without one, rsyslog takes nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.cloud_sinks = vec![CloudSinkConfig::Syslog(sink(&r, Transport::Tls))];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(50);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.stop().await;
    assert_eq!(
        r.lines().len(),
        300,
        "nothing more without a client certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_loses_nothing_when_rsyslog_restarts_mid_run() {
    let mut r = Rsyslog::start(Input::Relp);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.shutdown.drain_timeout = Duration::from_secs(60);
    // Slow enough that the restart comes in the middle.
    cfg.cloud_sinks = vec![CloudSinkConfig::Syslog(SyslogSinkConfig {
        max_events_per_sec: 2_000,
        max_in_flight: 64,
        ..sink(&r, Transport::Relp)
    })];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(12_000);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(
        wait_for_lines(&r, 2_000).await,
        "some delivered before the restart"
    );
    r.restart();
    let before = r.lines().len();
    assert!(before < 12_000, "restarted mid-run ({before} lines)");
    assert!(lag_zero(&server).await, "delivered after the restart");
    let reconnects = server
        .metric("fpolicy_sink_reconnects_total{sink=\"siem\"}")
        .await;
    server.stop().await;
    // Stop rsyslog the polite way so that everything it took is written.
    drop(server);
    r.restart();
    let ids = cef_ids(&r);
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique, taken_ids(dir.path()), "every event present");
    assert!(reconnects >= 1.0, "the broken session was counted");
    check_formats("cef", &r.output, &[]);
}
