//! `[events]`: how notifications become events (names, coalescing), and
//! `[screening]`: what synchronous policies deny.

use std::collections::BTreeMap;
use std::time::Duration;

use fpolicy_event::{GenerationTimeUnit, Operation, ScreeningRules};
use serde::Deserialize;

use super::{ConfigError, duration};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    pub default_volume: String,
    pub default_svm: String,
    pub generation_time: GenerationTimeUnit,
    /// Writes to one path within this long become one event (0 = off).
    #[serde(
        rename = "write_complete_delay_secs",
        deserialize_with = "duration::any"
    )]
    pub write_complete_delay: Duration,
    /// A path written without pause is still emitted after this long.
    #[serde(rename = "max_hold_secs", deserialize_with = "duration::any")]
    pub max_hold: Duration,
    pub max_pending_paths: usize,
    pub volumes: BTreeMap<String, String>,
    pub svms: BTreeMap<String, String>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            default_volume: "unknown".into(),
            default_svm: "unknown".into(),
            generation_time: GenerationTimeUnit::Auto,
            write_complete_delay: Duration::from_secs(5),
            max_hold: Duration::from_secs(60),
            max_pending_paths: 100_000,
            volumes: BTreeMap::new(),
            svms: BTreeMap::new(),
        }
    }
}

impl EventsConfig {
    /// `[events]`: the coalescing window and bounds, names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.write_complete_delay > Duration::from_secs(3600) {
            return bad("events.write_complete_delay_secs must be between 0 and 3600".into());
        }
        if !self.write_complete_delay.is_zero() && self.max_hold < self.write_complete_delay {
            return bad("events.max_hold_secs must be at least the write-complete delay".into());
        }
        if self.max_pending_paths == 0 {
            return bad("events.max_pending_paths must be above 0".into());
        }
        for k in self.volumes.keys() {
            if k.parse::<u64>().is_err() {
                return bad(format!(
                    "events.volumes key {k:?} is not a VolMsid (a number)"
                ));
            }
        }
        if self.default_volume.is_empty() || self.default_svm.is_empty() {
            return bad("events.default_volume and events.default_svm must not be empty".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreeningConfig {
    pub deny_extensions: Vec<String>,
    pub deny_paths: Vec<String>,
    /// Names, SIDs or UIDs whose every operation is denied.
    pub deny_users: Vec<String>,
    pub operations: Vec<Operation>,
}

impl ScreeningConfig {
    /// The compiled rules (their patterns are checked here).
    pub fn rules(&self) -> Result<ScreeningRules, ConfigError> {
        ScreeningRules::new(&self.deny_extensions, &self.deny_paths, &self.operations)
            .and_then(|r| r.deny_users(&self.deny_users))
            .map_err(|e| ConfigError::Invalid(format!("screening: {e}")))
    }

    /// Whether any rule can deny (a policy with rules needs answers).
    pub fn denies_anything(&self) -> bool {
        !self.deny_extensions.is_empty()
            || !self.deny_paths.is_empty()
            || !self.deny_users.is_empty()
    }
}
