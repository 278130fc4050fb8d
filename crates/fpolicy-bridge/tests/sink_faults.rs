//! Cloud sink faults that moto cannot produce (throttling, entries
//! refused for good, the concurrency formula), against a fake SQS and
//! EventBridge endpoint on loopback: no moto and no feature needed, so
//! plain `cargo test` runs them.

mod common;
#[path = "support/fake_aws.rs"]
mod fake_aws;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use common::sinks::{self, cloud_config, send_paths};
use common::*;
use fpolicy_bridge::config::CloudSinkConfig;
use fpolicy_bridge::sink::{EventBridgeSinkConfig, SqsSinkConfig};
use fpolicy_proto::ReqType;

/// A fake SQS/EventBridge endpoint on loopback. The SDK signs every
/// request, so dummy credentials and a region are put in the environment
/// once, before the first test's server reads them.
async fn fake() -> (Arc<fake_aws::FakeAws>, String) {
    static ENV: std::sync::Once = std::sync::Once::new();
    ENV.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            // SAFETY: every test of this binary calls fake() first, so the
            // others wait on the Once instead of reading the environment;
            // nothing else in the process reads it concurrently.
            unsafe { std::env::set_var(k, v) };
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(fake_aws::FakeAws::default());
    tokio::spawn(fake.clone().serve(listener));
    (fake, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_backs_off_and_delivers_everything() {
    let (fake, endpoint) = fake().await;
    // The SDK makes up to 3 attempts per call itself; with one call in
    // flight, 7 throttles make at least one call fail through to the
    // pipeline, which backs off and resends it.
    fake.throttle_first.store(7, Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    cfg.cloud_sinks = vec![CloudSinkConfig::Eventbridge(EventBridgeSinkConfig {
        max_in_flight: 1,
        ..sinks::bus("bus", "b", &endpoint)
    })];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(500);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(
        eventually(60, async || fake.accepted.load(Relaxed) == 500).await,
        "all delivered after throttling"
    );
    let seen = server
        .metric("fpolicy_sink_throttled_total{sink=\"bus\"}")
        .await;
    assert_eq!(
        fake.throttled.load(Relaxed),
        7,
        "every throttle was used up"
    );
    assert!(
        seen >= 1.0,
        "the pipeline saw throttling and backed off ({seen})"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_entries_land_in_the_dead_letter_file() {
    let (fake, endpoint) = fake().await;
    *fake.reject_marker.lock().unwrap() = Some("/poison/".into());
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    cfg.server.max_frame_bytes = 2 << 20;
    cfg.cloud_sinks = vec![CloudSinkConfig::Sqs(sinks::sqs(
        "q",
        "http://127.0.0.1/000000000000/q",
        &endpoint,
    ))];
    let mut server = TestServer::start(cfg).await;
    let huge = format!("/big/{}", "x".repeat(300 * 1024));
    send_paths(
        &server,
        &[
            ("/ok/1", ReqType::NfsCreat),
            ("/poison/2", ReqType::NfsCreat),
            (huge.as_str(), ReqType::NfsCreat),
            ("/ok/3", ReqType::NfsCreat),
        ],
    )
    .await;
    assert!(
        eventually(20, async || server
            .metric("fpolicy_sink_dead_letters_total{sink=\"q\"}")
            .await
            == 2.0)
        .await
    );
    assert!(
        eventually(20, async || server
            .metric("fpolicy_sink_lag_events{sink=\"q\"}")
            .await
            == 0.0)
        .await
    );
    assert_eq!(fake.accepted.load(Relaxed), 2);
    assert_eq!(
        server
            .metric("fpolicy_sink_delivered_total{sink=\"q\"}")
            .await,
        2.0,
        "dead letters are not counted as delivered"
    );
    server.stop().await;
    let dead: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("dead-letter/q.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(dead.len(), 2);
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("InvalidMessageContents")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("256 KiB")), "{reasons:?}");
    assert!(
        dead.iter()
            .all(|d| d["sink"] == "q" && d["event"]["event_id"].is_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_follow_the_concurrency_formula() {
    let (fake, endpoint) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    // Pending calls are many; the API rate (3 calls/s) is the bound.
    cfg.cloud_sinks = vec![CloudSinkConfig::Sqs(SqsSinkConfig {
        max_in_flight: 8,
        api_calls_per_sec: 3.0,
        ..sinks::sqs("q", "http://127.0.0.1/000000000000/q", &endpoint)
    })];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(400);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(eventually(30, async || fake.accepted.load(Relaxed) == 400).await);
    // The last batch's value: never above the rate bound (a small last
    // batch may need fewer calls).
    let in_flight = server.metric("fpolicy_sink_in_flight{sink=\"q\"}").await;
    assert!((1.0..=3.0).contains(&in_flight), "{in_flight}");
    server.stop().await;
}
