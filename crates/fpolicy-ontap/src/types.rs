//! ONTAP REST resources, with the field names and enums of the ONTAP REST
//! reference (`/api/protocols/fpolicy/{svm.uuid}/…`, `/api/svm/svms`,
//! `/api/storage/volumes`). Only the fields fpolicy-bridge uses; ONTAP
//! ignores nothing it is sent, so `None` fields are not serialized.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct Records<T> {
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
    #[serde(default)]
    pub num_records: u64,
}

/// One page of a collection, with the link to the next one.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
    #[serde(default, rename = "_links")]
    pub links: Option<PageLinks>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PageLinks {
    #[serde(default)]
    pub next: Option<Href>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Href {
    pub href: String,
}

/// `/api/protocols/cifs/local-users`
#[derive(Debug, Clone, Deserialize)]
pub struct CifsLocalUser {
    pub name: String,
    #[serde(default)]
    pub sid: Option<String>,
}

/// `/api/name-services/unix-users`
#[derive(Debug, Clone, Deserialize)]
pub struct UnixUser {
    pub name: String,
    #[serde(default)]
    pub id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRef {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Svm {
    pub name: String,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BufferSize {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recv_buffer: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_buffer: Option<u64>,
}

/// `/api/protocols/fpolicy/{svm.uuid}/engines`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Engine {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_servers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_servers: Option<Vec<String>>,
    /// `synchronous` or `asynchronous`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `xml` or `protobuf`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `no_auth`, `server_auth` or `mutual_auth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_option: Option<String>,
    /// ISO 8601 duration, e.g. `PT2M`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_size: Option<BufferSize>,
}

/// `file_operations` of an event: the operations ONTAP reports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileOperations {
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub create_dir: bool,
    #[serde(default)]
    pub delete: bool,
    #[serde(default)]
    pub delete_dir: bool,
    #[serde(default)]
    pub rename: bool,
    #[serde(default)]
    pub rename_dir: bool,
    #[serde(default)]
    pub write: bool,
    #[serde(default)]
    pub close: bool,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub open: bool,
    #[serde(default)]
    pub setattr: bool,
    #[serde(default)]
    pub getattr: bool,
    #[serde(default)]
    pub link: bool,
    #[serde(default)]
    pub symlink: bool,
    #[serde(default)]
    pub lookup: bool,
}

/// `/api/protocols/fpolicy/{svm.uuid}/events`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    /// `cifs`, `nfsv3` or `nfsv4`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_operations: Option<FileOperations>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_monitoring: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_volumes: Vec<String>,
}

/// `/api/protocols/fpolicy/{svm.uuid}/policies`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mandatory: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<NameRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<NameRef>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// ONTAP 9.14.1+: the persistent store's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_store: Option<String>,
}

/// `/api/protocols/fpolicy/{svm.uuid}/persistent-stores` (9.14.1+)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PersistentStore {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// `/api/protocols/fpolicy/{svm.uuid}/connections` (9.10+)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub node: NodeRef,
    pub policy: NameRef,
    pub server: String,
    /// `connected`, `disconnected`, `connecting`, `disconnecting`.
    pub state: String,
    /// `primary` or `secondary`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_reason: Option<serde_json::Value>,
}

/// `/api/storage/volumes?msid=…`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub msid: Option<u64>,
    #[serde(default)]
    pub svm: Option<Svm>,
}
