//! A fake ONTAP cluster for tests: the REST endpoints fpolicy-bridge uses,
//! over HTTPS with a generated certificate, with state and ONTAP's
//! documented semantics (basic auth, unknown fields refused, an engine or
//! event in use by an enabled policy cannot be modified, enabling needs a
//! priority), and simulated nodes: while a policy is enabled, every node
//! opens an FPolicy connection to every primary server of its engine and
//! the connections endpoint reports `connected` once the handshake worked.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fpolicy_proto::{Encoder, FrameStatus, Message, decode_payload, parse_frame, sample};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub const USER: &str = "fpolicy-admin";
pub const PASSWORD: &str = "s3cret";
pub const SVM_NAME: &str = "svm1";
pub const SVM_UUID: &str = "5b701784-7459-11e8-8e95-00a098bc5a13";
pub const NODES: [&str; 2] = ["cluster1-01", "cluster1-02"];

#[derive(Default)]
pub struct State {
    pub engines: BTreeMap<String, Value>,
    pub events: BTreeMap<String, Value>,
    pub policies: BTreeMap<String, Value>,
    pub stores: BTreeMap<String, Value>,
    /// (node, server) → state
    pub connections: BTreeMap<(String, String), String>,
    pub volumes: Vec<Value>,
    /// `/api/protocols/cifs/local-users` records (`name`, `sid`).
    pub cifs_local_users: Vec<Value>,
    /// `/api/name-services/unix-users` records (`name`, `id`).
    pub unix_users: Vec<Value>,
    /// Every mutating request, in order: "PATCH engines/x", …
    pub log: Vec<String>,
}

#[derive(Default)]
pub struct FakeOntap {
    pub state: Mutex<State>,
    /// Fail the next engine PATCH with a server error.
    pub fail_next_engine_patch: AtomicBool,
    pub volume_lookups: AtomicU64,
    /// Each node sends one notification (a create of `/<node>/first` on
    /// the sample volume) as soon as its session is established.
    pub notify_on_connect: AtomicBool,
    tasks: Mutex<HashMap<(String, String), tokio::task::JoinHandle<()>>>,
}

/// One page of `recs` as ONTAP pages collections: `max_records` per
/// page and a `_links.next` to the rest (here with a `start.index`).
fn page(path: &str, query: &str, recs: Vec<Value>) -> (&'static str, Value) {
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let max: usize = get("max_records")
        .and_then(|m| m.parse().ok())
        .unwrap_or(usize::MAX);
    let start: usize = get("start.index").and_then(|m| m.parse().ok()).unwrap_or(0);
    let end = start.saturating_add(max).min(recs.len());
    let this: Vec<Value> = recs.get(start..end).unwrap_or_default().to_vec();
    let mut body = json!({"records": this, "num_records": this.len()});
    if end < recs.len() {
        let rest: Vec<String> = params
            .iter()
            .filter(|(k, _)| *k != "start.index")
            .map(|(k, v)| format!("{k}={v}"))
            .chain([format!("start.index={end}")])
            .collect();
        body["_links"] = json!({"next": {"href": format!("{path}?{}", rest.join("&"))}});
    }
    ("200 OK", body)
}

fn err(status: &'static str, code: &str, message: &str) -> (&'static str, Value) {
    (status, json!({"error": {"message": message, "code": code}}))
}

const ENGINE_FIELDS: &[&str] = &[
    "name",
    "port",
    "primary_servers",
    "secondary_servers",
    "type",
    "format",
    "ssl_option",
    "keep_alive_interval",
    "buffer_size",
    "certificate",
    "max_server_requests",
    "request_abort_timeout",
    "request_cancel_timeout",
    "server_progress_timeout",
    "status_request_interval",
    "session_timeout",
    "resiliency",
];
const EVENT_FIELDS: &[&str] = &[
    "name",
    "protocol",
    "file_operations",
    "filters",
    "volume_monitoring",
    "monitor_fileop_failure",
];
const POLICY_FIELDS: &[&str] = &[
    "name",
    "enabled",
    "priority",
    "mandatory",
    "engine",
    "events",
    "scope",
    "persistent_store",
    "allow_privileged_access",
    "privileged_user",
    "passthrough_read",
];
const STORE_FIELDS: &[&str] = &["name", "volume", "size", "autosize_mode"];

fn unknown(body: &Value, allowed: &[&str]) -> Option<String> {
    body.as_object()?
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
        .cloned()
}

impl FakeOntap {
    /// Serves HTTPS on `listener` with `tls`, and reconciles the nodes'
    /// FPolicy connections in the background.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: tokio_rustls::TlsAcceptor) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.reconcile();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let me = self.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(stream).await else {
                    return;
                };
                let (rd, mut wr) = tokio::io::split(stream);
                let mut rd = BufReader::new(rd);
                loop {
                    let mut line = String::new();
                    if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let target = parts.next().unwrap_or_default().to_owned();
                    let (mut len, mut auth) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        if rd.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            match k.to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                "authorization" => auth = v.trim().to_owned(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    if rd.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let (status, reply) = me.handle(&method, &target, &auth, &body);
                    let text = reply.to_string();
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/hal+json\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if wr.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    fn handle(&self, method: &str, target: &str, auth: &str, body: &[u8]) -> (&'static str, Value) {
        let expected = format!("Basic {}", b64(format!("{USER}:{PASSWORD}").as_bytes()));
        if auth != expected {
            return err("401 Unauthorized", "6", "User is not authorized.");
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let q: HashMap<&str, &str> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) => {
                    return err(
                        "400 Bad Request",
                        "262179",
                        "Unexpected argument: invalid JSON.",
                    );
                }
            }
        };
        let seg: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let mut st = self.state.lock().unwrap();
        if method != "GET" {
            st.log.push(format!(
                "{method} {}",
                seg[seg.len().saturating_sub(2)..].join("/")
            ));
        }
        match (method, seg.as_slice()) {
            ("GET", ["api", "svm", "svms"]) => {
                let recs: Vec<Value> = if q.get("name").is_none_or(|n| *n == SVM_NAME) {
                    vec![json!({"name": SVM_NAME, "uuid": SVM_UUID})]
                } else {
                    vec![]
                };
                (
                    "200 OK",
                    json!({"records": recs, "num_records": recs.len()}),
                )
            }
            ("GET", ["api", "storage", "volumes"]) => {
                self.volume_lookups.fetch_add(1, Relaxed);
                let msid: Option<u64> = q.get("msid").and_then(|m| m.parse().ok());
                let svm = q.get("svm.uuid").map(|s| decode(s));
                let recs: Vec<Value> = st
                    .volumes
                    .iter()
                    .filter(|v| msid.is_none_or(|m| v["msid"] == m))
                    .filter(|v| svm.as_ref().is_none_or(|s| v["svm"]["uuid"] == s.as_str()))
                    .cloned()
                    .collect();
                page(path, query, recs)
            }
            ("GET", ["api", "protocols", "cifs", "local-users"]) => {
                page(path, query, st.cifs_local_users.clone())
            }
            ("GET", ["api", "name-services", "unix-users"]) => {
                page(path, query, st.unix_users.clone())
            }
            (_, ["api", "protocols", "fpolicy", uuid, rest @ ..]) if *uuid == SVM_UUID => {
                self.fpolicy(&mut st, method, rest, &q, body)
            }
            (_, ["api", "protocols", "fpolicy", _, ..]) => {
                err("404 Not Found", "4", "SVM not found")
            }
            _ => err("404 Not Found", "4", "API not found"),
        }
    }

    fn fpolicy(
        &self,
        st: &mut State,
        method: &str,
        rest: &[&str],
        q: &HashMap<&str, &str>,
        body: Value,
    ) -> (&'static str, Value) {
        let enabled_users = |st: &State, key: &str, name: &str| -> Option<String> {
            st.policies
                .values()
                .find(|p| {
                    p["enabled"] == true
                        && match key {
                            "engine" => p["engine"]["name"] == name,
                            _ => p["events"]
                                .as_array()
                                .is_some_and(|e| e.iter().any(|x| x["name"] == name)),
                        }
                })
                .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        };
        match (method, rest) {
            ("GET", ["connections"]) => {
                let policy = q.get("policy.name").copied();
                let recs: Vec<Value> = st
                    .connections
                    .iter()
                    .filter(|_| policy.is_some())
                    .map(|((node, server), state)| json!({"node": {"name": node}, "policy": {"name": policy.unwrap_or_default()}, "server": server, "state": state, "type": "primary"}))
                    .collect();
                (
                    "200 OK",
                    json!({"records": recs, "num_records": recs.len()}),
                )
            }
            (
                _,
                [
                    kind @ ("engines" | "events" | "policies" | "persistent-stores"),
                    tail @ ..,
                ],
            ) => {
                let (fields, map): (&[&str], &mut BTreeMap<String, Value>) = match *kind {
                    "engines" => (ENGINE_FIELDS, &mut st.engines),
                    "events" => (EVENT_FIELDS, &mut st.events),
                    "policies" => (POLICY_FIELDS, &mut st.policies),
                    _ => (STORE_FIELDS, &mut st.stores),
                };
                if matches!(method, "POST" | "PATCH") {
                    record_body(kind, method, &body);
                }
                if let Some(f) = unknown(&body, fields) {
                    return err(
                        "400 Bad Request",
                        "262197",
                        &format!("Unexpected argument \"{f}\"."),
                    );
                }
                match (method, tail) {
                    ("GET", []) => {
                        let recs: Vec<Value> = map.values().cloned().collect();
                        (
                            "200 OK",
                            json!({"records": recs, "num_records": recs.len()}),
                        )
                    }
                    ("GET", [name]) => match map.get(*name) {
                        Some(v) => ("200 OK", v.clone()),
                        None => err(
                            "404 Not Found",
                            "4",
                            &format!("entry doesn't exist: {name}"),
                        ),
                    },
                    ("POST", []) => {
                        let Some(name) = body["name"].as_str().map(str::to_owned) else {
                            return err("400 Bad Request", "2", "Missing value for \"name\".");
                        };
                        if map.contains_key(&name) {
                            return err("409 Conflict", "1", &format!("duplicate entry: {name}"));
                        }
                        if *kind == "engines"
                            && (body["port"].is_null()
                                || body["primary_servers"]
                                    .as_array()
                                    .is_none_or(|a| a.is_empty()))
                        {
                            return err(
                                "400 Bad Request",
                                "2",
                                "Missing value for \"port\" or \"primary_servers\".",
                            );
                        }
                        if *kind == "policies"
                            && body["enabled"] == true
                            && body["priority"].is_null()
                        {
                            return err(
                                "400 Bad Request",
                                "9765030",
                                "To enable a policy, specify its priority.",
                            );
                        }
                        map.insert(name, body);
                        ("201 Created", json!({}))
                    }
                    ("PATCH", [name]) => {
                        let name = name.to_string();
                        if !map.contains_key(&name) {
                            return err(
                                "404 Not Found",
                                "4",
                                &format!("entry doesn't exist: {name}"),
                            );
                        }
                        if *kind == "engines" && self.fail_next_engine_patch.swap(false, Relaxed) {
                            return err(
                                "500 Internal Server Error",
                                "9765040",
                                "Injected failure while modifying the engine.",
                            );
                        }
                        if *kind == "engines" || *kind == "events" {
                            let key = if *kind == "engines" {
                                "engine"
                            } else {
                                "event"
                            };
                            if let Some(p) = enabled_users(st, key, &name) {
                                return err(
                                    "400 Bad Request",
                                    "9765027",
                                    &format!(
                                        "Cannot modify {key} \"{name}\" because it is in use by enabled policy \"{p}\". Disable the policy first."
                                    ),
                                );
                            }
                        }
                        let map: &mut BTreeMap<String, Value> = match *kind {
                            "engines" => &mut st.engines,
                            "events" => &mut st.events,
                            "policies" => &mut st.policies,
                            _ => &mut st.stores,
                        };
                        let cur = map.get_mut(&name).expect("checked");
                        if *kind == "policies" {
                            let only_state = body.as_object().is_some_and(|o| {
                                o.keys().all(|k| k == "enabled" || k == "priority")
                            });
                            if cur["enabled"] == true && !only_state {
                                return err(
                                    "400 Bad Request",
                                    "9765028",
                                    "Cannot modify an enabled policy. Disable it first.",
                                );
                            }
                            if body["enabled"] == true && body["priority"].is_null() {
                                return err(
                                    "400 Bad Request",
                                    "9765030",
                                    "To enable a policy, specify its priority.",
                                );
                            }
                        }
                        if let (Some(c), Some(b)) = (cur.as_object_mut(), body.as_object()) {
                            for (k, v) in b {
                                c.insert(k.clone(), v.clone());
                            }
                        }
                        ("200 OK", json!({}))
                    }
                    ("DELETE", [name]) => {
                        let name = name.to_string();
                        if *kind == "policies"
                            && map.get(&name).is_some_and(|p| p["enabled"] == true)
                        {
                            return err(
                                "400 Bad Request",
                                "9765029",
                                "Cannot delete an enabled policy.",
                            );
                        }
                        match map.remove(&name) {
                            Some(_) => ("200 OK", json!({})),
                            None => err("404 Not Found", "4", "entry doesn't exist"),
                        }
                    }
                    _ => err("405 Method Not Allowed", "3", "method not allowed"),
                }
            }
            _ => err("404 Not Found", "4", "API not found"),
        }
    }

    /// Every enabled policy's nodes connect to its engine's primary servers.
    fn reconcile(self: &Arc<Self>) {
        let mut desired: BTreeMap<(String, String), (SocketAddr, String)> = BTreeMap::new();
        {
            let st = self.state.lock().unwrap();
            for p in st.policies.values().filter(|p| p["enabled"] == true) {
                let Some(engine) = st
                    .engines
                    .get(p["engine"]["name"].as_str().unwrap_or_default())
                else {
                    continue;
                };
                let port = engine["port"].as_u64().unwrap_or(0) as u16;
                for s in engine["primary_servers"].as_array().into_iter().flatten() {
                    let server = s.as_str().unwrap_or_default().to_owned();
                    let Ok(ip) = server.parse::<std::net::IpAddr>() else {
                        continue;
                    };
                    for n in NODES {
                        desired.insert(
                            (n.to_owned(), server.clone()),
                            (
                                SocketAddr::new(ip, port),
                                p["name"].as_str().unwrap_or_default().to_owned(),
                            ),
                        );
                    }
                }
            }
        }
        let mut tasks = self.tasks.lock().unwrap();
        let stale: Vec<(String, String)> = tasks
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        for k in stale {
            if let Some(t) = tasks.remove(&k) {
                t.abort();
            }
            self.state.lock().unwrap().connections.remove(&k);
        }
        for (key, (addr, policy)) in desired {
            if tasks.contains_key(&key) {
                continue;
            }
            self.state
                .lock()
                .unwrap()
                .connections
                .insert(key.clone(), "disconnected".into());
            let me = self.clone();
            let k = key.clone();
            tasks.insert(
                key,
                tokio::spawn(async move { me.node_connection(k, addr, policy).await }),
            );
        }
    }

    async fn node_connection(
        self: Arc<Self>,
        key: (String, String),
        addr: SocketAddr,
        policy: String,
    ) {
        let set = |state: &str| {
            self.state
                .lock()
                .unwrap()
                .connections
                .insert(key.clone(), state.to_owned());
        };
        loop {
            if let Ok(mut stream) = TcpStream::connect(addr).await {
                let mut hs = sample::handshake(&["1.2", "2.0"]);
                hs.policy_name = policy.clone();
                hs.vs_uuid = SVM_UUID.into();
                hs.session_id = format!("{}-{}", key.0, key.1);
                let mut enc = Encoder::new(true);
                let mut out = Vec::new();
                enc.encode(&Message::NegoReq(hs), &mut out);
                if stream.write_all(&out).await.is_ok() && read_nego_resp(&mut stream).await {
                    set("connected");
                    if self.notify_on_connect.load(Relaxed) {
                        let path = format!("/{}/first", key.0);
                        let req = sample::screen_request(
                            1,
                            fpolicy_proto::ReqType::NfsCreat,
                            &path,
                            fpolicy_proto::ProtocolVersion::V2_0,
                        );
                        out.clear();
                        enc.encode(&Message::ScreenReq(req), &mut out);
                        let _ = stream.write_all(&out).await;
                    }
                    loop {
                        out.clear();
                        enc.encode(&Message::KeepAlive, &mut out);
                        if stream.write_all(&out).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                }
            }
            set("disconnected");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// With FPOLICY_ONTAP_BODIES set, appends every POST/PATCH body to that
/// file for `.ci/ontap-conformance.sh`, which checks them against the
/// resource schemas of NetApp's `netapp-ontap` Python package.
fn record_body(kind: &str, method: &str, body: &Value) {
    let Ok(path) = std::env::var("FPOLICY_ONTAP_BODIES") else {
        return;
    };
    let line = json!({"resource": kind, "method": method, "body": body}).to_string() + "\n";
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = std::io::Write::write_all(&mut f, line.as_bytes());
    }
}

async fn read_nego_resp(stream: &mut TcpStream) -> bool {
    let mut buf = bytes::BytesMut::new();
    let read = async {
        loop {
            if let Ok(FrameStatus::Complete { payload, .. }) = parse_frame(&buf, 1 << 20) {
                return matches!(
                    decode_payload(payload).map(|d| d.message),
                    Ok(Message::NegoResp(_))
                );
            }
            if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return false;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), read)
        .await
        .unwrap_or(false)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn b64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(T[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// A running fake cluster whose certificate (for "localhost") is issued by
/// a fresh CA, and a password file with the right password.
pub struct Cluster {
    pub fake: Arc<FakeOntap>,
    pub url: String,
    pub ca: std::path::PathBuf,
    pub password_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub async fn cluster() -> Cluster {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = Arc::new(FakeOntap::default());
    tokio::spawn(
        fake.clone()
            .serve(listener, tokio_rustls::TlsAcceptor::from(Arc::new(config))),
    );
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    Cluster {
        fake,
        url: format!("https://localhost:{port}"),
        ca,
        password_file,
        _dir: dir,
    }
}
