//! The identity table: SID → user and UID → user, in memory.
//!
//! Built whole by a sync and swapped in whole ([`Identities`]), so an event
//! never sees half a refresh and a failed refresh leaves the old table. It
//! is compact because a directory's SIDs share their domain prefix: a SID
//! is kept as (domain index, RID), two `u32`s, and names once per user
//! (docs/benchmarks.md has the measured size for 300,000 users).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::sid::well_known_sids;

/// What an event learns about its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// `sAMAccountName`, the POSIX `uid`, or a configured name.
    pub name: Box<str>,
    /// `userPrincipalName`, when the directory has one.
    pub principal: Option<Box<str>>,
}

/// One user as a source describes it (directory, ONTAP, configuration).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryUser {
    pub sid: Option<String>,
    pub uid: Option<u32>,
    pub name: String,
    pub principal: Option<String>,
}

#[derive(Debug, Default)]
pub struct IdentityTable {
    /// A SID without its last sub-authority (the domain) → its index.
    domains: HashMap<Box<str>, u32>,
    /// (domain index, RID) → index into `users`.
    by_sid: HashMap<(u32, u32), u32>,
    by_uid: HashMap<u32, u32>,
    users: Vec<UserEntry>,
}

/// Splits `S-1-5-21-a-b-c-1013` into (`S-1-5-21-a-b-c`, 1013).
fn split_sid(sid: &str) -> Option<(&str, u32)> {
    let (domain, rid) = sid.rsplit_once('-')?;
    Some((domain, rid.parse().ok()?))
}

impl IdentityTable {
    /// The user of a notification: its SID first (the Windows identity),
    /// then its UID.
    pub fn lookup(&self, sid: Option<&str>, uid: Option<u32>) -> Option<&UserEntry> {
        let by_sid = sid.and_then(|s| {
            let upper;
            let s = if s.starts_with('s') {
                upper = s.to_ascii_uppercase();
                upper.as_str()
            } else {
                s
            };
            let (domain, rid) = split_sid(s)?;
            let d = *self.domains.get(domain)?;
            self.by_sid.get(&(d, rid))
        });
        let index = by_sid.or_else(|| uid.and_then(|u| self.by_uid.get(&u)))?;
        self.users.get(*index as usize)
    }

    /// Users in the table (a user with both a SID and a UID counts once).
    pub fn users(&self) -> usize {
        self.users.len()
    }

    pub fn sids(&self) -> usize {
        self.by_sid.len()
    }

    pub fn uids(&self) -> usize {
        self.by_uid.len()
    }
}

/// Builds a table; a later entry for the same SID or UID wins, so sources
/// are added from the weakest (well-known names) to the strongest (fixed
/// entries of the configuration).
#[derive(Debug, Default)]
pub struct TableBuilder {
    table: IdentityTable,
    rejected: usize,
}

impl TableBuilder {
    /// Starts with the well-known SIDs (SYSTEM, Everyone, Administrators,
    /// …) and UID 0 (`root`).
    pub fn with_well_known() -> TableBuilder {
        let mut b = TableBuilder::default();
        for (sid, name) in well_known_sids() {
            b.add(DirectoryUser {
                sid: Some(sid.to_owned()),
                name: name.to_owned(),
                ..DirectoryUser::default()
            });
        }
        b.add(DirectoryUser {
            uid: Some(0),
            name: "root".into(),
            ..DirectoryUser::default()
        });
        b
    }

    /// Adds a user; one with neither a usable SID nor a UID, or no name,
    /// is counted in [`TableBuilder::rejected`].
    pub fn add(&mut self, user: DirectoryUser) {
        let t = &mut self.table;
        let sid = user
            .sid
            .as_deref()
            .map(str::to_ascii_uppercase)
            .filter(|s| s.starts_with("S-1-"));
        let sid = sid.as_deref().and_then(split_sid);
        if user.name.is_empty() || (sid.is_none() && user.uid.is_none()) {
            self.rejected += 1;
            return;
        }
        let index = t.users.len() as u32;
        t.users.push(UserEntry {
            name: user.name.into_boxed_str(),
            principal: user
                .principal
                .filter(|p| !p.is_empty())
                .map(String::into_boxed_str),
        });
        if let Some((domain, rid)) = sid {
            let next = t.domains.len() as u32;
            let d = *t.domains.entry(domain.into()).or_insert(next);
            t.by_sid.insert((d, rid), index);
        }
        if let Some(uid) = user.uid {
            t.by_uid.insert(uid, index);
        }
    }

    /// Entries that could not be added (no name, or neither SID nor UID).
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    pub fn build(mut self) -> IdentityTable {
        self.table.users.shrink_to_fit();
        self.table.by_sid.shrink_to_fit();
        self.table.by_uid.shrink_to_fit();
        self.table
    }
}

/// The table every ingest step reads, swapped whole by a refresh.
pub struct Identities {
    table: ArcSwap<IdentityTable>,
}

impl Identities {
    pub fn new(table: IdentityTable) -> Identities {
        Identities {
            table: ArcSwap::from_pointee(table),
        }
    }

    /// The current table; cheap, for one event or one batch.
    pub fn load(&self) -> Guard<Arc<IdentityTable>> {
        self.table.load()
    }

    pub fn replace(&self, table: IdentityTable) {
        self.table.store(Arc::new(table));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(sid: Option<&str>, uid: Option<u32>, name: &str) -> DirectoryUser {
        DirectoryUser {
            sid: sid.map(str::to_owned),
            uid,
            name: name.into(),
            principal: Some(format!("{name}@example.com")),
        }
    }

    #[test]
    fn sids_and_uids_find_their_user_and_later_sources_win() {
        let mut b = TableBuilder::with_well_known();
        b.add(user(Some("S-1-5-21-1-2-3-1013"), Some(1001), "alice"));
        b.add(user(Some("S-1-5-21-1-2-3-1014"), None, "bob"));
        b.add(user(None, Some(1002), "carol"));
        b.add(user(Some("S-1-5-21-9-9-9-1013"), None, "other-domain"));
        b.add(user(None, Some(1002), "carol-fixed"));
        b.add(user(None, None, "nobody"));
        b.add(user(Some("x"), None, "bad-sid"));
        assert_eq!(b.rejected(), 2);
        let t = b.build();
        let name = |sid: Option<&str>, uid: Option<u32>| t.lookup(sid, uid).map(|u| &*u.name);
        assert_eq!(name(Some("S-1-5-21-1-2-3-1013"), None), Some("alice"));
        assert_eq!(name(Some("s-1-5-21-1-2-3-1013"), None), Some("alice"));
        assert_eq!(name(None, Some(1001)), Some("alice"));
        assert_eq!(
            name(Some("S-1-5-21-9-9-9-1013"), None),
            Some("other-domain")
        );
        assert_eq!(name(None, Some(1002)), Some("carol-fixed"));
        assert_eq!(name(Some("S-1-5-18"), None), Some("SYSTEM"));
        assert_eq!(name(None, Some(0)), Some("root"));
        // The SID wins over the UID; an unknown SID falls back to the UID.
        assert_eq!(name(Some("S-1-5-21-1-2-3-1014"), Some(1001)), Some("bob"));
        assert_eq!(name(Some("S-1-5-21-7-7-7-1"), Some(1001)), Some("alice"));
        assert_eq!(name(Some("S-1-5-21-7-7-7-1"), None), None);
        assert_eq!(
            t.lookup(None, Some(1001)).unwrap().principal.as_deref(),
            Some("alice@example.com")
        );
    }

    #[test]
    fn a_swap_is_seen_whole() {
        let ids = Identities::new(TableBuilder::default().build());
        assert!(ids.load().lookup(None, Some(5)).is_none());
        let mut b = TableBuilder::default();
        b.add(user(None, Some(5), "eve"));
        ids.replace(b.build());
        assert_eq!(&*ids.load().lookup(None, Some(5)).unwrap().name, "eve");
    }
}
