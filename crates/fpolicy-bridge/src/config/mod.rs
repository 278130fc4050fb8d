//! Configuration: a TOML file (`deny_unknown_fields`), defaults for every
//! key, command-line overrides, and a pure [`Config::validate`].
//!
//! One module per section, each with its own `validate()`; values are typed
//! once, when the file is read: addresses are `SocketAddr`, CIDR blocks
//! [`Cidr`](fpolicy_event::cidr::Cidr), durations `Duration` through one parser
//! ([`duration`]: `300`, `0.2`, `"90s"`, `"1h"`), and `[[sink]]` is a
//! tagged enum ([`CloudSinkConfig`]). Mistakes of type and shape are
//! therefore parse errors with a line and column.
//! `fpolicy-bridge config default` prints `default-config.toml`, which a
//! test keeps equal to [`Config::default`].

mod admin;
pub mod duration;
mod events;
mod identity;
mod ontap;
mod poll;
mod server;
mod sinks;
mod spool;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fpolicy_event::{EngineType, RouteConfig, Router, ScreeningRules};
use serde::Deserialize;

pub use admin::{AdminConfig, CloudWatchConfig, LogConfig, LogFormat};
pub use events::{EventsConfig, ScreeningConfig};
pub use fpolicy_event::FilterConfig;
pub use identity::IdentityConfig;
pub use ontap::OntapSettings;
pub use poll::{BusinessHoursConfig, PollConfig, TriggerConfig, TriggerMode};
pub use server::{ServerConfig, TlsConfig, TlsMode};
pub use sinks::{CloudSinkConfig, JsonlConfig, RoutingConfig, SinksConfig, StdoutConfig};
pub use spool::{FsyncSetting, ShutdownConfig, SpoolSettings};

/// The fully commented default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../default-config.toml");

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
    pub identity: IdentityConfig,
    pub filters: FilterConfig,
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
    /// `[[access_point]]` tables: where S3 access points are attached (the
    /// `s3` format, and `[[poll]] access_point`).
    #[serde(rename = "access_point")]
    pub access_points: Vec<fpolicy_event::AccessPoint>,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./fpolicy-data"),
            server: ServerConfig::default(),
            admin: AdminConfig::default(),
            spool: SpoolSettings::default(),
            events: EventsConfig::default(),
            screening: ScreeningConfig::default(),
            identity: IdentityConfig::default(),
            filters: FilterConfig::default(),
            sinks: SinksConfig::default(),
            cloud_sinks: Vec::new(),
            routing: RoutingConfig::default(),
            routes: Vec::new(),
            ontap: OntapSettings::default(),
            cloudwatch: CloudWatchConfig::default(),
            trigger: TriggerConfig::default(),
            polls: Vec::new(),
            access_points: Vec::new(),
            log: LogConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

/// The dotted name of the key whose value starts at byte `at` (the table
/// header above it, then the key on its line), so that an error says
/// `server.listen` and not only the line.
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let key = before[line_start..].split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = before[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        l.starts_with('[').then(|| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
        })
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

/// For "unknown field `listen_adr`, expected one of `listen`, …": the
/// closest expected name, when it is close (a typo, not another key).
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected one of ").map_or(rest, |(_, e)| e);
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .min()?;
    // A typo (a few letters off) or a longer or shorter form of the name
    // (`listen_addr` for `listen`).
    let affix = best.1.len() >= 3 && (unknown.starts_with(best.1) || best.1.starts_with(unknown));
    let close = best.0 <= 2 || best.0 * 3 <= unknown.len() || affix;
    close.then(|| format!("\ndid you mean `{}`?", best.1))
}

/// Levenshtein distance (names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub write_complete_delay: Option<Duration>,
    pub stdout_sink: bool,
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Reads a configuration file's text; `[[poll]] access_point` is
    /// resolved here, so every later step sees the bucket and volume.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg = Config::parse_toml(text, path)?;
        poll::apply_access_points(&mut cfg.polls, &cfg.access_points)?;
        Ok(cfg)
    }

    fn parse_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let key = e.span().and_then(|span| key_at(text, span.start));
            let mut message = match key {
                Some(key) => format!("{key}: {e}"),
                None => e.to_string(),
            };
            if let Some(hint) = did_you_mean(e.message()) {
                message.push_str(&hint);
            }
            ConfigError::Parse {
                path: path.to_owned(),
                message,
            }
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
        if let Some(v) = o.listen {
            self.server.listen = v;
        }
        if let Some(v) = o.admin_listen {
            self.admin.listen = v;
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = o.write_complete_delay {
            self.events.write_complete_delay = v;
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

    /// Checks everything that can be checked without touching the system:
    /// every section, then what spans sections (addresses that must
    /// differ, routes that name sinks). Pure: reads no file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.listen == self.admin.listen && self.server.listen.port() != 0 {
            return Err(ConfigError::Invalid(
                "server.listen and admin.listen must differ".into(),
            ));
        }
        self.shutdown.validate()?;
        self.server.validate()?;
        self.spool.validate()?;
        self.events.validate()?;
        self.screening.rules()?;
        self.identity.validate()?;
        self.noise_filter()?;
        self.validate_sinks()?;
        self.ontap.validate()?;
        poll::validate_polls(&self.polls)?;
        self.log.validate()
    }

    /// The sinks: at least one, each valid, and every routed sink defined.
    fn validate_sinks(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !self.sinks.jsonl.enabled && !self.sinks.stdout.enabled && self.cloud_sinks.is_empty() {
            return bad("enable at least one sink".into());
        }
        sinks::validate_cloud_sinks(&self.cloud_sinks)?;
        let router = self.router()?;
        for used in router.sink_names() {
            if !self.cloud_sinks.iter().any(|c| c.name() == used) {
                return bad(format!(
                    "routing refers to sink {used:?}, which no [[sink]] defines"
                ));
            }
        }
        if self.sinks.jsonl.max_file_bytes < 4096 {
            return bad("sinks.jsonl.max_file_bytes must be at least 4096".into());
        }
        self.validate_access_points()
    }

    /// `[[access_point]]`: each valid, aliases unique; a sink in the `s3`
    /// format needs at least one (else it would send nothing).
    fn validate_access_points(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let mut aliases = std::collections::BTreeSet::new();
        for ap in &self.access_points {
            ap.validate().map_err(ConfigError::Invalid)?;
            if !aliases.insert(ap.alias.as_str()) {
                return bad(format!("access point alias {:?} is given twice", ap.alias));
            }
        }
        let s3_sinks = [
            ("jsonl", self.sinks.jsonl.enabled, self.sinks.jsonl.format),
            (
                "stdout",
                self.sinks.stdout.enabled,
                self.sinks.stdout.format,
            ),
        ]
        .into_iter()
        .chain(
            self.cloud_sinks
                .iter()
                .map(|c| (c.name(), true, c.format())),
        )
        .filter(|(_, on, f)| *on && *f == fpolicy_event::Format::S3);
        for (name, ..) in s3_sinks {
            if self.access_points.is_empty() {
                return bad(format!(
                    "sink {name:?} has format = \"s3\", which needs at least one [[access_point]] (volume, alias, root) to name buckets and keys"
                ));
            }
        }
        Ok(())
    }

    /// The access points, for sinks in the `s3` format; `region` fills in
    /// those without their own.
    pub fn access_point_map(&self, region: &str) -> fpolicy_event::AccessPoints {
        fpolicy_event::AccessPoints::new(self.access_points.clone()).with_region(region)
    }

    /// Advice that does not stop the server, logged at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.server.idle_timeout <= Duration::from_secs(150) {
            w.push(format!(
                "server.idle_timeout_secs = {} is close to or below ONTAP's default keep-alive interval (120 s): sessions of engines with the default will be closed as idle",
                self.server.idle_timeout.as_secs_f64()
            ));
        }
        w.extend(self.trigger_warnings());
        w.extend(self.identity.warnings());
        if self.spool.fsync == FsyncSetting::Never {
            w.push(
                "spool.fsync = \"never\": events survive a process crash but not a power loss"
                    .into(),
            );
        }
        w
    }

    pub fn screening_rules(&self) -> Result<ScreeningRules, ConfigError> {
        self.screening.rules()
    }

    /// The compiled `[filters]`.
    pub fn noise_filter(&self) -> Result<fpolicy_event::NoiseFilter, ConfigError> {
        fpolicy_event::NoiseFilter::new(&self.filters)
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The compiled routes. Unless `routing.default_sinks` says otherwise,
    /// events that match no route go to every `[[sink]]` when no route is
    /// configured, and to none (JSON Lines only) when routes are.
    pub fn router(&self) -> Result<Router, ConfigError> {
        let defaults = self.routing.default_sinks.clone().unwrap_or_else(|| {
            if self.routes.is_empty() {
                self.cloud_sinks
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect()
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
        if self.screening.denies_anything()
            && !self.ontap.cluster_url.is_empty()
            && policy == self.ontap.policy
        {
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

    /// `<data_dir>/spool`, or with `spool.shared_root` this instance's
    /// directory there (`spool.instance_id` resolved at start).
    pub fn spool_dir(&self) -> PathBuf {
        if self.spool.shared_root.as_os_str().is_empty() {
            self.data_dir.join("spool")
        } else {
            self.spool.shared_root.join(&self.spool.instance_id)
        }
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
        assert!(e.to_string().contains("did you mean `listen`?"), "{e}");
        let e = Config::parse("[spool]\nfsycn = \"always\"\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("did you mean `fsync`?"), "{e}");
        let e = Config::parse("[spool]\ncolour = 1\n", Path::new("c.toml")).unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
        assert!(Config::parse("datadir = \"x\"", Path::new("c.toml")).is_err());
    }

    #[test]
    fn validation_explains_what_is_wrong() {
        // A wrong type or shape is refused when the file is read (with a
        // line and column), a wrong value by validate(); either names it.
        let check = |toml: &str, needle: &str| {
            let e = match Config::parse(toml, Path::new("t")) {
                Ok(c) => c.validate().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            };
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
    fn formats_access_points_and_syslog_sinks_read_and_check() {
        let toml = r#"
[sinks.jsonl]
format = "ocsf"
[[access_point]]
volume = "vol1"
alias = "vol1-ap-ext-s3alias"
root = "/data"
[[sink]]
name = "notify"
type = "sqs"
queue_url = "https://sqs.us-east-1.amazonaws.com/1/q"
format = "s3"
[[sink]]
name = "siem"
type = "syslog"
address = "siem.example.com:6514"
transport = "relp"
format = "json"
json_format = "ecs"
facility = "local3"
timeout = "5s"
[trigger]
mode = "hybrid"
[[poll]]
name = "p"
access_point = "vol1-ap-ext-s3alias"
svm_name = "svm1"
"#;
        let c = Config::parse(toml, Path::new("t")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.sinks.jsonl.format, fpolicy_event::Format::Ocsf);
        assert_eq!(c.cloud_sinks[0].format(), fpolicy_event::Format::S3);
        assert_eq!(c.cloud_sinks[1].format(), fpolicy_event::Format::Ecs);
        assert_eq!(
            (
                c.polls[0].bucket.as_str(),
                c.polls[0].volume_name.as_str(),
                c.polls[0].path_prefix.as_str()
            ),
            ("vol1-ap-ext-s3alias", "vol1", "/data")
        );
        // An s3 sink without access points would send nothing.
        let mut c2 = c.clone();
        c2.access_points.clear();
        c2.polls.clear();
        c2.trigger.mode = TriggerMode::EventDriven;
        let e = c2.validate().unwrap_err().to_string();
        assert!(
            e.contains("\"notify\"") && e.contains("[[access_point]]"),
            "{e}"
        );
        // A poll that names an unknown access point, or repeats its fields.
        let e = Config::parse(
            &toml.replace("access_point = \"vol1", "access_point = \"nope"),
            Path::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no [[access_point]]"), "{e}");
        let e = Config::parse(
            &toml.replace("svm_name = \"svm1\"", "svm_name = \"svm1\"\nbucket = \"b\""),
            Path::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not both"), "{e}");
        // A syslog sink refuses what is not its own.
        let e = Config::parse(
            &toml.replace("facility = \"local3\"", "facility = \"local9\""),
            Path::new("t"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("local9") && e.contains("local7"), "{e}");
        let e = Config::parse(
            &toml.replace(
                "transport = \"relp\"",
                "transport = \"relp\"\nca_bundle = \"/ca.pem\"",
            ),
            Path::new("t"),
        )
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("tls"), "{e}");
    }

    #[test]
    fn overrides_win_and_stdout_replaces_files() {
        let mut c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"", Path::new("t")).unwrap();
        c.apply(&Overrides {
            listen: Some("127.0.0.1:2".parse().unwrap()),
            write_complete_delay: Some(Duration::ZERO),
            stdout_sink: true,
            ..Overrides::default()
        });
        assert_eq!(c.server.listen.port(), 2);
        assert!(c.events.write_complete_delay.is_zero());
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

    #[test]
    fn typed_values_are_read_once_with_their_place_in_the_file() {
        let e = Config::parse(
            "[server]\nlisten = \"0.0.0.0:99999\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("listen"), "{e}");
        let c = Config::parse(
            "[server]\nallowed_peers = [\"10.0.0.0/8\", \"fd00::1\"]\nidle_timeout_secs = 200\n\
             [events]\nwrite_complete_delay_secs = 0.25\n\
             [[poll]]\nname = \"p\"\nbucket = \"b\"\nvolume_name = \"v\"\nsvm_name = \"s\"\ninterval = \"15m\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(c.server.allowed_peers[0].contains("10.9.9.9".parse().unwrap()));
        assert!(c.server.allowed_peers[1].contains("fd00::1".parse().unwrap()));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(200));
        assert_eq!(c.events.write_complete_delay, Duration::from_millis(250));
        assert_eq!(c.polls[0].interval, Some(Duration::from_secs(900)));
        c.validate().unwrap();
    }

    #[test]
    fn poll_intervals_must_be_at_least_a_second() {
        let poll = |interval: &str| {
            format!(
                "[[poll]]\nname = \"p\"\nbucket = \"b\"\nvolume_name = \"v\"\nsvm_name = \"s\"\ninterval = {interval}\n"
            )
        };
        for good in ["\"1h\"", "\"90m\"", "\"2d\"", "60"] {
            let c = Config::parse(&poll(good), Path::new("t")).unwrap();
            c.validate().unwrap();
        }
        for bad in ["\"\"", "\"0s\"", "\"500ms\"", "\"-1h\"", "\"xh\""] {
            let refused = Config::parse(&poll(bad), Path::new("t")).map(|c| c.validate());
            assert!(!matches!(refused, Ok(Ok(()))), "{bad}");
        }
    }

    #[test]
    fn a_sink_is_one_of_its_types_with_only_that_types_fields() {
        let c = Config::parse(
            "[[sink]]\nname = \"q\"\ntype = \"sqs\"\nqueue_url = \"https://sqs/q\"\n\
             [[sink]]\nname = \"b\"\ntype = \"eventbridge\"\nevent_bus_name = \"bus\"\n",
            Path::new("t"),
        )
        .unwrap();
        c.validate().unwrap();
        match &c.cloud_sinks[1] {
            CloudSinkConfig::Eventbridge(b) => {
                assert_eq!((b.source.as_str(), b.max_in_flight), ("fsxn.fpolicy", 8));
            }
            other => panic!("{other:?}"),
        }
        for (toml, needle) in [
            ("type = \"sqs\"\nevent_bus_name = \"b\"", "event_bus_name"),
            (
                "type = \"eventbridge\"\nqueue_url = \"https://q\"",
                "queue_url",
            ),
            ("type = \"sqs\"", "queue_url"),
            ("type = \"kafka\"\nqueue_url = \"https://q\"", "kafka"),
        ] {
            let text = format!("[[sink]]\nname = \"s\"\n{toml}\n");
            let e = Config::parse(&text, Path::new("t"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
