//! Registration against the fake ONTAP (HTTPS with a generated CA, state,
//! ONTAP's semantics, simulated nodes connecting to the registered servers,
//! which here are fpolicy-sim's discard servers answering the handshake).

#[path = "support/fake_ontap.rs"]
mod fake_ontap;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use fake_ontap::*;
use fpolicy_ontap::types::FileOperations;
use fpolicy_ontap::*;

fn endpoint(c: &Cluster) -> Endpoint {
    Endpoint {
        url: c.url.clone(),
        username: USER.into(),
        password: PASSWORD.into(),
        ca_bundle: Some(c.ca.clone()),
        ca_pem: None,
        insecure: false,
        timeout: Duration::from_secs(5),
    }
}

fn registration(port: u16) -> Registration {
    Registration {
        svm: SVM_NAME.into(),
        policy: "fpolicy_bridge".into(),
        engine: "fpolicy_bridge".into(),
        event_prefix: "fpolicy_bridge".into(),
        port,
        protocols: vec!["cifs".into(), "nfsv3".into(), "nfsv4".into()],
        operations: FileOperations {
            create: true,
            write: true,
            rename: true,
            delete: true,
            create_dir: true,
            delete_dir: true,
            rename_dir: true,
            close: true,
            ..FileOperations::default()
        },
        volumes: vec!["*".into()],
        engine_type: "asynchronous".into(),
        ssl_option: "no_auth".into(),
        mandatory: false,
        priority: 3,
        keep_alive_interval: "PT2M".into(),
        send_buffer: 1024 * 1024,
        persistent_store: None,
    }
}

/// An FPolicy server (fpolicy-sim's discard server) on `ip`, port `port` (0: any).
async fn fpolicy_server(ip: &str, port: u16) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(fpolicy_sim::discard::serve(
        listener,
        fpolicy_sim::discard::DiscardConfig { reply: false },
        Arc::default(),
    ));
    addr
}

#[tokio::test]
async fn register_from_scratch_then_again_changes_nothing_then_unregister() {
    let c = cluster().await;
    let server = fpolicy_server("127.0.0.1", 0).await;
    let control = Control::connect(
        OntapClient::new(&endpoint(&c)).unwrap(),
        registration(server.port()),
    )
    .await
    .unwrap();
    let changes = control
        .register(&ServerChange::Set(vec!["127.0.0.1".into()]))
        .await
        .unwrap();
    assert!(
        changes.iter().any(|c| c.starts_with("created engine")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.contains("created and enabled policy")),
        "{changes:?}"
    );
    {
        let st = c.fake.state.lock().unwrap();
        let engine = &st.engines["fpolicy_bridge"];
        assert_eq!(engine["type"], "asynchronous");
        assert_eq!(engine["format"], "xml");
        assert_eq!(engine["buffer_size"]["send_buffer"], 1048576);
        let policy = &st.policies["fpolicy_bridge"];
        assert_eq!(
            (
                policy["enabled"].clone(),
                policy["priority"].clone(),
                policy["mandatory"].clone()
            ),
            (true.into(), 3.into(), false.into())
        );
        assert_eq!(st.events.len(), 3);
        assert_eq!(
            st.events["fpolicy_bridge_nfsv3"]["file_operations"]["rename"],
            true
        );
    }
    let conns = control
        .wait_connected(&["127.0.0.1".into()], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        conns.iter().filter(|c| c.state == "connected").count(),
        NODES.len()
    );

    let writes_before = c.fake.state.lock().unwrap().log.len();
    let again = control.register(&ServerChange::Keep).await.unwrap();
    assert!(again.is_empty(), "idempotent: {again:?}");
    assert_eq!(
        c.fake.state.lock().unwrap().log.len(),
        writes_before,
        "no write at all"
    );

    let status = control.status().await.unwrap();
    assert_eq!(
        status.engine.unwrap().primary_servers.unwrap(),
        ["127.0.0.1"]
    );
    assert_eq!(status.connections.len(), NODES.len());

    let removed = control.unregister().await.unwrap();
    assert_eq!(removed.len(), 1 + 1 + 3 + 1, "{removed:?}");
    let st = c.fake.state.lock().unwrap();
    assert!(st.engines.is_empty() && st.events.is_empty() && st.policies.is_empty());
}

#[tokio::test]
async fn two_instances_add_and_remove_themselves_without_overwriting_each_other() {
    let c = cluster().await;
    let a = fpolicy_server("127.0.0.1", 0).await;
    // More instances: same port, other loopback addresses.
    fpolicy_server("127.0.0.2", a.port()).await;
    fpolicy_server("127.0.0.3", a.port()).await;
    let reg = registration(a.port());
    let one = Control::connect(OntapClient::new(&endpoint(&c)).unwrap(), reg.clone())
        .await
        .unwrap();
    let two = Control::connect(OntapClient::new(&endpoint(&c)).unwrap(), reg)
        .await
        .unwrap();
    one.register(&ServerChange::Add(vec!["127.0.0.1".into()]))
        .await
        .unwrap();
    // Two at once, each read-modify-writing the list: the verify loop
    // keeps both.
    let (add_one, add_two) = (
        ServerChange::Add(vec!["127.0.0.2".into()]),
        ServerChange::Add(vec!["127.0.0.3".into()]),
    );
    let (r1, r2) = tokio::join!(one.change_servers(&add_one), two.change_servers(&add_two));
    r1.unwrap();
    r2.unwrap();
    let servers = one
        .engine()
        .await
        .unwrap()
        .unwrap()
        .primary_servers
        .unwrap();
    assert_eq!(servers.len(), 3, "{servers:?}");
    one.wait_connected(&servers, Duration::from_secs(10))
        .await
        .unwrap();
    // The policy stayed enabled with its priority through the changes.
    let p = one.policy().await.unwrap().unwrap();
    assert_eq!((p.enabled, p.priority), (Some(true), Some(3)));
    two.change_servers(&ServerChange::Remove(vec![
        "127.0.0.2".into(),
        "127.0.0.3".into(),
    ]))
    .await
    .unwrap();
    assert_eq!(
        one.engine()
            .await
            .unwrap()
            .unwrap()
            .primary_servers
            .unwrap(),
        ["127.0.0.1"]
    );
    let set = one
        .change_servers(&ServerChange::Set(vec!["127.0.0.2".into()]))
        .await
        .unwrap();
    assert_eq!(set, ["127.0.0.2"]);
    let err = one
        .change_servers(&ServerChange::Remove(vec!["127.0.0.2".into()]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("last primary server"), "{err}");
}

#[tokio::test]
async fn a_failing_engine_patch_restores_the_policy_and_reports_ontaps_error() {
    let c = cluster().await;
    let server = fpolicy_server("127.0.0.1", 0).await;
    let control = Control::connect(
        OntapClient::new(&endpoint(&c)).unwrap(),
        registration(server.port()),
    )
    .await
    .unwrap();
    control
        .register(&ServerChange::Set(vec!["127.0.0.1".into()]))
        .await
        .unwrap();
    c.fake
        .state
        .lock()
        .unwrap()
        .policies
        .get_mut("fpolicy_bridge")
        .unwrap()["priority"] = 7.into();
    c.fake.fail_next_engine_patch.store(true, Relaxed);
    let err = control
        .change_servers(&ServerChange::Add(vec!["127.0.0.9".into()]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("9765040"), "ONTAP's own code: {err}");
    assert!(
        err.to_string().contains("re-enabled with priority 7"),
        "{err}"
    );
    let p = control.policy().await.unwrap().unwrap();
    assert_eq!(
        (p.enabled, p.priority),
        (Some(true), Some(7)),
        "restored as it was"
    );
    let log = c.fake.state.lock().unwrap().log.clone();
    let tail: Vec<&str> = log.iter().rev().take(3).map(String::as_str).rev().collect();
    assert_eq!(
        tail,
        [
            "PATCH policies/fpolicy_bridge",
            "PATCH engines/fpolicy_bridge",
            "PATCH policies/fpolicy_bridge"
        ]
    );
}

#[tokio::test]
async fn ontap_refuses_engine_changes_under_an_enabled_policy_which_is_why_we_disable() {
    let c = cluster().await;
    let server = fpolicy_server("127.0.0.1", 0).await;
    let control = Control::connect(
        OntapClient::new(&endpoint(&c)).unwrap(),
        registration(server.port()),
    )
    .await
    .unwrap();
    control
        .register(&ServerChange::Set(vec!["127.0.0.1".into()]))
        .await
        .unwrap();
    let path = format!("/api/protocols/fpolicy/{SVM_UUID}/engines/fpolicy_bridge");
    let err = control
        .client()
        .patch(&path, &serde_json::json!({"primary_servers": ["10.0.0.1"]}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("9765027")),
        "{err}"
    );
    let err = control
        .client()
        .patch(&path, &serde_json::json!({"primary_servrs": ["10.0.0.1"]}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("primary_servrs"),
        "unknown fields are refused: {err}"
    );
}

#[tokio::test]
async fn tls_verification_is_on_and_credentials_are_checked() {
    let c = cluster().await;
    // A different CA: refused.
    let other = cluster().await;
    let mut ep = endpoint(&c);
    ep.ca_bundle = Some(other.ca.clone());
    let err = Control::connect(OntapClient::new(&ep).unwrap(), registration(1))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, OntapError::Transport { .. }), "{err}");
    // No CA and not insecure: a configuration error, before any connection.
    ep.ca_bundle = None;
    assert!(matches!(OntapClient::new(&ep), Err(OntapError::Config(_))));
    // The CA as PEM text works like the file.
    let mut pem = endpoint(&c);
    pem.ca_bundle = None;
    pem.ca_pem = Some(std::fs::read_to_string(&c.ca).unwrap());
    Control::connect(OntapClient::new(&pem).unwrap(), registration(1))
        .await
        .unwrap();
    // Insecure: explicit, works.
    ep.insecure = true;
    Control::connect(OntapClient::new(&ep).unwrap(), registration(1))
        .await
        .unwrap();
    // Wrong password: ONTAP's 401 with its code.
    let mut ep = endpoint(&c);
    ep.password = "wrong".into();
    let err = Control::connect(OntapClient::new(&ep).unwrap(), registration(1))
        .await
        .err()
        .unwrap();
    assert_eq!(err.status(), Some(401));
    // Plain http is refused unless insecure.
    let mut ep = endpoint(&c);
    ep.url = ep.url.replace("https", "http");
    assert!(matches!(OntapClient::new(&ep), Err(OntapError::Config(_))));
}

#[tokio::test]
async fn a_persistent_store_is_created_and_attached() {
    let c = cluster().await;
    let server = fpolicy_server("127.0.0.1", 0).await;
    let mut reg = registration(server.port());
    reg.persistent_store = Some(fpolicy_ontap::types::PersistentStore {
        name: "ps1".into(),
        volume: Some("ps_vol".into()),
    });
    let control = Control::connect(OntapClient::new(&endpoint(&c)).unwrap(), reg)
        .await
        .unwrap();
    let changes = control
        .register(&ServerChange::Set(vec!["127.0.0.1".into()]))
        .await
        .unwrap();
    assert!(
        changes.iter().any(|c| c == "created persistent store ps1"),
        "{changes:?}"
    );
    let st = c.fake.state.lock().unwrap();
    assert_eq!(st.stores["ps1"]["volume"], "ps_vol");
    assert_eq!(st.policies["fpolicy_bridge"]["persistent_store"], "ps1");
}
