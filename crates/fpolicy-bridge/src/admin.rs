//! Admin HTTP: `/metrics` (OpenMetrics text), `/healthz` (the process is up),
//! `/readyz` (listening and the spool is open). A deliberately tiny
//! HTTP/1.1 responder: GET only, one request per connection, bounded size
//! and time.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;

const MAX_REQUEST: usize = 8192;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve_admin(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (mut stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let (status, ctype, body) = respond(&buf, &metrics);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

fn respond(request: &[u8], metrics: &Arc<Metrics>) -> (&'static str, &'static str, String) {
    let line = request.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    // `scope=server`: only "this process takes events" (listening, spool
    // open). The container health check uses it: a sink or ONTAP outage
    // is no reason to replace a task whose spool holds the events.
    let server_only = query.split('&').any(|kv| kv == "scope=server");
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "GET only\n".into());
    }
    match path {
        "/metrics" => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        "/sessions" => (
            "200 OK",
            "application/json",
            metrics.live_sessions.to_json(),
        ),
        "/readyz" => match readiness(metrics, server_only) {
            Ok(body) => ("200 OK", TEXT, body),
            Err(why) => (
                "503 Service Unavailable",
                TEXT,
                format!("not ready: {why}\n"),
            ),
        },
        _ => (
            "404 Not Found",
            TEXT,
            "try /metrics, /healthz, /readyz or /sessions\n".into(),
        ),
    }
}

/// The `/readyz` answer: the body of a ready server, or why it is not
/// ready, checked in order. `server_only` asks only "takes events" (the
/// container health check).
fn readiness(metrics: &Metrics, server_only: bool) -> Result<String, String> {
    let r = &metrics.readiness;
    if !r.listening() {
        return Err("not listening or spool not open".into());
    }
    if server_only {
        // A full disk is no reason to replace the task that holds the
        // spool: the server keeps its sessions and recovers by itself
        // once space is back.
        return Ok(format!("ready (server){}\n", notes(metrics)));
    }
    if let Some(why) = r.spool_write_error() {
        return Err(format!(
            "spool cannot be written, new events are refused (disk full?): {why}"
        ));
    }
    if let Some(why) = r.registration_pending() {
        return Err(format!("not registered with ONTAP: {why}"));
    }
    let polls = metrics.polls_down();
    if !polls.is_empty() {
        return Err(format!(
            "poll failing (bucket unreachable or forbidden?): {}",
            polls.join(", ")
        ));
    }
    let down = metrics.sinks_down();
    if !down.is_empty() {
        return Err(format!("sink destination not usable: {}", down.join(", ")));
    }
    Ok(format!("ready{}\n", notes(metrics)))
}

/// What a ready server still wants an operator to know.
fn notes(metrics: &Metrics) -> String {
    let mut out = String::new();
    if let Some(why) = metrics.readiness.spool_write_error() {
        out.push_str(&format!("; spool cannot be written: {why}"));
    }
    if let Some(summary) = metrics.readiness.recovery() {
        out.push_str(&format!("; {summary}"));
    }
    out
}

/// The answer of a health probe: `fpolicy-bridge health`, the container
/// health check of images without curl.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{addr}: {source}")]
    Io {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}{path}: not an HTTP answer")]
    Malformed {
        addr: std::net::SocketAddr,
        path: String,
    },
    #[error("{addr}{path}: {status}: {body}")]
    NotOk {
        addr: std::net::SocketAddr,
        path: String,
        status: u16,
        body: String,
    },
}

/// GETs `path` from the admin address and returns the body of a 200.
/// Blocking, bounded in time (`timeout` per step) and size (64 KiB).
pub fn probe(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<String, ProbeError> {
    probe_limited(addr, path, timeout, 64 * 1024)
}

/// [`probe`] with another size bound (`/metrics` of a server with many
/// sinks and polls is larger than a health check's answer).
pub fn probe_limited(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Duration,
    limit: u64,
) -> Result<String, ProbeError> {
    use std::io::{Read, Write};
    let io = |source| ProbeError::Io { addr, source };
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut answer = Vec::new();
    stream.take(limit).read_to_end(&mut answer).map_err(io)?;
    let text = String::from_utf8_lossy(&answer);
    let malformed = || ProbeError::Malformed {
        addr,
        path: path.to_owned(),
    };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status: u16 = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(malformed)?;
    if status == 200 {
        Ok(body.trim_end().to_owned())
    } else {
        Err(ProbeError::NotOk {
            addr,
            path: path.to_owned(),
            status,
            body: body.trim_end().to_owned(),
        })
    }
}
