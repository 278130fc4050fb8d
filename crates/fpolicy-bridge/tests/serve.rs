//! The server end to end on loopback, with fpolicy-sim and hand-made frames
//! as ONTAP.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use fpolicy_proto::{
    Message, ProtocolVersion, ReqType, RequestStatus, ScreenCancel, ScreenDecision, StatusQuery,
    sample,
};
use fpolicy_sim::workload::Workload;
use fpolicy_sim::{Mode, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_ten_thousand_operations_each_arrive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(base_config(dir.path())).await;
    let mut sim = SimConfig::new(server.addr);
    sim.nodes = 4;
    sim.count = Some(40_000);
    let report = fpolicy_sim::run(sim.clone()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counters.sent, 40_000);
    server.stop().await;

    // What each node sent: the workload is deterministic per (seed, node),
    // and ReqIds count up from node << 40.
    let mut expected: HashMap<u64, (String, String, Option<String>)> = HashMap::new();
    for node in 0..4usize {
        let mut w = Workload::new(sim.seed, node);
        for k in 1..=10_000u64 {
            let op = w.next_operation();
            expected.insert(
                ((node as u64) << 40) + k,
                (op.req_type.as_str().to_owned(), op.path, op.target),
            );
        }
    }
    let events = read_events(dir.path());
    assert_eq!(events.len(), 40_000, "exactly one line per notification");
    let mut ids = HashSet::new();
    for e in &events {
        assert!(
            ids.insert(e["event_id"].as_str().unwrap().to_owned()),
            "duplicate event_id"
        );
        let req_id = e["metadata"]["req_id"].as_u64().unwrap();
        let (req_type, path, target) = expected.remove(&req_id).expect("an expected ReqId, once");
        assert_eq!(e["metadata"]["req_type"], req_type.as_str());
        let renamed = req_type.contains("_REN");
        if renamed {
            assert_eq!(e["previous_path"], path.as_str());
            assert_eq!(e["file_path"].as_str(), target.as_deref());
        } else {
            assert_eq!(e["file_path"], path.as_str());
        }
        assert_eq!(e["metadata"]["engine"], "async");
    }
    assert!(expected.is_empty());
}

fn sync_config(dir: &std::path::Path) -> fpolicy_bridge::config::Config {
    let mut cfg = base_config(dir);
    cfg.server
        .engines
        .insert("av".into(), fpolicy_event::EngineType::Synchronous);
    cfg.screening.deny_extensions = vec!["locky".into()];
    cfg.screening.deny_paths = vec!["/protected/**".into()];
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_engine_gets_allow_deny_and_status_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(sync_config(dir.path())).await;
    let mut c = RawClient::session(server.addr, "av", "sync-1").await;
    let cases = [
        (1u64, "/docs/report.docx", ScreenDecision::Allow),
        (2, "/docs/report.docx.LOCKY", ScreenDecision::Deny),
        (3, "/protected/deep/a.txt", ScreenDecision::Deny),
        (4, "/protectedX/a.txt", ScreenDecision::Allow),
    ];
    for (id, path, _) in &cases {
        let req = sample::screen_request(*id, ReqType::SmbCreat, path, ProtocolVersion::V2_0);
        c.send(&Message::ScreenReq(req)).await;
    }
    let mut answers = HashMap::new();
    while answers.len() < cases.len() {
        match c.recv(Duration::from_secs(5)).await {
            Some(Message::ScreenResp(r)) => {
                assert_eq!(r.req_type, ReqType::SmbCreat, "ReqType echoed");
                answers.insert(r.req_id, r.decision);
            }
            other => panic!("expected SCREEN_RESP, got {other:?}"),
        }
    }
    for (id, _, want) in &cases {
        assert_eq!(answers[id], *want, "req {id}");
    }
    // Answered requests are no longer outstanding: a status query says lost.
    c.send(&Message::StatusQueryReq(StatusQuery {
        req_id: 1,
        req_type: ReqType::SmbCreat,
    }))
    .await;
    match c.recv(Duration::from_secs(5)).await {
        Some(Message::StatusQueryResp(r)) => {
            assert_eq!(r.req_id, 1);
            assert_eq!(r.status, RequestStatus::Lost);
        }
        other => panic!("expected STATUS_QUERY_RESP, got {other:?}"),
    }
    // A cancel for an unknown request is harmless; the session goes on.
    c.send(&Message::ScreenCancel(ScreenCancel {
        req_id: 99,
        req_type: ReqType::SmbCreat,
        reason: "1".into(),
    }))
    .await;
    let req = sample::screen_request(5, ReqType::NfsWr, "/x", ProtocolVersion::V2_0);
    c.send(&Message::ScreenReq(req)).await;
    assert!(
        matches!(c.recv(Duration::from_secs(5)).await, Some(Message::ScreenResp(r)) if r.req_id == 5)
    );
    assert_eq!(
        server
            .metric("fpolicy_screen_responses_total{decision=\"deny\"}")
            .await,
        2.0
    );
    assert_eq!(server.metric("fpolicy_screen_cancels_total").await, 1.0);
    drop(c);
    server.stop().await;
    let events = read_events(dir.path());
    assert_eq!(events.len(), 5);
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e["metadata"]["screening"] == "deny")
        .collect();
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0]["metadata"]["screening_rule"], "extension:locky");
    assert_eq!(
        denied[1]["metadata"]["screening_rule"],
        "glob:/protected/**"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_load_from_the_simulator_is_answered_completely() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(sync_config(dir.path())).await;
    let mut sim = SimConfig::new(server.addr);
    sim.policy_name = "av".into();
    sim.nodes = 4;
    sim.count = Some(8_000);
    sim.mode = Mode::Sync {
        max_outstanding: 256,
    };
    let report = fpolicy_sim::run(sim).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counters.answered, 8_000);
    assert_eq!(report.counters.late_responses, 0);
    server.stop().await;
    assert_eq!(read_events(dir.path()).len(), 8_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_engine_never_gets_a_screen_resp() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(sync_config(dir.path())).await;
    let mut c = RawClient::session(server.addr, "audit", "async-1").await;
    let req = sample::screen_request(1, ReqType::SmbCreat, "/a.locky", ProtocolVersion::V2_0);
    c.send(&Message::ScreenReq(req)).await;
    c.send(&Message::KeepAlive).await;
    assert!(
        c.recv(Duration::from_millis(700)).await.is_none(),
        "no reply to an async engine"
    );
    assert!(
        eventually(5, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 1.0)
        .await
    );
    drop(c);
    server.stop().await;
    let events = read_events(dir.path());
    assert_eq!(events[0]["metadata"]["engine"], "async");
    assert!(events[0]["metadata"].get("screening").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.server.allowed_policies = vec![fpolicy_proto::sample::SAMPLE_POLICY.into(), "audit".into()];
    cfg.server.frame_timeout = Duration::from_secs(1);
    cfg.server.max_frame_bytes = 64 * 1024;
    let mut server = TestServer::start(cfg).await;

    // A healthy session keeps flowing the whole time.
    let mut sim = SimConfig::new(server.addr);
    sim.nodes = 1;
    sim.count = None;
    sim.duration = Some(Duration::from_secs(4));
    sim.rate = Some(2_000);
    let healthy = tokio::spawn(fpolicy_sim::run(sim));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let valid = Message::KeepAlive.to_frame();
    let mut oversized = vec![b'"'];
    oversized.extend_from_slice(&(10_000_000u32).to_be_bytes());
    oversized.push(b'"');
    let mut bad_xml = vec![b'"'];
    let body = b"<?xml version=\"1.0\"?><Header><NotfType>SCREEN_REQ</NotfType><ContentLen>5</ContentLen></Header>\n\n<Fscr";
    bad_xml.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bad_xml.push(b'"');
    bad_xml.extend_from_slice(body);
    let mut garbage_after = valid.clone();
    garbage_after.extend_from_slice(b"GARBAGE GARBAGE");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("wrong quote marker", b"'\x00\x00\x00\x10'".to_vec()),
        ("oversized length", oversized),
        ("undecodable XML", bad_xml),
        ("garbage after a valid frame", garbage_after),
    ];
    for (name, bytes) in cases {
        let mut c = RawClient::session(server.addr, "audit", name).await;
        c.send_raw(&bytes).await;
        assert!(
            c.closed_within(Duration::from_secs(5)).await,
            "{name}: connection closed"
        );
    }
    // A handshake for a foreign policy is refused.
    let mut c = RawClient::connect(server.addr).await;
    c.send(&Message::NegoReq(handshake("someone-else", "x")))
        .await;
    assert!(
        c.recv(Duration::from_secs(5)).await.is_none(),
        "no NEGO_RESP for a foreign policy"
    );
    // Slow loris: half a frame, then silence.
    let mut c = RawClient::session(server.addr, "audit", "loris").await;
    c.send_raw(&valid[..8]).await;
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "slow client closed after frame_timeout_secs"
    );

    let report = healthy.await.unwrap();
    assert!(
        report.errors.is_empty(),
        "the healthy session was disturbed: {:?}",
        report.errors
    );
    let sent = report.counters.sent;
    assert!(sent > 1000);
    assert!(
        server
            .metric("fpolicy_parse_errors_total{kind=\"frame\"}")
            .await
            >= 3.0
    );
    assert!(
        server
            .metric("fpolicy_parse_errors_total{kind=\"message\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        server
            .metric("fpolicy_sessions_closed_total{reason=\"handshake_rejected\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("fpolicy_sessions_closed_total{reason=\"frame_timeout\"}")
            .await,
        1.0
    );
    assert!(
        server
            .metric("fpolicy_sessions_closed_total{reason=\"protocol_error\"}")
            .await
            >= 4.0
    );
    server.stop().await;
    assert_eq!(
        read_events(dir.path()).len() as u64,
        sent,
        "every event of the healthy session arrived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_allowlist_closes_unknown_peers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.server.allowed_peers = vec!["10.0.0.0/8".parse().unwrap()];
    let mut server = TestServer::start(cfg).await;
    let mut c = RawClient::connect(server.addr).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    assert_eq!(
        server
            .metric("fpolicy_connections_rejected_total{reason=\"peer_not_allowed\"}")
            .await,
        1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_complete_coalescing_merges_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.events.write_complete_delay = Duration::from_millis(500);
    let mut server = TestServer::start(cfg).await;
    let mut c = RawClient::session(server.addr, "audit", "wc").await;
    let mut id = 0;
    let mut send = async |c: &mut RawClient, rt: ReqType, path: &str, size: u64| {
        id += 1;
        let mut req = sample::screen_request(id, rt, path, ProtocolVersion::V2_0);
        req.common.file_size = size;
        c.send(&Message::ScreenReq(req)).await;
    };
    send(&mut c, ReqType::NfsCreat, "/a", 0).await;
    send(&mut c, ReqType::NfsWr, "/a", 100).await;
    send(&mut c, ReqType::NfsWr, "/a", 200).await;
    send(&mut c, ReqType::NfsWr, "/b", 7).await;
    send(&mut c, ReqType::NfsDel, "/b", 7).await;
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 3.0)
        .await
    );
    drop(c);
    server.stop().await;
    let events = read_events(dir.path());
    let summary: Vec<(String, String, u64)> = events
        .iter()
        .map(|e| {
            (
                e["operation_type"].as_str().unwrap().into(),
                e["file_path"].as_str().unwrap().into(),
                e["file_size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("write".into(), "/b".into(), 7),
            ("delete".into(), "/b".into(), 7),
            ("create".into(), "/a".into(), 200)
        ]
    );
    assert_eq!(events[2]["metadata"]["coalesced"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(base_config(dir.path())).await;
    assert_eq!(http_get(server.admin, "/healthz").await.0, 200);
    assert_eq!(http_get(server.admin, "/readyz").await.0, 200);
    assert_eq!(http_get(server.admin, "/nope").await.0, 404);
    let (status, body) = http_get(server.admin, "/metrics").await;
    assert_eq!(status, 200);
    for family in [
        "fpolicy_sessions{",
        "fpolicy_frames_total{",
        "fpolicy_events_total{",
        "fpolicy_parse_errors_total{",
        "fpolicy_spool_bytes",
        "fpolicy_sink_lag_events{",
        "fpolicy_spool_fsync_seconds_bucket",
        "fpolicy_back_pressure_active",
        "fpolicy_events_dropped_total",
    ] {
        assert!(body.contains(family), "{family} missing");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_keeps_a_session_and_silence_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = base_config(dir.path());
    cfg.server.idle_timeout = Duration::from_secs(1);
    let mut server = TestServer::start(cfg).await;
    let mut lively = RawClient::session(server.addr, "audit", "lively").await;
    let mut silent = RawClient::session(server.addr, "audit", "silent").await;
    for _ in 0..8 {
        lively.send(&Message::KeepAlive).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        silent.closed_within(Duration::from_secs(3)).await,
        "idle session closed"
    );
    assert!(
        !lively.closed_within(Duration::from_millis(100)).await,
        "a session sending KEEP_ALIVE stays"
    );
    assert_eq!(
        server
            .metric("fpolicy_sessions_closed_total{reason=\"idle_timeout\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("fpolicy_frames_total{type=\"KEEP_ALIVE\"}")
            .await,
        8.0
    );
    drop(lively);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_volume_notifications_and_unknown_req_types_are_counted_not_fatal() {
    use fpolicy_proto::{Alert, Severity, VolNotification, VolumeAction};
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(base_config(dir.path())).await;
    let mut c = RawClient::session(server.addr, "audit", "misc").await;
    c.send(&Message::Alert(Alert {
        session_id: "misc".into(),
        severity: Severity::Fatal,
        message: "disk full".into(),
    }))
    .await;
    c.send(&Message::VolNotification(VolNotification {
        vol_msid: Some(7),
        action: Some(VolumeAction::Unmount),
        is_active: Some(false),
    }))
    .await;
    // A ReqType from a future ONTAP: counted and skipped, the session lives on.
    let frame = Message::ScreenReq(sample::screen_request(
        1,
        ReqType::NfsWr,
        "/x",
        ProtocolVersion::V2_0,
    ))
    .to_frame();
    let text = String::from_utf8(frame[6..].to_vec())
        .unwrap()
        .replace("<ReqType>NFS_WR</ReqType>", "<ReqType>NFS_COPY</ReqType>");
    let mut future = vec![b'"'];
    future.extend_from_slice(&(text.len() as u32).to_be_bytes());
    future.push(b'"');
    future.extend_from_slice(text.as_bytes());
    c.send_raw(&future).await;
    c.send(&Message::ScreenReq(sample::screen_request(
        2,
        ReqType::NfsWr,
        "/y",
        ProtocolVersion::V2_0,
    )))
    .await;
    assert!(
        eventually(5, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 1.0)
        .await
    );
    assert_eq!(
        server
            .metric("fpolicy_alerts_total{severity=\"fatal\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("fpolicy_frames_total{type=\"VOL_NOTFICATION\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .metric("fpolicy_parse_errors_total{kind=\"unknown_req_type\"}")
            .await,
        1.0
    );
    assert!(!c.closed_within(Duration::from_millis(200)).await);
    drop(c);
    server.stop().await;
    assert_eq!(read_events(dir.path())[0]["file_path"], "/y");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outstanding_table_waits_without_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = sync_config(dir.path());
    cfg.server.max_outstanding_per_session = 1;
    let mut server = TestServer::start(cfg).await;
    let mut sim = SimConfig::new(server.addr);
    sim.policy_name = "av".into();
    sim.nodes = 2;
    sim.count = Some(2_000);
    sim.mode = Mode::Sync {
        max_outstanding: 64,
    };
    let report = tokio::time::timeout(Duration::from_secs(60), fpolicy_sim::run(sim))
        .await
        .expect("no deadlock");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counters.answered, 2_000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_events_cost_no_disk_and_filtered_requests_are_still_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = sync_config(dir.path());
    cfg.filters.drop_temp_files = true;
    cfg.filters.exclude_paths = vec!["/scratch/**".into()];
    // UID 1001 is the samples' user; root (0) is a well-known name.
    cfg.filters.exclude_users = vec!["root".into()];
    cfg.screening.deny_users = vec!["mallory".into()];
    cfg.identity.users.insert("666".into(), "mallory".into());
    let mut server = TestServer::start(cfg).await;
    let mut c = RawClient::session(server.addr, "av", "filters").await;
    let cases: [(u64, &str, u32, ScreenDecision); 5] = [
        (1, "/docs/~$report.docx", 1001, ScreenDecision::Allow),
        (2, "/scratch/a/b.bin", 1001, ScreenDecision::Allow),
        (3, "/docs/by-root.txt", 0, ScreenDecision::Allow),
        (4, "/docs/kept.txt", 1001, ScreenDecision::Allow),
        (5, "/docs/by-mallory.txt", 666, ScreenDecision::Deny),
    ];
    for (id, path, uid, _) in &cases {
        let mut req = sample::screen_request(*id, ReqType::NfsCreat, path, ProtocolVersion::V2_0);
        req.common.user = Some(fpolicy_proto::UserIdentity::UnixUid(*uid));
        c.send(&Message::ScreenReq(req)).await;
    }
    let mut answers = HashMap::new();
    while answers.len() < cases.len() {
        match c.recv(Duration::from_secs(5)).await {
            Some(Message::ScreenResp(r)) => {
                answers.insert(r.req_id, r.decision);
            }
            other => panic!("expected SCREEN_RESP, got {other:?}"),
        }
    }
    for (id, path, _, want) in &cases {
        assert_eq!(answers[id], *want, "{path}");
    }
    for (reason, n) in [
        ("temp_file", 1.0),
        ("path", 1.0),
        ("user", 1.0),
        ("client_ip", 0.0),
    ] {
        let got = server
            .metric(&format!(
                "fpolicy_events_filtered_total{{reason=\"{reason}\"}}"
            ))
            .await;
        assert_eq!(got, n, "{reason}");
    }
    assert_eq!(
        server
            .metric("fpolicy_identity_events_total{result=\"resolved\"}")
            .await,
        2.0,
        "root and mallory have names; 1001 is unknown here"
    );
    drop(c);
    server.stop().await;
    let events = read_events(dir.path());
    let paths: Vec<&str> = events
        .iter()
        .map(|e| e["file_path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/docs/kept.txt", "/docs/by-mallory.txt"],
        "only unfiltered events are written"
    );
    assert_eq!(events[1]["metadata"]["user_name"], "mallory");
    assert_eq!(events[1]["metadata"]["screening_rule"], "user:mallory");
}

/// `[sinks.jsonl] format`: the JSON Lines files hold the events in OCSF,
/// ECS or S3 notifications instead of the event object; the s3 format
/// counts what it does not write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_files_in_each_output_format() {
    use fpolicy_event::Format;
    for format in [Format::Ocsf, Format::Ecs, Format::S3] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = base_config(dir.path());
        cfg.sinks.jsonl.format = format;
        cfg.access_points = vec![fpolicy_event::AccessPoint::new(
            &cfg.events.default_volume,
            "vol-ap-ext-s3alias",
            "/",
        )];
        let mut server = TestServer::start(cfg).await;
        let mut sim = fpolicy_sim::SimConfig::new(server.addr);
        sim.count = Some(400);
        assert!(fpolicy_sim::run(sim).await.errors.is_empty());
        let done = eventually(30, async || {
            server
                .metric("fpolicy_sink_lag_events{sink=\"jsonl\"}")
                .await
                == 0.0
        })
        .await;
        assert!(done, "{format:?} written");
        let skipped = server
            .metric("fpolicy_sink_skipped_total{sink=\"jsonl\",reason=\"not_an_object\"}")
            .await;
        server.stop().await;
        let lines = read_events(dir.path());
        match format {
            Format::Ocsf => {
                assert_eq!(lines.len(), 400);
                assert!(lines.iter().all(|l| l["class_uid"] == 1001));
            }
            Format::Ecs => {
                assert_eq!(lines.len(), 400);
                assert!(lines.iter().all(|l| l["ecs"]["version"] == "8.11.0"));
            }
            _ => {
                assert!(skipped > 0.0, "directories and reads are no objects");
                assert_eq!(lines.len() as f64 + skipped, 400.0);
                assert!(
                    lines
                        .iter()
                        .all(|l| l["Records"][0]["s3"]["bucket"]["name"] == "vol-ap-ext-s3alias")
                );
            }
        }
    }
}
