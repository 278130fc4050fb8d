//! The JSON event: one object per notification, identical in every sink.
//!
//! Top-level keys are the predecessor's (`event_id`, `operation_type`,
//! `file_path`, `previous_path`, `volume_name`, `svm_name`, `timestamp`,
//! `file_size`, `client_ip`, `metadata`) so its consumers keep working;
//! everything else lives under `metadata`. docs/events.md is the reference
//! and docs/event.schema.json the JSON Schema.

use serde::{Deserialize, Serialize};

/// What happened to the file, independent of protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Write,
    Delete,
    Rename,
    CreateDir,
    DeleteDir,
    RenameDir,
    Read,
    Open,
    Close,
    Setattr,
    Getattr,
    Link,
    Symlink,
    Lookup,
}

impl Operation {
    pub const ALL: [Operation; 15] = [
        Operation::Create,
        Operation::Write,
        Operation::Delete,
        Operation::Rename,
        Operation::CreateDir,
        Operation::DeleteDir,
        Operation::RenameDir,
        Operation::Read,
        Operation::Open,
        Operation::Close,
        Operation::Setattr,
        Operation::Getattr,
        Operation::Link,
        Operation::Symlink,
        Operation::Lookup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Write => "write",
            Operation::Delete => "delete",
            Operation::Rename => "rename",
            Operation::CreateDir => "create_dir",
            Operation::DeleteDir => "delete_dir",
            Operation::RenameDir => "rename_dir",
            Operation::Read => "read",
            Operation::Open => "open",
            Operation::Close => "close",
            Operation::Setattr => "setattr",
            Operation::Getattr => "getattr",
            Operation::Link => "link",
            Operation::Symlink => "symlink",
            Operation::Lookup => "lookup",
        }
    }

    /// Stable one-byte code used in spool records.
    pub fn code(self) -> u8 {
        Operation::ALL
            .iter()
            .position(|o| *o == self)
            .map_or(u8::MAX, |i| i as u8)
    }

    pub fn from_code(code: u8) -> Option<Operation> {
        Operation::ALL.get(usize::from(code)).copied()
    }

    /// Index for per-operation counters.
    pub fn index(self) -> usize {
        usize::from(self.code())
    }

    /// The four operations of the predecessor's schema.
    pub fn in_seed_schema(self) -> bool {
        matches!(
            self,
            Operation::Create | Operation::Write | Operation::Delete | Operation::Rename
        )
    }
}

impl std::str::FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .iter()
            .copied()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
                format!(
                    "unknown operation {s:?}; expected one of {}",
                    all.join(", ")
                )
            })
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file operation as delivered to every sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// UUID derived from the notification's identity (see [`crate::id`]):
    /// the same notification always gets the same id.
    pub event_id: String,
    pub operation_type: Operation,
    /// Volume-relative, `/`-separated, leading `/`. For renames: the new path.
    pub file_path: String,
    /// Renames only: the old path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_path: Option<String>,
    pub volume_name: String,
    pub svm_name: String,
    /// RFC 3339 UTC: ONTAP's GenerationTime when usable, else receive time.
    pub timestamp: String,
    pub file_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    pub metadata: Metadata,
}

/// Everything beyond the predecessor's keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// `smb`, `nfsv3`, `nfsv4.0`, `nfsv4.1`, … (`nfs` when ONTAP sent no version).
    pub protocol: String,
    /// Client protocol version as sent (`3.1` for SMB 3.1.1, `4.1` for NFSv4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The ReqType as ONTAP sent it, e.g. `SMB_WR`.
    pub req_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The account name of `sid` or `uid` (`sAMAccountName` or the POSIX
    /// `uid`), when the identity table knows it (`[identity]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The user's `userPrincipalName` (`alice@example.com`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal: Option<String>,
    /// `FILE`, `DIR`, `STREAM`, `SYMLINK`, or what ONTAP sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
    pub vol_msid: u64,
    pub svm_uuid: String,
    pub policy_name: String,
    pub session_id: String,
    pub req_id: u64,
    /// Address of the ONTAP node (LIF) that sent the notification.
    pub ontap_peer: String,
    /// The object key for an S3 Access Point: `file_path` without its leading `/`.
    pub s3_key: String,
    /// Links: the new link's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_path: Option<String>,
    /// Reads and writes: byte offset and length of the I/O.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_length: Option<u32>,
    /// ONTAP's GenerationTime, raw (unit undocumented; see docs/events.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_time: Option<u64>,
    /// When fpolicy-bridge received the notification (RFC 3339 UTC).
    pub received_at: String,
    /// `sync` or `async`: the engine type configured for the policy.
    pub engine: String,
    /// Synchronous engines: `allow` or `deny`, as answered to ONTAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screening: Option<String>,
    /// The rule that denied the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screening_rule: Option<String>,
    /// `poll` for events found by S3 Access Point polling (absent: FPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The routes the event matched (`[[route]]` names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// Write-complete coalescing: how many notifications this event stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesced: Option<u32>,
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A plain NFS create of `/a/b.txt` on vol1 of svm1.
    pub fn sample_event() -> Event {
        Event {
            event_id: String::new(),
            operation_type: Operation::Create,
            file_path: "/a/b.txt".into(),
            previous_path: None,
            volume_name: "vol1".into(),
            svm_name: "svm1".into(),
            timestamp: String::new(),
            file_size: 0,
            client_ip: None,
            metadata: Metadata {
                protocol: "nfsv3".into(),
                ..Metadata::default()
            },
        }
    }
}
