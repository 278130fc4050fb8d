//! TLS in both ONTAP modes with generated certificates, fpolicy-sim as the
//! TLS client.

mod common;

use std::path::Path;

use common::*;
use fpolicy_bridge::config::TlsMode;
use fpolicy_sim::SimConfig;
use fpolicy_sim::tls::SimTls;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// Writes `<name>.pem` (certificate) and `<name>.key` into `dir`.
struct Pki {
    ca_issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Pki {
            ca_issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, dir: &Path, name: &str, sans: &[&str]) {
        let params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca_issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

fn sim(server: &TestServer, tls: SimTls) -> SimConfig {
    let mut s = SimConfig::new(server.addr);
    s.nodes = 2;
    s.count = Some(2_000);
    s.tls = Some(tls);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_auth_delivers_and_a_wrong_ca_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(d, "ca");
    pki.issue(d, "server", &["localhost"]);
    Pki::new(d, "other-ca");
    let mut cfg = base_config(&d.join("data"));
    cfg.server.tls.mode = TlsMode::ServerAuth;
    cfg.server.tls.cert = d.join("server.pem");
    cfg.server.tls.key = d.join("server.key");
    let mut server = TestServer::start(cfg).await;

    let report = fpolicy_sim::run(sim(
        &server,
        SimTls::from_pem(&d.join("ca.pem"), None, "localhost").unwrap(),
    ))
    .await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    // A client that does not trust our CA cannot connect.
    let report = fpolicy_sim::run(sim(
        &server,
        SimTls::from_pem(&d.join("other-ca.pem"), None, "localhost").unwrap(),
    ))
    .await;
    assert!(!report.errors.is_empty());
    // Plain TCP to a TLS port fails the TLS handshake, not the process.
    let mut plain = SimConfig::new(server.addr);
    plain.count = Some(10);
    assert!(!fpolicy_sim::run(plain).await.errors.is_empty());
    assert!(
        eventually(5, async || server
            .metric("fpolicy_sessions_closed_total{reason=\"tls_error\"}")
            .await
            >= 2.0)
        .await
    );
    server.stop().await;
    assert_eq!(read_events(&d.join("data")).len(), 2_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_auth_requires_a_client_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server_pki = Pki::new(d, "server-ca");
    server_pki.issue(d, "server", &["localhost"]);
    let ontap_pki = Pki::new(d, "ontap-ca");
    ontap_pki.issue(d, "ontap", &["cluster1"]);
    let rogue_pki = Pki::new(d, "rogue-ca");
    rogue_pki.issue(d, "rogue", &["cluster1"]);
    let mut cfg = base_config(&d.join("data"));
    cfg.server.tls.mode = TlsMode::MutualAuth;
    cfg.server.tls.cert = d.join("server.pem");
    cfg.server.tls.key = d.join("server.key");
    cfg.server.tls.client_ca = d.join("ontap-ca.pem");
    let mut server = TestServer::start(cfg).await;

    let good = SimTls::from_pem(
        &d.join("server-ca.pem"),
        Some((&d.join("ontap.pem"), &d.join("ontap.key"))),
        "localhost",
    )
    .unwrap();
    let report = fpolicy_sim::run(sim(&server, good)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let rogue = SimTls::from_pem(
        &d.join("server-ca.pem"),
        Some((&d.join("rogue.pem"), &d.join("rogue.key"))),
        "localhost",
    )
    .unwrap();
    let report = fpolicy_sim::run(sim(&server, rogue)).await;
    assert!(
        !report.errors.is_empty(),
        "a client certificate from another CA is rejected"
    );
    let none = SimTls::from_pem(&d.join("server-ca.pem"), None, "localhost").unwrap();
    let report = fpolicy_sim::run(sim(&server, none)).await;
    assert!(
        !report.errors.is_empty(),
        "no client certificate is rejected"
    );
    assert!(
        eventually(5, async || server
            .metric("fpolicy_sessions_closed_total{reason=\"tls_error\"}")
            .await
            >= 2.0)
        .await
    );
    server.stop().await;
    assert_eq!(
        read_events(&d.join("data")).len(),
        2_000,
        "only the trusted client's events"
    );
}
