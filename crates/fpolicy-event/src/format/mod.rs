//! Output formats: the same event in the shapes that other consumers
//! already parse. Each is a pure mapping from [`Event`] (no I/O); the
//! tables are in docs/formats.md.
//!
//! - `fpolicy`: the event as it is (docs/events.md), the default.
//! - [`s3`]: Amazon S3 event notifications (SQS message body, or the
//!   `detail` of an EventBridge "Object Created"/"Object Deleted" event),
//!   for events inside a configured S3 access point ([`AccessPoints`]).
//! - [`ocsf`]: OCSF File System Activity (class 1001), OCSF 1.3.0.
//! - [`ecs`]: Elastic Common Schema 8.11.
//! - [`cef`]: ArcSight CEF, for syslog.

pub mod cef;
pub mod ecs;
pub mod ocsf;
pub mod s3;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Operation};

pub use s3::{AccessPoint, AccessPoints};

/// The shape a sink delivers events in (`format` on every sink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The event as it is.
    #[default]
    Fpolicy,
    /// S3 event notifications.
    S3,
    /// OCSF File System Activity.
    Ocsf,
    /// Elastic Common Schema.
    Ecs,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Fpolicy => "fpolicy",
            Format::S3 => "s3",
            Format::Ocsf => "ocsf",
            Format::Ecs => "ecs",
        }
    }
}

/// Why an event has no representation in a format, so the sink does not
/// send it (counted per sink and reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// `s3`: a directory operation, or one that does not create, change or
    /// remove an object (read, open, getattr, …).
    NotAnObject,
    /// `s3`: the path is under no `[[access_point]]` of its volume.
    OutsideAccessPoints,
}

impl Skip {
    pub const ALL: [Skip; 2] = [Skip::NotAnObject, Skip::OutsideAccessPoints];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotAnObject => "not_an_object",
            Skip::OutsideAccessPoints => "outside_access_points",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The version of the product that writes the events (`metadata.product`
/// in OCSF, the CEF header, `observer.version` in ECS).
pub const VENDOR: &str = "NetApp";
pub const PRODUCT: &str = "ONTAP FPolicy";

/// The last component of a `/`-separated path (the path itself when it has
/// no `/`).
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// The directory of a path: `/a/b.txt` → `/a`, `/b.txt` → `/`.
pub fn parent_folder(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => "",
    }
}

/// The extension of a file name without its dot (`report.PDF` → `PDF`);
/// none for `.profile`, `name.` or `name`.
pub fn extension(name: &str) -> Option<&str> {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => Some(ext),
        _ => None,
    }
}

/// Whether the event is about a directory (by operation or file type).
pub fn is_directory(event: &Event) -> bool {
    matches!(
        event.operation_type,
        Operation::CreateDir | Operation::DeleteDir | Operation::RenameDir
    ) || event.metadata.file_type.as_deref() == Some("DIR")
}

/// Whether the event is about a symbolic link.
pub fn is_symlink(event: &Event) -> bool {
    event.operation_type == Operation::Symlink
        || event.metadata.file_type.as_deref() == Some("SYMLINK")
}

/// The user's id as ONTAP sent it: the SID (SMB) or the UID (NFS).
pub fn user_id(event: &Event) -> Option<String> {
    let m = &event.metadata;
    m.sid.clone().or_else(|| m.uid.map(|uid| uid.to_string()))
}

/// Whether a synchronous engine denied the operation.
pub fn denied(event: &Event) -> bool {
    event.metadata.screening.as_deref() == Some("deny")
}

/// The event's time in milliseconds since the Unix epoch (0 when the
/// timestamp does not parse, which normalization never produces).
pub fn epoch_millis(timestamp: &str) -> i64 {
    crate::time::parse_rfc3339(timestamp).map_or(0, |ns| ns.div_euclid(1_000_000))
}

/// The protocol family: `smb` or `nfs` (`metadata.protocol` is `nfsv3`,
/// `nfsv4.1`, …).
pub fn protocol_family(protocol: &str) -> &str {
    if protocol.starts_with("nfs") {
        "nfs"
    } else {
        protocol
    }
}

/// A short phrase for the operation (CEF's Name).
pub fn describe(op: Operation) -> &'static str {
    match op {
        Operation::Create => "File created",
        Operation::Write => "File written",
        Operation::Delete => "File deleted",
        Operation::Rename => "File renamed",
        Operation::CreateDir => "Directory created",
        Operation::DeleteDir => "Directory deleted",
        Operation::RenameDir => "Directory renamed",
        Operation::Read => "File read",
        Operation::Open => "File opened",
        Operation::Close => "File closed",
        Operation::Setattr => "Attributes set",
        Operation::Getattr => "Attributes read",
        Operation::Link => "Hard link created",
        Operation::Symlink => "Symbolic link created",
        Operation::Lookup => "Path looked up",
    }
}

/// Renders `event` as one JSON document in `format` (for the `s3` format:
/// an S3 event notification, `{"Records":[…]}`) and appends it to `out`.
/// `version` is the bridge's version.
pub fn render_json(
    format: Format,
    event: &Event,
    access_points: &AccessPoints,
    version: &str,
    out: &mut Vec<u8>,
) -> Result<(), Skip> {
    // Serializing plain structs of strings and integers cannot fail.
    match format {
        Format::Fpolicy => {
            let _ = serde_json::to_writer(&mut *out, event);
        }
        Format::S3 => {
            let changes = s3::changes(event, access_points)?;
            let _ = serde_json::to_writer(&mut *out, &s3::Notification::new(&changes));
        }
        Format::Ocsf => {
            let _ = serde_json::to_writer(&mut *out, &ocsf::FileActivity::new(event, version));
        }
        Format::Ecs => {
            let _ = serde_json::to_writer(&mut *out, &ecs::EcsEvent::new(event, version));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::event::{Event, Metadata, Operation};

    /// Every protocol the normalizer names, with the user id it carries.
    pub const PROTOCOLS: [&str; 4] = ["smb", "nfsv3", "nfsv4.0", "nfsv4.1"];

    /// An event of `op` over `protocol`, with every optional part set.
    pub fn event(op: Operation, protocol: &str) -> Event {
        let smb = protocol == "smb";
        Event {
            event_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
            operation_type: op,
            file_path: "/projects/q4 report+final.pdf".into(),
            previous_path: matches!(op, Operation::Rename | Operation::RenameDir)
                .then(|| "/projects/draft.pdf".into()),
            volume_name: "vol1".into(),
            svm_name: "svm1".into(),
            timestamp: "2026-12-02T10:00:00.123456Z".into(),
            file_size: 2048,
            client_ip: Some("10.0.0.5".into()),
            metadata: Metadata {
                protocol: protocol.into(),
                req_type: "SMB_CREAT".into(),
                sid: smb.then(|| "S-1-5-21-1-2-3-1013".into()),
                uid: (!smb).then_some(1001),
                user_name: Some("alice".into()),
                vol_msid: 7,
                svm_uuid: "4b1c3f2e-0000-11ef-9a1b-005056bb1234".into(),
                received_at: "2026-12-02T10:00:00.200000Z".into(),
                engine: "async".into(),
                s3_key: "projects/q4 report+final.pdf".into(),
                ..Metadata::default()
            },
        }
    }

    /// Every operation over every protocol.
    pub fn all_events() -> Vec<Event> {
        let mut v = Vec::new();
        for op in Operation::ALL {
            for p in PROTOCOLS {
                v.push(event(op, p));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts() {
        assert_eq!(file_name("/a/b.txt"), "b.txt");
        assert_eq!(file_name("b"), "b");
        assert_eq!(parent_folder("/a/b.txt"), "/a");
        assert_eq!(parent_folder("/b.txt"), "/");
        assert_eq!(parent_folder("b"), "");
        assert_eq!(extension("r.PDF"), Some("PDF"));
        assert_eq!(extension(".profile"), None);
        assert_eq!(extension("name."), None);
        assert_eq!(extension("name"), None);
        assert_eq!(extension("a.tar.gz"), Some("gz"));
    }

    #[test]
    fn formats_parse_from_their_names() {
        for f in [Format::Fpolicy, Format::S3, Format::Ocsf, Format::Ecs] {
            let parsed: Format = serde_json::from_str(&format!("\"{}\"", f.as_str())).unwrap();
            assert_eq!(parsed, f);
        }
        assert!(serde_json::from_str::<Format>("\"json\"").is_err());
    }

    #[test]
    fn every_event_renders_as_json_in_every_format_or_is_skipped_for_s3() {
        let aps = AccessPoints::new(vec![AccessPoint::new("vol1", "ap-alias", "/")]);
        for e in tests_support::all_events() {
            for f in [Format::Fpolicy, Format::S3, Format::Ocsf, Format::Ecs] {
                let mut out = Vec::new();
                match render_json(f, &e, &aps, "0.1.0", &mut out) {
                    Ok(()) => {
                        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                        assert!(v.is_object(), "{f:?} {:?}", e.operation_type);
                    }
                    Err(skip) => {
                        assert_eq!(f, Format::S3);
                        assert_eq!(skip, Skip::NotAnObject, "{:?}", e.operation_type);
                    }
                }
            }
        }
    }
}
