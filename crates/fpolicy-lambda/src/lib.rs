//! The SQS → EventBridge bridge for SQS-first deployments: fpolicy-bridge
//! sends events to an SQS queue; this Lambda function, triggered by that
//! queue, puts them on an EventBridge bus.
//!
//! - Each message body must be an fpolicy-bridge event (an object with
//!   `event_id`, `operation_type` and `file_path`); it becomes the
//!   `detail` unchanged.
//! - PutEvents in chunks of 10. Messages whose body is not an event, or
//!   whose entry failed, are reported in `batchItemFailures` (enable
//!   *ReportBatchItemFailures* on the event source mapping), so SQS
//!   redelivers only those and the others are not sent twice.
//! - Idempotent on `event_id` within an invocation: a repeated event is put
//!   once (and its duplicates succeed with it). Across invocations
//!   EventBridge has no idempotency key; consumers deduplicate on
//!   `detail.event_id`.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::Deserialize;

/// PutEvents takes at most 10 entries.
pub const CHUNK: usize = 10;

/// Where events go; from the environment in the function.
#[derive(Debug, Clone)]
pub struct Target {
    pub event_bus_name: String,
    pub source: String,
    pub detail_type: String,
}

impl Target {
    /// `EVENT_BUS_NAME` (required), `EVENT_SOURCE` (default
    /// `fsxn.fpolicy`), `EVENT_DETAIL_TYPE` (default `FPolicy File Operation`).
    pub fn from_env() -> Result<Target, String> {
        let bus =
            std::env::var("EVENT_BUS_NAME").map_err(|_| "EVENT_BUS_NAME is not set".to_owned())?;
        Ok(Target {
            event_bus_name: bus,
            source: std::env::var("EVENT_SOURCE").unwrap_or_else(|_| "fsxn.fpolicy".into()),
            detail_type: std::env::var("EVENT_DETAIL_TYPE")
                .unwrap_or_else(|_| "FPolicy File Operation".into()),
        })
    }
}

#[derive(Deserialize)]
struct Probe {
    event_id: String,
    #[allow(dead_code)]
    operation_type: String,
    #[allow(dead_code)]
    file_path: String,
}

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}

/// Handles one SQS batch.
pub async fn handle(client: &Client, target: &Target, event: SqsEvent) -> SqsBatchResponse {
    let mut failed: Vec<String> = Vec::new();
    // event_id → (detail, message ids carrying it)
    let mut order: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for record in event.records {
        let message_id = record.message_id.unwrap_or_default();
        let body = record.body.unwrap_or_default();
        match serde_json::from_str::<Probe>(&body) {
            Ok(p) => {
                let slot = by_id.entry(p.event_id.clone()).or_insert_with(|| {
                    order.push(p.event_id.clone());
                    (body, Vec::new())
                });
                slot.1.push(message_id);
            }
            Err(e) => {
                tracing::warn!(message_id = %message_id, error = %e, "message body is not an fpolicy-bridge event");
                failed.push(message_id);
            }
        }
    }
    for chunk in order.chunks(CHUNK) {
        let entries: Vec<PutEventsRequestEntry> = chunk
            .iter()
            .map(|id| {
                PutEventsRequestEntry::builder()
                    .source(&target.source)
                    .detail_type(&target.detail_type)
                    .detail(&by_id[id].0)
                    .event_bus_name(&target.event_bus_name)
                    .build()
            })
            .collect();
        match client.put_events().set_entries(Some(entries)).send().await {
            Ok(resp) => {
                for (k, r) in resp.entries().iter().enumerate() {
                    if let (Some(code), Some(id)) = (r.error_code(), chunk.get(k)) {
                        tracing::warn!(event_id = %id, code, "PutEvents entry failed");
                        failed.extend(by_id[id].1.iter().cloned());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), "PutEvents failed");
                for id in chunk {
                    failed.extend(by_id[id].1.iter().cloned());
                }
            }
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failed.iter().map(|id| failure(id)).collect();
    resp
}
