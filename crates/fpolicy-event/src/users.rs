//! Users as admins write them in routes, screening rules and filters: a
//! name (`alice`, `EXAMPLE\alice`, `alice@example.com`), a Windows SID
//! (`S-1-5-21-…-1013`) or a UNIX UID (`1001`). An event matches when its
//! SID, its UID, its resolved `user_name` or its `user_principal` is in
//! the set. Names and SIDs compare without regard to ASCII case, as
//! Windows compares them.

use std::collections::HashSet;

use crate::event::Event;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSet {
    names: HashSet<String>,
    sids: HashSet<String>,
    uids: HashSet<u32>,
}

/// What one entry of a user list is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Sid(String),
    Uid(u32),
    Name(String),
}

impl UserRef {
    /// Classifies one entry: `S-1-…` is a SID, digits are a UID, anything
    /// else a name (a `DOMAIN\` prefix is dropped: events carry the bare
    /// account name).
    pub fn parse(text: &str) -> Result<UserRef, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an empty user entry".into());
        }
        if t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("S-1-")) {
            let valid = t[4..]
                .split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
            return if valid {
                Ok(UserRef::Sid(t.to_ascii_uppercase()))
            } else {
                Err(format!("{text:?} is not a SID (S-1-5-21-…)"))
            };
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse()
                .map(UserRef::Uid)
                .map_err(|_| format!("{text:?} is not a UID"));
        }
        let name = t.rsplit_once('\\').map_or(t, |(_, n)| n);
        Ok(UserRef::Name(name.to_lowercase()))
    }
}

impl UserSet {
    pub fn new(entries: &[String]) -> Result<UserSet, String> {
        let mut set = UserSet::default();
        for e in entries {
            match UserRef::parse(e)? {
                UserRef::Sid(s) => set.sids.insert(s),
                UserRef::Uid(u) => set.uids.insert(u),
                UserRef::Name(n) => set.names.insert(n),
            };
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.sids.is_empty() && self.uids.is_empty()
    }

    pub fn matches(&self, e: &Event) -> bool {
        // Runs for every event: no case-folded copy unless one is needed.
        let m = &e.metadata;
        m.uid.is_some_and(|u| self.uids.contains(&u))
            || (!self.sids.is_empty()
                && m.sid.as_deref().is_some_and(|s| {
                    if s.bytes().any(|b| b.is_ascii_lowercase()) {
                        self.sids.contains(&s.to_ascii_uppercase())
                    } else {
                        self.sids.contains(s)
                    }
                }))
            || (!self.names.is_empty()
                && [m.user_name.as_deref(), m.user_principal.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|n| {
                        if n.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
                            self.names.contains(n)
                        } else {
                            self.names.contains(&n.to_lowercase())
                        }
                    }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(uid: Option<u32>, sid: Option<&str>, name: Option<&str>) -> Event {
        let mut e = crate::event::tests_support::sample_event();
        e.metadata.uid = uid;
        e.metadata.sid = sid.map(str::to_owned);
        e.metadata.user_name = name.map(str::to_owned);
        e
    }

    #[test]
    fn entries_are_sids_uids_or_names() {
        assert_eq!(
            UserRef::parse("s-1-5-18").unwrap(),
            UserRef::Sid("S-1-5-18".into())
        );
        assert_eq!(UserRef::parse("1001").unwrap(), UserRef::Uid(1001));
        assert_eq!(
            UserRef::parse("EXAMPLE\\Alice").unwrap(),
            UserRef::Name("alice".into())
        );
        for bad in ["", "S-1-5-x", "S-1-", "99999999999"] {
            assert!(UserRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_event_matches_by_any_of_its_identities() {
        let set = UserSet::new(&["alice".into(), "S-1-5-21-1-2-3-500".into(), "0".into()]).unwrap();
        assert!(set.matches(&event(None, None, Some("ALICE"))));
        assert!(set.matches(&event(None, None, Some("alice"))));
        assert!(set.matches(&event(None, Some("S-1-5-21-1-2-3-500"), None)));
        let accented = UserSet::new(&["Åsa".into()]).unwrap();
        assert!(accented.matches(&event(None, None, Some("ÅSA"))));
        assert!(accented.matches(&event(None, None, Some("åsa"))));
        assert!(!accented.matches(&event(None, None, Some("asa"))));
        assert!(set.matches(&event(None, Some("s-1-5-21-1-2-3-500"), None)));
        assert!(set.matches(&event(Some(0), None, None)));
        assert!(!set.matches(&event(Some(1), Some("S-1-5-21-1-2-3-501"), Some("bob"))));
        assert!(!set.matches(&event(None, None, None)));
    }
}
