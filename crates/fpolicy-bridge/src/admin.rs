//! Admin HTTP: `/metrics` (Prometheus text), `/healthz` (the process is up),
//! `/readyz` (listening and the spool is open). A deliberately tiny
//! HTTP/1.1 responder: GET only, one request per connection, bounded size
//! and time.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
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

fn respond(request: &[u8], metrics: &Metrics) -> (&'static str, &'static str, String) {
    let line = request.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "GET only\n".into());
    }
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" => {
            let down = metrics.sinks_down();
            if metrics.ready.load(Relaxed) != 1 {
                (
                    "503 Service Unavailable",
                    TEXT,
                    "not ready: not listening or spool not open\n".into(),
                )
            } else if metrics.ontap_registered.load(Relaxed) == 2 {
                let why = metrics
                    .ontap_error()
                    .unwrap_or_else(|| "in progress".into());
                (
                    "503 Service Unavailable",
                    TEXT,
                    format!("not ready: not registered with ONTAP: {why}\n"),
                )
            } else if !metrics.polls_down().is_empty() {
                (
                    "503 Service Unavailable",
                    TEXT,
                    format!(
                        "not ready: poll failing (bucket unreachable or forbidden?): {}\n",
                        metrics.polls_down().join(", ")
                    ),
                )
            } else if !down.is_empty() {
                (
                    "503 Service Unavailable",
                    TEXT,
                    format!(
                        "not ready: sink destination not usable: {}\n",
                        down.join(", ")
                    ),
                )
            } else {
                ("200 OK", TEXT, "ready\n".into())
            }
        }
        _ => (
            "404 Not Found",
            TEXT,
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}
