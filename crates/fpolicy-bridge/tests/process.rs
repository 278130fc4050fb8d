//! The `fpolicy-bridge` binary as a process: kill -9 and restart, SIGTERM
//! drain, back pressure and a full spool, and the CLI commands.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use fpolicy_proto::{Message, ProtocolVersion, ReqType, sample};

use common::process::*;

const SYNC: &str =
    "[server.engines]\nav = \"synchronous\"\n[events]\nwrite_complete_delay_secs = 0\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path(), SYNC, &[], Stdio::null());
    ready(&p).await;
    let mut c = RawClient::session(p.addr, "av", "crash-1").await;
    // Stream requests with a window of 64 and note every answer.
    let mut acked = HashSet::new();
    let mut next = 1u64;
    let mut outstanding = 0;
    while acked.len() < 3_000 {
        while outstanding < 64 {
            let req = sample::screen_request(
                next,
                ReqType::NfsWr,
                &format!("/d/f{next}"),
                ProtocolVersion::V2_0,
            );
            c.send(&Message::ScreenReq(req)).await;
            next += 1;
            outstanding += 1;
        }
        match c.recv(Duration::from_secs(10)).await {
            Some(Message::ScreenResp(r)) => {
                acked.insert(r.req_id);
                outstanding -= 1;
            }
            other => panic!("expected SCREEN_RESP, got {other:?}"),
        }
    }
    // Mid-stream: more requests in flight, then SIGKILL.
    for _ in 0..200 {
        let req = sample::screen_request(
            next,
            ReqType::NfsWr,
            &format!("/d/f{next}"),
            ProtocolVersion::V2_0,
        );
        c.send(&Message::ScreenReq(req)).await;
        next += 1;
    }
    while let Some(Message::ScreenResp(r)) = c.recv(Duration::from_millis(5)).await {
        acked.insert(r.req_id);
    }
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    let p2 = spawn(dir.path(), SYNC, &[], Stdio::null());
    ready(&p2).await;
    let committed = metric(p2.admin, "fpolicy_spool_committed_seq").await;
    assert!(
        committed >= acked.len() as f64,
        "every acknowledged request is in the spool"
    );
    assert!(
        eventually(20, async || metric(
            p2.admin,
            "fpolicy_sink_lag_events{sink=\"jsonl\"}"
        )
        .await
            == 0.0)
        .await
    );
    let mut p2 = p2;
    let _ = Command::new("kill")
        .args(["-TERM", &p2.child.id().to_string()])
        .status();
    assert!(p2.child.wait().unwrap().success());
    let delivered: HashSet<u64> = read_events(&data(dir.path()))
        .iter()
        .map(|e| e["metadata"]["req_id"].as_u64().unwrap())
        .collect();
    let missing: Vec<_> = acked.iter().filter(|id| !delivered.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing after kill -9",
        missing.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_write_complete_state_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let slow = "[events]\nwrite_complete_delay_secs = 60\nmax_hold_secs = 600\n";
    let mut p = spawn(dir.path(), slow, &[], Stdio::null());
    ready(&p).await;
    let mut c = RawClient::session(p.addr, "audit", "wc-crash").await;
    for (id, rt, size) in [
        (1, ReqType::NfsCreat, 0),
        (2, ReqType::NfsWr, 10),
        (3, ReqType::NfsWr, 20),
    ] {
        let mut req = sample::screen_request(id, rt, "/pending.bin", ProtocolVersion::V2_0);
        req.common.file_size = size;
        c.send(&Message::ScreenReq(req)).await;
    }
    assert!(
        eventually(10, async || metric(p.admin, "fpolicy_spool_committed_seq")
            .await
            == 3.0)
        .await
    );
    assert!(
        eventually(10, async || metric(
            p.admin,
            "fpolicy_sink_pending_paths{sink=\"jsonl\"}"
        )
        .await
            == 1.0)
        .await
    );
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    assert!(
        read_events(&data(dir.path())).is_empty(),
        "held, not yet emitted"
    );

    let mut p2 = spawn(
        dir.path(),
        "[events]\nwrite_complete_delay_secs = 0.2\n",
        &[],
        Stdio::null(),
    );
    ready(&p2).await;
    assert!(
        eventually(10, async || metric(
            p2.admin,
            "fpolicy_sink_delivered_total{sink=\"jsonl\"}"
        )
        .await
            == 1.0)
        .await
    );
    let _ = Command::new("kill")
        .args(["-TERM", &p2.child.id().to_string()])
        .status();
    assert!(p2.child.wait().unwrap().success());
    let events = read_events(&data(dir.path()));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["operation_type"], "create");
    assert_eq!(events[0]["file_size"], 20);
    assert_eq!(events[0]["metadata"]["coalesced"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(
        dir.path(),
        "[events]\nwrite_complete_delay_secs = 5\n",
        &[],
        Stdio::null(),
    );
    ready(&p).await;
    // The container health check: exit 0 while serving.
    let health = |admin: SocketAddr| {
        Command::new(BIN)
            .args(["health", "--admin", &admin.to_string()])
            .output()
            .unwrap()
    };
    let out = health(p.admin);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready (server)\n");
    let mut sim = fpolicy_sim::SimConfig::new(p.addr);
    sim.nodes = 2;
    sim.count = Some(20_000);
    let report = fpolicy_sim::run(sim).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Coalescing holds some paths; a graceful stop emits them.
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = p.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    // Nothing listens any more: exit 1 with the reason.
    let out = health(p.admin);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&p.admin.to_string()),
        "{out:?}"
    );
    let events = read_events(&data(dir.path()));
    let total: u64 = events
        .iter()
        .map(|e| e["metadata"]["coalesced"].as_u64().unwrap_or(1))
        .sum();
    assert_eq!(
        total, 20_000,
        "every notification is in the files (some coalesced)"
    );
    let log = server_log(dir.path());
    assert!(
        log.contains("SIGTERM") && log.contains("sink drained"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sink_applies_back_pressure_then_a_full_spool_drops_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[spool]\nsegment_bytes = 65536\ncapacity_bytes = 262144\nhigh_watermark_events = 50\nlow_watermark_events = 10\n[events]\nwrite_complete_delay_secs = 0\n";
    // stdout is a pipe nobody reads: the sink blocks once it is full.
    let mut p = spawn(dir.path(), toml, &["--sink", "stdout"], Stdio::piped());
    ready(&p).await;
    let mut c = RawClient::session(p.addr, "audit", "bp").await;
    let mut applied = false;
    for id in 1..=3_000u64 {
        let req = sample::screen_request(
            id,
            ReqType::NfsWr,
            &format!("/bp/{id}"),
            ProtocolVersion::V2_0,
        );
        c.send(&Message::ScreenReq(req)).await;
        if !applied
            && let Some(Message::BackPressureApply(b)) = c.recv(Duration::from_millis(1)).await
        {
            assert_eq!(b.session_id, "bp");
            applied = true;
        }
    }
    if !applied {
        applied = matches!(
            c.recv(Duration::from_secs(5)).await,
            Some(Message::BackPressureApply(_))
        );
    }
    assert!(applied, "BACK_PRESSURE_APPLY sent to the session");
    assert!(
        eventually(10, async || metric(p.admin, "fpolicy_events_dropped_total")
            .await
            > 0.0)
        .await,
        "full spool drops"
    );
    assert_eq!(metric(p.admin, "fpolicy_back_pressure_active").await, 1.0);
    // Read the pipe: the sink catches up and back pressure is removed.
    let mut out = p.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    assert!(matches!(
        c.recv(Duration::from_secs(15)).await,
        Some(Message::BackPressureRem(_))
    ));
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    assert!(p.child.wait().unwrap().success());
    reader.join().unwrap().unwrap();
    let log = server_log(dir.path());
    assert!(
        log.contains("spool is full"),
        "a loud log line for the drop"
    );
}

#[test]
fn config_default_prints_and_checks_and_bad_files_explain() {
    let out = Command::new(BIN)
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, &out.stdout).unwrap();
    let check = Command::new(BIN)
        .args(["config", "check"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    std::fs::write(&f, "[server]\nlisten_port = 1\n").unwrap();
    let check = Command::new(BIN)
        .args(["config", "check"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("listen_port"));
    let v = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("fpolicy-bridge "));
}

#[test]
fn query_filters_by_time_prefix_and_operation_and_spool_stats_reports() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    std::fs::create_dir_all(&events).unwrap();
    let line = |ts: &str, op: &str, path: &str| {
        format!(
            "{{\"event_id\":\"x\",\"operation_type\":\"{op}\",\"file_path\":\"{path}\",\"volume_name\":\"v\",\"svm_name\":\"s\",\"timestamp\":\"{ts}\",\"file_size\":1,\"metadata\":{{}}}}\n"
        )
    };
    std::fs::write(
        events.join("fpolicy_events_2026-11-26.jsonl"),
        line("2026-11-26T23:59:59.000000Z", "create", "/legal/a")
            + &line("2026-11-26T10:00:00.000000Z", "write", "/legal/b"),
    )
    .unwrap();
    std::fs::write(
        events.join("fpolicy_events_2026-11-27.jsonl"),
        line("2026-11-27T00:00:01.000000Z", "delete", "/legal/c")
            + "not json\n"
            + &line("2026-11-27T00:00:02.000000Z", "create", "/hr/d"),
    )
    .unwrap();
    let q = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["query", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let all = q(&["--from", "2026-11-26T12:00:00Z", "--to", "2026-11-28"]);
    assert_eq!(all.lines().count(), 3);
    let legal = q(&[
        "--from",
        "2026-11-26",
        "--to",
        "2026-11-28",
        "--path-prefix",
        "/legal/",
        "--op",
        "create",
        "--op",
        "delete",
    ]);
    assert_eq!(legal.lines().count(), 2);
    assert!(legal.contains("/legal/a") && legal.contains("/legal/c"));
    let limited = q(&["--from", "2026-11-26", "--to", "2026-11-28", "--limit", "1"]);
    assert_eq!(limited.lines().count(), 1);
    let bad = Command::new(BIN)
        .args(["query", "--from", "yesterday", "--to", "2026-11-28"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // No spool here (only JSON Lines files): an error, and nothing created.
    let stats = Command::new(BIN)
        .args(["spool", "stats", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(stats.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stats.stderr).contains("no spool at"));
    assert!(!dir.path().join("spool").exists() && !dir.path().join("LOCK").exists());
}

#[test]
fn routes_as_cloudformation_rules_and_config_from_the_environment() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/use-cases.toml");
    let out = Command::new(BIN)
        .args(["routes", "cloudformation", "--config", cfg])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules = v["Resources"].as_object().unwrap();
    assert_eq!(rules.len(), 17, "one rule per use case");
    let legal = &rules["RouteLegalComplianceRule"];
    assert_eq!(legal["Type"], "AWS::Events::Rule");
    assert_eq!(legal["Properties"]["EventBusName"]["Ref"], "EventBusName");
    assert_eq!(legal["Properties"]["Targets"][0]["Arn"]["Ref"], "TargetArn");
    assert_eq!(
        legal["Properties"]["Name"]["Fn::Sub"],
        "${RuleNamePrefix}-legal-compliance"
    );
    assert_eq!(v["AWSTemplateFormatVersion"], "2010-09-09");
    // By default a rule matches the route names the bridge put on the event.
    assert_eq!(
        legal["Properties"]["EventPattern"],
        serde_json::json!({
            "source": ["fsxn.fpolicy"],
            "detail-type": ["FPolicy File Operation"],
            "detail": {"metadata": {"routes": ["legal-compliance"]}}
        })
    );
    // Or the route's conditions, for events that did not pass the bridge.
    let out = Command::new(BIN)
        .args([
            "routes",
            "cloudformation",
            "--match",
            "conditions",
            "--config",
            cfg,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["Resources"]["RouteLegalComplianceRule"]["Properties"]["EventPattern"]["detail"]["operation_type"],
        serde_json::json!(["create", "write", "rename", "delete"])
    );
    // The whole configuration can come from FPOLICY_BRIDGE_CONFIG_TOML.
    let out = Command::new(BIN)
        .args(["routes", "test", "/legal/a.pdf", "--op", "create"])
        .env(
            "FPOLICY_BRIDGE_CONFIG_TOML",
            std::fs::read_to_string(cfg).unwrap(),
        )
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["routes"], serde_json::json!(["legal-compliance"]));
    // Two routes that give one rule name: refused, not silently merged.
    let dir = tempfile::tempdir().unwrap();
    let clash = dir.path().join("clash.toml");
    std::fs::write(
        &clash,
        "[[sink]]\nname = \"bus\"\ntype = \"eventbridge\"\nevent_bus_name = \"b\"\n\
         [[route]]\nname = \"a b\"\nsuffixes = [\".pdf\"]\nsinks = [\"bus\"]\n\
         [[route]]\nname = \"a-b\"\nsuffixes = [\".doc\"]\nsinks = [\"bus\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["routes", "cloudformation", "--config"])
        .arg(&clash)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rename one"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--config` and `--data-dir` are accepted before or after the
/// subcommand, for every command (`health` included).
#[test]
fn global_options_go_anywhere_on_the_command_line() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/use-cases.toml");
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let before = run(&["--config", cfg, "routes", "test", "/legal/a.pdf"]);
    let middle = run(&["routes", "--config", cfg, "test", "/legal/a.pdf"]);
    let after = run(&["routes", "test", "/legal/a.pdf", "--config", cfg]);
    assert_eq!(before, middle);
    assert_eq!(before, after);
    // A data dir given after the subcommand is the one used.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["spool", "stats", "--data-dir"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
    // health reads the admin address from the configuration.
    let toml = dir.path().join("c.toml");
    std::fs::write(&toml, "[admin]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["health", "--config"])
        .arg(&toml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"),
        "{out:?}"
    );
}
