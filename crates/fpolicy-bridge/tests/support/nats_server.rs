//! Real `nats-server` processes for the NATS sink tests (Debian package
//! `nats-server`, which scripts/test.sh installs): a single JetStream
//! server or a three-node cluster on loopback ports, file storage in a
//! temporary directory, optionally TLS from a fresh CA and a user with a
//! password. Each node can be killed (-9) and restarted with its data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

pub const USER: &str = "bridge";
pub const PASSWORD: &str = "nats-s3cret";

fn binary() -> String {
    std::env::var("FPOLICY_NATS_SERVER").unwrap_or_else(|_| "/usr/sbin/nats-server".into())
}

pub struct Node {
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self) {
        let mut command = Command::new(binary());
        command.arg("-c").arg(&self.config);
        self.child = Some(crate::common::process::spawn_listening(
            command, &self.log, self.port,
        ));
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

pub struct Nats {
    dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    /// With TLS: the CA that issued the servers' certificate.
    pub ca: Option<PathBuf>,
}

impl Drop for Nats {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}

impl Nats {
    /// One JetStream server.
    pub fn single() -> Nats {
        Nats::start(1, false)
    }

    /// Three JetStream servers in one cluster (R3 streams possible).
    pub fn cluster() -> Nats {
        Nats::start(3, false)
    }

    /// One server with TLS and a user with a password.
    pub fn secured() -> Nats {
        Nats::start(1, true)
    }

    fn start(n: usize, secured: bool) -> Nats {
        assert!(
            Path::new(&binary()).exists(),
            "nats-server is not installed ({}): scripts/test.sh installs the Debian package nats-server",
            binary()
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = secured.then(|| crate::common::write_server_certificates(dir.path()));
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| {
                (
                    crate::common::process::free_port().port(),
                    crate::common::process::free_port().port(),
                )
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, cluster_port)) in ports.iter().enumerate() {
            let d = dir.path().join(format!("n{i}"));
            std::fs::create_dir(&d).unwrap();
            let mut conf = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n",
                d.join("js")
            );
            if n > 1 {
                let routes: Vec<String> = ports
                    .iter()
                    .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
                    .collect();
                conf.push_str(&format!(
                    "cluster {{ name: c1\n listen: 127.0.0.1:{cluster_port}\n routes: [{}] }}\n",
                    routes.join(", ")
                ));
            }
            if secured {
                let p = dir.path().display();
                conf.push_str(&format!(
                    "tls {{ cert_file: \"{p}/server.pem\"\n key_file: \"{p}/server.key\" }}\n\
                     authorization {{ user: {USER}\n password: \"{PASSWORD}\" }}\n"
                ));
            }
            let config = d.join("nats.conf");
            std::fs::write(&config, conf).unwrap();
            nodes.push(Node {
                port: *port,
                config,
                log: d.join("nats.log"),
                child: None,
            });
        }
        for node in &mut nodes {
            node.spawn();
        }
        Nats { dir, nodes, ca }
    }

    /// Every node's URL, as a sink's `servers`.
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.ca.is_some() { "tls" } else { "nats" };
        self.nodes
            .iter()
            .map(|n| format!("{scheme}://localhost:{}", n.port))
            .collect()
    }

    /// A client for the test's own checks.
    pub async fn client(&self) -> async_nats::Client {
        let mut o = async_nats::ConnectOptions::new();
        if let Some(ca) = &self.ca {
            o = o
                .add_root_certificates(ca.clone())
                .require_tls(true)
                .user_and_password(USER.into(), PASSWORD.into());
        }
        let urls: Vec<async_nats::ServerAddr> =
            self.urls().iter().map(|u| u.parse().unwrap()).collect();
        o.connect(urls).await.expect("test client connects")
    }

    pub fn log(&self, node: usize) -> String {
        std::fs::read_to_string(&self.nodes[node].log).unwrap_or_default()
    }
}

/// Every message of a stream: (subject, Nats-Msg-Id, payload).
pub async fn messages(client: &async_nats::Client, stream: &str) -> Vec<(String, String, Vec<u8>)> {
    use futures_util::StreamExt;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream(stream).await.expect("the stream exists");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        let mut got = 0;
        while let Some(Ok(m)) = batch.next().await {
            got += 1;
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            out.push((m.subject.to_string(), id, m.payload.to_vec()));
        }
        if got == 0 {
            return out;
        }
    }
}
