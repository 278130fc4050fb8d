//! `[ontap]`: the cluster's REST API (registration, names).

use std::path::PathBuf;
use std::time::Duration;

use fpolicy_event::Operation;
use serde::Deserialize;

use super::{ConfigError, duration};

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
    /// How often ONTAP sends KEEP_ALIVE (whole seconds; 10 s to 10 min).
    #[serde(
        rename = "keep_alive_interval_secs",
        deserialize_with = "duration::any"
    )]
    pub keep_alive_interval: Duration,
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
    /// How long one REST call may take.
    #[serde(rename = "timeout_secs", deserialize_with = "duration::any")]
    pub timeout: Duration,
    /// How long register waits for every node to connect.
    #[serde(rename = "connect_timeout_secs", deserialize_with = "duration::any")]
    pub connect_timeout: Duration,
    /// `serve` adds this instance to the engine's primary servers.
    pub register_on_start: bool,
    /// Address to register; default: ECS task address, else the local
    /// address on the route to the cluster.
    pub advertise_address: String,
    /// `serve` removes this instance from the engine on a graceful stop.
    pub remove_on_shutdown: bool,
    /// Remove servers disconnected on every node for this long (0 = never).
    #[serde(rename = "prune_disconnected_secs", deserialize_with = "duration::any")]
    pub prune_disconnected: Duration,
    /// Resolve volume and SVM names through the REST API.
    pub resolve_names: bool,
    #[serde(rename = "name_cache_ttl_secs", deserialize_with = "duration::any")]
    pub name_cache_ttl: Duration,
    /// How long an event of a volume (or a session of an SVM) not yet
    /// known waits for ONTAP's answer before going on with the default
    /// name; outside the socket reader.
    #[serde(rename = "name_wait_secs", deserialize_with = "duration::any")]
    pub name_wait: Duration,
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
            keep_alive_interval: Duration::from_secs(120),
            send_buffer_bytes: 1024 * 1024,
            persistent_store: String::new(),
            persistent_store_volume: String::new(),
            ca_bundle: PathBuf::new(),
            ca_bundle_pem_env: String::new(),
            insecure: false,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(60),
            register_on_start: false,
            advertise_address: String::new(),
            remove_on_shutdown: false,
            prune_disconnected: Duration::ZERO,
            resolve_names: true,
            name_cache_ttl: Duration::from_secs(3600),
            name_wait: Duration::from_secs(2),
        }
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
            if !(10..=600).contains(&self.keep_alive_interval.as_secs())
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
