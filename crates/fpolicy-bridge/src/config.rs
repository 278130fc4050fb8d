//! Configuration: a TOML file (`deny_unknown_fields`), defaults for every
//! key, command-line overrides, and a pure [`Config::validate`].
//! `fpolicy-bridge config default` prints `default-config.toml`, which a
//! test keeps equal to [`Config::default`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fpolicy_event::{
    EngineType, GenerationTimeUnit, Operation, RouteConfig, Router, ScreeningRules,
};
use serde::Deserialize;

use crate::cidr::Cidr;

/// The fully commented default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub spool: SpoolSettings,
    pub events: EventsConfig,
    pub screening: ScreeningConfig,
    pub sinks: SinksConfig,
    /// Cloud sinks: `[[sink]]` tables.
    #[serde(rename = "sink")]
    pub cloud_sinks: Vec<CloudSinkConfig>,
    pub routing: RoutingConfig,
    /// `[[route]]` tables.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
    pub ontap: OntapSettings,
    pub cloudwatch: CloudWatchConfig,
    pub trigger: TriggerConfig,
    /// `[[poll]]` tables.
    #[serde(rename = "poll")]
    pub polls: Vec<PollConfig>,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub idle_timeout_secs: u64,
    pub handshake_timeout_secs: u64,
    pub frame_timeout_secs: u64,
    pub max_connections: usize,
    pub max_frame_bytes: usize,
    pub max_pending_handshakes: usize,
    pub max_pending_handshakes_per_peer: usize,
    pub handshake_max_frame_bytes: usize,
    pub max_buffered_bytes: u64,
    pub max_outstanding_per_session: usize,
    pub default_engine: EngineType,
    pub allowed_policies: Vec<String>,
    pub allowed_svm_uuids: Vec<String>,
    pub allowed_peers: Vec<String>,
    pub engines: BTreeMap<String, EngineType>,
    pub tls: TlsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Off,
    ServerAuth,
    MutualAuth,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: String,
}

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
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    pub default_volume: String,
    pub default_svm: String,
    pub generation_time: GenerationTimeUnit,
    pub write_complete_delay_secs: f64,
    pub max_hold_secs: u64,
    pub max_pending_paths: usize,
    pub volumes: BTreeMap<String, String>,
    pub svms: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreeningConfig {
    pub deny_extensions: Vec<String>,
    pub deny_paths: Vec<String>,
    pub operations: Vec<Operation>,
}

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudSinkType {
    Sqs,
    Eventbridge,
}

/// One `[[sink]]`: an SQS queue or an EventBridge bus.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSinkConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: CloudSinkType,
    /// SQS: the queue URL (a `.fifo` URL makes it a FIFO queue).
    #[serde(default)]
    pub queue_url: String,
    /// EventBridge: the bus name or ARN.
    #[serde(default)]
    pub event_bus_name: String,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default = "default_detail_type")]
    pub detail_type: String,
    /// API calls in flight at once (FIFO queues always use 1, for order).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Events per second at most; 0 = no limit. EventBridge PutEvents
    /// quotas are per account and region: share them between sinks.
    #[serde(default)]
    pub max_events_per_sec: u32,
    /// API calls per second the sink may make (0 = no limit): an input of
    /// the in-flight formula `max(1, min(calls pending, api_calls_per_sec,
    /// max_in_flight))`.
    #[serde(default)]
    pub api_calls_per_sec: f64,
    /// Endpoint override (otherwise the AWS chain, including `AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

fn default_source() -> String {
    "fsxn.fpolicy".into()
}
fn default_detail_type() -> String {
    "FPolicy File Operation".into()
}
fn default_in_flight() -> usize {
    8
}

/// `[cloudwatch]`: Embedded Metric Format lines for CloudWatch alarms.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudWatchConfig {
    pub emf: bool,
    pub namespace: String,
    /// The `Service` dimension.
    pub service: String,
    pub interval_secs: u64,
}

impl Default for CloudWatchConfig {
    fn default() -> Self {
        CloudWatchConfig {
            emf: false,
            namespace: "FPolicyBridge".into(),
            service: "fpolicy-bridge".into(),
            interval_secs: 60,
        }
    }
}

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
    pub clock_skew_secs: i64,
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
            clock_skew_secs: 120,
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
    /// Access point alias, access point ARN, or bucket name.
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// Several prefixes (instead of `prefix`), listed concurrently; none
    /// may start with another.
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub suffixes: Vec<String>,
    pub volume_name: String,
    pub svm_name: String,
    /// Where the access point's root sits in the volume.
    #[serde(default = "default_root")]
    pub path_prefix: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub business_hours: Option<BusinessHoursConfig>,
    #[serde(default)]
    pub business_interval: Option<String>,
    #[serde(default)]
    pub off_hours_interval: Option<String>,
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
    pub fn schedule(&self) -> Result<fpolicy_poll::schedule::Schedule, String> {
        use fpolicy_poll::schedule::{BusinessHours, Schedule, parse_interval};
        let parse = |s: &Option<String>, d: &str| {
            parse_interval(s.as_deref().unwrap_or(d))
                .map_err(|e| format!("poll {:?}: {e}", self.name))
        };
        let interval = parse(&self.interval, "1h")?;
        let schedule = match &self.business_hours {
            None => Schedule::Every(interval),
            Some(b) => Schedule::BusinessHours {
                hours: BusinessHours::new(&b.days, &b.start, &b.end, &b.timezone)
                    .map_err(|e| format!("poll {:?}: {e}", self.name))?,
                business: match &self.business_interval {
                    Some(_) => parse(&self.business_interval, "1h")?,
                    None => interval,
                },
                off_hours: parse(&self.off_hours_interval, "6h")?,
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
    pub fn business_interval(&self) -> std::time::Duration {
        let s = self
            .business_interval
            .as_deref()
            .or(self.interval.as_deref())
            .unwrap_or("1h");
        fpolicy_poll::schedule::parse_interval(s).unwrap_or(std::time::Duration::from_secs(3600))
    }
}

/// `[ontap]`: the cluster's REST API (registration, names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OntapSettings {
    /// `https://<cluster management address>`; empty = no ONTAP access.
    pub cluster_url: String,
    pub username: String,
    /// Or the environment variable holding the user name.
    pub username_env: String,
    /// Environment variable holding the password (ECS injects Secrets
    /// Manager values as environment variables).
    pub password_env: String,
    /// Or a file holding it (trailing newline ignored).
    pub password_file: PathBuf,
    pub svm: String,
    pub policy: String,
    pub engine: String,
    /// Events are named `<event_prefix>_<protocol>`.
    pub event_prefix: String,
    /// Port ONTAP connects to; 0 = the port of `server.listen`.
    pub port: u16,
    /// `cifs`, `nfsv3`, `nfsv4`.
    pub protocols: Vec<String>,
    pub operations: Vec<Operation>,
    /// Volumes in the policy's scope (`*` = all).
    pub volumes: Vec<String>,
    pub mandatory: bool,
    pub priority: u32,
    pub keep_alive_interval_secs: u64,
    pub send_buffer_bytes: u64,
    /// ONTAP 9.14.1+: persistent store name and volume ("" = none).
    pub persistent_store: String,
    pub persistent_store_volume: String,
    /// PEM bundle of the CA that issued the cluster certificate.
    pub ca_bundle: PathBuf,
    /// Or the environment variable holding that PEM text.
    pub ca_bundle_pem_env: String,
    /// Skip certificate verification (logged as a warning).
    pub insecure: bool,
    pub timeout_secs: u64,
    /// How long register waits for every node to connect.
    pub connect_timeout_secs: u64,
    /// `serve` adds this instance to the engine's primary servers.
    pub register_on_start: bool,
    /// Address to register; default: ECS task address, else the local
    /// address on the route to the cluster.
    pub advertise_address: String,
    /// `serve` removes this instance from the engine on a graceful stop.
    pub remove_on_shutdown: bool,
    /// Remove servers disconnected on every node for this long (0 = never).
    pub prune_disconnected_secs: u64,
    /// Resolve volume and SVM names through the REST API.
    pub resolve_names: bool,
    pub name_cache_ttl_secs: u64,
}

impl Default for OntapSettings {
    fn default() -> Self {
        OntapSettings {
            cluster_url: String::new(),
            username: String::new(),
            username_env: String::new(),
            password_env: "ONTAP_PASSWORD".into(),
            password_file: PathBuf::new(),
            svm: String::new(),
            policy: "fpolicy_bridge".into(),
            engine: "fpolicy_bridge".into(),
            event_prefix: "fpolicy_bridge".into(),
            port: 0,
            protocols: vec!["cifs".into(), "nfsv3".into(), "nfsv4".into()],
            operations: vec![
                Operation::Create,
                Operation::Write,
                Operation::Rename,
                Operation::Delete,
                Operation::CreateDir,
                Operation::DeleteDir,
                Operation::RenameDir,
            ],
            volumes: vec!["*".into()],
            mandatory: false,
            priority: 1,
            keep_alive_interval_secs: 120,
            send_buffer_bytes: 1024 * 1024,
            persistent_store: String::new(),
            persistent_store_volume: String::new(),
            ca_bundle: PathBuf::new(),
            ca_bundle_pem_env: String::new(),
            insecure: false,
            timeout_secs: 30,
            connect_timeout_secs: 60,
            register_on_start: false,
            advertise_address: String::new(),
            remove_on_shutdown: false,
            prune_disconnected_secs: 0,
            resolve_names: true,
            name_cache_ttl_secs: 3600,
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

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutConfig {
    pub enabled: bool,
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    pub drain_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./fpolicy-data"),
            server: ServerConfig::default(),
            admin: AdminConfig {
                listen: "127.0.0.1:9899".into(),
            },
            spool: SpoolSettings::default(),
            events: EventsConfig::default(),
            screening: ScreeningConfig::default(),
            sinks: SinksConfig::default(),
            cloud_sinks: Vec::new(),
            routing: RoutingConfig::default(),
            routes: Vec::new(),
            ontap: OntapSettings::default(),
            cloudwatch: CloudWatchConfig::default(),
            trigger: TriggerConfig::default(),
            polls: Vec::new(),
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".into(),
            },
            shutdown: ShutdownConfig {
                drain_timeout_secs: 10,
            },
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:9898".into(),
            idle_timeout_secs: 300,
            handshake_timeout_secs: 10,
            frame_timeout_secs: 30,
            max_connections: 1024,
            max_frame_bytes: 1024 * 1024,
            max_pending_handshakes: 64,
            max_pending_handshakes_per_peer: 8,
            handshake_max_frame_bytes: 16 * 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
            max_outstanding_per_session: 4096,
            default_engine: EngineType::Asynchronous,
            allowed_policies: Vec::new(),
            allowed_svm_uuids: Vec::new(),
            allowed_peers: Vec::new(),
            engines: BTreeMap::new(),
            tls: TlsConfig::default(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            mode: TlsMode::Off,
            cert: PathBuf::new(),
            key: PathBuf::new(),
            client_ca: PathBuf::new(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Config::default().admin
    }
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            segment_bytes: 64 * 1024 * 1024,
            capacity_bytes: 10 * 1024 * 1024 * 1024,
            high_watermark_events: 1_000_000,
            low_watermark_events: 500_000,
            fsync: FsyncSetting::Always,
        }
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            default_volume: "unknown".into(),
            default_svm: "unknown".into(),
            generation_time: GenerationTimeUnit::Auto,
            write_complete_delay_secs: 5.0,
            max_hold_secs: 60,
            max_pending_paths: 100_000,
            volumes: BTreeMap::new(),
            svms: BTreeMap::new(),
        }
    }
}

impl Default for JsonlConfig {
    fn default() -> Self {
        JsonlConfig {
            enabled: true,
            dir: PathBuf::new(),
            max_file_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Config::default().log
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Config::default().shutdown
    }
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub write_complete_delay_secs: Option<f64>,
    pub stdout_sink: bool,
    pub log_format: Option<LogFormat>,
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.listen {
            self.server.listen = v.clone();
        }
        if let Some(v) = &o.admin_listen {
            self.admin.listen = v.clone();
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = o.write_complete_delay_secs {
            self.events.write_complete_delay_secs = v;
        }
        if o.stdout_sink {
            // `--sink stdout`: a quick look, without also writing files.
            self.sinks.stdout.enabled = true;
            self.sinks.jsonl.enabled = false;
        }
        if let Some(v) = o.log_format {
            self.log.format = v;
        }
    }

    /// Checks everything that can be checked without touching the system.
    /// Checks every section, then what spans sections (addresses that must
    /// differ, routes that name sinks). Pure: reads no file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (name, addr) in [
            ("server.listen", &self.server.listen),
            ("admin.listen", &self.admin.listen),
        ] {
            if addr.parse::<SocketAddr>().is_err() {
                return bad(format!("{name} = {addr:?} is not ADDR:PORT"));
            }
        }
        if self.server.listen == self.admin.listen && !self.server.listen.ends_with(":0") {
            return bad("server.listen and admin.listen must differ".into());
        }
        if self.shutdown.drain_timeout_secs == 0 {
            return bad("shutdown.drain_timeout_secs must be above 0".into());
        }
        self.server.validate()?;
        self.spool.validate()?;
        self.events.validate()?;
        self.screening_rules()?;
        self.validate_sinks()?;
        self.ontap.validate()?;
        self.validate_polls()?;
        if self.log.level.trim().is_empty() {
            return bad("log.level must not be empty".into());
        }
        Ok(())
    }

    /// The sinks: at least one, valid and unique names, each type's
    /// required fields, and every routed sink defined.
    fn validate_sinks(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !self.sinks.jsonl.enabled && !self.sinks.stdout.enabled && self.cloud_sinks.is_empty() {
            return bad("enable at least one sink".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &self.cloud_sinks {
            let valid_name = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name {
                return bad(format!(
                    "sink name {:?}: use 1-64 letters, digits, '-' or '_'",
                    c.name
                ));
            }
            if c.name == "jsonl" || c.name == "stdout" || !names.insert(c.name.as_str()) {
                return bad(format!(
                    "sink name {:?} is taken (jsonl and stdout are built in; names are unique)",
                    c.name
                ));
            }
            match c.kind {
                CloudSinkType::Sqs if !c.queue_url.starts_with("http") => {
                    return bad(format!(
                        "sink {:?}: queue_url must be the queue's https URL",
                        c.name
                    ));
                }
                CloudSinkType::Eventbridge if c.event_bus_name.is_empty() => {
                    return bad(format!("sink {:?}: event_bus_name is required", c.name));
                }
                _ => {}
            }
            if c.max_in_flight == 0 || c.max_in_flight > 256 {
                return bad(format!("sink {:?}: max_in_flight must be 1..=256", c.name));
            }
        }
        let router = self.router()?;
        for used in router.sink_names() {
            if !names.contains(used) {
                return bad(format!(
                    "routing refers to sink {used:?}, which no [[sink]] defines"
                ));
            }
        }
        if self.sinks.jsonl.max_file_bytes < 4096 {
            return bad("sinks.jsonl.max_file_bytes must be at least 4096".into());
        }
        Ok(())
    }

    /// Every `[[poll]]`: unique names, required fields, a valid schedule,
    /// prefixes that do not overlap.
    fn validate_polls(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let mut poll_names = std::collections::BTreeSet::new();
        for p in &self.polls {
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
                    "poll {:?}: bucket, volume_name and svm_name are required",
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

    /// Advice that does not stop the server, logged at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.server.idle_timeout_secs <= 150 {
            w.push(format!(
                "server.idle_timeout_secs = {} is close to or below ONTAP's default keep-alive interval (120 s): sessions of engines with the default will be closed as idle",
                self.server.idle_timeout_secs
            ));
        }
        w.extend(self.trigger_warnings());
        if self.spool.fsync == FsyncSetting::Never {
            w.push(
                "spool.fsync = \"never\": events survive a process crash but not a power loss"
                    .into(),
            );
        }
        w
    }

    pub fn screening_rules(&self) -> Result<ScreeningRules, ConfigError> {
        ScreeningRules::new(
            &self.screening.deny_extensions,
            &self.screening.deny_paths,
            &self.screening.operations,
        )
        .map_err(|e| ConfigError::Invalid(format!("screening: {e}")))
    }

    /// The compiled routes. Unless `routing.default_sinks` says otherwise,
    /// events that match no route go to every `[[sink]]` when no route is
    /// configured, and to none (JSON Lines only) when routes are.
    pub fn router(&self) -> Result<Router, ConfigError> {
        let defaults = self.routing.default_sinks.clone().unwrap_or_else(|| {
            if self.routes.is_empty() {
                self.cloud_sinks.iter().map(|c| c.name.clone()).collect()
            } else {
                Vec::new()
            }
        });
        Router::new(&self.routes, &defaults).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The engine type of a policy: `[server.engines]`, else synchronous
    /// for the policy fpolicy-bridge registers when screening rules are
    /// configured (they need answers), else `server.default_engine`.
    pub fn engine_for(&self, policy: &str) -> EngineType {
        if let Some(e) = self.server.engines.get(policy) {
            return *e;
        }
        let screening =
            !self.screening.deny_extensions.is_empty() || !self.screening.deny_paths.is_empty();
        if screening && !self.ontap.cluster_url.is_empty() && policy == self.ontap.policy {
            return EngineType::Synchronous;
        }
        self.server.default_engine
    }

    pub fn jsonl_dir(&self) -> PathBuf {
        if self.sinks.jsonl.dir.as_os_str().is_empty() {
            self.data_dir.join("events")
        } else {
            self.sinks.jsonl.dir.clone()
        }
    }

    /// Warnings about trigger settings (logged at start).
    pub fn trigger_warnings(&self) -> Vec<String> {
        if self.trigger.mode == TriggerMode::EventDriven && !self.polls.is_empty() {
            vec!["[[poll]] tables are ignored: trigger.mode is \"event_driven\"".into()]
        } else if self.trigger.mode != TriggerMode::EventDriven && self.polls.is_empty() {
            vec![format!(
                "trigger.mode is {:?} but no [[poll]] is configured",
                self.trigger.mode
            )]
        } else {
            Vec::new()
        }
    }

    pub fn poll_dir(&self) -> PathBuf {
        self.data_dir.join("poll")
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }
}

impl ServerConfig {
    /// `[server]`: limits above zero and in range, CIDRs, TLS files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (name, v) in [
            ("server.idle_timeout_secs", self.idle_timeout_secs),
            ("server.handshake_timeout_secs", self.handshake_timeout_secs),
            ("server.frame_timeout_secs", self.frame_timeout_secs),
            ("server.max_connections", self.max_connections as u64),
            (
                "server.max_pending_handshakes",
                self.max_pending_handshakes as u64,
            ),
            (
                "server.max_pending_handshakes_per_peer",
                self.max_pending_handshakes_per_peer as u64,
            ),
            (
                "server.max_outstanding_per_session",
                self.max_outstanding_per_session as u64,
            ),
        ] {
            if v == 0 {
                return bad(format!("{name} must be above 0"));
            }
        }
        if !(4096..=64 * 1024 * 1024).contains(&self.max_frame_bytes) {
            return bad("server.max_frame_bytes must be between 4096 and 67108864".into());
        }
        if self.handshake_max_frame_bytes < 1024 {
            return bad("server.handshake_max_frame_bytes must be at least 1024".into());
        }
        if self.max_buffered_bytes < self.max_frame_bytes as u64 {
            return bad("server.max_buffered_bytes must be at least server.max_frame_bytes".into());
        }
        for p in &self.allowed_peers {
            if let Err(e) = p.parse::<Cidr>() {
                return bad(format!("server.allowed_peers: {e}"));
            }
        }
        if self.tls.mode != TlsMode::Off {
            if self.tls.cert.as_os_str().is_empty() || self.tls.key.as_os_str().is_empty() {
                return bad(
                    "server.tls.cert and server.tls.key are required when TLS is on".into(),
                );
            }
            if self.tls.mode == TlsMode::MutualAuth && self.tls.client_ca.as_os_str().is_empty() {
                return bad("server.tls.client_ca is required for mutual-auth".into());
            }
        }
        Ok(())
    }
}

impl SpoolSettings {
    /// `[spool]`: watermarks in order, segment and capacity sizes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.high_watermark_events == 0 {
            return bad("spool.high_watermark_events must be above 0".into());
        }
        if self.low_watermark_events >= self.high_watermark_events {
            return bad(
                "spool.low_watermark_events must be below spool.high_watermark_events".into(),
            );
        }
        if self.segment_bytes < 64 * 1024 || self.capacity_bytes < 2 * self.segment_bytes {
            return bad("spool.segment_bytes must be at least 65536 and spool.capacity_bytes at least two segments".into());
        }
        Ok(())
    }
}

impl EventsConfig {
    /// `[events]`: the coalescing window and bounds, names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(0.0..=3600.0).contains(&self.write_complete_delay_secs) {
            return bad("events.write_complete_delay_secs must be between 0 and 3600".into());
        }
        if self.write_complete_delay_secs > 0.0
            && (self.max_hold_secs as f64) < self.write_complete_delay_secs
        {
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

impl OntapSettings {
    /// `[ontap]`: what the REST client and registration need.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !self.cluster_url.is_empty() {
            let scheme_ok = self.cluster_url.starts_with("https://")
                || (self.insecure && self.cluster_url.starts_with("http://"));
            if !scheme_ok {
                return bad("ontap.cluster_url must start with https://".into());
            }
            if (self.username.is_empty() && self.username_env.is_empty()) || self.svm.is_empty() {
                return bad("ontap.username (or ontap.username_env) and ontap.svm are required with ontap.cluster_url".into());
            }
            if self.ca_bundle.as_os_str().is_empty()
                && self.ca_bundle_pem_env.is_empty()
                && !self.insecure
            {
                return bad("ontap.ca_bundle (or ontap.ca_bundle_pem_env) is required (certificate verification is on); ontap.insecure = true turns it off".into());
            }
            for p in &self.protocols {
                if !matches!(p.as_str(), "cifs" | "nfsv3" | "nfsv4") {
                    return bad(format!(
                        "ontap.protocols: {p:?} is not cifs, nfsv3 or nfsv4"
                    ));
                }
            }
            if !(1..=10).contains(&self.priority)
                || self.protocols.is_empty()
                || self.operations.is_empty()
            {
                return bad(
                    "ontap.priority must be 1..=10, and protocols and operations not empty".into(),
                );
            }
            if !(10..=600).contains(&self.keep_alive_interval_secs)
                || self.send_buffer_bytes < 1024 * 1024
            {
                return bad("ontap.keep_alive_interval_secs must be 10..=600 and send_buffer_bytes at least 1 MiB (NetApp's advice)".into());
            }
            if self.persistent_store.is_empty() != self.persistent_store_volume.is_empty() {
                return bad(
                    "ontap.persistent_store and ontap.persistent_store_volume go together".into(),
                );
            }
        } else if self.register_on_start {
            return bad("ontap.register_on_start needs ontap.cluster_url".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_default_is_the_default() {
        let parsed = Config::parse(DEFAULT_CONFIG, Path::new("default")).unwrap();
        assert_eq!(parsed, Config::default());
        parsed.validate().unwrap();
        assert_eq!(
            Config::parse("", Path::new("empty")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = Config::parse("[server]\nlisten_addr = \"x\"\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
        assert!(Config::parse("datadir = \"x\"", Path::new("c.toml")).is_err());
    }

    #[test]
    fn validation_explains_what_is_wrong() {
        let check = |toml: &str, needle: &str| {
            let c = Config::parse(toml, Path::new("t")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{toml}: {e}");
        };
        check("[server]\nlisten = \"nope\"", "server.listen");
        check("[server]\nidle_timeout_secs = 0", "idle_timeout_secs");
        check(
            "[server]\nallowed_peers = [\"10.0.0.0/33\"]",
            "allowed_peers",
        );
        check("[server.tls]\nmode = \"server-auth\"", "tls.cert");
        check(
            "[server.tls]\nmode = \"mutual-auth\"\ncert = \"a\"\nkey = \"b\"",
            "client_ca",
        );
        check(
            "[spool]\nlow_watermark_events = 5\nhigh_watermark_events = 5",
            "low_watermark",
        );
        check("[events.volumes]\nvol1 = \"x\"", "VolMsid");
        check("[screening]\ndeny_paths = [\"/a/[\"]", "screening");
        check("[sinks.jsonl]\nenabled = false", "at least one sink");
        check(
            "[events]\nwrite_complete_delay_secs = -1",
            "write_complete_delay",
        );
    }

    #[test]
    fn overrides_win_and_stdout_replaces_files() {
        let mut c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"", Path::new("t")).unwrap();
        c.apply(&Overrides {
            listen: Some("127.0.0.1:2".into()),
            write_complete_delay_secs: Some(0.0),
            stdout_sink: true,
            ..Overrides::default()
        });
        assert_eq!(c.server.listen, "127.0.0.1:2");
        assert_eq!(c.events.write_complete_delay_secs, 0.0);
        assert!(c.sinks.stdout.enabled && !c.sinks.jsonl.enabled);
        let c = Config::parse("[server.engines]\nav = \"synchronous\"", Path::new("t")).unwrap();
        assert_eq!(c.engine_for("av"), EngineType::Synchronous);
        assert_eq!(c.engine_for("other"), EngineType::Asynchronous);
        // Screening rules make the registered policy synchronous.
        let c = Config::parse(
            "[ontap]\ncluster_url = \"https://c\"\npolicy = \"p\"\n[screening]\ndeny_extensions = [\"locky\"]",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(c.engine_for("p"), EngineType::Synchronous);
        assert_eq!(c.engine_for("q"), EngineType::Asynchronous);
    }
}
