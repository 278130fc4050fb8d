//! A minimal SQS- and EventBridge-compatible endpoint (AWS JSON protocol,
//! HTTP/1.1 keep-alive) that answers at once: for benchmarks (moto is far
//! too slow to measure against) and for fault tests (throttling, entries
//! rejected for good). Used by `tests/cloud.rs` and `examples/fake-aws.rs`.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub struct FakeAws {
    /// Entries accepted (SQS messages plus EventBridge events).
    pub accepted: AtomicU64,
    /// Delivery calls answered (SendMessageBatch, PutEvents).
    pub calls: AtomicU64,
    /// Throttle this many delivery calls first.
    pub throttle_first: AtomicU64,
    /// Calls throttled so far.
    pub throttled: AtomicU64,
    /// Entries whose body contains this marker are rejected (sender fault).
    pub reject_marker: std::sync::Mutex<Option<String>>,
    /// Every accepted body, when recording is on.
    pub record: std::sync::atomic::AtomicBool,
    pub bodies: std::sync::Mutex<Vec<String>>,
}

impl FakeAws {
    /// Serves on `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let me = self.clone();
            // One write per response and no Nagle delay: otherwise each
            // call waits for a delayed ACK (~40 ms).
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (rd, mut wr) = stream.into_split();
                let mut rd = BufReader::new(rd);
                loop {
                    let mut target = String::new();
                    let mut len = 0usize;
                    let mut line = String::new();
                    // Request line and headers.
                    if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            match k.to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                "x-amz-target" => target = v.trim().to_owned(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0u8; len.min(8 << 20)];
                    if rd.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let (status, reply) = me.answer(&target, &body);
                    let text = reply.to_string();
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nx-amzn-RequestId: fake\r\n\r\n{text}",
                        text.len()
                    );
                    if wr.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    fn count_only(&self, target: &str, body: &[u8]) -> (&'static str, Value) {
        let text = String::from_utf8_lossy(body);
        if target == "AWSEvents.PutEvents" {
            let n = text.matches("\"Detail\":").count();
            self.accepted.fetch_add(n as u64, Relaxed);
            let entries: Vec<Value> = (0..n)
                .map(|i| json!({"EventId": format!("e-{i}")}))
                .collect();
            return ("200 OK", json!({"FailedEntryCount": 0, "Entries": entries}));
        }
        let mut ok = Vec::new();
        for part in text.split("\"Id\":\"").skip(1) {
            let id = part.split('"').next().unwrap_or_default();
            ok.push(json!({"Id": id, "MessageId": format!("m-{id}"), "MD5OfMessageBody": "0"}));
        }
        self.accepted.fetch_add(ok.len() as u64, Relaxed);
        ("200 OK", json!({"Successful": ok, "Failed": []}))
    }

    fn throttle(&self) -> Option<(&'static str, Value)> {
        let left = self.throttle_first.load(Relaxed);
        if left > 0
            && self
                .throttle_first
                .compare_exchange(left, left - 1, Relaxed, Relaxed)
                .is_ok()
        {
            self.throttled.fetch_add(1, Relaxed);
            return Some((
                "400 Bad Request",
                json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
            ));
        }
        None
    }

    fn rejected(&self, body: &str) -> bool {
        let marker = self.reject_marker.lock().unwrap();
        marker.as_deref().is_some_and(|m| body.contains(m))
    }

    fn keep(&self, body: &str) {
        self.accepted.fetch_add(1, Relaxed);
        if self.record.load(Relaxed) {
            self.bodies.lock().unwrap().push(body.to_owned());
        }
    }

    fn answer(&self, target: &str, body: &[u8]) -> (&'static str, Value) {
        // In the fast path (no recording, no rejecting) count entries
        // without parsing: the fake must cost far less than the client.
        let plain = !self.record.load(Relaxed) && self.reject_marker.lock().unwrap().is_none();
        if plain && (target == "AmazonSQS.SendMessageBatch" || target == "AWSEvents.PutEvents") {
            self.calls.fetch_add(1, Relaxed);
            if let Some(t) = self.throttle() {
                return t;
            }
            return self.count_only(target, body);
        }
        let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match target {
            "AmazonSQS.SendMessageBatch" => {
                self.calls.fetch_add(1, Relaxed);
                if let Some(t) = self.throttle() {
                    return t;
                }
                let (mut ok, mut failed) = (Vec::new(), Vec::new());
                for e in req["Entries"].as_array().into_iter().flatten() {
                    let id = e["Id"].as_str().unwrap_or_default();
                    let msg = e["MessageBody"].as_str().unwrap_or_default();
                    if self.rejected(msg) {
                        failed.push(json!({"Id": id, "SenderFault": true, "Code": "InvalidMessageContents", "Message": "rejected by the fake"}));
                    } else {
                        self.keep(msg);
                        ok.push(json!({"Id": id, "MessageId": format!("m-{id}"), "MD5OfMessageBody": "0"}));
                    }
                }
                ("200 OK", json!({"Successful": ok, "Failed": failed}))
            }
            "AmazonSQS.GetQueueAttributes" => (
                "200 OK",
                json!({"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:000000000000:fake"}}),
            ),
            "AWSEvents.PutEvents" => {
                self.calls.fetch_add(1, Relaxed);
                if let Some(t) = self.throttle() {
                    return t;
                }
                let mut entries = Vec::new();
                let mut failed = 0;
                for (i, e) in req["Entries"].as_array().into_iter().flatten().enumerate() {
                    let detail = e["Detail"].as_str().unwrap_or_default();
                    if self.rejected(detail) {
                        failed += 1;
                        entries.push(json!({"ErrorCode": "ValidationException", "ErrorMessage": "rejected by the fake"}));
                    } else {
                        self.keep(detail);
                        entries.push(json!({"EventId": format!("e-{i}")}));
                    }
                }
                (
                    "200 OK",
                    json!({"FailedEntryCount": failed, "Entries": entries}),
                )
            }
            "AWSEvents.DescribeEventBus" => (
                "200 OK",
                json!({"Name": req["Name"], "Arn": "arn:aws:events:us-east-1:000000000000:event-bus/fake"}),
            ),
            other => (
                "400 Bad Request",
                json!({"__type": "UnknownOperationException", "message": format!("the fake does not know {other:?}")}),
            ),
        }
    }
}
