//! S3 Access Point polling against moto's S3: baseline and change
//! detection, pagination, restart without re-emitting, HYBRID dedup with
//! FPolicy events, an unreachable bucket. scripts/test.sh starts moto.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use fpolicy_bridge::config::{Config, PollConfig, TriggerMode};
use fpolicy_proto::{Message, ProtocolVersion, ReqType, sample};

fn moto() -> String {
    std::env::var("FPOLICY_MOTO_ENDPOINT")
        .expect("FPOLICY_MOTO_ENDPOINT is not set: run scripts/test.sh, which starts moto server")
}

fn bucket_name(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!("fpb-{tag}-{}-{n}", std::process::id())
}

async fn s3() -> aws_sdk_s3::Client {
    fpolicy_poll::s3::client(Some(&moto())).await
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

fn poll_config(bucket: &str) -> PollConfig {
    PollConfig {
        name: "legal".into(),
        access_point: None,
        bucket: bucket.into(),
        prefix: "legal/".into(),
        prefixes: vec![],
        suffixes: vec![".pdf".into()],
        volume_name: "vol1".into(),
        svm_name: "svm1".into(),
        path_prefix: "/".into(),
        interval: Some(std::time::Duration::from_secs(1)),
        business_hours: None,
        business_interval: None,
        off_hours_interval: None,
        emit_existing: false,
        endpoint_url: Some(moto()),
    }
}

fn config(dir: &std::path::Path, mode: TriggerMode, poll: PollConfig) -> Config {
    let mut cfg = base_config(dir);
    cfg.trigger.mode = mode;
    cfg.trigger.clock_skew = std::time::Duration::from_secs(30);
    cfg.events.default_volume = "vol1".into();
    cfg.polls = vec![poll];
    cfg
}

async fn cycles(server: &TestServer) -> f64 {
    server
        .metric("fpolicy_poll_cycles_total{poll=\"legal\"}")
        .await
}

fn poll_events(dir: &std::path::Path) -> Vec<(String, String)> {
    read_events(dir)
        .into_iter()
        .filter(|e| e["metadata"]["origin"] == "poll")
        .map(|e| {
            (
                e["operation_type"].as_str().unwrap().to_owned(),
                e["file_path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_then_create_overwrite_delete_and_restart_without_reemitting() {
    let s3 = s3().await;
    let bucket = bucket_name("cd");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    put(&s3, &bucket, "legal/a.pdf", "v1").await;
    put(&s3, &bucket, "legal/b.pdf", "v1").await;
    put(
        &s3,
        &bucket,
        "legal/notes.txt",
        "ignored by the suffix filter",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(config(
        dir.path(),
        TriggerMode::Polling,
        poll_config(&bucket),
    ))
    .await;
    assert!(eventually(20, async || cycles(&server).await >= 1.0).await);
    assert_eq!(
        server.metric("fpolicy_poll_objects{poll=\"legal\"}").await,
        2.0
    );
    assert_eq!(
        server
            .metric("fpolicy_poll_events_total{poll=\"legal\"}")
            .await,
        0.0,
        "the first run is the baseline"
    );
    put(&s3, &bucket, "legal/new.pdf", "v1").await;
    put(&s3, &bucket, "legal/a.pdf", "version two").await;
    s3.delete_object()
        .bucket(&bucket)
        .key("legal/b.pdf")
        .send()
        .await
        .unwrap();
    assert!(
        eventually(20, async || server
            .metric("fpolicy_poll_events_total{poll=\"legal\"}")
            .await
            == 3.0)
        .await
    );
    server.stop().await;
    let mut got = poll_events(dir.path());
    got.sort();
    assert_eq!(
        got,
        [
            ("create".to_owned(), "/legal/new.pdf".to_owned()),
            ("delete".into(), "/legal/b.pdf".into()),
            ("write".into(), "/legal/a.pdf".into())
        ]
    );
    let first = read_events(dir.path())[0].clone();
    assert!(
        first["metadata"]["s3_key"]
            .as_str()
            .unwrap()
            .starts_with("legal/")
    );
    assert_eq!(first["volume_name"], "vol1");

    // A restart neither forgets nor re-emits.
    let mut server = TestServer::start(config(
        dir.path(),
        TriggerMode::Polling,
        poll_config(&bucket),
    ))
    .await;
    assert!(eventually(20, async || cycles(&server).await >= 2.0).await);
    server.stop().await;
    assert_eq!(poll_events(dir.path()).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_past_a_thousand_keys_emits_each_once() {
    let s3 = s3().await;
    let bucket = bucket_name("pg");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let n = 1_005;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        tasks.spawn(async move { put(&s3, &bucket, &format!("legal/f{i:05}.pdf"), "x").await });
        if tasks.len() >= 16 {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    let dir = tempfile::tempdir().unwrap();
    let mut poll = poll_config(&bucket);
    poll.emit_existing = true;
    let mut server = TestServer::start(config(dir.path(), TriggerMode::Polling, poll)).await;
    assert!(eventually(60, async || cycles(&server).await >= 2.0).await);
    server.stop().await;
    let events = poll_events(dir.path());
    assert_eq!(events.len(), n, "each object once, over two pages");
    let unique: std::collections::HashSet<_> = events.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(unique.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_emits_only_what_fpolicy_missed() {
    let s3 = s3().await;
    let bucket = bucket_name("hy");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(config(
        dir.path(),
        TriggerMode::Hybrid,
        poll_config(&bucket),
    ))
    .await;
    assert!(
        eventually(20, async || cycles(&server).await >= 1.0).await,
        "baseline of an empty bucket"
    );
    // FPolicy reports a and b; c is written through S3 only.
    let mut c = RawClient::session(server.addr, "audit", "hybrid").await;
    for (i, path) in ["/legal/a.pdf", "/legal/b.pdf"].iter().enumerate() {
        let mut req =
            sample::screen_request(i as u64 + 1, ReqType::NfsCreat, path, ProtocolVersion::V2_0);
        req.common.file_size = 2;
        c.send(&Message::ScreenReq(req)).await;
    }
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 2.0)
        .await
    );
    for key in ["legal/a.pdf", "legal/b.pdf", "legal/c.pdf"] {
        put(&s3, &bucket, key, "v1").await;
    }
    assert!(
        eventually(20, async || server
            .metric("fpolicy_poll_suppressed_total{poll=\"legal\"}")
            .await
            == 2.0)
        .await
    );
    assert!(
        eventually(20, async || server
            .metric("fpolicy_poll_events_total{poll=\"legal\"}")
            .await
            == 1.0)
        .await
    );
    let before = cycles(&server).await;
    assert!(eventually(20, async || cycles(&server).await >= before + 2.0).await);
    drop(c);
    server.stop().await;
    assert_eq!(
        poll_events(dir.path()),
        [("create".to_owned(), "/legal/c.pdf".to_owned())],
        "exactly once"
    );
    assert_eq!(read_events(dir.path()).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bucket_is_reported_and_never_stops_fpolicy() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(config(
        dir.path(),
        TriggerMode::Hybrid,
        poll_config("no-such-bucket-fpb"),
    ))
    .await;
    assert!(
        eventually(20, async || server
            .metric("fpolicy_poll_errors_total{poll=\"legal\"}")
            .await
            >= 1.0)
        .await
    );
    let (status, body) = http_get(server.admin, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("legal"), "{body}");
    assert_eq!(server.metric("fpolicy_poll_up{poll=\"legal\"}").await, 0.0);
    let mut c = RawClient::session(server.addr, "audit", "still-flowing").await;
    c.send(&Message::ScreenReq(sample::screen_request(
        1,
        ReqType::NfsCreat,
        "/x",
        ProtocolVersion::V2_0,
    )))
    .await;
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 1.0)
        .await
    );
    drop(c);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_once_prints_what_it_finds_and_changes_nothing() {
    let s3 = s3().await;
    let bucket = bucket_name("once");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    put(&s3, &bucket, "legal/a.pdf", "v1").await;
    put(&s3, &bucket, "legal/b.txt", "filtered").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\n[trigger]\nmode = \"polling\"\n[[poll]]\nname = \"legal\"\nbucket = \"{bucket}\"\nprefix = \"legal/\"\nsuffixes = [\".pdf\"]\nvolume_name = \"vol1\"\nsvm_name = \"svm1\"\nendpoint_url = \"{}\"\n",
            dir.path().join("data"),
            moto()
        ),
    )
    .unwrap();
    let run = || {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_fpolicy-bridge"))
                .args(["poll", "once", "--config"])
                .arg(&cfg)
                .output()
                .unwrap()
        })
    };
    let out = run().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0]["change"].as_str(), lines[0]["file_path"].as_str()),
        (Some("create"), Some("/legal/a.pdf"))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("baseline"));
    // A dry run: nothing stored, so a second run reports the same.
    assert!(!dir.path().join("data/poll/legal.state").exists());
    let again = run().await.unwrap();
    assert_eq!(again.stdout, out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_prefixes_are_listed_at_once_each_with_its_state() {
    let s3 = s3().await;
    let bucket = bucket_name("px");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut poll = poll_config(&bucket);
    poll.prefix = String::new();
    poll.prefixes = vec!["legal/".into(), "finance/".into(), "hr/".into()];
    let mut cfg = config(dir.path(), TriggerMode::Polling, poll);
    cfg.trigger.max_concurrent_prefixes = 2;
    let mut server = TestServer::start(cfg).await;
    assert!(eventually(20, async || cycles(&server).await >= 1.0).await);
    assert_eq!(
        server
            .metric("fpolicy_poll_prefixes_in_flight{poll=\"legal\"}")
            .await,
        2.0,
        "min(3 prefixes, bound 2)"
    );
    put(&s3, &bucket, "legal/a.pdf", "1").await;
    put(&s3, &bucket, "finance/b.pdf", "1").await;
    put(&s3, &bucket, "hr/c.pdf", "1").await;
    put(&s3, &bucket, "other/d.pdf", "not polled").await;
    assert!(
        eventually(20, async || server
            .metric("fpolicy_poll_events_total{poll=\"legal\"}")
            .await
            == 3.0)
        .await
    );
    server.stop().await;
    let mut paths: Vec<String> = poll_events(dir.path())
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    paths.sort();
    assert_eq!(paths, ["/finance/b.pdf", "/hr/c.pdf", "/legal/a.pdf"]);
    for i in 0..3 {
        assert!(dir.path().join(format!("poll/legal.{i}.state")).exists());
    }
}
