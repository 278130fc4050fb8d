//! Amazon SQS: SendMessageBatch, the event in the sink's `format` as the
//! body (default: the event object), message
//! attributes `operation_type`, `volume_name`, `svm_name` for filtering.
//! FIFO queues (`.fifo`): MessageGroupId = file path (per-file order; a
//! hash when the path is not a valid group id), MessageDeduplicationId =
//! event_id, one call in flight.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use std::sync::Arc;

use fpolicy_event::Emitted;
use fpolicy_event::format::{AccessPoints, Format};
use serde::Deserialize;

use super::aws::{
    LocalRuntime, Planned, call_error, in_flight, is_throttling_code, plan, settle_calls,
};
use super::{Delivered, EntryFailure, Formatter, Sink, SinkError};

/// One `[[sink]]` with `type = "sqs"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqsSinkConfig {
    pub name: String,
    /// The queue URL (a `.fifo` URL makes it a FIFO queue).
    pub queue_url: String,
    /// SendMessageBatch calls in flight at once (FIFO queues: always 1).
    #[serde(default = "super::aws::default_in_flight")]
    pub max_in_flight: usize,
    /// Events per second at most; 0 = no limit.
    #[serde(default)]
    pub max_events_per_sec: u32,
    /// API calls per second the sink may make (0 = no limit): an input of
    /// the concurrency formula.
    #[serde(default)]
    pub api_calls_per_sec: f64,
    /// Endpoint override (otherwise the AWS chain, including `AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The message body: `fpolicy` (the event), `s3` (an S3 event
    /// notification), `ocsf` or `ecs`.
    #[serde(default)]
    pub format: Format,
}

impl SqsSinkConfig {
    /// `[[sink]]` fields of an SQS sink; the name is checked with the others.
    pub fn validate(&self) -> Result<(), String> {
        if !self.queue_url.starts_with("http") {
            return Err(format!(
                "sink {:?}: queue_url must be the queue's https URL",
                self.name
            ));
        }
        super::aws::validate_in_flight(&self.name, self.max_in_flight)
    }

    /// The sink, with SDK configuration from the standard chain.
    pub async fn build(&self, access_points: &Arc<AccessPoints>) -> SqsSink {
        let sdk = super::aws_config(self.endpoint_url.as_deref()).await;
        SqsSink::new(self, &sdk).with_format(Formatter::new(self.format, access_points.clone()))
    }
}

pub struct SqsSink {
    name: String,
    client: Client,
    queue_url: String,
    fifo: bool,
    max_in_flight: usize,
    api_calls_per_sec: f64,
    rt: LocalRuntime,
    formatter: Formatter,
}

/// A FIFO MessageGroupId for `path`: the path itself when it is a valid
/// group id (≤ 128 printable ASCII characters without spaces), else a
/// stable hash of it.
pub fn group_id(path: &str) -> String {
    let valid = path.len() <= 128 && path.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        path.to_owned()
    } else {
        format!("path-{:032x}", xxhash_rust::xxh3::xxh3_128(path.as_bytes()))
    }
}

fn attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(if v.is_empty() { "-" } else { v })
        .build()
        .expect("data type is set")
}

impl SqsSink {
    pub fn new(cfg: &SqsSinkConfig, sdk: &aws_config::SdkConfig) -> SqsSink {
        let fifo = cfg.queue_url.ends_with(".fifo");
        SqsSink {
            name: cfg.name.clone(),
            client: Client::new(sdk),
            queue_url: cfg.queue_url.clone(),
            fifo,
            max_in_flight: if fifo { 1 } else { cfg.max_in_flight },
            api_calls_per_sec: cfg.api_calls_per_sec,
            rt: LocalRuntime::default(),
            formatter: Formatter::default(),
        }
    }

    /// Message bodies in `formatter`'s format (default: the event).
    pub fn with_format(mut self, formatter: Formatter) -> SqsSink {
        self.formatter = formatter;
        self
    }

    /// The entry of event `e` with `body` (the event in the sink's format);
    /// the attributes and the FIFO ids come from the event itself.
    fn entry(
        &self,
        i: usize,
        e: &Emitted,
        body: &[u8],
    ) -> Result<(SendMessageBatchRequestEntry, usize), String> {
        let body = std::str::from_utf8(body).map_err(|_| "event is not UTF-8".to_owned())?;
        let p = fpolicy_event::keys::read(&e.json).map_err(|err| format!("not an event: {err}"))?;
        let mut b = SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body(body)
            .message_attributes("operation_type", attr(&p.operation_type))
            .message_attributes("volume_name", attr(&p.volume_name))
            .message_attributes("svm_name", attr(&p.svm_name));
        if self.fifo {
            b = b
                .message_group_id(group_id(&p.file_path))
                .message_deduplication_id(p.event_id);
        }
        let size =
            body.len() + 64 + p.operation_type.len() + p.volume_name.len() + p.svm_name.len();
        let entry = b.build().map_err(|err| err.to_string())?;
        Ok((entry, size))
    }
}

impl Sink for SqsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn routed(&self) -> bool {
        true
    }

    fn check(&mut self) -> Result<(), SinkError> {
        let call = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send();
        self.rt
            .block_on(call)?
            .map(|_| ())
            .map_err(|e| call_error(&self.name, &e))
    }

    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
        let mut out = Delivered::default();
        let mut entries = Vec::with_capacity(events.len());
        let mut sizes = Vec::with_capacity(events.len());
        let mut index = Vec::with_capacity(events.len());
        for (i, body) in self.formatter.bodies(events, &mut out) {
            match self.entry(i, &events[i], &body) {
                Ok((entry, size)) => {
                    entries.push(entry);
                    sizes.push(size);
                    index.push(i);
                }
                Err(why) => out.failures.push((i, EntryFailure::Reject(why))),
            }
        }
        let Planned {
            calls,
            positions,
            in_flight: in_flight_now,
        } = plan(
            entries,
            &sizes,
            &index,
            "larger than SQS's 256 KiB message limit",
            self.api_calls_per_sec,
            self.max_in_flight,
            &mut out,
        );
        let client = self.client.clone();
        let url = self.queue_url.clone();
        let results = self
            .rt
            .block_on(in_flight(calls, in_flight_now, move |(_, batch)| {
                client
                    .send_message_batch()
                    .queue_url(url.clone())
                    .set_entries(Some(batch))
                    .send()
            }));
        settle_calls(
            &self.name,
            &positions,
            results?,
            out,
            |_, resp: &aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput| {
                resp.failed()
                    .iter()
                    .filter_map(|f| {
                        let i = f.id().parse::<usize>().ok()?;
                        let why = format!("{}: {}", f.code(), f.message().unwrap_or_default());
                        let throttled = is_throttling_code(f.code());
                        let failure = if f.sender_fault() && !throttled {
                            EntryFailure::Reject(why)
                        } else {
                            EntryFailure::Retry(why)
                        };
                        Some((i, failure, throttled))
                    })
                    .collect()
            },
        )
    }
}
