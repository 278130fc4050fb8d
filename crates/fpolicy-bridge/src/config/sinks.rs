//! `[sinks.*]` (the built-in JSON Lines and stdout sinks), `[[sink]]` (one
//! table per routed sink: SQS, EventBridge, NATS JetStream, syslog; a tagged enum,
//! so a new sink type is one variant and one module under `sink/`), and
//! `[routing]`.

use std::path::PathBuf;

use std::sync::Arc;

use fpolicy_event::format::{AccessPoints, Format};
use serde::Deserialize;

use super::ConfigError;
use crate::sink::{EventBridgeSinkConfig, NatsSinkConfig, Sink, SqsSinkConfig, SyslogSinkConfig};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    pub jsonl: JsonlConfig,
    pub stdout: StdoutConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonlConfig {
    pub enabled: bool,
    pub dir: PathBuf,
    pub max_file_bytes: u64,
    /// Each line: `fpolicy` (the event), `s3`, `ocsf` or `ecs`.
    pub format: Format,
}

impl Default for JsonlConfig {
    fn default() -> Self {
        JsonlConfig {
            enabled: true,
            dir: PathBuf::new(),
            max_file_bytes: 1024 * 1024 * 1024,
            format: Format::Fpolicy,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutConfig {
    pub enabled: bool,
    /// Each line: `fpolicy` (the event), `s3`, `ocsf` or `ecs`.
    pub format: Format,
}

/// One `[[sink]]`, chosen by its `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CloudSinkConfig {
    Sqs(SqsSinkConfig),
    Eventbridge(EventBridgeSinkConfig),
    Nats(NatsSinkConfig),
    Syslog(SyslogSinkConfig),
}

impl CloudSinkConfig {
    pub fn name(&self) -> &str {
        match self {
            CloudSinkConfig::Sqs(c) => &c.name,
            CloudSinkConfig::Eventbridge(c) => &c.name,
            CloudSinkConfig::Nats(c) => &c.name,
            CloudSinkConfig::Syslog(c) => &c.name,
        }
    }

    /// What the sink sends: the event, or one of the other formats.
    pub fn format(&self) -> Format {
        match self {
            CloudSinkConfig::Sqs(c) => c.format,
            CloudSinkConfig::Eventbridge(c) => c.format,
            CloudSinkConfig::Nats(c) => c.format,
            CloudSinkConfig::Syslog(c) => c.json_format(),
        }
    }

    /// Events per second the sink may deliver (0 = no limit).
    pub fn max_events_per_sec(&self) -> u32 {
        match self {
            CloudSinkConfig::Sqs(c) => c.max_events_per_sec,
            CloudSinkConfig::Eventbridge(c) => c.max_events_per_sec,
            CloudSinkConfig::Nats(c) => c.max_events_per_sec,
            CloudSinkConfig::Syslog(c) => c.max_events_per_sec,
        }
    }

    /// The variant's own fields (the name is checked with the others).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            CloudSinkConfig::Sqs(c) => c.validate(),
            CloudSinkConfig::Eventbridge(c) => c.validate(),
            CloudSinkConfig::Nats(c) => c.validate(),
            CloudSinkConfig::Syslog(c) => c.validate(),
        }
        .map_err(ConfigError::Invalid)
    }

    /// The sink, ready to deliver; `access_points` place events for the
    /// `s3` format.
    pub async fn build(&self, access_points: &Arc<AccessPoints>) -> Box<dyn Sink> {
        match self {
            CloudSinkConfig::Sqs(c) => Box::new(c.build(access_points).await),
            CloudSinkConfig::Eventbridge(c) => Box::new(c.build(access_points).await),
            CloudSinkConfig::Nats(c) => Box::new(c.build(access_points).await),
            CloudSinkConfig::Syslog(c) => Box::new(c.build(access_points)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Sinks for events that match no route. Default: every `[[sink]]` when
    /// there is no `[[route]]`, none when there are routes.
    pub default_sinks: Option<Vec<String>>,
}

/// Sink names: 1-64 letters, digits, `-`, `_`; unique; not a built-in.
pub fn validate_cloud_sinks(sinks: &[CloudSinkConfig]) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for c in sinks {
        let name = c.name();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(ConfigError::Invalid(format!(
                "sink name {name:?}: use 1-64 letters, digits, '-' or '_'"
            )));
        }
        if name == "jsonl" || name == "stdout" || !names.insert(name) {
            return Err(ConfigError::Invalid(format!(
                "sink name {name:?} is taken (jsonl and stdout are built in; names are unique)"
            )));
        }
        c.validate()?;
    }
    Ok(())
}
