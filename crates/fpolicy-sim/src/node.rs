//! One simulated ONTAP node: one connection, as ONTAP opens it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use fpolicy_proto::{
    Encoder, FrameDecoder, Handshake, Message, ProtocolVersion, RequestStatus, ScreenCancel,
    ScreenDecision, StatusQuery, decode_payload,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, Notify, Semaphore};

use crate::report::{Counters, LatencyHistogram, NodeReport};
use crate::workload::Workload;
use crate::{Mode, SimConfig, SimError};

/// Flush the write buffer once it holds this much.
const WRITE_BATCH: usize = 64 * 1024;

/// Runs one node over an established stream until its share of the workload
/// is sent (and, in synchronous mode, answered or cancelled).
pub async fn run_node<S>(
    stream: S,
    cfg: Arc<SimConfig>,
    node: usize,
    quota: Option<u64>,
) -> NodeReport
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let started = Instant::now();
    let mut report = NodeReport::default();
    if let Err(e) = run_inner(stream, &cfg, node, quota, &mut report).await {
        report.errors.push(e.to_string());
    }
    report.elapsed = started.elapsed();
    report
}

struct Shared {
    paused: AtomicBool,
    resumed: Notify,
    /// Synchronous mode: ReqId → (sent at, ReqType, status query sent).
    outstanding: Mutex<HashMap<u64, Outstanding>>,
    permits: Semaphore,
    done_reading: AtomicBool,
    /// Set once every request is sent: an end of stream from the server
    /// before this (or with answers still due) is an error.
    done_sending: AtomicBool,
    /// What the reader saw; shared so that it survives a reader still
    /// blocked on a server that keeps the connection open.
    counts: std::sync::Mutex<ReaderCounts>,
    reader_error: std::sync::Mutex<Option<String>>,
}

struct Outstanding {
    sent: Instant,
    req_type: fpolicy_proto::ReqType,
    queried: bool,
}

async fn run_inner<S>(
    stream: S,
    cfg: &SimConfig,
    node: usize,
    quota: Option<u64>,
    report: &mut NodeReport,
) -> Result<(), SimError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let decoder = FrameDecoder::new(cfg.max_frame_len);
    let mut read_buf = BytesMut::with_capacity(64 * 1024);
    let mut encoder = Encoder::default();
    let mut out = Vec::with_capacity(WRITE_BATCH + 4096);

    // Handshake: NEGO_REQ, then a strictly checked NEGO_RESP.
    let session_id = format!("{}-{node:04}", cfg.session_prefix);
    let hs = Handshake {
        vs_uuid: cfg.vs_uuid.clone(),
        policy_name: cfg.policy_name.clone(),
        session_id: session_id.clone(),
        versions: cfg.versions.clone(),
    };
    encoder.encode(&Message::NegoReq(hs.clone()), &mut out);
    writer.write_all(&out).await?;
    out.clear();
    let resp = tokio::time::timeout(cfg.handshake_timeout, async {
        loop {
            if let Some(payload) = decoder.decode(&mut read_buf)? {
                return Ok::<_, SimError>(decode_payload(&payload)?);
            }
            if reader.read_buf(&mut read_buf).await? == 0 {
                return Err(SimError::Closed("during the handshake"));
            }
        }
    })
    .await
    .map_err(|_| SimError::Handshake("no NEGO_RESP within the handshake timeout".into()))??;
    let version = check_nego_resp(&hs, resp.message)?;
    report.negotiated = Some(version.to_string());

    let sync = match cfg.mode {
        Mode::Async => None,
        Mode::Sync { max_outstanding } => Some(max_outstanding),
    };
    let shared = Arc::new(Shared {
        paused: AtomicBool::new(false),
        resumed: Notify::new(),
        outstanding: Mutex::new(HashMap::new()),
        permits: Semaphore::new(sync.unwrap_or(0)),
        done_reading: AtomicBool::new(false),
        done_sending: AtomicBool::new(false),
        counts: std::sync::Mutex::new(ReaderCounts::default()),
        reader_error: std::sync::Mutex::new(None),
    });

    // Reader: responses, status answers, back pressure.
    let reader_shared = shared.clone();
    let reader_task = tokio::spawn(read_loop(reader, read_buf, decoder, reader_shared));

    let mut workload = Workload::new(cfg.seed, node);
    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let per_node_rate = cfg.rate.map(|r| (r as f64 / cfg.nodes as f64).max(1.0));
    let mut next_keep_alive = Instant::now() + cfg.keep_alive_interval;
    let mut next_timer_scan = Instant::now() + Duration::from_millis(50);
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut req_id: u64 = (node as u64) << 40;
    let gen_base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;

    loop {
        let now = Instant::now();
        let finished = quota.is_some_and(|q| sent >= q) || deadline.is_some_and(|d| now >= d);
        if now >= next_keep_alive {
            encoder.encode(&Message::KeepAlive, &mut out);
            report.counters.keep_alives += 1;
            next_keep_alive = now + cfg.keep_alive_interval;
        }
        if sync.is_some() && now >= next_timer_scan {
            scan_outstanding(cfg, &shared, &mut encoder, &mut out, report).await;
            next_timer_scan = now + Duration::from_millis(50);
        }
        if finished {
            break;
        }
        if shared.done_reading.load(Ordering::Acquire) {
            // The server went away under us.
            report.counters.sent = sent;
            return Err(SimError::Closed("while requests were still being sent"));
        }
        if shared.paused.load(Ordering::Acquire) {
            flush(&mut writer, &mut out).await?;
            let _ =
                tokio::time::timeout(Duration::from_millis(100), shared.resumed.notified()).await;
            continue;
        }
        // How many may go out now under the rate limit.
        let mut allowed = match per_node_rate {
            Some(r) => ((start.elapsed().as_secs_f64() * r) as u64).saturating_sub(sent),
            None => 256,
        };
        if let Some(q) = quota {
            allowed = allowed.min(q - sent);
        }
        if allowed == 0 {
            flush(&mut writer, &mut out).await?;
            let wait = per_node_rate.map_or(Duration::from_millis(1), |r| {
                Duration::from_secs_f64(1.0 / r)
            });
            tokio::time::sleep(wait.min(Duration::from_millis(20))).await;
            continue;
        }
        for _ in 0..allowed.min(256) {
            if sync.is_some() {
                match shared.permits.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
            }
            req_id += 1;
            let op = workload.next_operation();
            let req = op.to_request(req_id, version, gen_base + sent * 1000);
            if sync.is_some() {
                shared.outstanding.lock().await.insert(
                    req_id,
                    Outstanding {
                        sent: Instant::now(),
                        req_type: req.req_type,
                        queried: false,
                    },
                );
            }
            *report
                .by_req_type
                .entry(req.req_type.as_str().to_owned())
                .or_default() += 1;
            encoder.encode(&Message::ScreenReq(req), &mut out);
            sent += 1;
            if out.len() >= WRITE_BATCH {
                flush(&mut writer, &mut out).await?;
            }
        }
        if sync.is_some() && shared.permits.available_permits() == 0 {
            // Window full: send what we have and wait for a reply.
            flush(&mut writer, &mut out).await?;
            // Wait until a permit is free; dropping it returns it for try_acquire above.
            let _ = tokio::time::timeout(Duration::from_millis(50), shared.permits.acquire()).await;
        } else if per_node_rate.is_some() {
            flush(&mut writer, &mut out).await?;
        }
    }
    report.counters.sent = sent;
    flush(&mut writer, &mut out).await?;
    shared.done_sending.store(true, Ordering::Release);

    // Synchronous mode: wait for every answer, cancelling what times out.
    if sync.is_some() {
        let drain_deadline = Instant::now() + cfg.cancel_after + Duration::from_secs(1);
        while !shared.outstanding.lock().await.is_empty() && Instant::now() < drain_deadline {
            if shared.done_reading.load(Ordering::Acquire) {
                break;
            }
            scan_outstanding(cfg, &shared, &mut encoder, &mut out, report).await;
            flush(&mut writer, &mut out).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        report.counters.unanswered = shared.outstanding.lock().await.len() as u64;
    }
    let _ = writer.shutdown().await;
    drop(writer);
    // Give the server a moment to answer the last frames, then stop reading.
    let mut reader_task = reader_task;
    if tokio::time::timeout(cfg.linger, &mut reader_task)
        .await
        .is_err()
    {
        reader_task.abort();
    }
    let counts = std::mem::take(&mut *shared.counts());
    if let Some(e) = shared
        .reader_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        report.errors.push(e);
    }
    report.counters.add(&counts.counters);
    report.latency.merge(&counts.latency);
    Ok(())
}

fn check_nego_resp(hs: &Handshake, msg: Message) -> Result<ProtocolVersion, SimError> {
    let Message::NegoResp(resp) = msg else {
        return Err(SimError::Handshake(format!(
            "expected NEGO_RESP, got {}",
            msg.notf_type()
        )));
    };
    let mismatch = |what: &str, want: &str, got: &str| {
        SimError::Handshake(format!("NEGO_RESP {what} {got:?} does not echo {want:?}"))
    };
    if resp.vs_uuid != hs.vs_uuid {
        return Err(mismatch("VsUUID", &hs.vs_uuid, &resp.vs_uuid));
    }
    if resp.policy_name != hs.policy_name {
        return Err(mismatch("PolicyName", &hs.policy_name, &resp.policy_name));
    }
    if resp.session_id != hs.session_id {
        return Err(mismatch("SessionId", &hs.session_id, &resp.session_id));
    }
    if !hs.versions.iter().any(|v| v == &resp.version) {
        return Err(SimError::Handshake(format!(
            "NEGO_RESP chose version {:?}, which was not offered ({:?})",
            resp.version, hs.versions
        )));
    }
    resp.version
        .parse::<ProtocolVersion>()
        .map_err(|e| SimError::Handshake(e.to_string()))
}

async fn flush<W: AsyncWrite + Unpin>(writer: &mut W, out: &mut Vec<u8>) -> Result<(), SimError> {
    if !out.is_empty() {
        writer.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

/// Synchronous mode timers: STATUS_QUERY_REQ for old requests, SCREEN_CANCEL
/// for expired ones (as ONTAP's status-req-interval and reqs-cancel-timeout).
async fn scan_outstanding(
    cfg: &SimConfig,
    shared: &Shared,
    encoder: &mut Encoder,
    out: &mut Vec<u8>,
    report: &mut NodeReport,
) {
    let now = Instant::now();
    let mut table = shared.outstanding.lock().await;
    let mut cancelled = Vec::new();
    for (&req_id, o) in table.iter_mut() {
        let age = now.duration_since(o.sent);
        if age >= cfg.cancel_after {
            encoder.encode(
                &Message::ScreenCancel(ScreenCancel {
                    req_id,
                    req_type: o.req_type,
                    reason: "Cancel Timedout".into(),
                }),
                out,
            );
            cancelled.push(req_id);
        } else if age >= cfg.status_query_after && !o.queried {
            o.queried = true;
            encoder.encode(
                &Message::StatusQueryReq(StatusQuery {
                    req_id,
                    req_type: o.req_type,
                }),
                out,
            );
            report.counters.status_queries += 1;
        }
    }
    for id in cancelled {
        table.remove(&id);
        shared.permits.add_permits(1);
        report.counters.cancelled += 1;
    }
}

/// What the reader saw: the reply counters and the latencies.
#[derive(Debug, Default)]
struct ReaderCounts {
    counters: Counters,
    latency: LatencyHistogram,
}

impl Shared {
    /// The reader's counts. A poisoned lock still holds valid counters.
    fn counts(&self) -> std::sync::MutexGuard<'_, ReaderCounts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    mut buf: BytesMut,
    decoder: FrameDecoder,
    shared: Arc<Shared>,
) {
    let result: Result<(), SimError> = async {
        loop {
            while let Some(payload) = decoder.decode(&mut buf)? {
                match decode_payload(&payload)?.message {
                    Message::ScreenResp(resp) => {
                        let entry = shared.outstanding.lock().await.remove(&resp.req_id);
                        let mut counts = shared.counts();
                        match entry {
                            Some(o) => {
                                shared.permits.add_permits(1);
                                counts.counters.answered += 1;
                                counts.latency.record(o.sent.elapsed().as_micros() as u64);
                                match resp.decision {
                                    ScreenDecision::Allow => counts.counters.allowed += 1,
                                    ScreenDecision::Deny => counts.counters.denied += 1,
                                    ScreenDecision::Code(_) => counts.counters.other_decisions += 1,
                                }
                            }
                            // Cancelled already (a legitimate race), or never sent.
                            None => counts.counters.late_responses += 1,
                        }
                    }
                    Message::StatusQueryResp(r) => {
                        shared.counts().counters.status_answers += 1;
                        if r.status == RequestStatus::Lost {
                            // The server lost it: stop waiting, as ONTAP would resend elsewhere.
                            if shared.outstanding.lock().await.remove(&r.req_id).is_some() {
                                shared.permits.add_permits(1);
                            }
                        }
                    }
                    Message::BackPressureApply(_) => {
                        shared.counts().counters.back_pressure_applied += 1;
                        shared.paused.store(true, Ordering::Release);
                    }
                    Message::BackPressureRem(_) => {
                        shared.counts().counters.back_pressure_removed += 1;
                        shared.paused.store(false, Ordering::Release);
                        shared.resumed.notify_waiters();
                    }
                    other => {
                        return Err(SimError::Protocol(format!(
                            "unexpected {} from the server",
                            other.notf_type()
                        )));
                    }
                }
            }
            if reader.read_buf(&mut buf).await? == 0 {
                if !shared.done_sending.load(Ordering::Acquire) {
                    return Err(SimError::Closed("while requests were still being sent"));
                }
                let unanswered = shared.outstanding.lock().await.len();
                if unanswered > 0 {
                    return Err(SimError::Protocol(format!(
                        "the server closed the connection with {unanswered} requests unanswered"
                    )));
                }
                return Ok(());
            }
        }
    }
    .await;
    if let Err(e) = result {
        *shared
            .reader_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
    }
    shared.done_reading.store(true, Ordering::Release);
}
