//! OCSF 1.3.0 File System Activity (class_uid 1001, category_uid 1).
//!
//! | event | activity_id |
//! |---|---|
//! | create, create_dir | 1 Create |
//! | read | 2 Read |
//! | write | 3 Update |
//! | delete, delete_dir | 4 Delete |
//! | rename, rename_dir | 5 Rename (`file` = the old path, `file_result` = the new) |
//! | setattr | 6 Set Attributes |
//! | getattr | 8 Get Attributes |
//! | open | 14 Open |
//! | close, link, symlink, lookup | 99 Other (`activity_name` says which) |
//!
//! A synchronous deny is `status_id` 2 Failure with the rule in
//! `status_detail` and severity Medium; everything else is Success and
//! Informational. File System Activity has no `src_endpoint` in any OCSF
//! version, so the client's address is an observable (type IP Address,
//! name `client_ip`) and in `unmapped`.

use serde::Serialize;

use super::{PRODUCT, VENDOR};
use crate::event::{Event, Operation};

pub const OCSF_VERSION: &str = "1.3.0";
pub const CLASS_UID: u32 = 1001;
pub const CATEGORY_UID: u32 = 1;

/// OCSF activity id and name of an operation.
pub fn activity(op: Operation) -> (u32, &'static str) {
    match op {
        Operation::Create | Operation::CreateDir => (1, "Create"),
        Operation::Read => (2, "Read"),
        Operation::Write => (3, "Update"),
        Operation::Delete | Operation::DeleteDir => (4, "Delete"),
        Operation::Rename | Operation::RenameDir => (5, "Rename"),
        Operation::Setattr => (6, "Set Attributes"),
        Operation::Getattr => (8, "Get Attributes"),
        Operation::Open => (14, "Open"),
        Operation::Close => (99, "Close"),
        Operation::Link => (99, "Link"),
        Operation::Symlink => (99, "Symlink"),
        Operation::Lookup => (99, "Lookup"),
    }
}

#[derive(Debug, Serialize)]
pub struct FileActivity<'a> {
    activity_id: u32,
    activity_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    class_uid: u32,
    class_name: &'static str,
    type_uid: u32,
    type_name: String,
    time: i64,
    severity_id: u32,
    severity: &'static str,
    status_id: u32,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_detail: Option<String>,
    metadata: Metadata<'a>,
    actor: Actor<'a>,
    device: Device<'a>,
    file: File<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_result: Option<File<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    observables: Vec<Observable<'a>>,
    unmapped: Unmapped<'a>,
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    version: &'static str,
    uid: &'a str,
    product: Product<'a>,
    log_provider: &'static str,
    logged_time: i64,
}

#[derive(Debug, Serialize)]
struct Product<'a> {
    name: &'static str,
    vendor_name: &'static str,
    version: &'a str,
}

#[derive(Debug, Serialize)]
struct Actor<'a> {
    user: User<'a>,
}

#[derive(Debug, Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_addr: Option<&'a str>,
    type_id: u32,
}

#[derive(Debug, Serialize)]
struct Device<'a> {
    type_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    uid: &'a str,
}

#[derive(Debug, Serialize)]
struct File<'a> {
    name: &'a str,
    path: &'a str,
    parent_folder: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ext: Option<&'a str>,
    type_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Observable<'a> {
    name: &'static str,
    type_id: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct Unmapped<'a> {
    volume_name: &'a str,
    protocol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<&'a str>,
    req_type: &'a str,
}

impl<'a> File<'a> {
    fn new(path: &'a str, event: &Event, size: Option<u64>) -> File<'a> {
        let name = super::file_name(path);
        let (type_id, kind) = if super::is_directory(event) {
            (2, "Folder")
        } else if super::is_symlink(event) {
            (7, "Symbolic Link")
        } else {
            (1, "Regular File")
        };
        File {
            name,
            path,
            parent_folder: super::parent_folder(path),
            ext: super::extension(name),
            type_id,
            kind,
            size: if type_id == 1 { size } else { None },
        }
    }
}

impl<'a> FileActivity<'a> {
    /// The OCSF event of `event`; `version` is the bridge's.
    pub fn new(event: &'a Event, version: &'a str) -> FileActivity<'a> {
        let (activity_id, activity_name) = activity(event.operation_type);
        let m = &event.metadata;
        let denied = super::denied(event);
        let size = Some(event.file_size);
        let (file, file_result) = match (&event.previous_path, event.operation_type) {
            (Some(old), Operation::Rename | Operation::RenameDir) => (
                File::new(old, event, size),
                Some(File::new(&event.file_path, event, size)),
            ),
            _ => (File::new(&event.file_path, event, size), None),
        };
        let uid = super::user_id(event);
        let known_user = m.user_name.is_some() || uid.is_some();
        FileActivity {
            activity_id,
            activity_name,
            category_uid: CATEGORY_UID,
            category_name: "System Activity",
            class_uid: CLASS_UID,
            class_name: "File System Activity",
            type_uid: CLASS_UID * 100 + activity_id,
            type_name: format!("File System Activity: {activity_name}"),
            time: super::epoch_millis(&event.timestamp),
            severity_id: if denied { 3 } else { 1 },
            severity: if denied { "Medium" } else { "Informational" },
            status_id: if denied { 2 } else { 1 },
            status: if denied { "Failure" } else { "Success" },
            status_detail: denied.then(|| match &m.screening_rule {
                Some(rule) => format!("denied by screening rule {rule}"),
                None => "denied by screening".into(),
            }),
            metadata: Metadata {
                version: OCSF_VERSION,
                uid: &event.event_id,
                product: Product {
                    name: PRODUCT,
                    vendor_name: VENDOR,
                    version,
                },
                log_provider: "fpolicy-bridge",
                logged_time: super::epoch_millis(&m.received_at),
            },
            actor: Actor {
                user: User {
                    name: m.user_name.as_deref(),
                    uid,
                    email_addr: m.user_principal.as_deref(),
                    type_id: u32::from(known_user),
                },
            },
            device: Device {
                type_id: 1,
                kind: "Server",
                name: &event.svm_name,
                uid: &m.svm_uuid,
            },
            file,
            file_result,
            observables: event
                .client_ip
                .as_deref()
                .map(|ip| Observable {
                    name: "client_ip",
                    type_id: 2,
                    kind: "IP Address",
                    value: ip,
                })
                .into_iter()
                .collect(),
            unmapped: Unmapped {
                volume_name: &event.volume_name,
                protocol: &m.protocol,
                client_ip: event.client_ip.as_deref(),
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
    fn every_operation_has_its_activity_and_type_uid() {
        for e in all_events() {
            let v = serde_json::to_value(FileActivity::new(&e, "0.1.0")).unwrap();
            let (id, name) = activity(e.operation_type);
            assert_eq!(v["class_uid"], 1001);
            assert_eq!(v["category_uid"], 1);
            assert_eq!(v["activity_id"], id);
            assert_eq!(v["activity_name"], name);
            assert_eq!(v["type_uid"], 100100 + id);
            assert_eq!(v["time"], 1_796_205_600_123i64);
            assert_eq!(v["metadata"]["uid"], e.event_id.as_str());
            assert_eq!(v["metadata"]["version"], "1.3.0");
            assert_eq!(v["device"]["name"], "svm1");
            assert_eq!(v["actor"]["user"]["name"], "alice");
            assert_eq!(v["status_id"], 1);
            let uid = v["actor"]["user"]["uid"].as_str().unwrap();
            assert!(uid == "S-1-5-21-1-2-3-1013" || uid == "1001");
            assert_eq!(v["observables"][0]["value"], "10.0.0.5");
            match e.operation_type {
                Operation::Rename | Operation::RenameDir => {
                    assert_eq!(v["file"]["path"], "/projects/draft.pdf");
                    assert_eq!(v["file_result"]["path"], "/projects/q4 report+final.pdf");
                }
                _ => {
                    assert_eq!(v["file"]["path"], "/projects/q4 report+final.pdf");
                    assert_eq!(v["file"]["name"], "q4 report+final.pdf");
                    assert_eq!(v["file"]["parent_folder"], "/projects");
                    assert!(v.get("file_result").is_none());
                }
            }
            let dir = matches!(
                e.operation_type,
                Operation::CreateDir | Operation::DeleteDir | Operation::RenameDir
            );
            assert_eq!(
                v["file"]["type_id"],
                if dir {
                    2
                } else if e.operation_type == Operation::Symlink {
                    7
                } else {
                    1
                }
            );
        }
    }

    #[test]
    fn a_deny_is_a_failure_with_the_rule() {
        let mut e = event(Operation::Write, "smb");
        e.metadata.engine = "sync".into();
        e.metadata.screening = Some("deny".into());
        e.metadata.screening_rule = Some("no-exe".into());
        let v = serde_json::to_value(FileActivity::new(&e, "0.1.0")).unwrap();
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["status_detail"], "denied by screening rule no-exe");
        assert_eq!(v["severity_id"], 3);
    }

    #[test]
    fn an_unknown_user_is_still_an_actor() {
        let mut e = event(Operation::Create, "nfsv3");
        e.metadata.uid = None;
        e.metadata.user_name = None;
        e.client_ip = None;
        let v = serde_json::to_value(FileActivity::new(&e, "0.1.0")).unwrap();
        assert_eq!(v["actor"]["user"], serde_json::json!({"type_id": 0}));
        assert!(v.get("observables").is_none());
    }
}
