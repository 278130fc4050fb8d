//! `[identity]`: user names for the SIDs and UIDs of events, from a bulk
//! directory sync (LDAP / Active Directory), ONTAP's local users, and fixed
//! entries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// `ldaps://dc1.example.com:636`, or `ldap://…` with `start_tls`;
    /// empty: no directory.
    pub ldap_url: String,
    pub start_tls: bool,
    /// Empty: an anonymous bind.
    pub bind_dn: String,
    /// Environment variable holding the bind password.
    pub bind_password_env: String,
    /// Or a file holding it (trailing newline ignored).
    pub bind_password_file: PathBuf,
    pub base_dn: String,
    /// Which entries are users.
    pub user_filter: String,
    /// PEM bundle of the CA that issued the directory's certificate
    /// (empty: the system's roots).
    pub ca_bundle: PathBuf,
    /// Skip certificate verification (logged as a warning).
    pub insecure: bool,
    #[serde(deserialize_with = "duration::any")]
    pub refresh_interval: Duration,
    /// Entries per page of the paged search (AD allows at most 1,000).
    pub page_size: u32,
    #[serde(rename = "timeout_secs", deserialize_with = "duration::any")]
    pub timeout: Duration,
    /// Most users one sync may read (bounds the table's memory).
    pub max_users: usize,
    /// ONTAP's CIFS local users and UNIX users of `ontap.svm`, when
    /// `ontap.cluster_url` is set.
    pub ontap_local_users: bool,
    /// Fixed entries, SID or UID → name; they win over every source.
    pub users: BTreeMap<String, String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            ldap_url: String::new(),
            start_tls: false,
            bind_dn: String::new(),
            bind_password_env: "LDAP_PASSWORD".into(),
            bind_password_file: PathBuf::new(),
            base_dn: String::new(),
            user_filter: "(|(objectClass=user)(objectClass=posixAccount))".into(),
            ca_bundle: PathBuf::new(),
            insecure: false,
            refresh_interval: Duration::from_secs(12 * 3600),
            page_size: 1000,
            timeout: Duration::from_secs(30),
            max_users: 5_000_000,
            ontap_local_users: true,
            users: BTreeMap::new(),
        }
    }
}

impl IdentityConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !self.ldap_url.is_empty() {
            let ldaps = self.ldap_url.starts_with("ldaps://");
            if !ldaps && !self.ldap_url.starts_with("ldap://") {
                return bad("identity.ldap_url must start with ldaps:// or ldap://".into());
            }
            if ldaps && self.start_tls {
                return bad(
                    "identity.start_tls is for ldap:// URLs (ldaps:// is TLS already)".into(),
                );
            }
            if self.base_dn.is_empty() {
                return bad("identity.base_dn is required with identity.ldap_url".into());
            }
        }
        if !(1..=1000).contains(&self.page_size) || self.max_users == 0 {
            return bad(
                "identity.page_size must be 1..=1000 and identity.max_users above 0".into(),
            );
        }
        if self.refresh_interval < Duration::from_secs(1) || self.timeout.is_zero() {
            return bad(
                "identity.refresh_interval must be at least 1s and identity.timeout_secs above 0"
                    .into(),
            );
        }
        for (key, name) in &self.users {
            let usable = matches!(
                fpolicy_event::users::UserRef::parse(key),
                Ok(fpolicy_event::users::UserRef::Sid(_) | fpolicy_event::users::UserRef::Uid(_))
            );
            if !usable || name.trim().is_empty() {
                return bad(format!(
                    "identity.users: {key:?} = {name:?}: the key must be a SID or a UID, the name not empty"
                ));
            }
        }
        Ok(())
    }

    /// Whether user names come from anywhere but the well-known SIDs.
    pub fn has_sources(&self) -> bool {
        !self.ldap_url.is_empty() || self.ontap_local_users || !self.users.is_empty()
    }

    /// The insecure-TLS warning `serve` and `config check` give.
    pub fn warnings(&self) -> Vec<String> {
        if self.insecure && !self.ldap_url.is_empty() {
            vec!["identity.insecure = true: the directory's certificate is not verified".into()]
        } else {
            Vec::new()
        }
    }
}
