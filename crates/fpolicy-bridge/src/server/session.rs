//! One ONTAP session: handshake, then a reader that decodes frames and
//! hands events to the spool writer, and a writer task that owns the
//! socket's write half (NEGO_RESP, SCREEN_RESP after durability, status
//! answers, back pressure).
//!
//! The reader never waits on a sink: its only await besides the socket is
//! the bounded queue to the spool writer, which moves at group-commit speed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use fpolicy_event::normalize::EngineType;
use fpolicy_event::{Normalizer, SessionInfo, Verdict, record};
use fpolicy_proto::{
    BackPressure, Encoder, FrameError, FrameStatus, Handshake, Message, MessageError,
    ProtocolVersion, ReqType, RequestStatus, ScreenDecision, ScreenResponse, Severity,
    decode_payload, parse_frame,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::ingest::{IngestBatch, Replies};
use crate::log_limit::LogLimit;
use crate::metrics::{AlertSeverity, CloseReason, ParseError, RejectReason};
use crate::server::ServerContext;
use crate::server::listener::Admission;

static HANDSHAKE_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));
static HANDSHAKE_REJECTED: LogLimit = LogLimit::new(Duration::from_secs(10));
static MALFORMED: LogLimit = LogLimit::new(Duration::from_secs(10));
static UNKNOWN_REQ_TYPE: LogLimit = LogLimit::new(Duration::from_secs(10));
static UNEXPECTED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// On shutdown, how long a session keeps reading what ONTAP already sent,
/// and how long a quiet socket ends that early.
const SHUTDOWN_READ_GRACE: Duration = Duration::from_secs(2);
const SHUTDOWN_QUIET: Duration = Duration::from_millis(100);

/// Frames up to this size need no share of server.max_buffered_bytes.
const SMALL_FRAME: usize = 64 * 1024;

/// Outstanding synchronous requests: ReqId → ReqType.
type Outstanding = Arc<Mutex<HashMap<u64, ReqType>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Why reading stopped.
enum ReadEnd {
    Closed(CloseReason),
}

/// Reads until one whole frame is buffered; returns its length.
async fn fill_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<usize>, String> {
    loop {
        match parse_frame(buf, max) {
            Ok(FrameStatus::Complete { consumed, .. }) => return Ok(Some(consumed)),
            Ok(FrameStatus::Incomplete { frame_len }) => {
                if let Some(n) = frame_len {
                    buf.reserve(n.saturating_sub(buf.len()));
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        match rd.read_buf(buf).await {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Runs a session to its end and says why it ended.
pub async fn run_session<S>(
    stream: S,
    peer: SocketAddr,
    ctx: Arc<ServerContext>,
    shutdown: watch::Receiver<bool>,
    mut admission: Admission,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let m = &ctx.metrics;
    // Counted while in the handshake, however it ends (an evicted
    // connection's task is dropped mid-way).
    let handshaking = GaugeGuard::enter(&m.sessions_handshaking);
    let (mut rd, mut wr) = tokio::io::split(stream);
    // Small until the peer has shown it speaks FPolicy.
    let mut buf = BytesMut::with_capacity(4096);
    let max = ctx
        .cfg
        .server
        .handshake_max_frame_bytes
        .min(ctx.cfg.server.max_frame_bytes);
    let hs_timeout = Duration::from_secs(ctx.cfg.server.handshake_timeout_secs);

    // Handshake.
    let handshake = async {
        let len = match tokio::time::timeout(hs_timeout, fill_frame(&mut rd, &mut buf, max)).await {
            Err(_) => {
                return Err((
                    CloseReason::HandshakeTimeout,
                    "no NEGO_REQ in time".to_owned(),
                ));
            }
            Ok(Ok(None)) => {
                return Err((
                    CloseReason::PeerClosed,
                    "closed before the handshake".to_owned(),
                ));
            }
            Ok(Err(e)) => {
                m.parse_error(ParseError::Frame);
                return Err((CloseReason::ProtocolError, e));
            }
            Ok(Ok(Some(len))) => len,
        };
        let frame = buf.split_to(len);
        let decoded = decode_payload(&frame[fpolicy_proto::frame::PREFIX_LEN..]).map_err(|e| {
            m.parse_error(ParseError::Message);
            (CloseReason::ProtocolError, e.to_string())
        })?;
        m.frame(decoded.header.notf_type);
        let Message::NegoReq(hs) = decoded.message else {
            m.parse_error(ParseError::UnexpectedMessage);
            return Err((
                CloseReason::ProtocolError,
                format!(
                    "expected NEGO_REQ, got {}",
                    decoded.header.notf_type.as_str()
                ),
            ));
        };
        Ok(hs)
    };
    let hs: Handshake = match handshake.await {
        Ok(hs) => hs,
        Err((reason, why)) => {
            crate::limited!(HANDSHAKE_FAILED, warn, %peer, reason = reason.label(), error = %why, "handshake failed; connection closed");
            return reason;
        }
    };
    let srv = &ctx.cfg.server;
    let reject = if !srv.allowed_policies.is_empty()
        && !srv.allowed_policies.contains(&hs.policy_name)
    {
        Some(format!(
            "policy {:?} is not in server.allowed_policies",
            hs.policy_name
        ))
    } else if !srv.allowed_svm_uuids.is_empty() && !srv.allowed_svm_uuids.contains(&hs.vs_uuid) {
        Some(format!(
            "SVM {:?} is not in server.allowed_svm_uuids",
            hs.vs_uuid
        ))
    } else {
        None
    };
    let version = hs.negotiate(&ProtocolVersion::ALL);
    let (reject, version) = match (reject, version) {
        (None, Some(v)) => (None, v),
        (None, None) => (
            Some(format!("no common protocol version in {:?}", hs.versions)),
            ProtocolVersion::V1_0,
        ),
        (r, _) => (r, ProtocolVersion::V1_0),
    };
    if let Some(why) = reject {
        crate::limited!(HANDSHAKE_REJECTED, warn, %peer, policy = %hs.policy_name, svm_uuid = %hs.vs_uuid, session_id = %hs.session_id, reason = %why, "handshake rejected; connection closed");
        return CloseReason::HandshakeRejected;
    }
    if !admission.establish() {
        m.rejected(RejectReason::TooManyConnections);
        crate::limited!(HANDSHAKE_REJECTED, warn, %peer, policy = %hs.policy_name, max = srv.max_connections, "every established-session slot is taken (server.max_connections); connection closed");
        return CloseReason::TooManySessions;
    }
    let mut encoder = Encoder::new(true);
    let mut out = Vec::with_capacity(4096);
    encoder.encode(&Message::NegoResp(hs.accept(version)), &mut out);
    if let Err(e) = wr.write_all(&out).await.and(wr.flush().await) {
        tracing::warn!(%peer, error = %e, "cannot send NEGO_RESP");
        return CloseReason::IoError;
    }
    m.frame(fpolicy_proto::NotfType::NegoResp);
    drop(handshaking);
    m.sessions_active.fetch_add(1, Relaxed);

    let engine = ctx.cfg.engine_for(&hs.policy_name);
    let info = SessionInfo {
        svm_uuid: hs.vs_uuid.clone(),
        policy_name: hs.policy_name.clone(),
        session_id: hs.session_id.clone(),
        peer: peer.to_string(),
        engine,
    };
    let span = tracing::info_span!("session", %peer, policy = %hs.policy_name, session_id = %hs.session_id);
    let _enter = span.enter();
    tracing::info!(svm_uuid = %hs.vs_uuid, version = version.as_str(), engine = ?engine, "session established");
    drop(_enter);

    let outstanding: Outstanding = Arc::default();
    let permits = Arc::new(Semaphore::new(srv.max_outstanding_per_session));
    let (frames_tx, frames_rx) = mpsc::channel::<Message>(256);
    let (durable_tx, durable_rx) = mpsc::unbounded_channel::<Vec<ScreenResponse>>();
    let writer = tokio::spawn(write_loop(
        wr,
        encoder,
        frames_rx,
        durable_rx,
        outstanding.clone(),
        permits.clone(),
        ctx.back_pressure.clone(),
        hs.session_id.clone(),
        ctx.clone(),
    ));
    let reader = Reader {
        ctx: ctx.clone(),
        info,
        outstanding,
        permits,
        frames: frames_tx,
        durable: durable_tx,
        scratch: Vec::with_capacity(4096),
    };
    // Now an established session: room for a full read per wake-up.
    buf.reserve(64 * 1024);
    let ReadEnd::Closed(reason) = reader
        .run(&mut rd, buf, shutdown)
        .instrument_span(span.clone())
        .await;
    // The writer finishes outstanding answers (bounded) and stops.
    let _ = writer.await;
    m.sessions_active.fetch_sub(1, Relaxed);
    span.in_scope(|| tracing::info!(reason = reason.label(), "session closed"));
    reason
}

/// Holds a gauge one up for as long as it lives.
struct GaugeGuard<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> GaugeGuard<'a> {
    fn enter(g: &'a std::sync::atomic::AtomicU64) -> Self {
        g.fetch_add(1, Relaxed);
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A large frame's share of server.max_buffered_bytes, held while it is
/// read (KiB permits of [`ServerContext::frame_budget`]).
struct FrameBudget {
    _permit: tokio::sync::OwnedSemaphorePermit,
    bytes: u64,
    metrics: Arc<crate::metrics::Metrics>,
}

impl FrameBudget {
    async fn take(ctx: &ServerContext, frame_len: usize, within: Duration) -> Option<FrameBudget> {
        let kib = u32::try_from(frame_len.div_ceil(1024)).ok()?;
        let permit = tokio::time::timeout(within, ctx.frame_budget.clone().acquire_many_owned(kib))
            .await
            .ok()?
            .ok()?;
        let bytes = u64::from(kib) * 1024;
        ctx.metrics.buffered_bytes.fetch_add(bytes, Relaxed);
        Some(FrameBudget {
            _permit: permit,
            bytes,
            metrics: ctx.metrics.clone(),
        })
    }
}

impl Drop for FrameBudget {
    fn drop(&mut self) {
        self.metrics.buffered_bytes.fetch_sub(self.bytes, Relaxed);
    }
}

trait InstrumentSpan: Sized {
    fn instrument_span(self, span: tracing::Span) -> tracing::instrument::Instrumented<Self>;
}

impl<F: std::future::Future> InstrumentSpan for F {
    fn instrument_span(self, span: tracing::Span) -> tracing::instrument::Instrumented<Self> {
        tracing::Instrument::instrument(self, span)
    }
}

struct Reader {
    ctx: Arc<ServerContext>,
    info: SessionInfo,
    outstanding: Outstanding,
    permits: Arc<Semaphore>,
    frames: mpsc::Sender<Message>,
    durable: mpsc::UnboundedSender<Vec<ScreenResponse>>,
    scratch: Vec<u8>,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        rd: &mut R,
        mut buf: BytesMut,
        mut shutdown: watch::Receiver<bool>,
    ) -> ReadEnd {
        let cfg = &self.ctx.cfg.server;
        let idle = Duration::from_secs(cfg.idle_timeout_secs);
        let frame_timeout = Duration::from_secs(cfg.frame_timeout_secs);
        let max = cfg.max_frame_bytes;
        let mut frame_started: Option<Instant> = None;
        let mut received = now_nanos();
        let mut budget: Option<FrameBudget> = None;
        let mut draining: Option<Instant> = None;
        loop {
            // Every whole frame in the buffer, then one batch to the spool.
            let mut batch = IngestBatch::default();
            let mut responses = Vec::new();
            loop {
                let consumed = match parse_frame(&buf, max) {
                    Ok(FrameStatus::Complete { payload, consumed }) => {
                        if let Err(end) = self
                            .handle(payload, received, &mut batch, &mut responses)
                            .await
                        {
                            return end;
                        }
                        consumed
                    }
                    Ok(FrameStatus::Incomplete { frame_len }) => {
                        if let Some(n) = frame_len {
                            if n > SMALL_FRAME && budget.is_none() {
                                match FrameBudget::take(&self.ctx, n, frame_timeout).await {
                                    Some(b) => budget = Some(b),
                                    None => {
                                        tracing::warn!(
                                            frame_bytes = n,
                                            "no share of server.max_buffered_bytes within frame_timeout_secs; closing"
                                        );
                                        return ReadEnd::Closed(CloseReason::FrameTimeout);
                                    }
                                }
                            }
                            buf.reserve(n.saturating_sub(buf.len()));
                        }
                        break;
                    }
                    Err(e) => return self.frame_error(&e),
                };
                buf.advance(consumed);
                if budget.take().is_some() && buf.capacity() > 4 * SMALL_FRAME {
                    // Give the large frame's memory back with its share.
                    let mut small = BytesMut::with_capacity(SMALL_FRAME.max(buf.len()));
                    small.extend_from_slice(&buf);
                    buf = small;
                }
            }
            if let Err(end) = self.flush(&mut batch, &mut responses).await {
                return end;
            }
            // On shutdown, take in what ONTAP has already sent (it counts
            // asynchronous notifications as delivered once written), until
            // the socket is quiet or the grace is over.
            if *shutdown.borrow() {
                let now = Instant::now();
                let until = *draining.get_or_insert(now + SHUTDOWN_READ_GRACE);
                if now >= until {
                    return ReadEnd::Closed(CloseReason::Shutdown);
                }
            }
            // A started frame must finish within frame_timeout; an idle
            // session must show life within idle_timeout.
            let wait = if buf.is_empty() {
                frame_started = None;
                idle
            } else {
                let started = *frame_started.get_or_insert_with(Instant::now);
                frame_timeout.saturating_sub(started.elapsed())
            };
            let wait = if draining.is_some() {
                wait.min(SHUTDOWN_QUIET)
            } else {
                wait
            };
            let stop = async {
                if draining.is_some() {
                    std::future::pending::<()>().await
                } else {
                    let _ = shutdown.changed().await;
                }
            };
            tokio::select! {
                r = tokio::time::timeout(wait, rd.read_buf(&mut buf)) => match r {
                    Err(_) if draining.is_some() => return ReadEnd::Closed(CloseReason::Shutdown),
                    Err(_) if buf.is_empty() => {
                        tracing::warn!(idle_secs = idle.as_secs(), "no traffic (not even KEEP_ALIVE); closing");
                        return ReadEnd::Closed(CloseReason::IdleTimeout);
                    }
                    Err(_) => {
                        tracing::warn!(buffered = buf.len(), "frame not completed in time (slow or stuck client); closing");
                        return ReadEnd::Closed(CloseReason::FrameTimeout);
                    }
                    Ok(Ok(0)) => {
                        if !buf.is_empty() {
                            tracing::warn!(buffered = buf.len(), "connection closed in the middle of a frame");
                            self.ctx.metrics.parse_error(ParseError::Frame);
                        }
                        return ReadEnd::Closed(CloseReason::PeerClosed);
                    }
                    Ok(Ok(_)) => received = now_nanos(),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "read failed");
                        return ReadEnd::Closed(CloseReason::IoError);
                    }
                },
                () = stop => continue,
            }
        }
    }

    /// Sends what this read produced so far to the spool writer.
    async fn flush(
        &self,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), ReadEnd> {
        let mut full = std::mem::take(batch);
        if !responses.is_empty() {
            full.replies = Some(Replies {
                to: self.durable.clone(),
                responses: std::mem::take(responses),
            });
        }
        if !full.is_empty() && self.ctx.ingest.send(full).await.is_err() {
            return Err(ReadEnd::Closed(CloseReason::Shutdown));
        }
        Ok(())
    }

    fn frame_error(&self, e: &FrameError) -> ReadEnd {
        self.ctx.metrics.parse_error(ParseError::Frame);
        crate::limited!(MALFORMED, warn, error = %e, "malformed frame; closing this connection");
        ReadEnd::Closed(CloseReason::ProtocolError)
    }

    async fn handle(
        &mut self,
        payload: &[u8],
        received: i64,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), ReadEnd> {
        let m = &self.ctx.metrics;
        let decoded = match decode_payload(payload) {
            Ok(d) => d,
            Err(MessageError::UnknownReqType(t)) => {
                // A newer ONTAP may report operations this build does not
                // know; skip the notification, keep the session.
                m.parse_error(ParseError::UnknownReqType);
                crate::limited!(UNKNOWN_REQ_TYPE, warn, req_type = %t, "unknown ReqType; notification skipped");
                return Ok(());
            }
            Err(e) => {
                m.parse_error(ParseError::Message);
                crate::limited!(MALFORMED, warn, error = %e, "undecodable message; closing this connection");
                return Err(ReadEnd::Closed(CloseReason::ProtocolError));
            }
        };
        m.frame(decoded.header.notf_type);
        if decoded.content_len_mismatch().is_some() {
            m.parse_error(ParseError::ContentLenMismatch);
        }
        match decoded.message {
            Message::ScreenReq(req) => {
                let names = &*self.ctx.names;
                let normalizer = Normalizer {
                    names,
                    generation_time: self.ctx.cfg.events.generation_time,
                };
                let mut event = normalizer.normalize(&req, &self.info, received);
                if self.info.engine == EngineType::Synchronous {
                    let paths = [
                        Some(event.file_path.as_str()),
                        event.previous_path.as_deref(),
                        event.metadata.link_path.as_deref(),
                    ];
                    let verdict = self
                        .ctx
                        .rules
                        .verdict(event.operation_type, paths.into_iter().flatten());
                    let decision = match verdict {
                        Verdict::Allow => {
                            event.metadata.screening = Some("allow".into());
                            ScreenDecision::Allow
                        }
                        Verdict::Deny(rule) => {
                            tracing::info!(path = %event.file_path, operation = %event.operation_type, %rule, "denied");
                            event.metadata.screening = Some("deny".into());
                            event.metadata.screening_rule = Some(rule);
                            ScreenDecision::Deny
                        }
                    };
                    // Bounded: wait for a slot rather than grow the table.
                    // Slots come back as answers go out, and answers need
                    // this batch committed: hand it over before waiting.
                    match self.permits.try_acquire() {
                        Ok(p) => p.forget(),
                        Err(_) => {
                            self.flush(batch, responses).await?;
                            if let Ok(p) = self.permits.acquire().await {
                                p.forget();
                            }
                        }
                    }
                    lock(&self.outstanding).insert(req.req_id, req.req_type);
                    responses.push(ScreenResponse {
                        req_id: req.req_id,
                        req_type: req.req_type,
                        decision,
                    });
                }
                if let Some(recent) = &self.ctx.recent
                    && matches!(
                        event.operation_type,
                        fpolicy_event::Operation::Create
                            | fpolicy_event::Operation::Write
                            | fpolicy_event::Operation::Rename
                            | fpolicy_event::Operation::Delete
                    )
                {
                    let seen = fpolicy_poll::hybrid::Seen {
                        at: received.div_euclid(1_000_000_000),
                        size: event.file_size,
                    };
                    recent.lock().unwrap_or_else(|e| e.into_inner()).record(
                        &event.volume_name,
                        &event.file_path,
                        seen,
                    );
                }
                let routing = self.ctx.router.route(&event);
                event.metadata.routes = routing.routes;
                self.scratch.clear();
                // Sink names are validated in the configuration.
                if let Err(e) = record::encode(
                    &event,
                    received,
                    routing.sinks.iter().map(String::as_str),
                    &mut self.scratch,
                ) {
                    tracing::error!(error = %e, "cannot encode the event; configuration bug");
                    return Ok(());
                }
                batch.push(&self.scratch);
            }
            Message::KeepAlive => {}
            Message::StatusQueryReq(q) => {
                m.status_queries.fetch_add(1, Relaxed);
                let known = lock(&self.outstanding).contains_key(&q.req_id);
                let status = if known {
                    RequestStatus::Working
                } else {
                    RequestStatus::Lost
                };
                if self
                    .frames
                    .send(Message::StatusQueryResp(q.answer(status)))
                    .await
                    .is_err()
                {
                    return Err(ReadEnd::Closed(CloseReason::IoError));
                }
            }
            Message::ScreenCancel(c) => {
                m.screen_cancels.fetch_add(1, Relaxed);
                if lock(&self.outstanding).remove(&c.req_id).is_some() {
                    self.permits.add_permits(1);
                }
                tracing::debug!(req_id = c.req_id, reason = %c.reason, "request cancelled by ONTAP");
            }
            Message::Alert(a) => {
                let sev = match a.severity {
                    Severity::Fatal => AlertSeverity::Fatal,
                    Severity::Warning => AlertSeverity::Warning,
                    Severity::Other(_) => AlertSeverity::Other,
                };
                m.alert(sev);
                tracing::warn!(severity = a.severity.as_str(), message = %a.message, "ONTAP alert");
            }
            Message::VolNotification(v) => {
                tracing::info!(vol_msid = ?v.vol_msid, action = ?v.action, is_active = ?v.is_active, "volume notification");
                if let Some(msid) = v.vol_msid {
                    self.ctx.names.invalidate_volume(&self.info.svm_uuid, msid);
                }
            }
            Message::Outage(o) => {
                tracing::warn!(path = %o.file_path, policy = %o.policy_name, status = %o.status, "ONTAP outage message");
            }
            other => {
                m.parse_error(ParseError::UnexpectedMessage);
                crate::limited!(
                    UNEXPECTED,
                    warn,
                    notf_type = other.notf_type().as_str(),
                    "unexpected message from ONTAP ignored"
                );
            }
        }
        Ok(())
    }
}

/// Grace for answers of requests already in the spool when the reader stops.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// Runs the writer, then closes the write side cleanly (for TLS, this sends
/// close_notify, so ONTAP sees an orderly close rather than a truncation).
#[allow(clippy::too_many_arguments)]
async fn write_loop<W: AsyncWrite + Send>(
    wr: W,
    encoder: Encoder,
    frames: mpsc::Receiver<Message>,
    durable: mpsc::UnboundedReceiver<Vec<ScreenResponse>>,
    outstanding: Outstanding,
    permits: Arc<Semaphore>,
    back_pressure: watch::Receiver<bool>,
    session_id: String,
    ctx: Arc<ServerContext>,
) {
    let mut wr = std::pin::pin!(wr);
    write_frames(
        wr.as_mut(),
        encoder,
        frames,
        durable,
        outstanding,
        permits,
        back_pressure,
        session_id,
        ctx,
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
}

#[allow(clippy::too_many_arguments)]
async fn write_frames<W: AsyncWrite + Send>(
    mut wr: std::pin::Pin<&mut W>,
    mut encoder: Encoder,
    mut frames: mpsc::Receiver<Message>,
    mut durable: mpsc::UnboundedReceiver<Vec<ScreenResponse>>,
    outstanding: Outstanding,
    permits: Arc<Semaphore>,
    mut back_pressure: watch::Receiver<bool>,
    session_id: String,
    ctx: Arc<ServerContext>,
) {
    let m = &ctx.metrics;
    let mut out = Vec::with_capacity(64 * 1024);
    let mut applied = false;
    let mut reader_done = false;
    let mut grace_until: Option<tokio::time::Instant> = None;
    let bp = |apply: bool, out: &mut Vec<u8>, encoder: &mut Encoder| {
        let msg = BackPressure {
            session_id: session_id.clone(),
        };
        let msg = if apply {
            Message::BackPressureApply(msg)
        } else {
            Message::BackPressureRem(msg)
        };
        m.frame(msg.notf_type());
        encoder.encode(&msg, out);
    };
    if *back_pressure.borrow_and_update() {
        bp(true, &mut out, &mut encoder);
        applied = true;
    }
    loop {
        let write_answers =
            |resps: Vec<ScreenResponse>, out: &mut Vec<u8>, encoder: &mut Encoder| {
                for r in resps {
                    if lock(&outstanding).remove(&r.req_id).is_none() {
                        continue; // cancelled meanwhile
                    }
                    permits.add_permits(1);
                    match r.decision {
                        ScreenDecision::Deny => m.screen_deny.fetch_add(1, Relaxed),
                        _ => m.screen_allow.fetch_add(1, Relaxed),
                    };
                    m.frame(fpolicy_proto::NotfType::ScreenResp);
                    encoder.encode(&Message::ScreenResp(r), out);
                }
            };
        if out.is_empty() {
            if reader_done && lock(&outstanding).is_empty() {
                return;
            }
            let grace = async {
                match grace_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                Some(resps) = durable.recv() => write_answers(resps, &mut out, &mut encoder),
                msg = frames.recv(), if !reader_done => match msg {
                    Some(msg) => {
                        m.frame(msg.notf_type());
                        encoder.encode(&msg, &mut out);
                    }
                    None => {
                        reader_done = true;
                        grace_until = Some(tokio::time::Instant::now() + ANSWER_GRACE);
                    }
                },
                Ok(()) = back_pressure.changed() => {
                    let want = *back_pressure.borrow_and_update();
                    if want != applied {
                        bp(want, &mut out, &mut encoder);
                        applied = want;
                    }
                }
                () = grace => return,
            }
        }
        // Take whatever else is ready, then one write.
        while let Ok(resps) = durable.try_recv() {
            write_answers(resps, &mut out, &mut encoder);
        }
        while let Ok(msg) = frames.try_recv() {
            m.frame(msg.notf_type());
            encoder.encode(&msg, &mut out);
        }
        if !out.is_empty() {
            if let Err(e) = wr.write_all(&out).await {
                tracing::debug!(error = %e, "write failed");
                return;
            }
            if wr.flush().await.is_err() {
                return;
            }
            out.clear();
        }
    }
}
