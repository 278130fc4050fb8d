//! `fpolicy-bridge ontap …` as a process against the fake ONTAP.

#[path = "../../fpolicy-ontap/tests/support/fake_ontap.rs"]
mod fake_ontap;

use std::process::Command;
use std::sync::Arc;

use fake_ontap::*;

const BIN: &str = env!("CARGO_BIN_EXE_fpolicy-bridge");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_status_servers_and_unregister() {
    let c = cluster().await;
    // An FPolicy server for the simulated nodes to connect to.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(fpolicy_sim::discard::serve(
        listener,
        fpolicy_sim::discard::DiscardConfig { reply: false },
        Arc::default(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[ontap]\ncluster_url = \"{}\"\nusername = \"{USER}\"\npassword_file = {:?}\nsvm = \"{SVM_NAME}\"\nca_bundle = {:?}\nconnect_timeout_secs = 10\n",
            c.url, c.password_file, c.ca
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let cfg = cfg.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(BIN)
                    .arg("ontap")
                    .arg("--config")
                    .arg(&cfg)
                    .args(&args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let out = run(&["register", "--server", "127.0.0.1"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("created engine") && text.contains("cluster1-02 -> 127.0.0.1: connected"),
        "{text}"
    );
    let again = run(&["register"]).await;
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("no change"));
    let out = run(&["add-server", "127.0.0.5"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "primary servers: 127.0.0.1, 127.0.0.5"
    );
    let out = run(&["status"]).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["engine"]["primary_servers"],
        serde_json::json!(["127.0.0.1", "127.0.0.5"])
    );
    assert_eq!(status["policy"]["enabled"], true);
    let out = run(&["remove-server", "127.0.0.5"]).await;
    assert!(out.status.success());
    // ONTAP's own error code and message reach the user.
    c.fake
        .fail_next_engine_patch
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let out = run(&["set-servers", "127.0.0.7"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("9765040") && err.contains("re-enabled"),
        "{err}"
    );
    let out = run(&["unregister"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted engine fpolicy_bridge"));
    // Names and port from the command line.
    let out = run(&[
        "register",
        "--server",
        "127.0.0.1",
        "--policy",
        "p2",
        "--engine",
        "e2",
        "--event-prefix",
        "ev2",
        "--port",
        &port.to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let st = c.fake.state.lock().unwrap();
        assert_eq!(st.policies["p2"]["engine"]["name"], "e2");
        assert!(st.events.contains_key("ev2_cifs"));
        assert_eq!(st.engines["e2"]["port"], port);
    }
    // User name and CA bundle from the environment (how the container gets them).
    let env_cfg = dir.path().join("env.toml");
    std::fs::write(
        &env_cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[ontap]\ncluster_url = \"{}\"\nusername_env = \"TEST_ONTAP_USER\"\npassword_env = \"TEST_ONTAP_PASSWORD\"\nsvm = \"{SVM_NAME}\"\nca_bundle_pem_env = \"TEST_ONTAP_CA\"\n",
            c.url
        ),
    )
    .unwrap();
    let ca = std::fs::read_to_string(&c.ca).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["ontap", "--config"])
            .arg(&env_cfg)
            .arg("status")
            .env("TEST_ONTAP_USER", USER)
            .env("TEST_ONTAP_PASSWORD", PASSWORD)
            .env("TEST_ONTAP_CA", ca)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Wrong credentials: ONTAP's 401.
    std::fs::write(&c.password_file, "nope").unwrap();
    let out = run(&["status"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn errors_are_said_in_words_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password = dir.path().join("pw");
    std::fs::write(&password, "x\n").unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ontap]\ncluster_url = \"https://127.0.0.1:{port}\"\nusername = \"u\"\nsvm = \"s\"\ninsecure = true\npassword_file = {password:?}\n"
        ),
    )
    .unwrap();
    // Nothing listens there: a sentence, not the HTTP client's debug dump.
    let out = Command::new(BIN)
        .args(["ontap", "status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot connect to https://127.0.0.1:") && err.contains("connection refused"),
        "{err}"
    );
    assert!(
        !err.contains("ConnectError") && !err.contains("Os {"),
        "{err}"
    );
    // An OS error is said once.
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}
