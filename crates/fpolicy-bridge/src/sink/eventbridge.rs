//! Amazon EventBridge: PutEvents with the event in the sink's `format` as
//! `detail` (default: the event object), `source` and `detail-type` from
//! the configuration (defaults `fsxn.fpolicy`, `FPolicy File Operation`),
//! `time` = receive time. With `format = "s3"` each object change is an
//! event as S3 sends it to EventBridge: `detail-type` "Object Created" or
//! "Object Deleted" (a rename is both), the `detail` S3's.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use std::sync::Arc;

use fpolicy_event::Emitted;
use fpolicy_event::format::{AccessPoints, Format, s3};
use serde::Deserialize;

use super::aws::{
    LocalRuntime, Planned, call_error, in_flight, is_throttling_code, plan, settle_calls,
};
use super::{Delivered, EntryFailure, Formatter, NotSent, Sink, SinkError};

/// One `[[sink]]` with `type = "eventbridge"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBridgeSinkConfig {
    pub name: String,
    /// The bus name or ARN.
    pub event_bus_name: String,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default = "default_detail_type")]
    pub detail_type: String,
    /// PutEvents calls in flight at once.
    #[serde(default = "super::aws::default_in_flight")]
    pub max_in_flight: usize,
    /// Events per second at most; 0 = no limit. PutEvents quotas are per
    /// account and region: share them between sinks.
    #[serde(default)]
    pub max_events_per_sec: u32,
    /// API calls per second the sink may make (0 = no limit): an input of
    /// the concurrency formula.
    #[serde(default)]
    pub api_calls_per_sec: f64,
    /// Endpoint override (otherwise the AWS chain, including `AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The `detail`: `fpolicy` (the event), `s3` (S3's "Object Created" /
    /// "Object Deleted"), `ocsf` or `ecs`.
    #[serde(default)]
    pub format: Format,
}

fn default_source() -> String {
    "fsxn.fpolicy".into()
}

fn default_detail_type() -> String {
    "FPolicy File Operation".into()
}

impl EventBridgeSinkConfig {
    /// `[[sink]]` fields of an EventBridge sink; the name is checked with
    /// the others.
    pub fn validate(&self) -> Result<(), String> {
        if self.event_bus_name.is_empty() {
            return Err(format!("sink {:?}: event_bus_name is required", self.name));
        }
        if self.source.is_empty() || self.detail_type.is_empty() {
            return Err(format!(
                "sink {:?}: source and detail_type must not be empty",
                self.name
            ));
        }
        super::aws::validate_in_flight(&self.name, self.max_in_flight)
    }

    /// The sink, with SDK configuration from the standard chain.
    pub async fn build(&self, access_points: &Arc<AccessPoints>) -> EventBridgeSink {
        let sdk = super::aws_config(self.endpoint_url.as_deref()).await;
        EventBridgeSink::new(self, &sdk)
            .with_format(Formatter::new(self.format, access_points.clone()))
    }
}

pub struct EventBridgeSink {
    name: String,
    client: Client,
    bus: String,
    source: String,
    detail_type: String,
    max_in_flight: usize,
    api_calls_per_sec: f64,
    rt: LocalRuntime,
    formatter: Formatter,
}

/// Entry error codes worth another try; anything else is a rejection.
const RETRYABLE: &[&str] = &[
    "InternalFailure",
    "InternalException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

impl EventBridgeSink {
    pub fn new(cfg: &EventBridgeSinkConfig, sdk: &aws_config::SdkConfig) -> EventBridgeSink {
        EventBridgeSink {
            name: cfg.name.clone(),
            client: Client::new(sdk),
            bus: cfg.event_bus_name.clone(),
            source: cfg.source.clone(),
            detail_type: cfg.detail_type.clone(),
            max_in_flight: cfg.max_in_flight,
            api_calls_per_sec: cfg.api_calls_per_sec,
            rt: LocalRuntime::default(),
            formatter: Formatter::default(),
        }
    }

    /// Details in `formatter`'s format (default: the event).
    pub fn with_format(mut self, formatter: Formatter) -> EventBridgeSink {
        self.formatter = formatter;
        self
    }

    fn entry(
        &self,
        detail_type: &str,
        detail: &str,
        received: i64,
    ) -> (PutEventsRequestEntry, usize) {
        let entry = PutEventsRequestEntry::builder()
            .source(&self.source)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(&self.bus)
            .time(
                aws_smithy_types::DateTime::from_nanos(i128::from(received))
                    .unwrap_or(aws_smithy_types::DateTime::from_secs(0)),
            )
            .build();
        // EventBridge counts source, detail-type and detail (and 14 bytes of time).
        (
            entry,
            detail.len() + self.source.len() + detail_type.len() + 14,
        )
    }

    /// The entries of one event: one, or with `format = "s3"` one per
    /// object change (a rename: two, both at position `i`).
    fn entries_of(
        &self,
        i: usize,
        e: &Emitted,
        out: &mut Delivered,
    ) -> Vec<(PutEventsRequestEntry, usize)> {
        if self.formatter.format() != Format::S3 {
            return match self.formatter.body(&e.json) {
                Ok(body) => match std::str::from_utf8(&body) {
                    Ok(detail) => vec![self.entry(&self.detail_type, detail, e.received)],
                    Err(_) => {
                        NotSent::Invalid("event is not UTF-8".into()).record(i, out);
                        Vec::new()
                    }
                },
                Err(n) => {
                    n.record(i, out);
                    Vec::new()
                }
            };
        }
        let event = match Formatter::parse(&e.json) {
            Ok(event) => event,
            Err(n) => {
                n.record(i, out);
                return Vec::new();
            }
        };
        match s3::changes(&event, self.formatter.access_points()) {
            Ok(changes) => changes
                .iter()
                .map(|c| {
                    let detail = serde_json::to_string(&c.detail()).unwrap_or_default();
                    self.entry(c.detail_type(), &detail, e.received)
                })
                .collect(),
            Err(skip) => {
                NotSent::Skip(skip).record(i, out);
                Vec::new()
            }
        }
    }
}

impl Sink for EventBridgeSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn routed(&self) -> bool {
        true
    }

    fn check(&mut self) -> Result<(), SinkError> {
        let call = self.client.describe_event_bus().name(&self.bus).send();
        self.rt
            .block_on(call)?
            .map(|_| ())
            .map_err(|e| call_error(&self.name, &e))
    }

    fn deliver(&mut self, events: &[Emitted]) -> Result<Delivered, SinkError> {
        let mut out = Delivered::default();
        let mut entries: Vec<PutEventsRequestEntry> = Vec::with_capacity(events.len());
        let mut sizes = Vec::with_capacity(events.len());
        let mut index = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            for (entry, size) in self.entries_of(i, e, &mut out) {
                entries.push(entry);
                sizes.push(size);
                index.push(i);
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
            "larger than EventBridge's 256 KB entry limit",
            self.api_calls_per_sec,
            self.max_in_flight,
            &mut out,
        );
        let client = self.client.clone();
        let results = self
            .rt
            .block_on(in_flight(calls, in_flight_now, move |(_, batch)| {
                client.put_events().set_entries(Some(batch)).send()
            }));
        settle_calls(
            &self.name,
            &positions,
            results?,
            out,
            |c, resp: &aws_sdk_eventbridge::operation::put_events::PutEventsOutput| {
                // Result entries are in request order.
                resp.entries()
                    .iter()
                    .enumerate()
                    .filter_map(|(k, r)| {
                        let code = r.error_code()?;
                        let i = *positions[c].get(k)?;
                        let why = format!("{code}: {}", r.error_message().unwrap_or_default());
                        let throttled = is_throttling_code(code);
                        let failure = if throttled || RETRYABLE.contains(&code) {
                            EntryFailure::Retry(why)
                        } else {
                            EntryFailure::Reject(why)
                        };
                        Some((i, failure, throttled))
                    })
                    .collect()
            },
        )
    }
}
