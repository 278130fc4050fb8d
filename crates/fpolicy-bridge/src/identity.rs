//! User names for events: the identity table's sources (`[identity]`: a
//! directory, ONTAP's local users, fixed entries, the well-known SIDs) and
//! its refresh. The table answers from memory on the ingest path; a
//! refresh builds a whole new table in the background and swaps it in, and
//! a refresh that fails keeps the old one (logged, counted; `/readyz`
//! stays ready: events still flow, with the names last known).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use fpolicy_identity::ldap::{LdapSettings, sync as ldap_sync};
use fpolicy_identity::{DirectoryUser, Identities, IdentityTable, TableBuilder};
use fpolicy_ontap::OntapClient;
use fpolicy_tls::Trust;
use tokio::sync::watch;

use crate::config::{Config, IdentityConfig};
use crate::metrics::IngestMetrics;

/// Where a refresh reads users from.
pub struct IdentitySources {
    ldap: Option<LdapSettings>,
    ontap: Option<(OntapClient, String)>,
    fixed: Vec<DirectoryUser>,
    max_users: usize,
    pub refresh_interval: Duration,
}

/// What one refresh found, for the log and `identity sync`.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// (users, entries skipped) from the directory.
    pub directory: Option<(usize, usize)>,
    pub ontap_local_users: Option<usize>,
    pub fixed: usize,
    /// Entries no table could use (no name, or neither SID nor UID).
    pub rejected: usize,
    pub table_users: usize,
}

impl IdentitySources {
    pub fn from_config(cfg: &Config) -> anyhow::Result<IdentitySources> {
        let id = &cfg.identity;
        let ldap = if id.ldap_url.is_empty() {
            None
        } else {
            Some(ldap_settings(id)?)
        };
        let ontap = if id.ontap_local_users && !cfg.ontap.cluster_url.is_empty() {
            let client = OntapClient::new(&crate::ontap::endpoint(cfg)?)?;
            Some((client, cfg.ontap.svm.clone()))
        } else {
            None
        };
        let fixed = fixed_users(id);
        Ok(IdentitySources {
            ldap,
            ontap,
            fixed,
            max_users: id.max_users,
            refresh_interval: id.refresh_interval,
        })
    }

    /// Whether anything needs a refresh (a directory or ONTAP).
    pub fn refreshes(&self) -> bool {
        self.ldap.is_some() || self.ontap.is_some()
    }

    /// The table before any sync: the well-known SIDs and fixed entries.
    pub fn initial_table(&self) -> IdentityTable {
        table_of(&self.fixed)
    }

    /// Reads every source; all must succeed for the table to be replaced.
    pub async fn sync(&self) -> Result<(IdentityTable, SyncReport), String> {
        let mut b = TableBuilder::with_well_known();
        let mut report = SyncReport::default();
        let mut errors = Vec::new();
        if let Some(s) = &self.ldap {
            match ldap_sync(s).await {
                Ok(found) => {
                    report.directory = Some((found.users.len(), found.skipped));
                    found.users.into_iter().for_each(|u| b.add(u));
                }
                Err(e) => errors.push(format!("directory: {e}")),
            }
        }
        if let Some((client, svm)) = &self.ontap {
            match fpolicy_ontap::users::local_users(client, svm, self.max_users).await {
                Ok(users) => {
                    report.ontap_local_users = Some(users.len());
                    for u in users {
                        b.add(DirectoryUser {
                            sid: u.sid,
                            uid: u.uid,
                            name: u.name,
                            principal: None,
                        });
                    }
                }
                Err(e) => errors.push(format!("ONTAP local users: {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        report.fixed = self.fixed.len();
        self.fixed.iter().for_each(|u| b.add(u.clone()));
        report.rejected = b.rejected();
        let table = b.build();
        report.table_users = table.users();
        Ok((table, report))
    }
}

/// `[identity.users]`: a key of digits is a UID, any other a SID.
fn fixed_users(id: &IdentityConfig) -> Vec<DirectoryUser> {
    id.users
        .iter()
        .map(|(key, name)| {
            let (sid, uid) = match key.parse::<u32>() {
                Ok(uid) => (None, Some(uid)),
                Err(_) => (Some(key.clone()), None),
            };
            DirectoryUser {
                sid,
                uid,
                name: name.clone(),
                principal: None,
            }
        })
        .collect()
}

fn table_of(fixed: &[DirectoryUser]) -> IdentityTable {
    let mut b = TableBuilder::with_well_known();
    fixed.iter().for_each(|u| b.add(u.clone()));
    b.build()
}

/// The table with no sync at all (well-known SIDs and fixed entries): for
/// commands that look without serving.
pub fn offline_table(id: &IdentityConfig) -> IdentityTable {
    table_of(&fixed_users(id))
}

fn ldap_settings(id: &IdentityConfig) -> anyhow::Result<LdapSettings> {
    let trust = if id.insecure {
        tracing::warn!(url = %id.ldap_url, "directory certificate verification is OFF (identity.insecure)");
        Trust::Insecure
    } else if id.ca_bundle.as_os_str().is_empty() {
        Trust::SystemRoots
    } else {
        Trust::File(id.ca_bundle.clone())
    };
    let needs_tls = id.ldap_url.starts_with("ldaps://") || id.start_tls;
    let tls = match fpolicy_tls::client_config(&trust) {
        Ok(c) => c,
        // Plain ldap:// needs no roots; a machine without any is fine then.
        Err(_) if !needs_tls => fpolicy_tls::client_config(&Trust::Insecure)?,
        Err(e) => return Err(e).context("identity.ca_bundle"),
    };
    Ok(LdapSettings {
        url: id.ldap_url.clone(),
        start_tls: id.start_tls,
        bind_dn: id.bind_dn.clone(),
        bind_password: bind_password(id)?,
        base_dn: id.base_dn.clone(),
        filter: id.user_filter.clone(),
        page_size: id.page_size as i32,
        timeout: id.timeout,
        sync_timeout: id.timeout * 20,
        max_users: id.max_users,
        tls: Arc::new(tls),
    })
}

/// The bind password from `bind_password_file`, else the environment
/// variable (an anonymous bind needs neither).
fn bind_password(id: &IdentityConfig) -> anyhow::Result<String> {
    if !id.bind_password_file.as_os_str().is_empty() {
        let text = std::fs::read_to_string(&id.bind_password_file).with_context(|| {
            format!(
                "identity.bind_password_file {}",
                id.bind_password_file.display()
            )
        })?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    match std::env::var(&id.bind_password_env) {
        Ok(p) => Ok(p),
        Err(_) if id.bind_dn.is_empty() => Ok(String::new()),
        Err(_) => anyhow::bail!(
            "the directory bind password: set the environment variable {} (identity.bind_password_env) or identity.bind_password_file",
            id.bind_password_env
        ),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Syncs at once, then every `refresh_interval` (sooner, every minute,
/// while refreshes fail), until `stop`.
pub async fn refresh_loop(
    sources: IdentitySources,
    identities: Arc<Identities>,
    metrics: Arc<IngestMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = match sources.sync().await {
            Ok((table, report)) => {
                tracing::info!(
                    users = report.table_users,
                    directory = ?report.directory.map(|d| d.0),
                    directory_skipped = ?report.directory.map(|d| d.1),
                    ontap_local_users = ?report.ontap_local_users,
                    fixed = report.fixed,
                    rejected = report.rejected,
                    "identity table refreshed"
                );
                let users = table.users() as u64;
                identities.replace(table);
                metrics.identity_syncs_ok.fetch_add(1, Relaxed);
                metrics.identity_sync_failing.store(0, Relaxed);
                metrics.identity_last_sync_unix.store(now_unix(), Relaxed);
                metrics.identity_users.store(users, Relaxed);
                sources.refresh_interval
            }
            Err(e) => {
                tracing::warn!(error = %e, "identity refresh failed; the previous table stays in use");
                metrics.identity_sync_errors.fetch_add(1, Relaxed);
                metrics.identity_sync_failing.store(1, Relaxed);
                sources.refresh_interval.min(Duration::from_secs(60))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            _ = stop.changed() => return,
        }
    }
}
