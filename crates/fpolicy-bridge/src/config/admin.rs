//! What operators read: `[admin]` (the HTTP endpoint for /metrics,
//! /healthz, /readyz), `[log]`, and `[cloudwatch]` (Embedded Metric Format).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9899)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.level.trim().is_empty() {
            return Err(ConfigError::Invalid("log.level must not be empty".into()));
        }
        Ok(())
    }
}

/// `[cloudwatch]`: Embedded Metric Format lines for CloudWatch alarms.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudWatchConfig {
    pub emf: bool,
    pub namespace: String,
    /// The `Service` dimension.
    pub service: String,
    #[serde(rename = "interval_secs", deserialize_with = "duration::any")]
    pub interval: Duration,
}

impl Default for CloudWatchConfig {
    fn default() -> Self {
        CloudWatchConfig {
            emf: false,
            namespace: "FPolicyBridge".into(),
            service: "fpolicy-bridge".into(),
            interval: Duration::from_secs(60),
        }
    }
}
