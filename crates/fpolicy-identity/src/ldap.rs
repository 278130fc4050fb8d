//! The bulk sync from LDAP or Active Directory, as Workload Security does
//! it: one paged search for every user (AD answers at most 1,000 entries
//! per page), not a lookup per event.
//!
//! Read per entry: `objectSid` (binary in AD; a text `S-1-…` value is
//! accepted too), `sAMAccountName`, `userPrincipalName`, `uidNumber`,
//! `uid`. The entries are parsed here without panicking on a malformed
//! answer (the client's own entry parser panics).

use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::asn1::StructureTag;
use ldap3::{LdapConnAsync, LdapConnSettings, Scope};

use crate::sid::sid_to_string;
use crate::table::DirectoryUser;

/// Attributes a sync reads.
pub const ATTRIBUTES: [&str; 5] = [
    "objectSid",
    "sAMAccountName",
    "userPrincipalName",
    "uidNumber",
    "uid",
];

/// Where and how to sync.
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldaps://dc1.example.com:636`, or `ldap://…` (with `start_tls`).
    pub url: String,
    pub start_tls: bool,
    /// Empty: an anonymous bind.
    pub bind_dn: String,
    pub bind_password: String,
    pub base_dn: String,
    pub filter: String,
    /// Entries per page (AD's limit is 1,000).
    pub page_size: i32,
    /// Connecting and each request.
    pub timeout: Duration,
    /// The whole sync.
    pub sync_timeout: Duration,
    /// Most users read; a directory beyond it is an error, not an
    /// unbounded table.
    pub max_users: usize,
    /// Certificate verification for LDAPS and StartTLS.
    pub tls: Arc<rustls::ClientConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("bind as {dn:?} refused: {message}")]
    Bind { dn: String, message: String },
    #[error("search under {base:?} failed: {message}")]
    Search { base: String, message: String },
    #[error("the sync did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the directory has more than {0} users (identity.max_users)")]
    TooMany(usize),
}

/// What one sync read.
#[derive(Debug, Default)]
pub struct Synced {
    pub users: Vec<DirectoryUser>,
    /// Entries without a SID or UID, or without a name.
    pub skipped: usize,
    /// Pages the server sent.
    pub pages: usize,
}

/// Reads every user under `base_dn`.
pub async fn sync(s: &LdapSettings) -> Result<Synced, SyncError> {
    match tokio::time::timeout(s.sync_timeout, sync_unbounded(s)).await {
        Ok(r) => r,
        Err(_) => Err(SyncError::Timeout(s.sync_timeout)),
    }
}

async fn sync_unbounded(s: &LdapSettings) -> Result<Synced, SyncError> {
    let settings = LdapConnSettings::new()
        .set_conn_timeout(s.timeout)
        .set_starttls(s.start_tls)
        .set_config(s.tls.clone());
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &s.url)
        .await
        .map_err(|e| SyncError::Connect {
            url: s.url.clone(),
            message: e.to_string(),
        })?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection ended");
        }
    });
    let result = search(&mut ldap, s).await;
    let _ = ldap.unbind().await;
    driver.abort();
    result
}

async fn search(ldap: &mut ldap3::Ldap, s: &LdapSettings) -> Result<Synced, SyncError> {
    let bind = ldap
        .with_timeout(s.timeout)
        .simple_bind(&s.bind_dn, &s.bind_password)
        .await
        .and_then(|r| r.success());
    if let Err(e) = bind {
        return Err(SyncError::Bind {
            dn: s.bind_dn.clone(),
            message: e.to_string(),
        });
    }
    let failed = |e: ldap3::LdapError| SyncError::Search {
        base: s.base_dn.clone(),
        message: e.to_string(),
    };
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(s.page_size)),
    ];
    let mut stream = ldap
        .streaming_search_with(
            adapters,
            &s.base_dn,
            Scope::Subtree,
            &s.filter,
            ATTRIBUTES.to_vec(),
        )
        .await
        .map_err(failed)?;
    let mut out = Synced::default();
    while let Some(entry) = stream.next().await.map_err(failed)? {
        match parse_entry(entry.0).and_then(user_of) {
            Some(u) => out.users.push(u),
            None => out.skipped += 1,
        }
        if out.users.len() > s.max_users {
            return Err(SyncError::TooMany(s.max_users));
        }
    }
    stream.finish().await.success().map_err(failed)?;
    out.pages = out.users.len().div_ceil(s.page_size.max(1) as usize);
    Ok(out)
}

/// An entry's attributes (names lower-cased) and raw values, or `None`
/// when the BER structure is not a SearchResultEntry.
pub fn parse_entry(tag: StructureTag) -> Option<Vec<(String, Vec<Vec<u8>>)>> {
    let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
    let _dn = parts.next()?.expect_primitive()?;
    let mut attrs = Vec::new();
    for attr in parts.next()?.expect_constructed()? {
        let mut kv = attr.expect_constructed()?.into_iter();
        let name = String::from_utf8(kv.next()?.expect_primitive()?).ok()?;
        let values = kv
            .next()?
            .expect_constructed()?
            .into_iter()
            .map(StructureTag::expect_primitive)
            .collect::<Option<Vec<_>>>()?;
        attrs.push((name.to_ascii_lowercase(), values));
    }
    Some(attrs)
}

/// The user an entry describes: a SID and/or a UID, and a name.
pub fn user_of(attrs: Vec<(String, Vec<Vec<u8>>)>) -> Option<DirectoryUser> {
    let first = |name: &str| {
        attrs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first())
    };
    let text = |name: &str| {
        first(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let sid = first("objectsid").and_then(|v| {
        sid_to_string(v).or_else(|| {
            std::str::from_utf8(v)
                .ok()
                .filter(|t| t.starts_with("S-1-"))
                .map(str::to_owned)
        })
    });
    let uid = text("uidnumber").and_then(|t| t.parse().ok());
    let name = text("samaccountname").or_else(|| text("uid"))?;
    if sid.is_none() && uid.is_none() {
        return None;
    }
    Some(DirectoryUser {
        sid,
        uid,
        name,
        principal: text("userprincipalname"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &[u8])]) -> Vec<(String, Vec<Vec<u8>>)> {
        list.iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), vec![v.to_vec()]))
            .collect()
    }

    #[test]
    fn an_entry_gives_its_sid_uid_and_names() {
        let sid = crate::sid::sid_to_bytes("S-1-5-21-1-2-3-1013").unwrap();
        let u = user_of(attrs(&[
            ("objectSid", &sid),
            ("sAMAccountName", b"alice"),
            ("userPrincipalName", b"alice@example.com"),
            ("uidNumber", b"1001"),
        ]))
        .unwrap();
        assert_eq!(u.sid.as_deref(), Some("S-1-5-21-1-2-3-1013"));
        assert_eq!((u.uid, u.name.as_str()), (Some(1001), "alice"));
        assert_eq!(u.principal.as_deref(), Some("alice@example.com"));
        let posix = user_of(attrs(&[("uid", b"bob"), ("uidNumber", b"2002")])).unwrap();
        assert_eq!(
            (posix.name.as_str(), posix.uid, posix.sid),
            ("bob", Some(2002), None)
        );
        assert!(
            user_of(attrs(&[("uid", b"svc")])).is_none(),
            "no SID, no UID"
        );
        assert!(user_of(attrs(&[("uidNumber", b"7")])).is_none(), "no name");
    }
}
