//! Accepts ONTAP connections: peer allowlist, a small pool for connections
//! still in their handshake (in all and per source address), optional TLS,
//! then one task per session, which moves to an established-session slot
//! once its NEGO_REQ is accepted. Strangers that never complete a
//! handshake therefore cost a bounded amount and never take a slot from an
//! ONTAP node.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fpolicy_event::{NameResolver, Router, ScreeningRules};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::cidr::Cidr;
use crate::config::Config;
use crate::ingest::IngestBatch;
use crate::log_limit::LogLimit;
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
    /// Bytes of frames being read, in KiB permits (server.max_buffered_bytes).
    pub frame_budget: Arc<Semaphore>,
}

/// Connections in their handshake, per source address.
type PendingByPeer = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A connection's place: first in the handshake pool, then (after an
/// accepted NEGO_REQ) in an established-session slot.
pub struct Admission {
    pending: Option<PendingPlace>,
    established: Option<OwnedSemaphorePermit>,
    slots: Arc<Semaphore>,
}

struct PendingPlace {
    _permit: OwnedSemaphorePermit,
    peer: IpAddr,
    by_peer: PendingByPeer,
}

impl Drop for PendingPlace {
    fn drop(&mut self) {
        let mut map = self.by_peer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.peer);
            }
        }
    }
}

impl Admission {
    /// Moves from the handshake pool to an established-session slot;
    /// false when every slot is taken.
    pub fn establish(&mut self) -> bool {
        match self.slots.clone().try_acquire_owned() {
            Ok(p) => {
                self.established = Some(p);
                self.pending = None;
                true
            }
            Err(_) => false,
        }
    }
}

static NOT_ALLOWED: LogLimit = LogLimit::new(Duration::from_secs(10));
static HANDSHAKE_POOL_FULL: LogLimit = LogLimit::new(Duration::from_secs(10));
static TLS_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// Accepts until `shutdown` turns true, then waits for every session to
/// close. Dropping the context afterwards releases the last spool sender.
pub async fn serve_listener(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(ctx.cfg.server.max_connections));
    let handshakes = Arc::new(Semaphore::new(ctx.cfg.server.max_pending_handshakes));
    let by_peer: PendingByPeer = Arc::default();
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
            crate::limited!(NOT_ALLOWED, warn, %peer, "peer not in server.allowed_peers; connection closed");
            continue;
        }
        let Some(admission) = admit(&ctx, &handshakes, &by_peer, &slots, peer.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        sessions.spawn(async move {
            let reason = accept_one(stream, peer, ctx.clone(), shutdown, admission).await;
            ctx.metrics.closed(reason);
        });
    }
    tracing::info!(
        sessions = sessions.len(),
        "listener stopped; closing sessions"
    );
    while sessions.join_next().await.is_some() {}
}

/// A place in the handshake pool, or None (counted, logged at a bounded
/// rate) when the pool or the source address's share of it is full.
fn admit(
    ctx: &ServerContext,
    handshakes: &Arc<Semaphore>,
    by_peer: &PendingByPeer,
    slots: &Arc<Semaphore>,
    ip: IpAddr,
) -> Option<Admission> {
    let per_peer = ctx.cfg.server.max_pending_handshakes_per_peer;
    let mut map = by_peer.lock().unwrap_or_else(|p| p.into_inner());
    let n = map.get(&ip).copied().unwrap_or(0);
    if n >= per_peer {
        ctx.metrics.rejected(RejectReason::TooManyFromPeer);
        crate::limited!(HANDSHAKE_POOL_FULL, warn, peer = %ip, max = per_peer, "too many connections in their handshake from this address; connection closed");
        return None;
    }
    let Ok(permit) = handshakes.clone().try_acquire_owned() else {
        ctx.metrics.rejected(RejectReason::TooManyHandshakes);
        crate::limited!(HANDSHAKE_POOL_FULL, warn, peer = %ip, max = ctx.cfg.server.max_pending_handshakes, "too many connections in their handshake; connection closed");
        return None;
    };
    map.insert(ip, n + 1);
    drop(map);
    Some(Admission {
        pending: Some(PendingPlace {
            _permit: permit,
            peer: ip,
            by_peer: by_peer.clone(),
        }),
        established: None,
        slots: slots.clone(),
    })
}

async fn accept_one(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: Arc<ServerContext>,
    shutdown: watch::Receiver<bool>,
    admission: Admission,
) -> CloseReason {
    match ctx.tls.clone() {
        None => run_session(stream, peer, ctx, shutdown, admission).await,
        Some(acceptor) => {
            let timeout = Duration::from_secs(ctx.cfg.server.handshake_timeout_secs);
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => run_session(tls, peer, ctx, shutdown, admission).await,
                Ok(Err(e)) => {
                    crate::limited!(TLS_FAILED, warn, %peer, error = %e, "TLS handshake failed; connection closed");
                    CloseReason::TlsError
                }
                Err(_) => {
                    crate::limited!(TLS_FAILED, warn, %peer, "TLS handshake timed out; connection closed");
                    CloseReason::TlsError
                }
            }
        }
    }
}
