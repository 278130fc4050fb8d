//! User names from a real directory: OpenLDAP's slapd (started by the test
//! on loopback ports, see support/slapd.rs) with more users than one page,
//! synced over LDAPS, StartTLS and plain LDAP; a refresh that fails keeps
//! the old table; a user added is named after the next refresh;
//! fpolicy-sim's SMB and NFS events come out with names. Needs the
//! `ldap-integration` feature (scripts/test.sh installs slapd and enables
//! it).

mod common;
#[path = "support/slapd.rs"]
mod slapd;

use std::process::Command;
use std::time::Duration;

use common::process::BIN;
use common::*;
use fpolicy_bridge::config::Config;
use fpolicy_proto::{Message, ProtocolVersion, ReqType, UserIdentity, sample};
use slapd::{BASE, LdapUser, READER_DN, Slapd};

/// The SID and UID fpolicy-sim and the samples give SMB users.
const ALICE_SID: &str = "S-1-5-21-3623811015-3361044348-30300820-1013";
/// More than two pages of 1,000.
const BULK: u32 = 2_500;

fn users() -> Vec<LdapUser> {
    let mut users: Vec<LdapUser> = (0..BULK)
        .map(|i| LdapUser {
            name: format!("user{i:04}"),
            sid: Some(format!("S-1-5-21-1-2-3-{}", 2000 + i)),
            uid: Some(5000 + i),
        })
        .collect();
    // fpolicy-sim: SMB as ALICE_SID (mapped to UID 1001), NFS as UIDs 1000..=1006.
    users.push(LdapUser {
        name: "alice".into(),
        sid: Some(ALICE_SID.into()),
        uid: Some(1001),
    });
    for uid in [1000, 1002, 1003, 1004, 1005, 1006] {
        users.push(LdapUser {
            name: format!("nfs{uid}"),
            sid: None,
            uid: Some(uid),
        });
    }
    users
}

fn identity_config(dir: &std::path::Path, ldap: &Slapd, url: String) -> Config {
    let mut cfg = base_config(dir);
    let id = &mut cfg.identity;
    id.ldap_url = url;
    id.bind_dn = READER_DN.into();
    id.bind_password_file = ldap.password_file.clone();
    id.base_dn = BASE.into();
    id.ca_bundle = ldap.ca.clone();
    id.refresh_interval = Duration::from_secs(1);
    id.ontap_local_users = false;
    cfg
}

async fn send_as(server: &TestServer, id: u64, user: UserIdentity, path: &str) {
    let mut c = RawClient::session(server.addr, "audit", &format!("id-{id}")).await;
    let mut req = sample::screen_request(id, ReqType::SmbCreat, path, ProtocolVersion::V2_0);
    req.common.user = Some(user);
    c.send(&Message::ScreenReq(req)).await;
    c.send(&Message::KeepAlive).await;
}

async fn synced_users(server: &TestServer) -> f64 {
    server.metric("fpolicy_identity_users").await
}

fn event_at<'a>(events: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    events
        .iter()
        .find(|e| e["file_path"] == path)
        .unwrap_or_else(|| panic!("no event for {path}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_sync_names_smb_and_nfs_events_and_survives_an_outage() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut ldap = Slapd::start(&users()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = identity_config(dir.path(), &ldap, ldap.ldaps_url());
    let mut server = TestServer::start(cfg).await;
    let all = f64::from(BULK + 7);
    assert!(
        eventually(30, async || synced_users(&server).await >= all).await,
        "every user read, across pages ({} in the table)",
        synced_users(&server).await
    );
    let first = synced_users(&server).await;
    // fpolicy-sim: SMB and NFS events, named.
    let mut sim = fpolicy_sim::SimConfig::new(server.addr);
    sim.count = Some(300);
    assert!(fpolicy_sim::run(sim).await.errors.is_empty());
    // The directory goes away: the refresh fails, the table stays.
    ldap.kill();
    assert!(
        eventually(30, async || server
            .metric("fpolicy_identity_syncs_total{result=\"error\"}")
            .await
            >= 1.0)
        .await
    );
    assert_eq!(server.metric("fpolicy_identity_sync_failing").await, 1.0);
    assert_eq!(
        http_get(server.admin, "/readyz").await.0,
        200,
        "still ready"
    );
    assert_eq!(synced_users(&server).await, first, "the old table is kept");
    send_as(
        &server,
        1,
        UserIdentity::WinSid(ALICE_SID.into()),
        "/during-outage",
    )
    .await;
    // Back, with a new user: named after the next refresh.
    ldap.restart();
    ldap.load(&[LdapUser {
        name: "zed".into(),
        sid: Some("S-1-5-21-1-2-3-9999".into()),
        uid: None,
    }])
    .await;
    assert!(eventually(30, async || synced_users(&server).await == first + 1.0).await);
    assert_eq!(server.metric("fpolicy_identity_sync_failing").await, 0.0);
    send_as(
        &server,
        2,
        UserIdentity::WinSid("S-1-5-21-1-2-3-9999".into()),
        "/new-user",
    )
    .await;
    send_as(
        &server,
        3,
        UserIdentity::WinSid("S-1-5-21-1-2-3-77777".into()),
        "/stranger",
    )
    .await;
    assert!(
        eventually(20, async || server
            .metric("fpolicy_sink_delivered_total{sink=\"jsonl\"}")
            .await
            >= 303.0)
        .await
    );
    server.stop().await;
    let events = read_events(dir.path());
    let with_identity: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["metadata"]["sid"].is_string() || e["metadata"]["uid"].is_u64())
        .collect();
    assert!(with_identity.len() >= 300);
    let (mut smb, mut nfs) = (0, 0);
    for e in &with_identity {
        let name = e["metadata"]["user_name"].as_str();
        if e["metadata"]["sid"] == ALICE_SID {
            smb += 1;
            assert_eq!(name, Some("alice"), "{e}");
            assert_eq!(e["metadata"]["user_principal"], "alice@example.com");
        } else if let Some(uid) = e["metadata"]["uid"].as_u64() {
            nfs += 1;
            let want = if uid == 1001 {
                "alice".to_owned()
            } else {
                format!("nfs{uid}")
            };
            assert_eq!(name, Some(want.as_str()), "{e}");
        }
    }
    assert!(
        smb > 0 && nfs > 0,
        "both protocols seen ({smb} SMB, {nfs} NFS)"
    );
    assert_eq!(
        event_at(&events, "/during-outage")["metadata"]["user_name"],
        "alice"
    );
    assert_eq!(
        event_at(&events, "/new-user")["metadata"]["user_name"],
        "zed"
    );
    let stranger = &event_at(&events, "/stranger")["metadata"];
    assert!(
        stranger.get("user_name").is_none(),
        "unknown: left out ({stranger})"
    );
}

fn config_file(
    dir: &std::path::Path,
    ldap: &Slapd,
    url: &str,
    start_tls: bool,
) -> std::path::PathBuf {
    let path = dir.join("identity.toml");
    std::fs::write(
        &path,
        format!(
            "[identity]\nldap_url = {url:?}\nstart_tls = {start_tls}\nbind_dn = {READER_DN:?}\n\
             bind_password_file = {:?}\nbase_dn = {BASE:?}\nca_bundle = {:?}\nontap_local_users = false\n",
            ldap.password_file, ldap.ca
        ),
    )
    .unwrap();
    path
}

fn run(args: &[&str], config: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("LDAP_PASSWORD")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_sync_and_lookup_over_starttls_and_plain_ldap() {
    let ldap = Slapd::start(&users()).await;
    let dir = tempfile::tempdir().unwrap();
    let starttls = config_file(dir.path(), &ldap, &ldap.plain_url(), true);
    let (ok, out, err) = run(&["identity", "sync"], &starttls);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["directory_users"], BULK + 7, "{report}");
    let (ok, out, err) = run(&["identity", "lookup", ALICE_SID], &starttls);
    assert!(ok, "{err}");
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found["user_name"], "alice");
    assert_eq!(found["user_principal"], "alice@example.com");
    // Plain LDAP, no TLS at all.
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir(&plain_dir).unwrap();
    let plain = config_file(&plain_dir, &ldap, &ldap.plain_url(), false);
    let (ok, out, err) = run(&["identity", "lookup", "1004"], &plain);
    assert!(ok, "{err}");
    assert!(out.contains("\"nfs1004\""), "{out}");
    // A wrong password: a clear error, exit 1.
    std::fs::write(&ldap.password_file, "wrong\n").unwrap();
    let (ok, _, err) = run(&["identity", "sync"], &starttls);
    assert!(!ok);
    assert!(
        err.contains("bind as") && err.contains("cn=reader"),
        "{err}"
    );
    // A CA that did not issue the certificate: refused.
    std::fs::write(&ldap.password_file, format!("{}\n", slapd::READER_PASSWORD)).unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, rcgen_ca_pem()).unwrap();
    let text = std::fs::read_to_string(&starttls)
        .unwrap()
        .replace(&format!("{:?}", ldap.ca), &format!("{other_ca:?}"));
    std::fs::write(&starttls, text).unwrap();
    let (ok, _, err) = run(&["identity", "sync"], &starttls);
    assert!(!ok, "an unknown issuer must be refused");
    assert!(err.contains("identity sync failed"), "{err}");
}

fn rcgen_ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem()
}
