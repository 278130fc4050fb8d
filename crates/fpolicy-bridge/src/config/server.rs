//! `[server]`: where ONTAP connects, session limits, admission, TLS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fpolicy_event::EngineType;
use serde::Deserialize;

use super::{ConfigError, duration};
use fpolicy_event::cidr::Cidr;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// A session with no frame for this long is closed (ONTAP sends a
    /// KEEP_ALIVE every 2 minutes by default).
    #[serde(rename = "idle_timeout_secs", deserialize_with = "duration::any")]
    pub idle_timeout: Duration,
    /// NEGO_REQ must arrive within this long of the connection.
    #[serde(rename = "handshake_timeout_secs", deserialize_with = "duration::any")]
    pub handshake_timeout: Duration,
    /// A frame that has begun must be complete within this long.
    #[serde(rename = "frame_timeout_secs", deserialize_with = "duration::any")]
    pub frame_timeout: Duration,
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
    /// CIDR blocks or addresses; empty = every peer.
    pub allowed_peers: Vec<Cidr>,
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

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 9898)),
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            frame_timeout: Duration::from_secs(30),
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

impl ServerConfig {
    /// `[server]`: limits above zero and in range, TLS files named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (name, zero) in [
            ("server.idle_timeout_secs", self.idle_timeout.is_zero()),
            (
                "server.handshake_timeout_secs",
                self.handshake_timeout.is_zero(),
            ),
            ("server.frame_timeout_secs", self.frame_timeout.is_zero()),
            ("server.max_connections", self.max_connections == 0),
            (
                "server.max_pending_handshakes",
                self.max_pending_handshakes == 0,
            ),
            (
                "server.max_pending_handshakes_per_peer",
                self.max_pending_handshakes_per_peer == 0,
            ),
            (
                "server.max_outstanding_per_session",
                self.max_outstanding_per_session == 0,
            ),
        ] {
            if zero {
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
        self.tls.validate()
    }
}

impl TlsConfig {
    /// `[server.tls]`: the files each mode needs are named (read at start).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == TlsMode::Off {
            return Ok(());
        }
        if self.cert.as_os_str().is_empty() || self.key.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "server.tls.cert and server.tls.key are required when TLS is on".into(),
            ));
        }
        if self.mode == TlsMode::MutualAuth && self.client_ca.as_os_str().is_empty() {
            return Err(ConfigError::Invalid(
                "server.tls.client_ca is required for mutual-auth".into(),
            ));
        }
        Ok(())
    }
}
