//! The FPolicy handshake: NEGO_REQ within `handshake_timeout_secs` and
//! under the small pre-handshake frame limit, the allowlists and a common
//! protocol version, an established-session slot, then NEGO_RESP.

use std::net::SocketAddr;
use std::time::Duration;

use fpolicy_event::NameState;
use fpolicy_proto::{Encoder, Handshake, Message, ProtocolVersion, decode_payload};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::config::ServerConfig;
use crate::log_limit::LogLimit;
use crate::metrics::{CloseReason, Metrics, ParseError, RejectReason};
use crate::server::ServerContext;
use crate::server::connection::{Connection, ReadError};
use crate::server::listener::Admission;

static HANDSHAKE_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));
static HANDSHAKE_REJECTED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// A session whose handshake succeeded.
pub struct Established {
    pub hs: Handshake,
    pub version: ProtocolVersion,
    pub encoder: Encoder,
}

/// Runs the handshake; on failure, says why the connection closes (the
/// reason is logged at a bounded rate and counted by the caller).
pub async fn handshake<R, W>(
    conn: &mut Connection<R>,
    wr: &mut W,
    ctx: &ServerContext,
    admission: &mut Admission,
    peer: SocketAddr,
) -> Result<Established, CloseReason>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let m = &ctx.metrics;
    let hs = read_nego_req(conn, ctx).await.map_err(|(reason, why)| {
        crate::limited!(HANDSHAKE_FAILED, warn, %peer, reason = reason.label(), error = %why, "handshake failed; connection closed");
        reason
    })?;
    let srv = &ctx.cfg.server;
    let version = accept(srv, &hs).map_err(|why| {
        crate::limited!(HANDSHAKE_REJECTED, warn, %peer, policy = %hs.policy_name, svm_uuid = %hs.vs_uuid, session_id = %hs.session_id, reason = %why, "handshake rejected; connection closed");
        CloseReason::HandshakeRejected
    })?;
    if !admission.establish() {
        m.rejected(RejectReason::TooManyConnections);
        crate::limited!(HANDSHAKE_REJECTED, warn, %peer, policy = %hs.policy_name, max = srv.max_connections, "every established-session slot is taken (server.max_connections); connection closed");
        return Err(CloseReason::TooManySessions);
    }
    wait_for_svm_names(ctx, &hs.vs_uuid).await;
    let mut encoder = Encoder::new(true);
    let mut out = Vec::with_capacity(4096);
    encoder.encode(&Message::NegoResp(hs.accept(version)), &mut out);
    if let Err(e) = wr.write_all(&out).await.and(wr.flush().await) {
        tracing::warn!(%peer, error = %e, "cannot send NEGO_RESP");
        return Err(CloseReason::IoError);
    }
    m.frame(fpolicy_proto::NotfType::NegoResp);
    Ok(Established {
        hs,
        version,
        encoder,
    })
}

/// A session of an SVM whose volumes are not loaded yet: the load starts
/// now and the answer waits for it (bounded), so the first SCREEN_REQ
/// finds its names.
async fn wait_for_svm_names(ctx: &ServerContext, svm_uuid: &str) {
    let Some(wait) = &ctx.name_wait else { return };
    let pending = || ctx.names.svm_state(svm_uuid) == NameState::Pending;
    if pending() {
        let deadline = tokio::time::Instant::now() + wait.bound;
        wait.until(deadline, pending).await;
    }
}

async fn read_nego_req<R: AsyncRead + Unpin>(
    conn: &mut Connection<R>,
    ctx: &ServerContext,
) -> Result<Handshake, (CloseReason, String)> {
    let srv = &ctx.cfg.server;
    let max = srv.handshake_max_frame_bytes.min(srv.max_frame_bytes);
    let timeout = srv.handshake_timeout;
    let m: &Metrics = &ctx.metrics;
    let payload = match tokio::time::timeout(timeout, conn.read_frame(max)).await {
        Err(_) => return Err((CloseReason::HandshakeTimeout, "no NEGO_REQ in time".into())),
        Ok(Ok(None)) => {
            return Err((
                CloseReason::PeerClosed,
                "closed before the handshake".into(),
            ));
        }
        Ok(Err(e @ ReadError::Frame(_))) => {
            m.parse_error(ParseError::Frame);
            return Err((CloseReason::ProtocolError, e.to_string()));
        }
        Ok(Err(e @ ReadError::Io(_))) => return Err((CloseReason::IoError, e.to_string())),
        Ok(Ok(Some(p))) => p,
    };
    let decoded = decode_payload(&payload).map_err(|e| {
        m.parse_error(ParseError::Message);
        (CloseReason::ProtocolError, e.to_string())
    })?;
    m.frame(decoded.header.notf_type);
    match decoded.message {
        Message::NegoReq(hs) => Ok(hs),
        _ => {
            m.parse_error(ParseError::UnexpectedMessage);
            Err((
                CloseReason::ProtocolError,
                format!(
                    "expected NEGO_REQ, got {}",
                    decoded.header.notf_type.as_str()
                ),
            ))
        }
    }
}

/// The allowlists and version negotiation: the version to answer with, or
/// why the handshake is refused.
fn accept(srv: &ServerConfig, hs: &Handshake) -> Result<ProtocolVersion, String> {
    if !srv.allowed_policies.is_empty() && !srv.allowed_policies.contains(&hs.policy_name) {
        return Err(format!(
            "policy {:?} is not in server.allowed_policies",
            hs.policy_name
        ));
    }
    if !srv.allowed_svm_uuids.is_empty() && !srv.allowed_svm_uuids.contains(&hs.vs_uuid) {
        return Err(format!(
            "SVM {:?} is not in server.allowed_svm_uuids",
            hs.vs_uuid
        ));
    }
    hs.negotiate(&ProtocolVersion::ALL)
        .ok_or_else(|| format!("no common protocol version in {:?}", hs.versions))
}
