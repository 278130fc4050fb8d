//! Screening rules for synchronous engines: deny by file extension or path
//! glob (a ransomware extension blocklist, a protected folder), allow
//! everything else.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::event::{Event, Operation};
use crate::users::UserSet;

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("invalid deny glob {glob:?}: {source}")]
    Glob {
        glob: String,
        source: globset::Error,
    },
    #[error(
        "invalid deny extension {0:?}: give the extension without dots or slashes, e.g. \"locky\""
    )]
    Extension(String),
    #[error("deny_users: {0}")]
    User(String),
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Denied, with the rule that matched (`extension:locky`, `glob:/hr/**`).
    Deny(String),
}

/// Compiled rules. Globs use `*` within one path component, `**` across
/// components and `?` for one character; they match the event's
/// `file_path` (for renames and links, the new name too). Extensions
/// compare case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct ScreeningRules {
    extensions: Vec<String>,
    globs: Vec<String>,
    set: GlobSet,
    /// Empty: the rules apply to every operation.
    operations: Vec<Operation>,
    users: UserSet,
}

impl ScreeningRules {
    pub fn new(
        deny_extensions: &[String],
        deny_globs: &[String],
        operations: &[Operation],
    ) -> Result<Self, RuleError> {
        let mut builder = GlobSetBuilder::new();
        for g in deny_globs {
            let glob = GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|source| RuleError::Glob {
                    glob: g.clone(),
                    source,
                })?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|source| RuleError::Glob {
            glob: deny_globs.join(", "),
            source,
        })?;
        let mut extensions = Vec::with_capacity(deny_extensions.len());
        for e in deny_extensions {
            let e = e.strip_prefix('.').unwrap_or(e);
            if e.is_empty() || e.contains(['.', '/', '\\']) {
                return Err(RuleError::Extension(e.to_owned()));
            }
            extensions.push(e.to_lowercase());
        }
        Ok(ScreeningRules {
            extensions,
            globs: deny_globs.to_vec(),
            set,
            operations: operations.to_vec(),
            users: UserSet::default(),
        })
    }

    /// Also deny every operation of these users (names, SIDs or UIDs).
    pub fn deny_users(mut self, users: &[String]) -> Result<Self, RuleError> {
        self.users = UserSet::new(users).map_err(RuleError::User)?;
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.extensions.is_empty() && self.globs.is_empty() && self.users.is_empty()
    }

    /// The verdict for an event: its user, then every path it touches.
    pub fn verdict_for(&self, e: &Event) -> Verdict {
        let applies = self.operations.is_empty() || self.operations.contains(&e.operation_type);
        if applies && !self.users.is_empty() && self.users.matches(e) {
            let who = e
                .metadata
                .user_name
                .as_deref()
                .or(e.metadata.sid.as_deref());
            let who = who.map_or_else(
                || e.metadata.uid.unwrap_or_default().to_string(),
                str::to_owned,
            );
            return Verdict::Deny(format!("user:{who}"));
        }
        let paths = [
            Some(e.file_path.as_str()),
            e.previous_path.as_deref(),
            e.metadata.link_path.as_deref(),
        ];
        self.verdict(e.operation_type, paths.into_iter().flatten())
    }

    /// The verdict for an operation on `paths` (every name it touches).
    pub fn verdict<'a>(&self, op: Operation, paths: impl IntoIterator<Item = &'a str>) -> Verdict {
        if self.is_empty() || (!self.operations.is_empty() && !self.operations.contains(&op)) {
            return Verdict::Allow;
        }
        for path in paths {
            let name = path.rsplit('/').next().unwrap_or(path);
            if let Some((_, ext)) = name.rsplit_once('.')
                && let Some(hit) = self.extensions.iter().find(|e| e.eq_ignore_ascii_case(ext))
            {
                return Verdict::Deny(format!("extension:{hit}"));
            }
            if let Some(&i) = self.set.matches(path).first() {
                return Verdict::Deny(format!("glob:{}", self.globs[i]));
            }
        }
        Verdict::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(ext: &[&str], globs: &[&str], ops: &[Operation]) -> ScreeningRules {
        let ext: Vec<String> = ext.iter().map(|s| s.to_string()).collect();
        let globs: Vec<String> = globs.iter().map(|s| s.to_string()).collect();
        ScreeningRules::new(&ext, &globs, ops).unwrap()
    }

    #[test]
    fn extensions_and_globs() {
        let r = rules(
            &["locky", ".WNCRY"],
            &["/finance/**/*.xlsm", "/**/README_DECRYPT*"],
            &[],
        );
        let v = |p: &str| r.verdict(Operation::Create, [p]);
        assert_eq!(v("/a/b.LOCKY"), Verdict::Deny("extension:locky".into()));
        assert_eq!(v("/x.wncry"), Verdict::Deny("extension:wncry".into()));
        assert_eq!(v("/locky"), Verdict::Allow);
        assert_eq!(v("/dir.locky/file"), Verdict::Allow);
        assert_eq!(
            v("/finance/2026/q1/book.xlsm"),
            Verdict::Deny("glob:/finance/**/*.xlsm".into())
        );
        assert_eq!(
            v("/finance/book.xlsm"),
            Verdict::Deny("glob:/finance/**/*.xlsm".into())
        );
        assert_eq!(v("/hr/finance/book.xlsm"), Verdict::Allow);
        assert_eq!(
            v("/deep/er/README_DECRYPT.txt"),
            Verdict::Deny("glob:/**/README_DECRYPT*".into())
        );
        assert_eq!(v("/legal/contracts/a.pdf"), Verdict::Allow);
    }

    #[test]
    fn star_stays_in_one_component_and_ops_filter() {
        let r = rules(
            &[],
            &["/tmp/*.bin"],
            &[Operation::Create, Operation::Rename],
        );
        assert!(matches!(
            r.verdict(Operation::Create, ["/tmp/a.bin"]),
            Verdict::Deny(_)
        ));
        assert_eq!(
            r.verdict(Operation::Create, ["/tmp/x/a.bin"]),
            Verdict::Allow
        );
        assert_eq!(r.verdict(Operation::Write, ["/tmp/a.bin"]), Verdict::Allow);
        // A rename is checked on both names.
        assert!(matches!(
            r.verdict(Operation::Rename, ["/ok", "/tmp/a.bin"]),
            Verdict::Deny(_)
        ));
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(ScreeningRules::new(&[], &["/a/[".into()], &[]).is_err());
        assert!(ScreeningRules::new(&["a/b".into()], &[], &[]).is_err());
        assert!(ScreeningRules::new(&["".into()], &[], &[]).is_err());
    }

    #[test]
    fn users_can_be_denied_whatever_the_path() {
        let r = ScreeningRules::new(&[], &[], &[])
            .unwrap()
            .deny_users(&["mallory".into(), "S-1-5-21-9-9-9-666".into()])
            .unwrap();
        let mut e = crate::event::tests_support::sample_event();
        assert_eq!(r.verdict_for(&e), Verdict::Allow);
        e.metadata.user_name = Some("Mallory".into());
        assert_eq!(r.verdict_for(&e), Verdict::Deny("user:Mallory".into()));
        e.metadata.user_name = None;
        e.metadata.sid = Some("S-1-5-21-9-9-9-666".into());
        assert_eq!(
            r.verdict_for(&e),
            Verdict::Deny("user:S-1-5-21-9-9-9-666".into())
        );
        assert!(
            ScreeningRules::new(&[], &[], &[])
                .unwrap()
                .deny_users(&["S-1-q".into()])
                .is_err()
        );
    }
}
