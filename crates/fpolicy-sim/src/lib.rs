//! An ONTAP-side FPolicy simulator and load generator.
//!
//! Each simulated node opens one connection, as an ONTAP node does, sends
//! NEGO_REQ and checks the NEGO_RESP strictly, then streams SCREEN_REQs from
//! a realistic [`workload`], in asynchronous mode (fire and forget) or
//! synchronous mode (a window of outstanding requests matched by ReqId, with
//! STATUS_QUERY_REQ and SCREEN_CANCEL timers), honouring back pressure and
//! sending KEEP_ALIVE on an interval. [`run`] returns a [`Report`].
//!
//! [`discard`] is a minimal server that answers the handshake (and, in
//! synchronous mode, every request) and discards everything else: used to
//! measure the simulator itself.

pub mod discard;
pub mod node;
pub mod report;
pub mod tls;
pub mod workload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use report::{Counters, Latency, LatencyHistogram, NodeReport, Report};

/// Errors of one simulated node.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("framing: {0}")]
    Frame(#[from] fpolicy_proto::FrameError),
    #[error("message: {0}")]
    Message(#[from] fpolicy_proto::MessageError),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("connection closed by the server {0}")]
    Closed(&'static str),
}

/// How ONTAP's engine behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fire and forget: no SCREEN_RESP expected.
    Async,
    /// At most `max_outstanding` requests without a SCREEN_RESP.
    Sync { max_outstanding: usize },
}

/// A simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub server: SocketAddr,
    pub nodes: usize,
    pub policy_name: String,
    pub vs_uuid: String,
    /// Session ids are `<prefix>-<node number>`.
    pub session_prefix: String,
    pub versions: Vec<String>,
    pub mode: Mode,
    /// Total SCREEN_REQs per second over all nodes; `None` = as fast as possible.
    pub rate: Option<u64>,
    /// Total SCREEN_REQs over all nodes.
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub keep_alive_interval: Duration,
    pub status_query_after: Duration,
    pub cancel_after: Duration,
    pub handshake_timeout: Duration,
    /// How long to keep reading after the last request.
    pub linger: Duration,
    pub max_frame_len: usize,
    pub seed: u64,
    /// Connect with TLS (ONTAP's `server-auth` / `mutual-auth`).
    pub tls: Option<tls::SimTls>,
}

impl SimConfig {
    /// Defaults as ONTAP's engine defaults where they apply (keep-alive
    /// 120 s, status queries after 10 s, cancel after 20 s).
    pub fn new(server: SocketAddr) -> Self {
        SimConfig {
            server,
            nodes: 1,
            policy_name: fpolicy_proto::sample::SAMPLE_POLICY.into(),
            vs_uuid: fpolicy_proto::sample::SAMPLE_VS_UUID.into(),
            session_prefix: "5ab0c6a4-0f1e-11f1-9c2d-00a098d1".into(),
            versions: vec!["1.0".into(), "1.1".into(), "1.2".into(), "2.0".into()],
            mode: Mode::Async,
            rate: None,
            count: Some(10_000),
            duration: None,
            keep_alive_interval: Duration::from_secs(120),
            status_query_after: Duration::from_secs(10),
            cancel_after: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(500),
            max_frame_len: fpolicy_proto::DEFAULT_MAX_FRAME_LEN,
            seed: 1,
            tls: None,
        }
    }

    /// The share of `count` for node `i` (the remainder goes to the first nodes).
    pub fn quota(&self, i: usize) -> Option<u64> {
        self.count.map(|c| {
            let n = self.nodes as u64;
            c / n + u64::from((i as u64) < c % n)
        })
    }

    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Async => "asynchronous",
            Mode::Sync { .. } => "synchronous",
        }
    }
}

/// Runs every node over plain TCP and collects the report.
pub async fn run(cfg: SimConfig) -> Report {
    let cfg = Arc::new(cfg);
    let mut tasks = Vec::with_capacity(cfg.nodes);
    for i in 0..cfg.nodes {
        let cfg = cfg.clone();
        tasks.push(tokio::spawn(async move {
            match tokio::net::TcpStream::connect(cfg.server).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    match &cfg.tls {
                        None => node::run_node(stream, cfg.clone(), i, cfg.quota(i)).await,
                        Some(tls) => match tls.connect(stream).await {
                            Ok(s) => node::run_node(s, cfg.clone(), i, cfg.quota(i)).await,
                            Err(e) => NodeReport {
                                errors: vec![format!("TLS handshake with {}: {e}", cfg.server)],
                                ..NodeReport::default()
                            },
                        },
                    }
                }
                Err(e) => NodeReport {
                    errors: vec![format!("connect to {}: {e}", cfg.server)],
                    ..NodeReport::default()
                },
            }
        }));
    }
    let mut reports = Vec::with_capacity(tasks.len());
    for t in tasks {
        reports.push(t.await.unwrap_or_else(|e| NodeReport {
            errors: vec![format!("node task failed: {e}")],
            ..NodeReport::default()
        }));
    }
    Report::from_nodes(cfg.mode_name(), reports)
}

/// Parses `250ms`, `10s`, `2m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use 250ms, 10s, 2m)"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}
