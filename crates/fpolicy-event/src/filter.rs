//! Noise filters: events nobody wants, dropped at ingest, before the
//! spool, so a dropped event costs no disk. Each drop has a reason (the
//! `fpolicy_events_filtered_total{reason}` label).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::cidr::Cidr;
use crate::event::{Event, Operation};
use crate::users::UserSet;

/// `[filters]`
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Office owner and temporary files, editor swap files, folder
    /// metadata: see [`is_temp_file`].
    pub drop_temp_files: bool,
    /// Globs on `file_path`, as in routes.
    pub exclude_paths: Vec<String>,
    /// Names, SIDs or UIDs.
    pub exclude_users: Vec<String>,
    /// CIDR blocks or addresses of clients.
    pub exclude_client_ips: Vec<Cidr>,
    /// Keep only these operations (empty: all).
    pub operations: Vec<Operation>,
}

/// Why an event was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterReason {
    TempFile,
    Path,
    User,
    ClientIp,
    Operation,
}

impl FilterReason {
    pub const ALL: [FilterReason; 5] = [
        FilterReason::TempFile,
        FilterReason::Path,
        FilterReason::User,
        FilterReason::ClientIp,
        FilterReason::Operation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FilterReason::TempFile => "temp_file",
            FilterReason::Path => "path",
            FilterReason::User => "user",
            FilterReason::ClientIp => "client_ip",
            FilterReason::Operation => "operation",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("filters.exclude_paths: glob {glob:?}: {source}")]
    Glob {
        glob: String,
        source: globset::Error,
    },
    #[error("filters.exclude_users: {0}")]
    User(String),
}

/// The compiled filters.
#[derive(Debug, Clone, Default)]
pub struct NoiseFilter {
    drop_temp_files: bool,
    paths: Option<GlobSet>,
    users: UserSet,
    client_ips: Vec<Cidr>,
    operations: Vec<Operation>,
}

impl NoiseFilter {
    pub fn new(cfg: &FilterConfig) -> Result<NoiseFilter, FilterError> {
        let paths = if cfg.exclude_paths.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for g in &cfg.exclude_paths {
                let glob = GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|source| FilterError::Glob {
                        glob: g.clone(),
                        source,
                    })?;
                b.add(glob);
            }
            Some(b.build().map_err(|source| FilterError::Glob {
                glob: cfg.exclude_paths.join(", "),
                source,
            })?)
        };
        Ok(NoiseFilter {
            drop_temp_files: cfg.drop_temp_files,
            paths,
            users: UserSet::new(&cfg.exclude_users).map_err(FilterError::User)?,
            client_ips: cfg.exclude_client_ips.clone(),
            operations: cfg.operations.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        !self.drop_temp_files
            && self.paths.is_none()
            && self.users.is_empty()
            && self.client_ips.is_empty()
            && self.operations.is_empty()
    }

    /// Why the event is dropped, or `None` to keep it. Identity must be
    /// resolved first (user names match after resolution).
    pub fn check(&self, e: &Event) -> Option<FilterReason> {
        if !self.operations.is_empty() && !self.operations.contains(&e.operation_type) {
            return Some(FilterReason::Operation);
        }
        if self.drop_temp_files && is_temp_file(&e.file_path) {
            return Some(FilterReason::TempFile);
        }
        if self
            .paths
            .as_ref()
            .is_some_and(|p| p.is_match(&e.file_path))
        {
            return Some(FilterReason::Path);
        }
        if !self.users.is_empty() && self.users.matches(e) {
            return Some(FilterReason::User);
        }
        if !self.client_ips.is_empty()
            && let Some(ip) = e.client_ip.as_deref().and_then(|ip| ip.parse().ok())
            && self.client_ips.iter().any(|c| c.contains(ip))
        {
            return Some(FilterReason::ClientIp);
        }
        None
    }
}

/// Whether the last component of `path` is a file that applications create
/// and delete around the real ones: Office owner files (`~$report.docx`)
/// and temporary files (`~WRL0001.tmp`, `~WRD0002.tmp`, `~DF12.tmp`, Word's
/// `A1B2C3D4.tmp`), LibreOffice locks (`.~lock.report.odt#`), vi swap files
/// (`.report.txt.swp`, `.swx`), and folder metadata (`.DS_Store`,
/// `Thumbs.db`, `desktop.ini`). A rename of a temporary file to the real
/// name is kept: its `file_path` is the real name.
pub fn is_temp_file(path: &str) -> bool {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path).as_bytes();
    // Compared without case and without a lowered copy: this runs for every
    // event when the filter is on.
    let starts =
        |p: &str| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    let ends = |p: &str| {
        name.len() >= p.len() && name[name.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes())
    };
    if starts("~$")
        || (starts(".~lock.") && ends("#"))
        || [".ds_store", "thumbs.db", "desktop.ini"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        || ends(".swp")
        || ends(".swx")
    {
        return true;
    }
    if !ends(".tmp") {
        return false;
    }
    // Office's temporary names: `~` prefixed, or eight hex digits.
    let stem = &name[..name.len() - 4];
    stem.first() == Some(&b'~') || (stem.len() == 8 && stem.iter().all(u8::is_ascii_hexdigit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests_support::sample_event;

    #[test]
    fn temporary_files_are_recognised_and_real_files_are_not() {
        for t in [
            "/d/~$report.docx",
            "/d/~WRL0001.tmp",
            "/d/~wrd0002.TMP",
            "/d/~DF1234.tmp",
            "/d/A1B2C3D4.tmp",
            "/d/.~lock.report.odt#",
            "/d/.notes.txt.swp",
            "/d/.notes.txt.swx",
            "/d/.DS_Store",
            "/Thumbs.db",
            "/d/desktop.ini",
        ] {
            assert!(is_temp_file(t), "{t}");
        }
        for f in [
            "/d/report.docx",
            "/d/backup.tmp",
            "/d/A1B2C3D4X.tmp",
            "/d/~notes.txt",
            "/d/.~lock.report.odt",
            "/d/swp",
            "/d/tmp",
        ] {
            assert!(!is_temp_file(f), "{f}");
        }
    }

    #[test]
    fn each_filter_drops_with_its_reason() {
        let f = NoiseFilter::new(&FilterConfig {
            drop_temp_files: true,
            exclude_paths: vec!["/scratch/**".into()],
            exclude_users: vec!["svc_backup".into(), "0".into()],
            exclude_client_ips: vec!["10.9.0.0/16".parse().unwrap()],
            operations: vec![Operation::Create, Operation::Delete],
        })
        .unwrap();
        let check = |edit: &dyn Fn(&mut Event)| {
            let mut e = sample_event();
            edit(&mut e);
            f.check(&e)
        };
        assert_eq!(check(&|_| {}), None);
        assert_eq!(
            check(&|e| e.operation_type = Operation::Read),
            Some(FilterReason::Operation)
        );
        assert_eq!(
            check(&|e| e.file_path = "/a/~$x.docx".into()),
            Some(FilterReason::TempFile)
        );
        assert_eq!(
            check(&|e| e.file_path = "/scratch/a/b".into()),
            Some(FilterReason::Path)
        );
        assert_eq!(
            check(&|e| e.metadata.user_name = Some("SVC_Backup".into())),
            Some(FilterReason::User)
        );
        assert_eq!(
            check(&|e| e.metadata.uid = Some(0)),
            Some(FilterReason::User)
        );
        assert_eq!(
            check(&|e| e.client_ip = Some("10.9.8.7".into())),
            Some(FilterReason::ClientIp)
        );
        assert_eq!(check(&|e| e.client_ip = Some("10.8.8.7".into())), None);
        assert!(
            NoiseFilter::new(&FilterConfig::default())
                .unwrap()
                .is_empty()
        );
        assert!(
            NoiseFilter::new(&FilterConfig {
                exclude_users: vec!["S-1-x".into()],
                ..FilterConfig::default()
            })
            .is_err()
        );
    }
}
