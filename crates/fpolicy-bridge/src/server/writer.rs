//! A session's write side: one task owns the socket's write half and
//! encodes everything that goes to ONTAP: SCREEN_RESP once the request is
//! durable, STATUS_QUERY_RESP, BACK_PRESSURE_APPLY/REM. Whatever is ready
//! goes out in one write.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fpolicy_proto::{BackPressure, Encoder, Message, ReqType, ScreenDecision, ScreenResponse};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::metrics::Metrics;

/// Outstanding synchronous requests: ReqId → ReqType.
pub type Outstanding = Arc<Mutex<HashMap<u64, ReqType>>>;

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Grace for answers of requests already in the spool when the reader stops.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// Everything the write task owns.
pub struct SessionWriter<W> {
    pub wr: W,
    pub encoder: Encoder,
    /// Frames from the reader (status answers).
    pub frames: mpsc::Receiver<Message>,
    /// Answers whose requests are durable, from the spool writer.
    pub durable: mpsc::UnboundedReceiver<Vec<ScreenResponse>>,
    pub outstanding: Outstanding,
    pub permits: Arc<Semaphore>,
    pub back_pressure: watch::Receiver<bool>,
    pub session_id: String,
    pub metrics: Arc<Metrics>,
}

/// Loop state besides the owned parts.
struct Pending {
    out: Vec<u8>,
    applied: bool,
    reader_done: bool,
    grace_until: Option<tokio::time::Instant>,
}

impl<W: AsyncWrite + Send + Unpin> SessionWriter<W> {
    /// Runs until the reader has stopped and every answer is out (or the
    /// grace passed), then closes the write side cleanly (for TLS, this
    /// sends close_notify, so ONTAP sees an orderly close).
    pub async fn run(mut self) {
        self.write_all().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.wr.shutdown()).await;
    }

    async fn write_all(&mut self) {
        let mut p = Pending {
            out: Vec::with_capacity(64 * 1024),
            applied: false,
            reader_done: false,
            grace_until: None,
        };
        if *self.back_pressure.borrow_and_update() {
            self.back_pressure_frame(true, &mut p.out);
            p.applied = true;
        }
        loop {
            if p.out.is_empty() && !self.wait_for_work(&mut p).await {
                return;
            }
            // Take whatever else is ready, then one write.
            while let Ok(resps) = self.durable.try_recv() {
                self.answers(resps, &mut p.out);
            }
            while let Ok(msg) = self.frames.try_recv() {
                self.frame(&msg, &mut p.out);
            }
            if !p.out.is_empty() {
                if let Err(e) = self.wr.write_all(&p.out).await {
                    tracing::debug!(error = %e, "write failed");
                    return;
                }
                if self.wr.flush().await.is_err() {
                    return;
                }
                p.out.clear();
            }
        }
    }

    /// Waits for something to write; false when the session is over.
    async fn wait_for_work(&mut self, p: &mut Pending) -> bool {
        if p.reader_done && lock(&self.outstanding).is_empty() {
            return false;
        }
        let grace = async {
            match p.grace_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(resps) = self.durable.recv() => self.answers(resps, &mut p.out),
            msg = self.frames.recv(), if !p.reader_done => match msg {
                Some(msg) => self.frame(&msg, &mut p.out),
                None => {
                    p.reader_done = true;
                    p.grace_until = Some(tokio::time::Instant::now() + ANSWER_GRACE);
                }
            },
            Ok(()) = self.back_pressure.changed() => {
                let want = *self.back_pressure.borrow_and_update();
                if want != p.applied {
                    self.back_pressure_frame(want, &mut p.out);
                    p.applied = want;
                }
            }
            () = grace => return false,
        }
        true
    }

    fn frame(&mut self, msg: &Message, out: &mut Vec<u8>) {
        self.metrics.frame(msg.notf_type());
        self.encoder.encode(msg, out);
    }

    /// SCREEN_RESP for each answer whose request ONTAP has not cancelled.
    fn answers(&mut self, resps: Vec<ScreenResponse>, out: &mut Vec<u8>) {
        for r in resps {
            if lock(&self.outstanding).remove(&r.req_id).is_none() {
                continue; // cancelled meanwhile
            }
            self.permits.add_permits(1);
            match r.decision {
                ScreenDecision::Deny => self.metrics.screen_deny.fetch_add(1, Relaxed),
                _ => self.metrics.screen_allow.fetch_add(1, Relaxed),
            };
            self.frame(&Message::ScreenResp(r), out);
        }
    }

    fn back_pressure_frame(&mut self, apply: bool, out: &mut Vec<u8>) {
        let msg = BackPressure {
            session_id: self.session_id.clone(),
        };
        let msg = if apply {
            Message::BackPressureApply(msg)
        } else {
            Message::BackPressureRem(msg)
        };
        self.frame(&msg, out);
    }
}
