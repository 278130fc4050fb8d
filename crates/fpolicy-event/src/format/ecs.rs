//! Elastic Common Schema 8.11: one ECS document per event.
//!
//! | event | event.type | event.action |
//! |---|---|---|
//! | create, create_dir, link, symlink | creation | the operation |
//! | write, setattr, rename, rename_dir | change | |
//! | delete, delete_dir | deletion | |
//! | read, open, close, getattr, lookup | access | |
//!
//! `event.kind` is `event`, `event.category` `file`; `event.outcome` is
//! `failure` for a synchronous deny, else `success`. What ECS has no field
//! for (the old path of a rename, the volume, the SVM's UUID) is under the
//! custom `fpolicy` object.

use serde::Serialize;

use super::{PRODUCT, VENDOR};
use crate::event::{Event, Operation};

pub const ECS_VERSION: &str = "8.11.0";

/// `event.type` of an operation.
pub fn event_type(op: Operation) -> &'static str {
    match op {
        Operation::Create | Operation::CreateDir | Operation::Link | Operation::Symlink => {
            "creation"
        }
        Operation::Write | Operation::Setattr | Operation::Rename | Operation::RenameDir => {
            "change"
        }
        Operation::Delete | Operation::DeleteDir => "deletion",
        Operation::Read
        | Operation::Open
        | Operation::Close
        | Operation::Getattr
        | Operation::Lookup => "access",
    }
}

#[derive(Debug, Serialize)]
pub struct EcsEvent<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: &'a str,
    ecs: Ecs,
    event: EventFields<'a>,
    file: File<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source<'a>>,
    host: Host<'a>,
    network: Network<'a>,
    observer: Observer<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<Rule<'a>>,
    fpolicy: Custom<'a>,
}

#[derive(Debug, Serialize)]
struct Ecs {
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct EventFields<'a> {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    kind_of_change: [&'static str; 1],
    action: &'static str,
    id: &'a str,
    outcome: &'static str,
    created: &'a str,
    dataset: &'static str,
}

#[derive(Debug, Serialize)]
struct File<'a> {
    path: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<&'a str>,
    directory: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Source<'a> {
    ip: &'a str,
}

#[derive(Debug, Serialize)]
struct Host<'a> {
    name: &'a str,
    id: &'a str,
}

#[derive(Debug, Serialize)]
struct Network<'a> {
    protocol: &'a str,
}

#[derive(Debug, Serialize)]
struct Observer<'a> {
    vendor: &'static str,
    product: &'static str,
    version: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct Rule<'a> {
    name: &'a str,
}

/// Custom fields (not ECS): what ECS has no field for.
#[derive(Debug, Serialize)]
struct Custom<'a> {
    volume_name: &'a str,
    svm_uuid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_path: Option<&'a str>,
    protocol: &'a str,
    req_type: &'a str,
}

impl<'a> EcsEvent<'a> {
    /// The ECS document of `event`; `version` is the bridge's.
    pub fn new(event: &'a Event, version: &'a str) -> EcsEvent<'a> {
        let m = &event.metadata;
        let path = event.file_path.as_str();
        let name = super::file_name(path);
        let dir = super::is_directory(event);
        let kind = if dir {
            "dir"
        } else if super::is_symlink(event) {
            "symlink"
        } else {
            "file"
        };
        let uid = super::user_id(event);
        let denied = super::denied(event);
        EcsEvent {
            timestamp: &event.timestamp,
            ecs: Ecs {
                version: ECS_VERSION,
            },
            event: EventFields {
                kind: "event",
                category: ["file"],
                kind_of_change: [event_type(event.operation_type)],
                action: event.operation_type.as_str(),
                id: &event.event_id,
                outcome: if denied { "failure" } else { "success" },
                created: &m.received_at,
                dataset: "fpolicy.file",
            },
            file: File {
                path,
                name,
                extension: if dir { None } else { super::extension(name) },
                directory: super::parent_folder(path),
                size: (kind == "file").then_some(event.file_size),
                kind,
            },
            user: (m.user_name.is_some() || uid.is_some()).then_some(User {
                name: m.user_name.as_deref(),
                id: uid,
                email: m.user_principal.as_deref(),
            }),
            source: event.client_ip.as_deref().map(|ip| Source { ip }),
            host: Host {
                name: &event.svm_name,
                id: &m.svm_uuid,
            },
            network: Network {
                protocol: super::protocol_family(&m.protocol),
            },
            observer: Observer {
                vendor: VENDOR,
                product: PRODUCT,
                version,
                kind: "file-server",
            },
            rule: if denied {
                m.screening_rule.as_deref().map(|name| Rule { name })
            } else {
                None
            },
            fpolicy: Custom {
                volume_name: &event.volume_name,
                svm_uuid: &m.svm_uuid,
                previous_path: event.previous_path.as_deref(),
                protocol: &m.protocol,
                req_type: &m.req_type,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tests_support::{all_events, event};

    #[test]
    fn every_operation_has_its_categorization() {
        for e in all_events() {
            let v = serde_json::to_value(EcsEvent::new(&e, "0.1.0")).unwrap();
            assert_eq!(v["@timestamp"], "2026-12-02T10:00:00.123456Z");
            assert_eq!(v["ecs"]["version"], "8.11.0");
            assert_eq!(v["event"]["kind"], "event");
            assert_eq!(v["event"]["category"], serde_json::json!(["file"]));
            assert_eq!(v["event"]["type"][0], event_type(e.operation_type));
            assert_eq!(v["event"]["action"], e.operation_type.as_str());
            assert_eq!(v["event"]["outcome"], "success");
            assert_eq!(v["file"]["path"], "/projects/q4 report+final.pdf");
            assert_eq!(v["file"]["directory"], "/projects");
            assert_eq!(v["host"]["name"], "svm1");
            assert_eq!(v["source"]["ip"], "10.0.0.5");
            assert_eq!(v["user"]["name"], "alice");
            let family = v["network"]["protocol"].as_str().unwrap();
            assert!(family == "smb" || family == "nfs");
            let dir = matches!(
                e.operation_type,
                Operation::CreateDir | Operation::DeleteDir | Operation::RenameDir
            );
            assert_eq!(
                v["file"]["type"],
                if dir {
                    "dir"
                } else if e.operation_type == Operation::Symlink {
                    "symlink"
                } else {
                    "file"
                }
            );
            assert_eq!(v["file"].get("extension").is_some(), !dir);
        }
    }

    #[test]
    fn a_rename_keeps_its_old_path_and_a_deny_fails() {
        let mut e = event(Operation::Rename, "smb");
        e.metadata.screening = Some("deny".into());
        e.metadata.screening_rule = Some("no-rename".into());
        let v = serde_json::to_value(EcsEvent::new(&e, "0.1.0")).unwrap();
        assert_eq!(v["fpolicy"]["previous_path"], "/projects/draft.pdf");
        assert_eq!(v["event"]["outcome"], "failure");
        assert_eq!(v["rule"]["name"], "no-rename");
    }
}
