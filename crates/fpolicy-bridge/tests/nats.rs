//! The NATS JetStream sink against real `nats-server` processes (started
//! by the tests on loopback ports, see support/nats_server.rs): a single
//! server; a three-node cluster with an R3 stream where a node is killed
//! (-9) mid-run and restarted; the bridge killed (-9) mid-publishing and
//! restarted; a missing stream and a subject the stream does not cover;
//! a stream deleted while running (dead letters); TLS and a user with a
//! password. Needs the `nats-integration` feature
//! (scripts/test.sh installs nats-server and enables it).

mod common;
#[path = "support/nats_server.rs"]
mod nats_server;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use common::process::{Proc, ready, spawn_with_env};
use common::*;
use fpolicy_bridge::config::CloudSinkConfig;
use fpolicy_bridge::sink::NatsSinkConfig;
use nats_server::{Nats, messages};

fn sink(nats: &Nats, replicas: usize) -> NatsSinkConfig {
    NatsSinkConfig {
        name: "stream".into(),
        servers: nats.urls(),
        subject: "fpolicy.{svm}.{volume}.{operation}".into(),
        stream: "FPOLICY".into(),
        create_stream: true,
        replicas,
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(600),
        max_in_flight: 1024,
        max_events_per_sec: 0,
        credentials_file: None,
        user: None,
        password_env: None,
        nkey_seed_file: None,
        ca_bundle: nats.ca.clone(),
        client_cert: None,
        client_key: None,
        format: Default::default(),
    }
}

/// Every message once: as many distinct ids as messages, and `expected`.
async fn assert_each_once(nats: &Nats, expected: usize) -> Vec<(String, String, Vec<u8>)> {
    let client = nats.client().await;
    let msgs = messages(&client, "FPOLICY").await;
    let ids: HashSet<&str> = msgs.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(ids.len(), msgs.len(), "no duplicate in the stream");
    assert_eq!(msgs.len(), expected, "every event in the stream");
    for (subject, id, payload) in &msgs {
        let e: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(e["event_id"], id.as_str(), "Nats-Msg-Id is the event_id");
        assert!(subject.starts_with("fpolicy."), "{subject}");
        assert!(
            subject.ends_with(e["operation_type"].as_str().unwrap()),
            "{subject}"
        );
    }
    msgs
}

async fn lag_zero(server: &TestServer) -> bool {
    eventually(60, async || {
        server
            .metric("fpolicy_sink_lag_events{sink=\"stream\"}")
            .await
            == 0.0
            && server
                .metric("fpolicy_sink_delivered_total{sink=\"stream\"}")
                .await
                > 0.0
    })
    .await
}

/// A bridge on a fresh data directory with `sink` as its one sink.
async fn start_with(sink: NatsSinkConfig) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.cloud_sinks = vec![CloudSinkConfig::Nats(sink)];
    (TestServer::start(cfg).await, dir)
}

/// `count` events through a bridge with `sink`: each in the stream once.
async fn every_event_once(nats: &Nats, sink: NatsSinkConfig, count: u64) {
    let (mut server, _dir) = start_with(sink).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(count);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(lag_zero(&server).await, "delivered");
    server.stop().await;
    assert_each_once(nats, count as usize).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_gets_every_event_once_with_its_subject() {
    let nats = Nats::single();
    every_event_once(&nats, sink(&nats, 1), 2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_or_an_uncovered_subject_is_a_clear_error() {
    let nats = Nats::single();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.cloud_sinks = vec![CloudSinkConfig::Nats(NatsSinkConfig {
        create_stream: false,
        ..sink(&nats, 1)
    })];
    let mut server = TestServer::start(cfg.clone()).await;
    let said = eventually(20, async || {
        let (code, body) = http_get(server.admin, "/readyz").await;
        code == 503 && body.contains("FPOLICY") && body.contains("create_stream")
    })
    .await;
    assert!(said, "{}", http_get(server.admin, "/readyz").await.1);
    server.stop().await;
    // A stream that covers other subjects only.
    let js = async_nats::jetstream::new(nats.client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "FPOLICY".into(),
        subjects: vec!["other.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut server = TestServer::start(cfg).await;
    let said = eventually(20, async || {
        let (code, body) = http_get(server.admin, "/readyz").await;
        code == 503 && body.contains("do not cover")
    })
    .await;
    assert!(said, "{}", http_get(server.admin, "/readyz").await.1);
    server.stop().await;
}

/// A stream deleted while the bridge runs: the server answers "no
/// responders", no stream covers the subject any more, so the events are
/// dead letters (counted, kept in the file), not retried for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_removed_while_running_sends_events_to_the_dead_letter_file() {
    let nats = Nats::single();
    let (mut server, dir) = start_with(sink(&nats, 1)).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(100);
    assert!(fpolicy_sim::run(sim.clone()).await.errors.is_empty());
    assert!(lag_zero(&server).await, "delivered before the stream goes");
    let js = async_nats::jetstream::new(nats.client().await);
    js.delete_stream("FPOLICY").await.unwrap();
    sim.session_prefix = "after-delete".into();
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    let dead = eventually(60, async || {
        server
            .metric("fpolicy_sink_dead_letters_total{sink=\"stream\"}")
            .await
            == 100.0
            && server
                .metric("fpolicy_sink_lag_events{sink=\"stream\"}")
                .await
                == 0.0
    })
    .await;
    assert!(
        dead,
        "dead letters {}",
        server
            .metric("fpolicy_sink_dead_letters_total{sink=\"stream\"}")
            .await
    );
    server.stop().await;
    let letters: usize = std::fs::read_dir(dir.path().join("dead-letter"))
        .map(|d| {
            d.flatten()
                .map(|f| {
                    std::fs::read_to_string(f.path())
                        .unwrap_or_default()
                        .lines()
                        .count()
                })
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(
        letters, 100,
        "every refused event is in the dead-letter file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_r3_stream_loses_nothing_when_a_node_is_killed_mid_run() {
    let mut nats = Nats::cluster();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.shutdown.drain_timeout = Duration::from_secs(60);
    cfg.cloud_sinks = vec![CloudSinkConfig::Nats(sink(&nats, 3))];
    let mut server = TestServer::start(cfg).await;
    assert!(
        eventually(30, async || http_get(server.admin, "/readyz").await.0
            == 200)
        .await,
        "the R3 stream is created once the cluster has a leader"
    );
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(6_000);
    sim.rate = Some(1_000);
    let run = tokio::spawn(fpolicy_sim::run(sim));
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.nodes[1].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.nodes[1].restart();
    assert!(run.await.unwrap().errors.is_empty());
    assert!(
        lag_zero(&server).await,
        "delivered after the node came back"
    );
    server.stop().await;
    assert_each_once(&nats, 6_000).await;
}

/// Events made durable, all operations together.
async fn durable_events(admin: std::net::SocketAddr) -> u64 {
    let body = http_get(admin, "/metrics").await.1;
    body.lines()
        .filter(|l| l.starts_with("fpolicy_events_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn stream_messages(nats: &Nats) -> u64 {
    let js = async_nats::jetstream::new(nats.client().await);
    match js.get_stream("FPOLICY").await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

fn config_toml(nats: &Nats) -> String {
    let servers: Vec<String> = nats.urls().iter().map(|u| format!("{u:?}")).collect();
    let mut toml = format!(
        "[events]\nwrite_complete_delay_secs = 0\n[shutdown]\ndrain_timeout_secs = 30\n\
         [[sink]]\nname = \"stream\"\ntype = \"nats\"\nservers = [{}]\ncreate_stream = true\nduplicate_window = \"10m\"\n",
        servers.join(", ")
    );
    if let Some(ca) = &nats.ca {
        toml.push_str(&format!(
            "ca_bundle = {ca:?}\nuser = {:?}\npassword_env = \"NATS_TEST_PASSWORD\"\n",
            nats_server::USER
        ));
    }
    toml
}

fn start_bridge(dir: &std::path::Path, nats: &Nats, extra: &str) -> Proc {
    spawn_with_env(
        dir,
        &dir.join("data"),
        &(config_toml(nats) + extra),
        &[],
        Stdio::null(),
        &[("NATS_TEST_PASSWORD", nats_server::PASSWORD)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_killed_mid_publishing_resends_without_duplicates() {
    let nats = Nats::single();
    let dir = tempfile::tempdir().unwrap();
    // Slow enough that the sink is still publishing when the kill comes.
    let slow = "max_events_per_sec = 1000\n";
    let mut p = start_bridge(dir.path(), &nats, slow);
    ready(&p).await;
    let mut sim = fpolicy_sim::SimConfig::new(p.addr);
    sim.count = Some(10_000);
    let report = fpolicy_sim::run(sim).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Every event durable, the sink part-way: kill -9.
    assert!(eventually(30, async || durable_events(p.admin).await == 10_000).await);
    let published = stream_messages(&nats).await;
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    assert!(
        published > 0 && published < 10_000,
        "killed mid-publishing ({published} published)"
    );
    let mut p = start_bridge(dir.path(), &nats, "");
    ready(&p).await;
    let done = eventually(60, async || stream_messages(&nats).await >= 10_000).await;
    p.child.kill().unwrap();
    let _ = p.child.wait();
    assert!(done, "delivered after the restart");
    // What was acknowledged to ONTAP was durable; what was resent after
    // the kill was dropped by the server as a duplicate.
    assert_each_once(&nats, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_a_user_with_a_password() {
    let nats = Nats::secured();
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_bridge(dir.path(), &nats, "");
    ready(&p).await;
    let mut sim = fpolicy_sim::SimConfig::new(p.addr);
    sim.count = Some(500);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    let done = eventually(30, async || {
        metric(p.admin, "fpolicy_sink_delivered_total{sink=\"stream\"}").await >= 500.0
    })
    .await;
    assert!(done, "delivered over TLS with a password");
    p.child.kill().unwrap();
    let _ = p.child.wait();
    assert_each_once(&nats, 500).await;
    // A wrong password: the sink is down, and says why.
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_with_env(
        dir.path(),
        &dir.path().join("data"),
        &config_toml(&nats),
        &[],
        Stdio::null(),
        &[("NATS_TEST_PASSWORD", "wrong")],
    );
    let said = eventually(30, async || {
        if tokio::net::TcpStream::connect(p.admin).await.is_err() {
            return false;
        }
        let (code, body) = http_get(p.admin, "/readyz").await;
        code == 503 && body.contains("stream")
    })
    .await;
    let mut p = p;
    p.child.kill().unwrap();
    let _ = p.child.wait();
    assert!(said, "not ready, naming the sink");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_above_the_clients_default_ack_bound_does_not_stall() {
    // async-nats allows 5,000 acks in flight unless told otherwise; a
    // larger window once stalled the sink for good.
    let nats = Nats::single();
    let wide = NatsSinkConfig {
        max_in_flight: 8192,
        ..sink(&nats, 1)
    };
    every_event_once(&nats, wide, 12_000).await;
}
