//! `[spool]`: the durable log every event is written to before it is
//! acknowledged, and `[shutdown]`: how long a stop may spend delivering it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncSetting {
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolSettings {
    pub segment_bytes: u64,
    pub capacity_bytes: u64,
    pub high_watermark_events: u64,
    pub low_watermark_events: u64,
    pub fsync: FsyncSetting,
    /// Keep this instance's spool under `<shared_root>/<instance_id>/` on
    /// storage that outlives the instance (Amazon EFS, NFS), and deliver
    /// the spools of instances that are gone. Empty: `<data_dir>/spool`.
    pub shared_root: PathBuf,
    /// Default: the ECS task id, else the host name.
    pub instance_id: String,
    /// A spool whose lease was not renewed for this long is an orphan.
    #[serde(rename = "lease_secs", deserialize_with = "duration::any")]
    pub lease: Duration,
    pub adopt_orphans: bool,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            segment_bytes: 64 * 1024 * 1024,
            capacity_bytes: 10 * 1024 * 1024 * 1024,
            high_watermark_events: 1_000_000,
            low_watermark_events: 500_000,
            fsync: FsyncSetting::Always,
            shared_root: PathBuf::new(),
            instance_id: String::new(),
            lease: Duration::from_secs(30),
            adopt_orphans: true,
        }
    }
}

impl SpoolSettings {
    /// `[spool]`: watermarks in order, segment and capacity sizes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.into()));
        if self.high_watermark_events == 0 {
            return bad("spool.high_watermark_events must be above 0");
        }
        if self.low_watermark_events >= self.high_watermark_events {
            return bad("spool.low_watermark_events must be below spool.high_watermark_events");
        }
        if self.segment_bytes < 64 * 1024 || self.capacity_bytes < 2 * self.segment_bytes {
            return bad(
                "spool.segment_bytes must be at least 65536 and spool.capacity_bytes at least two segments",
            );
        }
        if self.lease < Duration::from_secs(3) {
            return bad("spool.lease_secs must be at least 3");
        }
        if !self.instance_id.is_empty()
            && !fpolicy_spool::lease::valid_instance_id(&self.instance_id)
        {
            return bad(
                "spool.instance_id: 1-128 letters, digits, '-', '_' or '.', not starting with '.'",
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// After the sessions end, how long the sinks may deliver what the
    /// spool holds before the process exits (the rest waits in the spool).
    #[serde(rename = "drain_timeout_secs", deserialize_with = "duration::any")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl ShutdownConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.drain_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "shutdown.drain_timeout_secs must be above 0".into(),
            ));
        }
        Ok(())
    }
}
