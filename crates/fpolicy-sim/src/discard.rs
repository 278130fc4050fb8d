//! A minimal FPolicy server that answers the handshake and discards
//! notifications; in synchronous mode it allows every request at once.
//! It exists to measure the simulator (so that the simulator is never the
//! bottleneck of a benchmark) and to test it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use fpolicy_proto::{
    Encoder, FrameDecoder, Message, ProtocolVersion, RequestStatus, ScreenDecision, ScreenResponse,
    decode_payload,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Counters shared by every connection.
#[derive(Debug, Default)]
pub struct DiscardStats {
    pub connections: AtomicU64,
    pub screen_requests: AtomicU64,
    pub keep_alives: AtomicU64,
    pub errors: AtomicU64,
}

/// Options of the discard server.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardConfig {
    /// Answer SCREEN_REQs (synchronous engine) instead of staying silent.
    pub reply: bool,
}

/// Accepts connections forever.
pub async fn serve(
    listener: TcpListener,
    cfg: DiscardConfig,
    stats: Arc<DiscardStats>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        tokio::spawn(async move {
            if handle(stream, cfg, &stats).await.is_err() {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

async fn handle(
    mut stream: tokio::net::TcpStream,
    cfg: DiscardConfig,
    stats: &DiscardStats,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = stream.set_nodelay(true);
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut encoder = Encoder::default();
    loop {
        while let Some(payload) = decoder.decode(&mut buf)? {
            match decode_payload(&payload)?.message {
                Message::NegoReq(hs) => {
                    let v = hs
                        .negotiate(&ProtocolVersion::ALL)
                        .ok_or("no common protocol version")?;
                    encoder.encode(&Message::NegoResp(hs.accept(v)), &mut out);
                }
                Message::ScreenReq(req) => {
                    stats.screen_requests.fetch_add(1, Ordering::Relaxed);
                    if cfg.reply {
                        encoder.encode(
                            &Message::ScreenResp(ScreenResponse {
                                req_id: req.req_id,
                                req_type: req.req_type,
                                decision: ScreenDecision::Allow,
                            }),
                            &mut out,
                        );
                    }
                }
                Message::StatusQueryReq(q) => {
                    // Every request is answered at once, so none is pending.
                    encoder.encode(
                        &Message::StatusQueryResp(q.answer(RequestStatus::Lost)),
                        &mut out,
                    );
                }
                Message::KeepAlive => {
                    stats.keep_alives.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}
