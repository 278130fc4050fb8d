//! Shared test helpers: an in-process server on loopback, a raw FPolicy
//! client for hand-made frames, metrics scraping, and JSONL reading.
#![allow(dead_code)]

pub mod process;
pub mod sinks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use fpolicy_bridge::app::{self, Running};
use fpolicy_bridge::config::{Config, FsyncSetting};
use fpolicy_proto::{
    Encoder, FrameStatus, Handshake, Message, decode_payload, parse_frame, sample,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn base_config(dir: &Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.admin.listen = "127.0.0.1:0".parse().unwrap();
    cfg.events.write_complete_delay = Duration::ZERO;
    cfg.spool.fsync = FsyncSetting::Always;
    cfg.shutdown.drain_timeout = Duration::from_secs(10);
    cfg
}

pub struct TestServer {
    pub running: Option<Running>,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
}

impl TestServer {
    pub async fn start(cfg: Config) -> TestServer {
        let dir = cfg.data_dir.clone();
        let running = app::start(cfg).await.expect("server starts");
        TestServer {
            addr: running.listen_addr,
            admin: running.admin_addr,
            running: Some(running),
            dir,
        }
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean shutdown");
        }
    }

    pub async fn metric(&self, name: &str) -> f64 {
        metric(self.admin, name).await
    }
}

/// Reads one sample (`name{labels}` exactly as rendered) from /metrics.
pub async fn metric(admin: SocketAddr, name: &str) -> f64 {
    let body = http_get(admin, "/metrics").await.1;
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("metric {name} not found"))
        .trim()
        .parse()
        .expect("numeric sample")
}

pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("admin connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Every JSON line in the events directory, in file order.
pub fn read_events(dir: &Path) -> Vec<serde_json::Value> {
    let events = dir.join("events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&events)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            out.push(
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad line in {}: {e}: {line}", f.display())),
            );
        }
    }
    out
}

/// Polls until `f` is true or `secs` pass.
pub async fn eventually(secs: u64, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A hand-driven ONTAP connection.
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
    encoder: Encoder,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
            encoder: Encoder::new(true),
        }
    }

    /// Connects and completes a handshake for `policy`.
    pub async fn session(addr: SocketAddr, policy: &str, session_id: &str) -> RawClient {
        let mut c = RawClient::connect(addr).await;
        c.send(&Message::NegoReq(handshake(policy, session_id)))
            .await;
        match c.recv(Duration::from_secs(5)).await {
            Some(Message::NegoResp(r)) => assert_eq!(r.policy_name, policy),
            other => panic!("expected NEGO_RESP, got {other:?}"),
        }
        c
    }

    pub async fn send(&mut self, m: &Message) {
        let mut out = Vec::new();
        self.encoder.encode(m, &mut out);
        self.stream.write_all(&out).await.expect("send");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next message, or None on timeout or close.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(FrameStatus::Complete { payload, consumed }) = parse_frame(&self.buf, 1 << 20)
            {
                let m = decode_payload(payload)
                    .expect("server frames decode")
                    .message;
                let _ = self.buf.split_to(consumed);
                return Some(m);
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// True when the server closes the connection within `timeout`.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scratch = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

pub fn handshake(policy: &str, session_id: &str) -> Handshake {
    let mut hs = sample::handshake(&["1.0", "1.1", "1.2", "2.0"]);
    hs.policy_name = policy.into();
    hs.session_id = session_id.into();
    hs
}

/// A fresh CA and a server certificate it issued for localhost and
/// 127.0.0.1, written to `dir` as `server.pem` / `server.key`; returns
/// the CA's PEM file (what clients trust). For the real servers the tests
/// start (slapd, nats-server, rsyslog).
pub fn write_server_certificates(dir: &Path) -> PathBuf {
    write_certificates(dir, false)
}

/// Like [`write_server_certificates`], and a client certificate from the
/// same CA as `client.pem` / `client.key` (mutual TLS).
pub fn write_certificates(dir: &Path, with_client: bool) -> PathBuf {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let issue = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose, stem: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    };
    issue(
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        ExtendedKeyUsagePurpose::ServerAuth,
        "server",
    );
    if with_client {
        issue(
            vec!["fpolicy-bridge".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
            "client",
        );
    }
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    ca
}

/// Reads `file` back with scripts/check-formats.py (`kind`: s3-sqs,
/// s3-eventbridge, ocsf, ecs, cef) in the Python that scripts/test.sh
/// prepares (FPOLICY_FORMATS_PY); panics with the checker's words when it
/// finds a problem.
pub fn check_formats(kind: &str, file: &Path, args: &[&str]) {
    let python = std::env::var("FPOLICY_FORMATS_PY").expect(
        "FPOLICY_FORMATS_PY is not set: run scripts/test.sh, which prepares the Python consumers of the formats",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check-formats.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(kind)
        .arg(file)
        .args(args)
        .output()
        .expect("the formats' Python runs");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{kind} consumers refused {}:\n{said}",
        file.display()
    );
}
