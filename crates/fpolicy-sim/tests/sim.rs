//! The simulator against the discard server and against scripted servers
//! that misbehave on purpose. Loopback only.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use fpolicy_proto::{Encoder, FrameDecoder, Message, NotfType, ProtocolVersion, decode_payload};
use fpolicy_sim::discard::{DiscardConfig, DiscardStats};
use fpolicy_sim::{Mode, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn discard(reply: bool) -> (SimConfig, Arc<DiscardStats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(DiscardStats::default());
    tokio::spawn(fpolicy_sim::discard::serve(
        listener,
        DiscardConfig { reply },
        stats.clone(),
    ));
    (SimConfig::new(addr), stats)
}

#[tokio::test]
async fn async_mode_sends_exactly_the_count() {
    let (mut cfg, stats) = discard(false).await;
    cfg.nodes = 3;
    cfg.count = Some(10_001);
    let report = fpolicy_sim::run(cfg).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counters.sent, 10_001);
    assert_eq!(report.negotiated_versions, ["2.0"]);
    assert_eq!(report.by_req_type.values().sum::<u64>(), 10_001);
    for _ in 0..100 {
        if stats.screen_requests.load(Ordering::Relaxed) == 10_001 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stats.screen_requests.load(Ordering::Relaxed), 10_001);
    assert_eq!(stats.connections.load(Ordering::Relaxed), 3);
    assert_eq!(stats.errors.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn sync_mode_matches_every_response() {
    let (mut cfg, _stats) = discard(true).await;
    cfg.nodes = 2;
    cfg.count = Some(5_000);
    cfg.mode = Mode::Sync {
        max_outstanding: 16,
    };
    let report = fpolicy_sim::run(cfg).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counters.sent, 5_000);
    assert_eq!(report.counters.answered, 5_000);
    assert_eq!(report.counters.allowed, 5_000);
    assert_eq!(report.counters.unanswered, 0);
    let l = report.latency.expect("latency measured");
    assert!(l.p50_us <= l.p99_us && l.p99_us <= l.max_us);
}

#[tokio::test]
async fn rate_limit_is_respected() {
    let (mut cfg, _stats) = discard(false).await;
    cfg.nodes = 2;
    cfg.rate = Some(2_000);
    cfg.count = Some(1_000);
    let report = fpolicy_sim::run(cfg).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // 1,000 at 2,000/s takes about half a second; never much less.
    assert!(report.elapsed_secs >= 0.45, "{}", report.elapsed_secs);
}

/// A scripted server: it answers the handshake itself (with a wrong policy
/// echo if asked), reports every decoded message to the test, and writes
/// whatever the test sends.
async fn scripted(
    bad_echo: bool,
) -> (
    SimConfig,
    mpsc::UnboundedReceiver<Message>,
    mpsc::UnboundedSender<Message>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let (send_tx, mut send_rx) = mpsc::unbounded_channel::<Message>();
    let reply_tx = send_tx.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = stream.into_split();
        tokio::spawn(async move {
            let mut encoder = Encoder::default();
            while let Some(m) = send_rx.recv().await {
                let mut out = Vec::new();
                encoder.encode(&m, &mut out);
                if w.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        loop {
            while let Some(p) = decoder.decode(&mut buf).unwrap() {
                let msg = decode_payload(&p).unwrap().message;
                if let Message::NegoReq(hs) = &msg {
                    let mut resp = hs.accept(hs.negotiate(&ProtocolVersion::ALL).unwrap());
                    if bad_echo {
                        resp.policy_name = "someone_else".into();
                    }
                    // Queued before the test learns of the handshake, so it
                    // goes out ahead of anything the test sends.
                    let _ = reply_tx.send(Message::NegoResp(resp));
                }
                let _ = seen_tx.send(msg);
            }
            if r.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
    });
    (SimConfig::new(addr), seen_rx, send_tx)
}

/// Waits until the scripted server has received NEGO_REQ (and so has
/// queued its NEGO_RESP).
async fn wait_for_handshake(seen: &mut mpsc::UnboundedReceiver<Message>) {
    while !matches!(
        seen.recv().await.expect("server alive"),
        Message::NegoReq(_)
    ) {}
}

#[tokio::test]
async fn handshake_echo_is_checked_strictly() {
    let (cfg, _seen, _send) = scripted(true).await;
    let report = fpolicy_sim::run(cfg).await;
    assert_eq!(report.counters.sent, 0);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains("PolicyName"),
        "{:?}",
        report.errors
    );
}

#[tokio::test]
async fn handshake_timeout_is_reported() {
    // A server that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = SimConfig::new(listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    cfg.handshake_timeout = Duration::from_millis(200);
    let report = fpolicy_sim::run(cfg).await;
    assert!(
        report.errors[0].contains("NEGO_RESP"),
        "{:?}",
        report.errors
    );
}

#[tokio::test]
async fn sync_mode_sends_status_queries_then_cancels() {
    let (mut cfg, mut seen, _send) = scripted(false).await;
    cfg.mode = Mode::Sync { max_outstanding: 4 };
    cfg.count = Some(4);
    cfg.status_query_after = Duration::from_millis(100);
    cfg.cancel_after = Duration::from_millis(400);
    let run = tokio::spawn(fpolicy_sim::run(cfg));
    wait_for_handshake(&mut seen).await;
    let report = run.await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counters.sent, 4);
    assert_eq!(report.counters.status_queries, 4);
    assert_eq!(report.counters.cancelled, 4);
    let mut types = Vec::new();
    while let Ok(m) = seen.try_recv() {
        types.push(m.notf_type());
    }
    assert_eq!(
        types.iter().filter(|t| **t == NotfType::ScreenReq).count(),
        4
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == NotfType::StatusQueryReq)
            .count(),
        4
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == NotfType::ScreenCancel)
            .count(),
        4
    );
    // Each request is queried before it is cancelled.
    let first_query = types
        .iter()
        .position(|t| *t == NotfType::StatusQueryReq)
        .unwrap();
    let first_cancel = types
        .iter()
        .position(|t| *t == NotfType::ScreenCancel)
        .unwrap();
    assert!(first_query < first_cancel);
}

#[tokio::test]
async fn back_pressure_pauses_sending_until_removed() {
    let (mut cfg, mut seen, send) = scripted(false).await;
    cfg.rate = Some(1_000);
    cfg.count = Some(400);
    let run = tokio::spawn(fpolicy_sim::run(cfg));
    wait_for_handshake(&mut seen).await;
    let session = fpolicy_proto::BackPressure {
        session_id: "s".into(),
    };
    send.send(Message::BackPressureApply(session.clone()))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    while seen.try_recv().is_ok() {}
    // Nothing may arrive while back pressure is applied.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut during = 0;
    while let Ok(m) = seen.try_recv() {
        if m.notf_type() == NotfType::ScreenReq {
            during += 1;
        }
    }
    assert_eq!(during, 0, "SCREEN_REQs sent under back pressure");
    send.send(Message::BackPressureRem(session)).unwrap();
    let report = run.await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.counters.sent, 400);
    assert_eq!(report.counters.back_pressure_applied, 1);
    assert_eq!(report.counters.back_pressure_removed, 1);
}

#[tokio::test]
async fn keep_alives_are_sent_on_the_interval() {
    let (mut cfg, mut seen, _send) = scripted(false).await;
    cfg.keep_alive_interval = Duration::from_millis(50);
    cfg.count = None;
    cfg.duration = Some(Duration::from_millis(400));
    cfg.rate = Some(100);
    let run = tokio::spawn(fpolicy_sim::run(cfg));
    wait_for_handshake(&mut seen).await;
    let report = run.await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report.counters.keep_alives >= 5,
        "{}",
        report.counters.keep_alives
    );
    let mut keep_alives = 0;
    while let Ok(m) = seen.try_recv() {
        if m == Message::KeepAlive {
            keep_alives += 1;
        }
    }
    assert_eq!(keep_alives, report.counters.keep_alives);
}

#[tokio::test]
async fn connection_refused_is_an_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let report = fpolicy_sim::run(SimConfig::new(addr)).await;
    assert!(report.errors[0].contains("connect"), "{:?}", report.errors);
}

/// A server that answers the handshake, takes synchronous requests without
/// answering them and disappears: the report carries an error (the binary
/// exits 1) instead of ending quietly with the requests "unanswered".
#[tokio::test]
async fn a_server_that_vanishes_mid_run_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut requests = 0;
        loop {
            while let Some(p) = decoder.decode(&mut buf).unwrap() {
                match decode_payload(&p).unwrap().message {
                    Message::NegoReq(hs) => {
                        let mut out = Vec::new();
                        Encoder::default().encode(
                            &Message::NegoResp(
                                hs.accept(hs.negotiate(&ProtocolVersion::ALL).unwrap()),
                            ),
                            &mut out,
                        );
                        stream.write_all(&out).await.unwrap();
                    }
                    Message::ScreenReq(_) => requests += 1,
                    _ => {}
                }
                if requests == 50 {
                    // Gone, as a killed process would be.
                    return;
                }
            }
            if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
        }
    });
    let mut cfg = SimConfig::new(addr);
    cfg.count = Some(50);
    cfg.mode = Mode::Sync {
        max_outstanding: 64,
    };
    let report = tokio::time::timeout(Duration::from_secs(30), fpolicy_sim::run(cfg))
        .await
        .expect("the sim notices");
    assert!(
        report.errors.iter().any(|e| e.contains("unanswered")),
        "{:?}",
        report.errors
    );
}
