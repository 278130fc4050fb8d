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

use fpolicy_event::NameResolver;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::ingest::{IngestBatch, IngestRules};
use crate::log_limit::LogLimit;
use crate::metrics::{CloseReason, Metrics, RejectReason};
use crate::server::run_session;
use fpolicy_event::cidr::Cidr;

/// Everything a session needs, shared by all of them.
pub struct ServerContext {
    pub cfg: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub names: Arc<dyn NameResolver>,
    /// With ONTAP names: how to wait (bounded) for a lookup.
    pub name_wait: Option<crate::server::names::NameWait>,
    /// Screening, routing and HYBRID bookkeeping, shared with the pollers.
    pub ingest_rules: Arc<IngestRules>,
    pub ingest: mpsc::Sender<IngestBatch>,
    pub back_pressure: watch::Receiver<bool>,
    pub allowed_peers: Vec<Cidr>,
    pub tls: Option<TlsAcceptor>,
    /// Bytes of frames being read, in KiB permits (server.max_buffered_bytes).
    pub frame_budget: Arc<Semaphore>,
}

/// Connections in their handshake: bounded in all and per source address.
/// When the pool is full, the oldest waiting connection is closed to make
/// room, so a flood of connections that never complete a handshake cannot
/// keep an ONTAP node from reaching the server (its handshake takes
/// milliseconds; a stranger's place lasts until the next newcomer).
#[derive(Default)]
struct PendingPool {
    inner: Mutex<PendingInner>,
}

#[derive(Default)]
struct PendingInner {
    next_id: u64,
    /// Oldest first: (id, source address, eviction signal).
    order: std::collections::VecDeque<(u64, IpAddr, oneshot::Sender<()>)>,
    by_peer: HashMap<IpAddr, usize>,
}

impl PendingInner {
    fn forget_peer(&mut self, ip: IpAddr) {
        if let Some(n) = self.by_peer.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_peer.remove(&ip);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(i) = self.order.iter().position(|(x, _, _)| *x == id)
            && let Some((_, ip, _)) = self.order.remove(i)
        {
            self.forget_peer(ip);
        }
    }

    /// Signals the oldest waiting connection to close and forgets it.
    fn evict_oldest(&mut self) -> Option<IpAddr> {
        let (_, ip, signal) = self.order.pop_front()?;
        let _ = signal.send(());
        self.forget_peer(ip);
        Some(ip)
    }
}

/// A connection's place: first in the handshake pool, then (after an
/// accepted NEGO_REQ) in an established-session slot.
pub struct Admission {
    pending: Option<PendingPlace>,
    established: Option<OwnedSemaphorePermit>,
    slots: Arc<Semaphore>,
}

struct PendingPlace {
    id: u64,
    pool: Arc<PendingPool>,
}

impl Drop for PendingPlace {
    fn drop(&mut self) {
        let mut inner = self.pool.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(self.id);
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

/// Completes when the connection was evicted from the handshake pool;
/// never once it left the pool otherwise.
async fn evicted(rx: oneshot::Receiver<()>) {
    if rx.await.is_err() {
        std::future::pending::<()>().await;
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
    let pool = Arc::new(PendingPool::default());
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
        let Some((admission, eviction)) = admit(&ctx, &pool, &slots, peer.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        sessions.spawn(async move {
            let reason = tokio::select! {
                r = accept_one(stream, peer, ctx.clone(), shutdown, admission) => r,
                () = evicted(eviction) => CloseReason::HandshakeEvicted,
            };
            ctx.metrics.closed(reason);
        });
    }
    tracing::info!(
        sessions = sessions.len(),
        "listener stopped; closing sessions"
    );
    while sessions.join_next().await.is_some() {}
}

/// A place in the handshake pool (evicting the oldest waiting connection
/// when the pool is full), or None (counted, logged at a bounded rate) when
/// the source address already has its share.
fn admit(
    ctx: &ServerContext,
    pool: &Arc<PendingPool>,
    slots: &Arc<Semaphore>,
    ip: IpAddr,
) -> Option<(Admission, oneshot::Receiver<()>)> {
    let srv = &ctx.cfg.server;
    let mut inner = pool.inner.lock().unwrap_or_else(|p| p.into_inner());
    let n = inner.by_peer.get(&ip).copied().unwrap_or(0);
    if n >= srv.max_pending_handshakes_per_peer {
        ctx.metrics.rejected(RejectReason::TooManyFromPeer);
        crate::limited!(HANDSHAKE_POOL_FULL, warn, peer = %ip, max = srv.max_pending_handshakes_per_peer, "too many connections in their handshake from this address; connection closed");
        return None;
    }
    if inner.order.len() >= srv.max_pending_handshakes
        && let Some(old_peer) = inner.evict_oldest()
    {
        ctx.metrics.rejected(RejectReason::TooManyHandshakes);
        crate::limited!(HANDSHAKE_POOL_FULL, warn, evicted_peer = %old_peer, max = srv.max_pending_handshakes, "handshake pool full: the oldest connection still in its handshake was closed to make room");
    }
    let id = inner.next_id;
    inner.next_id += 1;
    let (tx, rx) = oneshot::channel();
    inner.order.push_back((id, ip, tx));
    *inner.by_peer.entry(ip).or_default() += 1;
    drop(inner);
    Some((
        Admission {
            pending: Some(PendingPlace {
                id,
                pool: pool.clone(),
            }),
            established: None,
            slots: slots.clone(),
        },
        rx,
    ))
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
            let timeout = ctx.cfg.server.handshake_timeout;
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
