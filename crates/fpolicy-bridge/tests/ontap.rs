//! The bridge with the ONTAP control plane: self-registration end to end
//! and volume names from ONTAP, against the fake ONTAP of fpolicy-ontap's
//! test support (HTTPS with a generated CA, simulated nodes).

mod common;
#[path = "../../fpolicy-ontap/tests/support/fake_ontap.rs"]
mod fake_ontap;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use fake_ontap::*;
use fpolicy_proto::{Message, ProtocolVersion, ReqType, VolNotification, VolumeAction, sample};

fn free_port() -> u16 {
    process::free_port().port()
}

fn ontap_config(dir: &std::path::Path, c: &Cluster) -> fpolicy_bridge::config::Config {
    let mut cfg = base_config(dir);
    let o = &mut cfg.ontap;
    o.cluster_url = c.url.clone();
    o.username = USER.into();
    o.password_file = c.password_file.clone();
    o.svm = SVM_NAME.into();
    o.ca_bundle = c.ca.clone();
    o.connect_timeout = std::time::Duration::from_secs(10);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_registration_end_to_end_keeps_other_instances() {
    let c = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Another instance is already registered.
    c.fake.state.lock().unwrap().engines.insert(
        "fpolicy_bridge".into(),
        serde_json::json!({"name": "fpolicy_bridge", "port": port, "primary_servers": ["127.0.0.9"], "type": "asynchronous", "format": "xml", "ssl_option": "no_auth", "keep_alive_interval": "PT120S", "buffer_size": {"send_buffer": 1048576}}),
    );
    let mut cfg = ontap_config(dir.path(), &c);
    cfg.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.ontap.register_on_start = true;
    cfg.ontap.advertise_address = "127.0.0.1".into();
    cfg.ontap.remove_on_shutdown = true;
    let mut server = TestServer::start(cfg).await;
    assert!(
        eventually(20, async || server.metric("fpolicy_ontap_registered").await
            == 1.0)
        .await,
        "registered"
    );
    assert_eq!(http_get(server.admin, "/readyz").await.0, 200);
    {
        let st = c.fake.state.lock().unwrap();
        let servers = st.engines["fpolicy_bridge"]["primary_servers"].clone();
        assert_eq!(
            servers,
            serde_json::json!(["127.0.0.9", "127.0.0.1"]),
            "added, the other kept"
        );
        assert_eq!(st.policies["fpolicy_bridge"]["enabled"], true);
    }
    // Every simulated node connected to this instance (its sessions exist).
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sessions{state=\"active\"}")
            .await
            == NODES.len() as f64)
        .await
    );
    // ONTAP's traffic: fpolicy-sim at the registered address and port.
    let mut sim = fpolicy_sim::SimConfig::new(format!("127.0.0.1:{port}").parse().unwrap());
    sim.policy_name = "fpolicy_bridge".into();
    sim.count = Some(300);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 300.0)
        .await
    );
    server.stop().await;
    assert_eq!(read_events(dir.path()).len(), 300);
    let st = c.fake.state.lock().unwrap();
    assert_eq!(
        st.engines["fpolicy_bridge"]["primary_servers"],
        serde_json::json!(["127.0.0.9"]),
        "removed itself on a graceful stop"
    );
    assert_eq!(
        st.policies["fpolicy_bridge"]["enabled"], true,
        "and left the policy enabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_failures_show_in_readyz_and_are_retried() {
    let c = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ontap_config(dir.path(), &c);
    cfg.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    cfg.ontap.register_on_start = true;
    cfg.ontap.advertise_address = "127.0.0.1".into();
    cfg.ontap.svm = "no-such-svm".into();
    let mut server = TestServer::start(cfg).await;
    assert!(
        eventually(10, async || http_get(server.admin, "/readyz")
            .await
            .1
            .contains("no-such-svm"))
        .await
    );
    assert_eq!(http_get(server.admin, "/readyz").await.0, 503);
    assert_eq!(server.metric("fpolicy_ontap_registered").await, 2.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_names_come_from_ontap_cached_and_invalidated() {
    let c = cluster().await;
    c.fake.state.lock().unwrap().volumes.push(serde_json::json!({"name": "vol_legal", "uuid": "v-1", "msid": 2_157_093_236u64, "svm": {"name": SVM_NAME, "uuid": SVM_UUID}}));
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(ontap_config(dir.path(), &c)).await;
    let mut client = RawClient::session(server.addr, "audit", "names").await;
    let mut id = 0;
    let mut send = async |client: &mut RawClient| {
        id += 1;
        client
            .send(&Message::ScreenReq(sample::screen_request(
                id,
                ReqType::NfsWr,
                "/a",
                ProtocolVersion::V2_0,
            )))
            .await;
    };
    send(&mut client).await;
    // Resolved in the background; the first event was not held back.
    assert!(eventually(10, async || c.fake.volume_lookups.load(Relaxed) >= 1).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&mut client).await;
    send(&mut client).await;
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 3.0)
        .await
    );
    assert_eq!(c.fake.volume_lookups.load(Relaxed), 1, "cached");
    // The volume is renamed; VOL_NOTFICATION drops the cached name.
    c.fake.state.lock().unwrap().volumes[0]["name"] = "vol_legal_2026".into();
    client
        .send(&Message::VolNotification(VolNotification {
            vol_msid: Some(2_157_093_236),
            action: Some(VolumeAction::Modify),
            is_active: Some(true),
        }))
        .await;
    send(&mut client).await;
    assert!(eventually(10, async || c.fake.volume_lookups.load(Relaxed) >= 2).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&mut client).await;
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 5.0)
        .await
    );
    drop(client);
    server.stop().await;
    let names: Vec<String> = read_events(dir.path())
        .iter()
        .map(|e| e["volume_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names[1..3], ["vol_legal", "vol_legal"]);
    assert_eq!(names[4], "vol_legal_2026");
    assert!(
        names[0] == "unknown" || names[0] == "vol_legal",
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_disconnected_everywhere_are_pruned() {
    let c = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // A dead instance: listed, but nobody listens there.
    c.fake.state.lock().unwrap().engines.insert(
        "fpolicy_bridge".into(),
        serde_json::json!({"name": "fpolicy_bridge", "port": port, "primary_servers": ["127.0.0.9"], "type": "asynchronous", "format": "xml", "ssl_option": "no_auth", "keep_alive_interval": "PT120S", "buffer_size": {"send_buffer": 1048576}}),
    );
    let mut cfg = ontap_config(dir.path(), &c);
    cfg.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.ontap.register_on_start = true;
    cfg.ontap.advertise_address = "127.0.0.1".into();
    cfg.ontap.connect_timeout = std::time::Duration::from_secs(2);
    cfg.ontap.prune_disconnected = std::time::Duration::from_secs(1);
    let mut server = TestServer::start(cfg).await;
    let pruned = eventually(20, async || {
        c.fake.state.lock().unwrap().engines["fpolicy_bridge"]["primary_servers"]
            == serde_json::json!(["127.0.0.1"])
    })
    .await;
    assert!(pruned, "the dead instance was pruned, this one kept");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ontap_local_users_name_smb_and_nfs_events() {
    let c = cluster().await;
    {
        let mut st = c.fake.state.lock().unwrap();
        st.cifs_local_users
            .push(serde_json::json!({"name": "SVM1\\localadmin", "sid": "S-1-5-21-9-8-7-500"}));
        // More than one page of 1,000.
        for id in 0..1_200u32 {
            st.unix_users
                .push(serde_json::json!({"name": format!("unix{id}"), "id": 20_000 + id}));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ontap_config(dir.path(), &c);
    cfg.identity
        .users
        .insert("20001".into(), "fixed-wins".into());
    let mut server = TestServer::start(cfg).await;
    // 1 CIFS + 1,200 UNIX users, the well-known SIDs and root, one fixed entry.
    assert!(
        eventually(20, async || server.metric("fpolicy_identity_users").await
            >= 1_201.0)
        .await
    );
    let mut client = RawClient::session(server.addr, "audit", "local-users").await;
    for (id, user, path) in [
        (
            1,
            fpolicy_proto::UserIdentity::WinSid("S-1-5-21-9-8-7-500".into()),
            "/smb",
        ),
        (2, fpolicy_proto::UserIdentity::UnixUid(21_199), "/nfs"),
        (3, fpolicy_proto::UserIdentity::UnixUid(20_001), "/fixed"),
    ] {
        let mut req = sample::screen_request(id, ReqType::NfsCreat, path, ProtocolVersion::V2_0);
        req.common.user = Some(user);
        client.send(&Message::ScreenReq(req)).await;
    }
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 3.0)
        .await
    );
    drop(client);
    server.stop().await;
    let names: Vec<(String, String)> = read_events(dir.path())
        .iter()
        .map(|e| {
            (
                e["file_path"].as_str().unwrap().to_owned(),
                e["metadata"]["user_name"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("/smb".to_owned(), "localadmin".to_owned()),
            ("/nfs".to_owned(), "unix1199".to_owned()),
            ("/fixed".to_owned(), "fixed-wins".to_owned()),
        ]
    );
}

fn screen_req_on(id: u64, vol_msid: u64, path: &str) -> Message {
    let mut req = sample::screen_request(id, ReqType::NfsCreat, path, ProtocolVersion::V2_0);
    req.common.vol_msid = vol_msid;
    Message::ScreenReq(req)
}

fn volume(name: &str, msid: u64) -> serde_json::Value {
    serde_json::json!({"name": name, "uuid": format!("uuid-{msid}"), "msid": msid, "svm": {"name": SVM_NAME, "uuid": SVM_UUID}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_event_after_start_and_of_a_new_volume_carry_real_names() {
    let c = cluster().await;
    {
        let mut st = c.fake.state.lock().unwrap();
        st.volumes.push(volume("vol_legal", 2_157_093_236));
        // More than one page of volumes.
        for i in 0..1_100u64 {
            st.volumes.push(volume(&format!("vol{i}"), 10_000 + i));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ontap_config(dir.path(), &c);
    // No SVM loaded at start: the NEGO_REQ's SVM is loaded before the answer.
    cfg.ontap.svm = "not-this-one".into();
    let mut server = TestServer::start(cfg).await;
    let mut client = RawClient::session(server.addr, "audit", "first").await;
    client
        .send(&screen_req_on(1, 2_157_093_236, "/first"))
        .await;
    client.send(&screen_req_on(2, 11_099, "/last-page")).await;
    // A volume created while running: named in its first event.
    c.fake
        .state
        .lock()
        .unwrap()
        .volumes
        .push(volume("vol_new", 777));
    client.send(&screen_req_on(3, 777, "/new")).await;
    // A volume ONTAP does not know: the default, counted.
    client.send(&screen_req_on(4, 888, "/unknown")).await;
    client
        .send(&screen_req_on(5, 2_157_093_236, "/after"))
        .await;
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 5.0)
        .await
    );
    assert_eq!(server.metric("fpolicy_names_defaulted_total").await, 1.0);
    drop(client);
    server.stop().await;
    let got: Vec<(String, String, String)> = read_events(dir.path())
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("file_path"), s("volume_name"), s("svm_name"))
        })
        .collect();
    let want = [
        ("/first", "vol_legal"),
        ("/last-page", "vol1099"),
        ("/new", "vol_new"),
        ("/unknown", "unknown"),
        ("/after", "vol_legal"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(p, v)| (p.to_string(), v.to_string(), SVM_NAME.to_owned()))
        .collect();
    assert_eq!(got, want, "names from the first event, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_ontap_delays_events_at_most_the_bound() {
    let c = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ontap_config(dir.path(), &c);
    // Nothing listens there.
    cfg.ontap.cluster_url = format!("https://localhost:{}", free_port());
    cfg.ontap.name_wait = Duration::from_secs(1);
    cfg.identity.ontap_local_users = false;
    let mut server = TestServer::start(cfg).await;
    let started = std::time::Instant::now();
    let mut client = RawClient::session(server.addr, "audit", "unreachable").await;
    for (id, msid) in [(1, 1), (2, 2), (3, 1)] {
        client
            .send(&screen_req_on(id, msid, &format!("/{id}")))
            .await;
    }
    assert!(
        eventually(10, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 3.0)
        .await
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "held at most the bound: {:?}",
        started.elapsed()
    );
    assert_eq!(server.metric("fpolicy_names_defaulted_total").await, 3.0);
    drop(client);
    server.stop().await;
    assert!(
        read_events(dir.path())
            .iter()
            .all(|e| e["volume_name"] == "unknown" && e["svm_name"] == "unknown")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_nodes_first_notifications_carry_real_names() {
    let c = cluster().await;
    c.fake
        .state
        .lock()
        .unwrap()
        .volumes
        .push(volume("vol_legal", 2_157_093_236));
    c.fake.notify_on_connect.store(true, Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ontap_config(dir.path(), &c);
    cfg.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    cfg.ontap.register_on_start = true;
    cfg.ontap.advertise_address = "127.0.0.1".into();
    let mut server = TestServer::start(cfg).await;
    // Both nodes connect and each sends its first notification at once.
    assert!(
        eventually(20, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            == 2.0)
        .await
    );
    server.stop().await;
    let events = read_events(dir.path());
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e["volume_name"], "vol_legal", "{e}");
        assert_eq!(e["svm_name"], SVM_NAME, "{e}");
    }
}
