//! Cloud sinks against moto server (SQS, EventBridge); the faults moto
//! cannot produce are in sink_faults.rs. scripts/test.sh starts
//! moto on 127.0.0.1, exports FPOLICY_MOTO_ENDPOINT and dummy AWS
//! credentials, and enables the `aws-integration` feature this target needs.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use common::sinks::{self, cloud_config, send_paths};
use common::*;
use fpolicy_bridge::config::CloudSinkConfig;
use fpolicy_event::RouteConfig;
use fpolicy_proto::ReqType;
use tokio::sync::watch;

const NEEDS_MOTO: &str =
    "FPOLICY_MOTO_ENDPOINT is not set: run scripts/test.sh, which starts moto server";

fn moto() -> String {
    std::env::var("FPOLICY_MOTO_ENDPOINT").expect(NEEDS_MOTO)
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        % 1000
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    fpolicy_bridge::sink::aws_config(Some(endpoint)).await
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let mut req = sqs.create_queue().queue_name(name);
    if name.ends_with(".fifo") {
        req = req.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let url = req
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .unwrap()
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// Receives until `n` messages arrived or `secs` pass; returns (body, attributes) pairs.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
    secs: u64,
) -> Vec<(String, HashMap<String, String>, Option<String>)> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while got.len() < n && tokio::time::Instant::now() < deadline {
        let resp = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId,
            )
            .send()
            .await
            .unwrap();
        for m in resp.messages() {
            let attrs = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let group = m.attributes().and_then(|a| {
                a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                    .cloned()
            });
            got.push((m.body().unwrap_or_default().to_owned(), attrs, group));
            if let Some(h) = m.receipt_handle() {
                let _ = sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(h)
                    .send()
                    .await;
            }
        }
    }
    got
}

fn sqs_sink(name: &str, url: &str, endpoint: &str) -> CloudSinkConfig {
    CloudSinkConfig::Sqs(sinks::sqs(name, url, endpoint))
}

fn bus_sink(name: &str, bus: &str, endpoint: &str) -> CloudSinkConfig {
    CloudSinkConfig::Eventbridge(sinks::bus(name, bus, endpoint))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_standard_and_fifo_with_routing_fan_out() {
    let endpoint = moto();
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let (std_url, _) = create_queue(&sqs, &unique("std")).await;
    let (fifo_url, _) = create_queue(&sqs, &format!("{}.fifo", unique("fifo"))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    cfg.cloud_sinks = vec![
        sqs_sink("std", &std_url, &endpoint),
        sqs_sink("fifo", &fifo_url, &endpoint),
    ];
    cfg.routing.default_sinks = Some(vec!["std".into()]);
    cfg.routes = vec![
        RouteConfig {
            name: "legal".into(),
            path_prefixes: vec!["/legal/".into()],
            suffixes: vec![".pdf".into()],
            sinks: vec!["fifo".into()],
            ..RouteConfig::default()
        },
        RouteConfig {
            name: "pdf".into(),
            suffixes: vec![".pdf".into()],
            sinks: vec!["std".into(), "fifo".into()],
            ..RouteConfig::default()
        },
    ];
    let mut server = TestServer::start(cfg).await;
    send_paths(
        &server,
        &[
            ("/legal/a.pdf", ReqType::NfsCreat), // legal + pdf → fifo, std
            ("/legal/b.txt", ReqType::NfsCreat), // no route → default std
            ("/other/c.pdf", ReqType::SmbCreat), // pdf → std, fifo
            ("/legal/a.pdf", ReqType::NfsWr),    // legal + pdf again, same FIFO group
        ],
    )
    .await;
    let std_msgs = receive(&sqs, &std_url, 4, 20).await;
    let fifo_msgs = receive(&sqs, &fifo_url, 3, 20).await;
    server.stop().await;

    let lines: HashMap<String, serde_json::Value> = read_events(dir.path())
        .into_iter()
        .map(|e| (e["event_id"].as_str().unwrap().to_owned(), e))
        .collect();
    assert_eq!(lines.len(), 4, "JSON Lines keeps every event");
    assert_eq!(std_msgs.len(), 4);
    assert_eq!(fifo_msgs.len(), 3);
    for (body, attrs, _) in std_msgs.iter().chain(&fifo_msgs) {
        let e: serde_json::Value = serde_json::from_str(body).unwrap();
        // The body is exactly the JSON Lines event.
        assert_eq!(&e, &lines[e["event_id"].as_str().unwrap()]);
        assert_eq!(
            attrs["operation_type"],
            e["operation_type"].as_str().unwrap()
        );
        assert_eq!(attrs["volume_name"], e["volume_name"].as_str().unwrap());
        assert_eq!(attrs["svm_name"], e["svm_name"].as_str().unwrap());
    }
    for (body, _, group) in &fifo_msgs {
        let e: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            group.as_deref(),
            e["file_path"].as_str(),
            "FIFO group = file path"
        );
    }
    let first: serde_json::Value = serde_json::from_str(&fifo_msgs[0].0).unwrap();
    assert_eq!(
        first["metadata"]["routes"],
        serde_json::json!(["legal", "pdf"])
    );
    // Per-file order in the FIFO queue: the create before the write.
    let a: Vec<String> = fifo_msgs
        .iter()
        .map(|(b, _, _)| serde_json::from_str::<serde_json::Value>(b).unwrap())
        .filter(|e| e["file_path"] == "/legal/a.pdf")
        .map(|e| e["operation_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(a, ["create", "write"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_to_eventbridge_to_rule_to_sqs_arrives_intact() {
    let endpoint = moto();
    let conf = sdk(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let bus = unique("bus");
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let (url, arn) = create_queue(&sqs, &unique("from-bus")).await;
    let rule = unique("rule");
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["fsxn.fpolicy"], "detail-type": ["FPolicy File Operation"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(Target::builder().id("q").arn(&arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    cfg.cloud_sinks = vec![bus_sink("bus", &bus, &endpoint)];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.nodes = 2;
    sim.count = Some(200);
    let report = fpolicy_sim::run(sim).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let msgs = receive(&sqs, &url, 200, 60).await;
    server.stop().await;
    let lines: HashMap<String, serde_json::Value> = read_events(dir.path())
        .into_iter()
        .map(|e| (e["event_id"].as_str().unwrap().to_owned(), e))
        .collect();
    assert_eq!(msgs.len(), 200);
    let mut ids = HashSet::new();
    for (body, _, _) in &msgs {
        let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(envelope["source"], "fsxn.fpolicy");
        assert_eq!(envelope["detail-type"], "FPolicy File Operation");
        let detail = &envelope["detail"];
        assert_eq!(
            detail,
            &lines[detail["event_id"].as_str().unwrap()],
            "detail is the event object"
        );
        ids.insert(detail["event_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 200);
}

/// `format = "s3"` on an SQS and an EventBridge sink: the SQS bodies are S3
/// event notifications and the bus gets "Object Created" / "Object
/// Deleted" events, which Powertools' data classes read back with the
/// right bucket, decoded key and size; what is no object is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_format_reaches_sqs_and_eventbridge_as_s3_sends_it() {
    let endpoint = moto();
    let conf = sdk(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let (notifications, _) = create_queue(&sqs, &unique("s3-notifications")).await;
    let bus = unique("s3-bus");
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let (from_bus, arn) = create_queue(&sqs, &unique("s3-from-bus")).await;
    let rule = unique("s3-rule");
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"detail-type": ["Object Created", "Object Deleted"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(Target::builder().id("q").arn(&arn).build().unwrap())
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    let volume = cfg.events.default_volume.clone();
    cfg.access_points = vec![fpolicy_event::AccessPoint::new(
        &volume,
        "vol-ap-ext-s3alias",
        "/",
    )];
    cfg.cloud_sinks = vec![
        CloudSinkConfig::Sqs(fpolicy_bridge::sink::SqsSinkConfig {
            format: fpolicy_event::Format::S3,
            ..sinks::sqs("notify", &notifications, &endpoint)
        }),
        CloudSinkConfig::Eventbridge(fpolicy_bridge::sink::EventBridgeSinkConfig {
            format: fpolicy_event::Format::S3,
            ..sinks::bus("bus", &bus, &endpoint)
        }),
    ];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(300);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    // Every event is in the JSON Lines files (the truth) before counting.
    assert!(eventually(30, async || read_events(dir.path()).len() == 300).await);
    let events = read_events(dir.path());
    let is_object = |e: &serde_json::Value| {
        matches!(
            e["operation_type"].as_str(),
            Some("create" | "write" | "delete" | "rename")
        ) && e["metadata"]["file_type"] != "DIR"
    };
    let objects = events.iter().filter(|e| is_object(e)).count();
    let renames = events
        .iter()
        .filter(|e| is_object(e) && e["operation_type"] == "rename")
        .count();
    assert!(
        objects > 50 && renames > 0,
        "{objects} objects, {renames} renames"
    );
    let bodies = receive(&sqs, &notifications, objects, 60).await;
    let bus_events = receive(&sqs, &from_bus, objects + renames, 60).await;
    let skipped = server
        .metric("fpolicy_sink_skipped_total{sink=\"notify\",reason=\"not_an_object\"}")
        .await;
    server.stop().await;
    assert_eq!(bodies.len(), objects, "one notification per object event");
    assert_eq!(
        bus_events.len(),
        objects + renames,
        "a rename is two bus events"
    );
    assert_eq!(
        skipped as usize,
        events.len() - objects,
        "the rest counted as skipped"
    );
    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    let truth: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let truth = write("events.jsonl", &truth);
    let truth = truth.to_str().unwrap();
    let records = (objects + renames).to_string();
    let sqs_bodies: Vec<String> = bodies.into_iter().map(|(b, ..)| b).collect();
    check_formats(
        "s3-sqs",
        &write("sqs.jsonl", &sqs_bodies),
        &["--events", truth, "--expect", &records, "--unique-ids"],
    );
    let bus_bodies: Vec<String> = bus_events.into_iter().map(|(b, ..)| b).collect();
    check_formats(
        "s3-eventbridge",
        &write("bus.jsonl", &bus_bodies),
        &["--events", truth, "--expect", &records, "--unique-ids"],
    );
}

/// A TCP proxy that can cut every connection and refuse new ones.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if *cut_rx.borrow() {
                    continue; // dropped: connection reset
                }
                let mut rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy { addr, cut }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_run_delays_but_loses_nothing() {
    let endpoint = moto();
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let (url, _) = create_queue(&sqs, &unique("outage")).await;
    let upstream: SocketAddr = endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let via_proxy = format!("http://{}", proxy.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    cfg.cloud_sinks = vec![sqs_sink("q", &url, &via_proxy)];
    let mut server = TestServer::start(cfg).await;
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = None;
    sim.duration = Some(Duration::from_secs(6));
    sim.rate = Some(100);
    let run = tokio::spawn(fpolicy_sim::run(sim));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.cut.send_replace(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Ingestion went on while the queue was unreachable.
    let during = server.metric("fpolicy_spool_committed_seq").await;
    assert!(
        during > 250.0,
        "ingestion continued during the outage ({during})"
    );
    // The SDK retries on its own first: the sink sees the failure after its
    // retries are spent, which under load can take longer than the 3 s.
    let failed = eventually(20, async || {
        server.metric("fpolicy_sink_errors_total{sink=\"q\"}").await > 0.0
    })
    .await;
    assert!(failed, "the sink saw the outage");
    proxy.cut.send_replace(false);
    let report = run.await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let sent = report.counters.sent as usize;
    assert!(
        eventually(60, async || server
            .metric("fpolicy_sink_lag_events{sink=\"q\"}")
            .await
            == 0.0)
        .await,
        "backlog drained"
    );
    server.stop().await;
    let expected: HashSet<String> = read_events(dir.path())
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len(), sent);
    // Duplicates (same event_id) are allowed; keep receiving until every
    // id has arrived or time is up.
    let mut ids = HashSet::new();
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !expected.is_subset(&ids) && tokio::time::Instant::now() < deadline {
        for (b, _, _) in receive(&sqs, &url, 10, 2).await {
            received += 1;
            ids.insert(
                serde_json::from_str::<serde_json::Value>(&b).unwrap()["event_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let missing = expected.difference(&ids).count();
    let foreign = ids.difference(&expected).count();
    assert_eq!(
        (missing, foreign),
        (0, 0),
        "{received} messages received for {sent} events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_shows_in_readyz_and_recovers_when_created() {
    let endpoint = moto();
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let name = unique("late");
    let url = format!("{endpoint}/123456789012/{name}");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cloud_config(dir.path());
    cfg.cloud_sinks = vec![sqs_sink("late", &url, &endpoint)];
    let mut server = TestServer::start(cfg).await;
    send_paths(&server, &[("/a", ReqType::NfsCreat)]).await;
    assert!(
        eventually(15, async || http_get(server.admin, "/readyz").await.0
            == 503)
        .await
    );
    let (status, body) = http_get(server.admin, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("late"), "{body}");
    assert_eq!(server.metric("fpolicy_sink_up{sink=\"late\"}").await, 0.0);
    // The container health check asks only "takes events": still healthy,
    // so ECS does not replace a task whose spool holds the events.
    let admin = server.admin;
    let (server_scope, full) = tokio::task::spawn_blocking(move || {
        let probe = |path| fpolicy_bridge::admin::probe(admin, path, Duration::from_secs(3));
        (probe("/readyz?scope=server"), probe("/readyz"))
    })
    .await
    .unwrap();
    assert_eq!(server_scope.unwrap(), "ready (server)");
    match full {
        Err(fpolicy_bridge::admin::ProbeError::NotOk { status, body, .. }) => {
            assert_eq!(status, 503);
            assert!(body.contains("late"), "{body}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    let (real_url, _) = create_queue(&sqs, &name).await;
    assert_eq!(real_url, url, "moto's URL scheme as assumed");
    assert!(
        eventually(30, async || http_get(server.admin, "/readyz").await.0
            == 200)
        .await,
        "ready once the queue exists"
    );
    assert_eq!(receive(&sqs, &url, 1, 20).await.len(), 1);
    server.stop().await;
}
