//! Accepts ONTAP connections: peer allowlist, connection limit, optional
//! TLS, then one task per session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use fpolicy_event::{NameResolver, Router, ScreeningRules};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::cidr::Cidr;
use crate::config::Config;
use crate::ingest::IngestBatch;
use crate::metrics::{CloseReason, Metrics, RejectReason};
use crate::server::run_session;

/// Everything a session needs, shared by all of them.
pub struct ServerContext {
    pub cfg: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub names: Arc<dyn NameResolver>,
    pub rules: ScreeningRules,
    pub router: Router,
    /// HYBRID: recent FPolicy paths, for the pollers' dedup.
    pub recent: Option<Arc<std::sync::Mutex<fpolicy_poll::hybrid::RecentEvents>>>,
    pub ingest: mpsc::Sender<IngestBatch>,
    pub back_pressure: watch::Receiver<bool>,
    pub allowed_peers: Vec<Cidr>,
    pub tls: Option<TlsAcceptor>,
}

/// Accepts until `shutdown` turns true, then waits for every session to
/// close. Dropping the context afterwards releases the last spool sender.
pub async fn serve_listener(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(ctx.cfg.server.max_connections));
    let mut sessions = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        ctx.metrics.connections_accepted.fetch_add(1, Relaxed);
        if !ctx.allowed_peers.is_empty() && !ctx.allowed_peers.iter().any(|c| c.contains(peer.ip()))
        {
            ctx.metrics.rejected(RejectReason::PeerNotAllowed);
            tracing::warn!(%peer, "peer not in server.allowed_peers; connection closed");
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            ctx.metrics.rejected(RejectReason::TooManyConnections);
            tracing::warn!(%peer, max = ctx.cfg.server.max_connections, "too many connections; connection closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        sessions.spawn(async move {
            let reason = accept_one(stream, peer, ctx.clone(), shutdown).await;
            ctx.metrics.closed(reason);
            drop(slot);
        });
    }
    tracing::info!(
        sessions = sessions.len(),
        "listener stopped; closing sessions"
    );
    while sessions.join_next().await.is_some() {}
}

async fn accept_one(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: Arc<ServerContext>,
    shutdown: watch::Receiver<bool>,
) -> CloseReason {
    match ctx.tls.clone() {
        None => run_session(stream, peer, ctx, shutdown).await,
        Some(acceptor) => {
            let timeout = Duration::from_secs(ctx.cfg.server.handshake_timeout_secs);
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => run_session(tls, peer, ctx, shutdown).await,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake failed; connection closed");
                    CloseReason::TlsError
                }
                Err(_) => {
                    tracing::warn!(%peer, "TLS handshake timed out; connection closed");
                    CloseReason::TlsError
                }
            }
        }
    }
}
