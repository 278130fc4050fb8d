//! One ONTAP session: the handshake, then a reader that decodes frames and
//! hands events to the spool writer through the [`EventIngestor`], and a
//! writer task ([`SessionWriter`]) that owns the socket's write half.
//!
//! The reader never waits on a sink: its only await besides the socket is
//! the bounded queue to the spool writer, which moves at group-commit speed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fpolicy_event::normalize::EngineType;
use fpolicy_event::{NameState, Normalizer, SessionInfo};
use fpolicy_proto::{
    Alert, FrameError, Message, MessageError, RequestStatus, ScreenCancel, ScreenRequest,
    ScreenResponse, Severity, StatusQuery, decode_payload,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::ingest::{EventIngestor, IngestBatch, Replies};
use crate::log_limit::LogLimit;
use crate::metrics::{AlertSeverity, CloseReason, ParseError, SessionStat};
use crate::server::ServerContext;
use crate::server::connection::{Connection, Next};
use crate::server::handshake::{Established, handshake};
use crate::server::listener::Admission;
use crate::server::names::{Held, HeldRequest};
use crate::server::writer::{Outstanding, SessionWriter, lock};

static MALFORMED: LogLimit = LogLimit::new(Duration::from_secs(10));
static UNKNOWN_REQ_TYPE: LogLimit = LogLimit::new(Duration::from_secs(10));
static UNEXPECTED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// On shutdown, how long a session keeps reading what ONTAP already sent,
/// and how long a quiet socket ends that early.
const SHUTDOWN_READ_GRACE: Duration = Duration::from_secs(2);
const SHUTDOWN_QUIET: Duration = Duration::from_millis(100);

/// Frames up to this size need no share of server.max_buffered_bytes.
const SMALL_FRAME: usize = 64 * 1024;

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
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
    let m = ctx.metrics.clone();
    // Counted while in the handshake, however it ends (an evicted
    // connection's task is dropped mid-way).
    let handshaking = GaugeGuard::enter(&m.sessions_handshaking);
    let (rd, mut wr) = tokio::io::split(stream);
    // Small until the peer has shown it speaks FPolicy.
    let mut conn = Connection::new(rd, 4096);
    let established = match handshake(&mut conn, &mut wr, &ctx, &mut admission, peer).await {
        Ok(e) => e,
        Err(reason) => return reason,
    };
    drop(handshaking);
    let _active = GaugeGuard::enter(&m.sessions_active);
    let Established {
        hs,
        version,
        encoder,
    } = established;
    let engine = ctx.cfg.engine_for(&hs.policy_name);
    let registered = m.live_sessions.register(SessionStat {
        peer: peer.to_string(),
        policy: hs.policy_name.clone(),
        svm_uuid: hs.vs_uuid.clone(),
        svm_name: ctx.names.svm_name(&hs.vs_uuid).to_string(),
        session_id: hs.session_id.clone(),
        engine: if engine == EngineType::Synchronous {
            "sync"
        } else {
            "async"
        },
        since: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        events: AtomicU64::new(0),
    });
    let span = tracing::info_span!("session", %peer, policy = %hs.policy_name, session_id = %hs.session_id);
    span.in_scope(|| tracing::info!(svm_uuid = %hs.vs_uuid, version = version.as_str(), engine = ?engine, "session established"));

    let outstanding: Outstanding = Arc::default();
    let permits = Arc::new(Semaphore::new(ctx.cfg.server.max_outstanding_per_session));
    let (frames_tx, frames_rx) = mpsc::channel::<Message>(256);
    let (durable_tx, durable_rx) = mpsc::unbounded_channel::<Vec<ScreenResponse>>();
    let writer = tokio::spawn(
        SessionWriter {
            wr,
            encoder,
            frames: frames_rx,
            durable: durable_rx,
            outstanding: outstanding.clone(),
            permits: permits.clone(),
            back_pressure: ctx.back_pressure.clone(),
            session_id: hs.session_id.clone(),
            metrics: m.clone(),
        }
        .run(),
    );
    let reader = Reader {
        stat: registered.stat.clone(),
        ingestor: EventIngestor::new(ctx.ingest_rules.clone()),
        held: Held::default(),
        info: SessionInfo {
            svm_uuid: hs.vs_uuid.clone(),
            policy_name: hs.policy_name.clone(),
            session_id: hs.session_id.clone(),
            peer: peer.to_string(),
            engine,
        },
        ctx,
        outstanding,
        permits,
        frames: frames_tx,
        durable: durable_tx,
    };
    // Now an established session: room for a full read per wake-up.
    conn.reserve(64 * 1024);
    let reason =
        tracing::Instrument::instrument(reader.run(&mut conn, shutdown), span.clone()).await;
    // The writer finishes outstanding answers (bounded) and stops.
    let _ = writer.await;
    span.in_scope(|| tracing::info!(reason = reason.label(), "session closed"));
    reason
}

/// Holds a gauge one up for as long as it lives.
struct GaugeGuard<'a>(&'a AtomicU64);

impl<'a> GaugeGuard<'a> {
    fn enter(g: &'a AtomicU64) -> Self {
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

/// The reader's timers and holdings between reads.
struct ReadState {
    /// When the bytes being decoded arrived.
    received: i64,
    /// When the frame still incomplete in the buffer started.
    frame_started: Option<Instant>,
    /// Shutdown: read what is already sent until this.
    draining: Option<Instant>,
    budget: Option<FrameBudget>,
}

/// What woke the reader.
enum Wake {
    /// Bytes arrived.
    Bytes,
    /// A shutdown began: drain.
    Stop,
    /// Held notifications may go on (names arrived or the wait is over).
    Names,
}

struct Reader {
    ctx: Arc<ServerContext>,
    /// This session's line in `/sessions`.
    stat: Arc<SessionStat>,
    ingestor: EventIngestor,
    /// Notifications waiting (bounded) for their volume's name.
    held: Held,
    info: SessionInfo,
    outstanding: Outstanding,
    permits: Arc<Semaphore>,
    frames: mpsc::Sender<Message>,
    durable: mpsc::UnboundedSender<Vec<ScreenResponse>>,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        conn: &mut Connection<R>,
        mut shutdown: watch::Receiver<bool>,
    ) -> CloseReason {
        let mut st = ReadState {
            received: now_nanos(),
            frame_started: None,
            draining: None,
            budget: None,
        };
        loop {
            // Every whole frame in the buffer and what may leave the held
            // queue, then one batch to the spool.
            let mut batch = IngestBatch::with_capacity(conn.buffered());
            let mut responses = Vec::new();
            let taken = self
                .take_buffered(conn, &mut st, &mut batch, &mut responses)
                .await;
            let released = self.release_held(false, &mut batch, &mut responses).await;
            let flushed = self.flush(&mut batch, &mut responses).await;
            if let Err(reason) = taken.and(released).and(flushed) {
                self.finish_held().await;
                return reason;
            }
            match self.wait_for_bytes(conn, &mut st, &mut shutdown).await {
                Ok(Wake::Bytes) => st.received = now_nanos(),
                Ok(Wake::Stop | Wake::Names) => {}
                Err(reason) => {
                    self.finish_held().await;
                    return reason;
                }
            }
        }
    }

    /// Held notifications whose volume is named now, or whose wait is over
    /// (`all`: every one, as the session ends), in order.
    async fn release_held(
        &mut self,
        all: bool,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), CloseReason> {
        while let Some(front) = self.held.front() {
            let pending = self.volume_state(&front.req) == NameState::Pending;
            if pending && !all && tokio::time::Instant::now() < front.until {
                break;
            }
            let h = self.held.pop().expect("front exists");
            self.ingest_screen_req(&h.req, h.received, batch, responses)
                .await?;
        }
        Ok(())
    }

    /// The session ends: what is held goes to the spool with the names
    /// known now (ONTAP already counts asynchronous notifications as sent).
    async fn finish_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let (mut batch, mut responses) = (IngestBatch::default(), Vec::new());
        let _ = self.release_held(true, &mut batch, &mut responses).await;
        let _ = self.flush(&mut batch, &mut responses).await;
    }

    fn volume_state(&self, req: &ScreenRequest) -> NameState {
        self.ctx
            .names
            .volume_state(&self.info.svm_uuid, req.common.vol_msid)
    }

    /// Until the front held notification may go on (none held: never).
    async fn names_ready(&self) {
        match (&self.ctx.name_wait, self.held.front()) {
            (Some(wait), Some(front)) => {
                wait.until(front.until, || {
                    self.volume_state(&front.req) == NameState::Pending
                })
                .await
            }
            _ => std::future::pending().await,
        }
    }

    /// Handles every whole frame in the buffer; for a partial one, makes
    /// room (taking a share of the byte budget for a large frame).
    async fn take_buffered<R: AsyncRead + Unpin>(
        &mut self,
        conn: &mut Connection<R>,
        st: &mut ReadState,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), CloseReason> {
        let max = self.ctx.cfg.server.max_frame_bytes;
        loop {
            if self.held.is_full() {
                // Bounded: the rest stays in the buffer until names arrive.
                return Ok(());
            }
            let consumed = match conn.next(max) {
                Ok(Next::Frame { payload, consumed }) => {
                    self.handle(payload, st.received, batch, responses).await?;
                    consumed
                }
                Ok(Next::Partial { frame_len }) => {
                    if let Some(n) = frame_len {
                        self.reserve_budget(st, n).await?;
                        conn.make_room(n);
                    }
                    return Ok(());
                }
                Err(e) => return Err(self.frame_error(&e)),
            };
            conn.consume(consumed);
            // frame_timeout applies to one frame: a busy session whose reads
            // often end mid-frame is not a slow one.
            st.frame_started = None;
            if st.budget.take().is_some() {
                conn.shrink_to(SMALL_FRAME);
            }
        }
    }

    async fn reserve_budget(
        &self,
        st: &mut ReadState,
        frame_len: usize,
    ) -> Result<(), CloseReason> {
        if frame_len <= SMALL_FRAME || st.budget.is_some() {
            return Ok(());
        }
        let within = self.ctx.cfg.server.frame_timeout;
        match FrameBudget::take(&self.ctx, frame_len, within).await {
            Some(b) => {
                st.budget = Some(b);
                Ok(())
            }
            None => {
                tracing::warn!(
                    frame_bytes = frame_len,
                    "no share of server.max_buffered_bytes within frame_timeout_secs; closing"
                );
                Err(CloseReason::FrameTimeout)
            }
        }
    }

    /// Waits for more bytes (true), a shutdown to start draining (false),
    /// or a reason to close: idle, a frame not completed in time, the peer
    /// gone, or the shutdown grace over.
    async fn wait_for_bytes<R: AsyncRead + Unpin>(
        &self,
        conn: &mut Connection<R>,
        st: &mut ReadState,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Wake, CloseReason> {
        // On shutdown, take in what ONTAP has already sent (it counts
        // asynchronous notifications as delivered once written), until the
        // socket is quiet or the grace is over.
        if *shutdown.borrow() {
            let now = Instant::now();
            let until = *st.draining.get_or_insert(now + SHUTDOWN_READ_GRACE);
            if now >= until {
                return Err(CloseReason::Shutdown);
            }
        }
        let wait = self.read_timeout(conn.buffered(), st);
        let draining = st.draining.is_some();
        let stop = async {
            if draining {
                std::future::pending::<()>().await
            } else {
                let _ = shutdown.changed().await;
            }
        };
        let reading = !self.held.is_full();
        tokio::select! {
            () = self.names_ready(), if !self.held.is_empty() => Ok(Wake::Names),
            r = tokio::time::timeout(wait, conn.read_more()), if reading => match r {
                Err(_) if draining => Err(CloseReason::Shutdown),
                Err(_) => Err(self.timed_out(conn.buffered())),
                Ok(Ok(0)) => {
                    if conn.buffered() > 0 {
                        tracing::warn!(buffered = conn.buffered(), "connection closed in the middle of a frame");
                        self.ctx.metrics.parse_error(ParseError::Frame);
                    }
                    Err(CloseReason::PeerClosed)
                }
                Ok(Ok(_)) => Ok(Wake::Bytes),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "read failed");
                    Err(CloseReason::IoError)
                }
            },
            () = stop => Ok(Wake::Stop),
        }
    }

    /// A started frame must finish within frame_timeout; an idle session
    /// must show life within idle_timeout; a draining one stops when quiet.
    fn read_timeout(&self, buffered: usize, st: &mut ReadState) -> Duration {
        let cfg = &self.ctx.cfg.server;
        let wait = if buffered == 0 {
            st.frame_started = None;
            cfg.idle_timeout
        } else {
            let started = *st.frame_started.get_or_insert_with(Instant::now);
            cfg.frame_timeout.saturating_sub(started.elapsed())
        };
        if st.draining.is_some() {
            wait.min(SHUTDOWN_QUIET)
        } else {
            wait
        }
    }

    fn timed_out(&self, buffered: usize) -> CloseReason {
        if buffered == 0 {
            tracing::warn!(
                idle_secs = self.ctx.cfg.server.idle_timeout.as_secs(),
                "no traffic (not even KEEP_ALIVE); closing"
            );
            CloseReason::IdleTimeout
        } else {
            tracing::warn!(
                buffered,
                "frame not completed in time (slow or stuck client); closing"
            );
            CloseReason::FrameTimeout
        }
    }

    /// Sends what this read produced so far to the spool writer.
    async fn flush(
        &self,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), CloseReason> {
        let mut full = std::mem::take(batch);
        if !responses.is_empty() {
            full.replies = Some(Replies {
                to: self.durable.clone(),
                responses: std::mem::take(responses),
            });
        }
        if !full.is_empty() && self.ctx.ingest.send(full).await.is_err() {
            return Err(CloseReason::Shutdown);
        }
        Ok(())
    }

    fn frame_error(&self, e: &FrameError) -> CloseReason {
        self.ctx.metrics.parse_error(ParseError::Frame);
        crate::limited!(MALFORMED, warn, error = %e, "malformed frame; closing this connection");
        CloseReason::ProtocolError
    }

    async fn handle(
        &mut self,
        payload: &[u8],
        received: i64,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), CloseReason> {
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
                return Err(CloseReason::ProtocolError);
            }
        };
        m.frame(decoded.header.notf_type);
        if decoded.content_len_mismatch().is_some() {
            m.parse_error(ParseError::ContentLenMismatch);
        }
        match decoded.message {
            Message::ScreenReq(req) => self.screen_req(req, received, batch, responses).await?,
            Message::KeepAlive => {}
            Message::StatusQueryReq(q) => self.status_query(q).await?,
            Message::ScreenCancel(c) => self.cancel(&c),
            Message::Alert(a) => alert(&self.ctx, &a),
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

    /// A notification: held while its volume's name is on its way (and
    /// behind others held), else ingested at once.
    async fn screen_req(
        &mut self,
        req: ScreenRequest,
        received: i64,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), CloseReason> {
        if let Some(wait) = &self.ctx.name_wait
            && (!self.held.is_empty() || self.volume_state(&req) == NameState::Pending)
        {
            let until = tokio::time::Instant::now() + wait.bound;
            self.held.push(HeldRequest {
                req,
                received,
                until,
            });
            return Ok(());
        }
        self.ingest_screen_req(&req, received, batch, responses)
            .await
    }

    /// The event, and for synchronous engines the answer to send once it
    /// is durable.
    async fn ingest_screen_req(
        &mut self,
        req: &ScreenRequest,
        received: i64,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), CloseReason> {
        self.stat.events.fetch_add(1, Relaxed);
        if self.ctx.name_wait.is_some() && self.volume_state(req) != NameState::Known {
            self.ctx
                .metrics
                .ingest
                .names_defaulted
                .fetch_add(1, Relaxed);
        }
        let normalizer = Normalizer {
            names: &*self.ctx.names,
            generation_time: self.ctx.cfg.events.generation_time,
        };
        let mut event = normalizer.normalize(req, &self.info, received);
        let admitted = self.ingestor.admit(&mut event);
        if self.info.engine == EngineType::Synchronous {
            // A filtered request is still answered: allowed.
            let decision = if admitted {
                self.ingestor.screen(&mut event)
            } else {
                fpolicy_proto::ScreenDecision::Allow
            };
            self.take_permit(batch, responses).await?;
            lock(&self.outstanding).insert(req.req_id, req.req_type);
            responses.push(ScreenResponse {
                req_id: req.req_id,
                req_type: req.req_type,
                decision,
            });
        }
        if !admitted {
            return Ok(());
        }
        self.ingestor.remember(&event, received);
        if let Err(e) = self.ingestor.push(&mut event, received, batch) {
            // Sink names are validated in the configuration.
            tracing::error!(error = %e, "cannot encode the event; configuration bug");
        }
        Ok(())
    }

    /// Bounded: waits for a slot rather than grow the table. Slots come
    /// back as answers go out, and answers need this batch committed: hand
    /// it over before waiting.
    async fn take_permit(
        &self,
        batch: &mut IngestBatch,
        responses: &mut Vec<ScreenResponse>,
    ) -> Result<(), CloseReason> {
        match self.permits.try_acquire() {
            Ok(p) => p.forget(),
            Err(_) => {
                self.flush(batch, responses).await?;
                if let Ok(p) = self.permits.acquire().await {
                    p.forget();
                }
            }
        }
        Ok(())
    }

    async fn status_query(&self, q: StatusQuery) -> Result<(), CloseReason> {
        self.ctx.metrics.status_queries.fetch_add(1, Relaxed);
        let status =
            if lock(&self.outstanding).contains_key(&q.req_id) || self.held.contains(q.req_id) {
                RequestStatus::Working
            } else {
                RequestStatus::Lost
            };
        self.frames
            .send(Message::StatusQueryResp(q.answer(status)))
            .await
            .map_err(|_| CloseReason::IoError)
    }

    fn cancel(&self, c: &ScreenCancel) {
        self.ctx.metrics.screen_cancels.fetch_add(1, Relaxed);
        if lock(&self.outstanding).remove(&c.req_id).is_some() {
            self.permits.add_permits(1);
        }
        tracing::debug!(req_id = c.req_id, reason = %c.reason, "request cancelled by ONTAP");
    }
}

fn alert(ctx: &ServerContext, a: &Alert) {
    let sev = match a.severity {
        Severity::Fatal => AlertSeverity::Fatal,
        Severity::Warning => AlertSeverity::Warning,
        Severity::Other(_) => AlertSeverity::Other,
    };
    ctx.metrics.alert(sev);
    tracing::warn!(severity = a.severity.as_str(), message = %a.message, "ONTAP alert");
}
