//! `[trigger]` (event-driven, polling or HYBRID) and `[[poll]]` (one S3
//! Access Point to list each).

use std::time::Duration;

use fpolicy_poll::schedule::{BusinessHours, Schedule};
use serde::Deserialize;

use super::{ConfigError, duration};

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerMode {
    /// FPolicy only; `[[poll]]` tables are ignored.
    EventDriven,
    /// The pollers alone decide (every change they see is an event).
    Polling,
    /// FPolicy first; polling emits only what FPolicy did not cover.
    Hybrid,
}

/// `[trigger]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerConfig {
    pub mode: TriggerMode,
    /// HYBRID: an FPolicy event covers an object changed up to this long
    /// after it (clocks of ONTAP and S3 differ).
    #[serde(rename = "clock_skew_secs", deserialize_with = "duration::any")]
    pub clock_skew: Duration,
    /// HYBRID: most recent FPolicy paths remembered.
    pub recent_events: usize,
    /// Savings model: USD per 1,000 LIST requests.
    pub list_price_per_1000: f64,
    /// LIST calls per second a poll may make (0 = no limit), and the most
    /// prefixes listed at once: the inputs of the concurrency formula.
    pub list_calls_per_sec: f64,
    pub max_concurrent_prefixes: u32,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        TriggerConfig {
            mode: TriggerMode::EventDriven,
            clock_skew: Duration::from_secs(120),
            recent_events: 1_000_000,
            list_price_per_1000: 0.005,
            list_calls_per_sec: 0.0,
            max_concurrent_prefixes: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    pub days: String,
    pub start: String,
    pub end: String,
    pub timezone: String,
}

/// One `[[poll]]`: an S3 Access Point (or bucket) to list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    pub name: String,
    /// An `[[access_point]]` alias: its bucket, volume and root, instead of
    /// `bucket`, `volume_name` and `path_prefix`.
    #[serde(default)]
    pub access_point: Option<String>,
    /// Access point alias, access point ARN, or bucket name.
    #[serde(default)]
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// Several prefixes (instead of `prefix`), listed concurrently; none
    /// may start with another.
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub suffixes: Vec<String>,
    #[serde(default)]
    pub volume_name: String,
    pub svm_name: String,
    /// Where the access point's root sits in the volume.
    #[serde(default = "default_root")]
    pub path_prefix: String,
    #[serde(default, deserialize_with = "duration::optional")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub business_hours: Option<BusinessHoursConfig>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub business_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::optional")]
    pub off_hours_interval: Option<Duration>,
    /// First run: emit every existing object (else baseline only).
    #[serde(default)]
    pub emit_existing: bool,
    /// Endpoint override (otherwise the AWS chain / AWS_ENDPOINT_URL).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

fn default_root() -> String {
    "/".into()
}

impl PollConfig {
    /// The poll's schedule: `interval` (default 1h), or business hours
    /// with `business_interval` (default: `interval`) and
    /// `off_hours_interval` (default 6h).
    pub fn schedule(&self) -> Result<Schedule, String> {
        let interval = self.interval.unwrap_or(HOUR);
        let schedule = match &self.business_hours {
            None => Schedule::Every(interval),
            Some(b) => Schedule::BusinessHours {
                hours: BusinessHours::new(&b.days, &b.start, &b.end, &b.timezone)
                    .map_err(|e| format!("poll {:?}: {e}", self.name))?,
                business: self.business_interval.unwrap_or(interval),
                off_hours: self.off_hours_interval.unwrap_or(6 * HOUR),
            },
        };
        schedule
            .validate()
            .map_err(|e| format!("poll {:?}: {e}", self.name))?;
        Ok(schedule)
    }

    /// The prefixes to list (`prefix` alone, or `prefixes`).
    pub fn prefixes(&self) -> Vec<String> {
        if self.prefixes.is_empty() {
            vec![self.prefix.clone()]
        } else {
            self.prefixes.clone()
        }
    }

    /// The interval the savings model compares against.
    pub fn business_interval(&self) -> Duration {
        self.business_interval.or(self.interval).unwrap_or(HOUR)
    }
}

/// Every `[[poll]]`: unique names, required fields, a valid schedule,
/// prefixes that do not overlap.
/// Fills `bucket`, `volume_name` and `path_prefix` of the polls that name
/// an `[[access_point]]`; naming one and giving those too is an error.
pub fn apply_access_points(
    polls: &mut [PollConfig],
    access_points: &[fpolicy_event::AccessPoint],
) -> Result<(), ConfigError> {
    for p in polls {
        let Some(alias) = &p.access_point else {
            continue;
        };
        let Some(ap) = access_points.iter().find(|a| &a.alias == alias) else {
            return Err(ConfigError::Invalid(format!(
                "poll {:?}: access_point {alias:?} is no [[access_point]] alias",
                p.name
            )));
        };
        if !p.bucket.is_empty() || !p.volume_name.is_empty() || p.path_prefix != default_root() {
            return Err(ConfigError::Invalid(format!(
                "poll {:?}: give access_point or bucket/volume_name/path_prefix, not both",
                p.name
            )));
        }
        p.bucket = ap.alias.clone();
        p.volume_name = ap.volume.clone();
        p.path_prefix = ap.root.clone();
    }
    Ok(())
}

pub fn validate_polls(polls: &[PollConfig]) -> Result<(), ConfigError> {
    let bad = |m: String| Err(ConfigError::Invalid(m));
    let mut poll_names = std::collections::BTreeSet::new();
    for p in polls {
        let valid = !p.name.is_empty()
            && p.name.len() <= 64
            && p.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid || !poll_names.insert(p.name.as_str()) {
            return bad(format!(
                "poll name {:?}: unique, 1-64 letters, digits, '-' or '_'",
                p.name
            ));
        }
        if p.bucket.is_empty() || p.volume_name.is_empty() || p.svm_name.is_empty() {
            return bad(format!(
                "poll {:?}: bucket (or access_point), volume_name and svm_name are required",
                p.name
            ));
        }
        p.schedule().map_err(ConfigError::Invalid)?;
        if !p.prefixes.is_empty() && !p.prefix.is_empty() {
            return bad(format!(
                "poll {:?}: give prefix or prefixes, not both",
                p.name
            ));
        }
        for a in &p.prefixes {
            if p.prefixes
                .iter()
                .filter(|b| b.starts_with(a.as_str()))
                .count()
                > 1
            {
                return bad(format!(
                    "poll {:?}: prefix {a:?} contains another prefix of the list",
                    p.name
                ));
            }
        }
    }
    Ok(())
}
