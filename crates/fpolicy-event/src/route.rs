//! Per-use-case routing: which sinks an event goes to.
//!
//! A route's conditions are ANDed; the values within one condition are
//! ORed; an empty condition matches everything. (The predecessor's
//! EventBridge rules ORed prefixes with suffixes, so `/legal/audit/report.pdf`
//! also reached the finance use case; here prefix AND suffix must hold.)
//! Path conditions (prefixes, suffixes, globs) must hold together for
//! `file_path` or together for `previous_path`, so a rename out of a folder
//! still reaches that folder's route. An event goes to the union of the
//! sinks of every route it matches, or to the default sinks when it
//! matches none; `metadata.routes` lists the matching route names.

use std::collections::BTreeSet;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::event::{Event, Operation};
use crate::users::{UserRef, UserSet};

/// One `[[route]]` table of the configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    pub name: String,
    pub path_prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    /// Compare suffixes ignoring ASCII case (`.PDF` matches `.pdf`).
    pub case_insensitive_suffixes: bool,
    /// Globs on the path: `*` within a component, `**` across, `?` one character.
    pub globs: Vec<String>,
    pub operations: Vec<Operation>,
    /// `smb`, `nfsv3`, `nfsv4.0`, `nfsv4.1`; `nfs` matches every NFS version.
    pub protocols: Vec<String>,
    pub volumes: Vec<String>,
    pub svms: Vec<String>,
    /// `FILE`, `DIR`, `STREAM`, `SYMLINK`.
    pub file_types: Vec<String>,
    /// Names, SIDs or UIDs (see [`crate::users`]).
    pub users: Vec<String>,
    pub sinks: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("route {route:?}: {message}")]
    Invalid { route: String, message: String },
}

#[derive(Debug, Clone)]
struct Compiled {
    cfg: RouteConfig,
    globs: Option<GlobSet>,
    lower_suffixes: Vec<String>,
    users: UserSet,
}

/// Compiled routes.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Compiled>,
    default_sinks: Vec<String>,
}

/// Where one event goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routing {
    pub routes: Vec<String>,
    pub sinks: BTreeSet<String>,
}

impl Router {
    pub fn new(routes: &[RouteConfig], default_sinks: &[String]) -> Result<Router, RouteError> {
        let mut names = BTreeSet::new();
        let mut compiled = Vec::with_capacity(routes.len());
        for r in routes {
            let invalid = |message: String| RouteError::Invalid {
                route: r.name.clone(),
                message,
            };
            if r.name.is_empty() {
                return Err(invalid("every route needs a name".into()));
            }
            if !names.insert(r.name.clone()) {
                return Err(invalid("route names must be unique".into()));
            }
            if r.sinks.is_empty() {
                return Err(invalid("a route needs at least one sink".into()));
            }
            if r.path_prefixes.iter().any(|p| !p.starts_with('/')) {
                return Err(invalid(
                    "path prefixes start with / (paths are volume-relative)".into(),
                ));
            }
            let globs = if r.globs.is_empty() {
                None
            } else {
                let mut b = GlobSetBuilder::new();
                for g in &r.globs {
                    let glob = GlobBuilder::new(g)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| invalid(format!("glob {g:?}: {e}")))?;
                    b.add(glob);
                }
                Some(b.build().map_err(|e| invalid(e.to_string()))?)
            };
            let users = UserSet::new(&r.users).map_err(|e| invalid(format!("users: {e}")))?;
            compiled.push(Compiled {
                users,
                lower_suffixes: r.suffixes.iter().map(|s| s.to_ascii_lowercase()).collect(),
                cfg: r.clone(),
                globs,
            });
        }
        Ok(Router {
            routes: compiled,
            default_sinks: default_sinks.to_vec(),
        })
    }

    /// Every sink name a route or the default refers to.
    pub fn sink_names(&self) -> BTreeSet<&str> {
        self.routes
            .iter()
            .flat_map(|r| r.cfg.sinks.iter())
            .chain(self.default_sinks.iter())
            .map(String::as_str)
            .collect()
    }

    pub fn routes(&self) -> impl Iterator<Item = &RouteConfig> {
        self.routes.iter().map(|r| &r.cfg)
    }

    pub fn route(&self, e: &Event) -> Routing {
        let mut out = Routing::default();
        for r in &self.routes {
            if r.matches(e) {
                out.routes.push(r.cfg.name.clone());
                out.sinks.extend(r.cfg.sinks.iter().cloned());
            }
        }
        if out.routes.is_empty() {
            out.sinks.extend(self.default_sinks.iter().cloned());
        }
        out
    }
}

fn any_or_empty<T>(list: &[T], f: impl Fn(&T) -> bool) -> bool {
    list.is_empty() || list.iter().any(f)
}

impl Compiled {
    fn path_matches(&self, path: &str) -> bool {
        let c = &self.cfg;
        any_or_empty(&c.path_prefixes, |p| path.starts_with(p.as_str()))
            && if c.case_insensitive_suffixes {
                let lower = path.to_ascii_lowercase();
                any_or_empty(&self.lower_suffixes, |s| lower.ends_with(s.as_str()))
            } else {
                any_or_empty(&c.suffixes, |s| path.ends_with(s.as_str()))
            }
            && self.globs.as_ref().is_none_or(|g| g.is_match(path))
    }

    fn matches(&self, e: &Event) -> bool {
        let c = &self.cfg;
        let protocol = e.metadata.protocol.as_str();
        any_or_empty(&c.operations, |o| *o == e.operation_type)
            && any_or_empty(&c.protocols, |p| {
                p == protocol || (p == "nfs" && protocol.starts_with("nfs"))
            })
            && any_or_empty(&c.volumes, |v| *v == e.volume_name)
            && any_or_empty(&c.svms, |s| *s == e.svm_name)
            && any_or_empty(&c.file_types, |t| {
                e.metadata
                    .file_type
                    .as_deref()
                    .is_some_and(|f| f.eq_ignore_ascii_case(t))
            })
            && (self.users.is_empty() || self.users.matches(e))
            && (self.path_matches(&e.file_path)
                || e.previous_path
                    .as_deref()
                    .is_some_and(|p| self.path_matches(p)))
    }
}

/// An EventBridge event pattern with the same meaning as `route`, for teams
/// that route on the bus. Prefix AND suffix become wildcard patterns
/// (`/legal/*.pdf`), matched on `file_path` or `previous_path` (`$or`);
/// case-insensitive suffixes become lower- and upper-case variants, since
/// wildcards are case-sensitive. Globs become wildcards (`**` and `*` both
/// match across `/` there; `?`, `[]` and `{}` are reported in `warnings`).
pub fn eventbridge_pattern(
    route: &RouteConfig,
    source: &str,
    detail_type: &str,
) -> (serde_json::Value, Vec<String>) {
    use serde_json::{Value, json};
    let mut warnings = Vec::new();
    let esc = |s: &str| s.replace('\\', "\\\\").replace('*', "\\*");
    let suffixes: Vec<String> = if route.case_insensitive_suffixes {
        let set: BTreeSet<String> = route
            .suffixes
            .iter()
            .flat_map(|s| [s.to_ascii_lowercase(), s.to_ascii_uppercase()])
            .collect();
        set.into_iter().collect()
    } else {
        route.suffixes.clone()
    };
    let mut path_alts: Vec<Value> = Vec::new();
    match (route.path_prefixes.is_empty(), suffixes.is_empty()) {
        (true, true) => {}
        (false, true) => path_alts.extend(route.path_prefixes.iter().map(|p| json!({"prefix": p}))),
        (true, false) => path_alts.extend(suffixes.iter().map(|s| json!({"suffix": s}))),
        (false, false) => {
            for p in &route.path_prefixes {
                for s in &suffixes {
                    path_alts.push(json!({"wildcard": format!("{}*{}", esc(p), esc(s))}));
                }
            }
        }
    }
    if !route.globs.is_empty() {
        if !path_alts.is_empty() {
            warnings.push(format!(
                "route {:?}: globs and prefixes/suffixes together cannot be expressed as one EventBridge pattern; the globs are left out",
                route.name
            ));
        } else {
            for g in &route.globs {
                if g.contains(['?', '[', '{']) {
                    warnings.push(format!("route {:?}: glob {g:?} uses ?, [] or {{}}, which EventBridge wildcards lack", route.name));
                }
                path_alts.push(json!({"wildcard": g.replace("**", "*")}));
            }
        }
    }
    let mut detail = serde_json::Map::new();
    if !route.operations.is_empty() {
        detail.insert("operation_type".into(), json!(route.operations));
    }
    if !path_alts.is_empty() {
        // A rename out of the matched paths matches on previous_path.
        detail.insert(
            "$or".into(),
            json!([{"file_path": path_alts.clone()}, {"previous_path": path_alts}]),
        );
    }
    if !route.volumes.is_empty() {
        detail.insert("volume_name".into(), json!(route.volumes));
    }
    if !route.svms.is_empty() {
        detail.insert("svm_name".into(), json!(route.svms));
    }
    let mut meta = serde_json::Map::new();
    if !route.protocols.is_empty() {
        let alts: Vec<Value> = route
            .protocols
            .iter()
            .map(|p| {
                if p == "nfs" {
                    json!({"prefix": "nfs"})
                } else {
                    json!(p)
                }
            })
            .collect();
        meta.insert("protocol".into(), Value::Array(alts));
    }
    if !route.file_types.is_empty() {
        meta.insert("file_type".into(), json!(route.file_types));
    }
    users_pattern(&route.users, &mut meta);
    if !meta.is_empty() {
        detail.insert("metadata".into(), Value::Object(meta));
    }
    if route.case_insensitive_suffixes && !route.suffixes.is_empty() {
        warnings.push(format!(
            "route {:?}: EventBridge wildcards are case-sensitive; the pattern lists lower- and upper-case suffixes only (not .Pdf)",
            route.name
        ));
    }
    (
        json!({"source": [source], "detail-type": [detail_type], "detail": detail}),
        warnings,
    )
}

/// `users` as an EventBridge pattern on `metadata`: names (ignoring case)
/// on `user_name`, SIDs on `sid`, UIDs on `uid`, ORed when of several kinds.
fn users_pattern(users: &[String], meta: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::{Value, json};
    let (mut names, mut sids, mut uids) = (Vec::new(), Vec::new(), Vec::new());
    for u in users {
        match UserRef::parse(u) {
            Ok(UserRef::Name(n)) => names.push(json!({"equals-ignore-case": n})),
            Ok(UserRef::Sid(s)) => sids.push(json!(s)),
            Ok(UserRef::Uid(id)) => uids.push(json!(id)),
            Err(_) => {}
        }
    }
    let alts: Vec<(&str, Vec<Value>)> = [("user_name", names), ("sid", sids), ("uid", uids)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    match alts.len() {
        0 => {}
        1 => {
            let (key, values) = alts.into_iter().next().expect("one");
            meta.insert(key.into(), Value::Array(values));
        }
        _ => {
            let or: Vec<Value> = alts.into_iter().map(|(k, v)| json!({ k: v })).collect();
            meta.insert("$or".into(), Value::Array(or));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Metadata;

    fn event(op: Operation, path: &str, prev: Option<&str>) -> Event {
        Event {
            event_id: String::new(),
            operation_type: op,
            file_path: path.into(),
            previous_path: prev.map(str::to_owned),
            volume_name: "vol1".into(),
            svm_name: "svm1".into(),
            timestamp: String::new(),
            file_size: 0,
            client_ip: None,
            metadata: Metadata {
                protocol: "nfsv4.1".into(),
                file_type: Some("FILE".into()),
                ..Metadata::default()
            },
        }
    }

    fn route(name: &str, f: impl FnOnce(&mut RouteConfig)) -> RouteConfig {
        let mut r = RouteConfig {
            name: name.into(),
            sinks: vec![format!("{name}-sink")],
            ..RouteConfig::default()
        };
        f(&mut r);
        r
    }

    fn router() -> Router {
        Router::new(
            &[
                route("legal", |r| {
                    r.path_prefixes = vec!["/legal/".into(), "/audit/".into()];
                    r.suffixes = vec![".pdf".into(), ".docx".into()];
                    r.operations = vec![Operation::Create, Operation::Rename];
                }),
                route("finance", |r| {
                    r.path_prefixes = vec!["/finance/".into()];
                    r.suffixes = vec![".pdf".into()];
                    r.case_insensitive_suffixes = true;
                }),
                route("nfs-logs", |r| {
                    r.globs = vec!["/**/logs/*.log".into()];
                    r.protocols = vec!["nfs".into()];
                    r.volumes = vec!["vol1".into()];
                }),
                route("all-pdf", |r| {
                    r.suffixes = vec![".pdf".into()];
                    r.sinks = vec!["legal-sink".into(), "archive".into()];
                }),
            ],
            &["default".into()],
        )
        .unwrap()
    }

    #[test]
    fn prefix_and_suffix_are_anded_not_ored() {
        let r = router();
        // The predecessor's OR sent this to finance too.
        let got = r.route(&event(Operation::Create, "/legal/audit/report.pdf", None));
        assert_eq!(got.routes, ["legal", "all-pdf"]);
        assert_eq!(
            got.sinks.iter().collect::<Vec<_>>(),
            ["archive", "legal-sink"]
        );
        let got = r.route(&event(Operation::Create, "/legal/notes.txt", None));
        assert!(got.routes.is_empty());
        assert_eq!(got.sinks.iter().collect::<Vec<_>>(), ["default"]);
    }

    #[test]
    fn operations_case_globs_protocols_and_renames() {
        let r = router();
        assert_eq!(
            r.route(&event(Operation::Write, "/legal/a.pdf", None))
                .routes,
            ["all-pdf"]
        );
        assert_eq!(
            r.route(&event(Operation::Write, "/finance/Q1.PDF", None))
                .routes,
            ["finance"]
        );
        assert_eq!(
            r.route(&event(Operation::Write, "/x/logs/app.log", None))
                .routes,
            ["nfs-logs"]
        );
        let mut smb = event(Operation::Write, "/x/logs/app.log", None);
        smb.metadata.protocol = "smb".into();
        assert!(r.route(&smb).routes.is_empty());
        // Renamed out of /legal/: the old path still matches.
        let moved = r.route(&event(
            Operation::Rename,
            "/tmp/x.bin",
            Some("/legal/a.docx"),
        ));
        assert_eq!(moved.routes, ["legal"]);
    }

    #[test]
    fn bad_routes_are_refused() {
        assert!(Router::new(&[route("a", |r| r.sinks.clear())], &[]).is_err());
        assert!(Router::new(&[route("a", |_| {}), route("a", |_| {})], &[]).is_err());
        assert!(
            Router::new(
                &[route("a", |r| r.path_prefixes = vec!["legal/".into()])],
                &[]
            )
            .is_err()
        );
        assert!(Router::new(&[route("a", |r| r.globs = vec!["/a/[".into()])], &[]).is_err());
        assert!(Router::new(&[route("", |_| {})], &[]).is_err());
    }

    #[test]
    fn eventbridge_patterns_express_the_and() {
        let r = route("legal", |r| {
            r.path_prefixes = vec!["/legal/".into()];
            r.suffixes = vec![".pdf".into()];
            r.operations = vec![Operation::Create];
            r.protocols = vec!["nfs".into(), "smb".into()];
        });
        let (p, warnings) = eventbridge_pattern(&r, "fsxn.fpolicy", "FPolicy File Operation");
        assert!(warnings.is_empty());
        assert_eq!(
            p,
            serde_json::json!({
                "source": ["fsxn.fpolicy"],
                "detail-type": ["FPolicy File Operation"],
                "detail": {
                    "operation_type": ["create"],
                    "$or": [
                        {"file_path": [{"wildcard": "/legal/*.pdf"}]},
                        {"previous_path": [{"wildcard": "/legal/*.pdf"}]}
                    ],
                    "metadata": {"protocol": [{"prefix": "nfs"}, "smb"]}
                }
            })
        );
        let star = route("s", |r| r.path_prefixes = vec!["/a*b/".into()]);
        let (p, _) = eventbridge_pattern(
            &RouteConfig {
                suffixes: vec![".x".into()],
                ..star
            },
            "s",
            "d",
        );
        assert_eq!(
            p["detail"]["$or"][0]["file_path"][0]["wildcard"],
            "/a\\*b/*.x"
        );
    }

    #[test]
    fn routes_can_match_users_by_name_sid_or_uid() {
        let r = Router::new(
            &[route("hr", |r| {
                r.users = vec!["alice".into(), "S-1-5-21-1-2-3-1013".into(), "1001".into()];
            })],
            &[],
        )
        .unwrap();
        let mut e = event(Operation::Create, "/x", None);
        assert!(r.route(&e).routes.is_empty());
        e.metadata.user_name = Some("Alice".into());
        assert_eq!(r.route(&e).routes, ["hr"]);
        e.metadata.user_name = None;
        e.metadata.uid = Some(1001);
        assert_eq!(r.route(&e).routes, ["hr"]);
        let bad = Router::new(&[route("x", |r| r.users = vec!["S-1-zz".into()])], &[]);
        assert!(bad.unwrap_err().to_string().contains("users"));
        let (pattern, _) = eventbridge_pattern(
            &route("hr", |r| r.users = vec!["alice".into(), "1001".into()]),
            "s",
            "d",
        );
        assert_eq!(
            pattern["detail"]["metadata"]["$or"],
            serde_json::json!([{"user_name": [{"equals-ignore-case": "alice"}]}, {"uid": [1001]}])
        );
    }
}
