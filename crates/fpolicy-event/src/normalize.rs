//! SCREEN_REQ → [`Event`]: a pure function of the request, the session it
//! came on, the receive time and the names known.

use fpolicy_proto::{
    ClientProtocolVersion, FileType, Operation as WireOp, OperationFields, PathName, PathNameType,
    Protocol, ScreenRequest, UserIdentity,
};
use serde::{Deserialize, Serialize};

use crate::event::{Event, Metadata, Operation};
use crate::id::IdBuilder;
use crate::names::NameResolver;
use crate::time::{UnixNanos, rfc3339};

/// How the engine of a policy waits for answers. The wire does not say; it
/// is configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineType {
    Asynchronous,
    Synchronous,
}

/// What a session learned from its handshake and socket.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub svm_uuid: String,
    pub policy_name: String,
    pub session_id: String,
    /// The ONTAP node's address (`10.0.0.5:41234`).
    pub peer: String,
    pub engine: EngineType,
}

/// How to read `GenerationTime`, whose unit NetApp does not document (a
/// published sample carries `9685710478`, which is no plausible Unix time
/// in any unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerationTimeUnit {
    /// Use it when, read as s, ms, µs or ns since the epoch, it lands within
    /// a day of the receive time; otherwise use the receive time.
    #[default]
    Auto,
    /// Always use the receive time.
    Ignore,
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
}

const DAY_NANOS: i128 = 86_400 * 1_000_000_000;

impl GenerationTimeUnit {
    /// The event time for a raw GenerationTime received at `received`.
    pub fn resolve(self, raw: Option<u64>, received: UnixNanos) -> UnixNanos {
        let Some(raw) = raw else { return received };
        let as_nanos = |mult: i128| {
            let t = i128::from(raw) * mult;
            i64::try_from(t).ok()
        };
        let plausible = |t: Option<i64>| {
            t.filter(|t| (i128::from(*t) - i128::from(received)).abs() <= DAY_NANOS)
        };
        let pick = match self {
            GenerationTimeUnit::Ignore => None,
            GenerationTimeUnit::Seconds => as_nanos(1_000_000_000),
            GenerationTimeUnit::Milliseconds => as_nanos(1_000_000),
            GenerationTimeUnit::Microseconds => as_nanos(1_000),
            GenerationTimeUnit::Nanoseconds => as_nanos(1),
            GenerationTimeUnit::Auto => [1_000_000_000, 1_000_000, 1_000, 1]
                .into_iter()
                .find_map(|m| plausible(as_nanos(m))),
        };
        pick.unwrap_or(received)
    }
}

/// Maps a ReqType's operation to the event operation. Directory variants
/// also come from ONTAP as the file ReqType with `FileType` DIR.
pub fn operation(req: &ScreenRequest) -> Operation {
    let is_dir = req.common.file_type == Some(FileType::Dir);
    match req.req_type.operation() {
        WireOp::Create if is_dir => Operation::CreateDir,
        WireOp::Delete if is_dir => Operation::DeleteDir,
        WireOp::Rename if is_dir => Operation::RenameDir,
        WireOp::Create => Operation::Create,
        WireOp::CreateDir => Operation::CreateDir,
        WireOp::Delete => Operation::Delete,
        WireOp::DeleteDir => Operation::DeleteDir,
        WireOp::Rename => Operation::Rename,
        WireOp::RenameDir => Operation::RenameDir,
        WireOp::Write => Operation::Write,
        WireOp::Read => Operation::Read,
        WireOp::Open => Operation::Open,
        WireOp::Close => Operation::Close,
        WireOp::SetAttr => Operation::Setattr,
        WireOp::GetAttr => Operation::Getattr,
        WireOp::Link => Operation::Link,
        WireOp::Symlink => Operation::Symlink,
        WireOp::Lookup => Operation::Lookup,
    }
}

/// The volume-relative path of a set of names: the UNIX name when present,
/// else the Windows name (then its 8.3 form) with `\` turned into `/`.
/// Always starts with `/`, never has empty components or a trailing `/`.
pub fn volume_path(names: &[PathName]) -> Option<String> {
    let find = |t: &PathNameType| names.iter().find(|p| p.name_type.as_ref() == Some(t));
    let (raw, windows) = if let Some(p) = find(&PathNameType::UnixName) {
        (p.name.as_str(), false)
    } else if let Some(p) = find(&PathNameType::WinName).or_else(|| find(&PathNameType::Win83Name))
    {
        (p.name.as_str(), true)
    } else {
        let p = names.first()?;
        (
            p.name.as_str(),
            p.name.contains('\\') && !p.name.contains('/'),
        )
    };
    Some(clean_path(raw, windows))
}

fn clean_path(raw: &str, windows: bool) -> String {
    let raw = raw.trim_end_matches('\0');
    let mut out = String::with_capacity(raw.len() + 1);
    let sep = |c: char| c == '/' || (windows && c == '\\');
    for part in raw.split(sep).filter(|p| !p.is_empty()) {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `smb`, `nfsv3`, `nfsv4.0`, `nfsv4.1`, …
fn protocol_name(req: &ScreenRequest) -> (String, Option<String>) {
    let given = req.common.protocol_version;
    let version = given.map(version_text);
    let name = match (req.req_type.protocol(), given, &version) {
        (Protocol::Smb, _, _) => "smb".to_owned(),
        (Protocol::Nfs, Some(v), _) if v.major <= 3 => {
            ["nfsv", ["0", "1", "2", "3"][v.major as usize]].concat()
        }
        (Protocol::Nfs, _, Some(text)) => ["nfsv", text].concat(),
        (Protocol::Nfs, _, None) => "nfs".to_owned(),
    };
    (name, version)
}

/// `major.minor`, without the formatting machinery for the usual one-digit
/// versions (this runs for every event).
fn version_text(v: ClientProtocolVersion) -> String {
    match (u8::try_from(v.major), u8::try_from(v.minor)) {
        (Ok(major @ 0..=9), Ok(minor @ 0..=9)) => {
            String::from_utf8(vec![b'0' + major, b'.', b'0' + minor]).expect("ASCII digits")
        }
        _ => format!("{}.{}", v.major, v.minor),
    }
}

/// Builds events from requests.
pub struct Normalizer<'a> {
    pub names: &'a dyn NameResolver,
    pub generation_time: GenerationTimeUnit,
}

impl Normalizer<'_> {
    pub fn normalize(
        &self,
        req: &ScreenRequest,
        session: &SessionInfo,
        received: UnixNanos,
    ) -> Event {
        let op = operation(req);
        let common = &req.common;
        let source = volume_path(&common.access_path).unwrap_or_else(|| "/".to_owned());
        let target = match &req.fields {
            OperationFields::Target { target } => volume_path(target),
            _ => None,
        };
        let (file_path, previous_path, link_path) = match op {
            Operation::Rename | Operation::RenameDir => match target {
                Some(t) => (t, Some(source), None),
                None => (source, None, None),
            },
            _ => (source, None, target),
        };
        let (uid, sid) = match &common.user {
            Some(UserIdentity::UnixUid(u)) => (Some(*u), None),
            Some(UserIdentity::WinSid(s)) => (None, Some(s.clone())),
            Some(UserIdentity::Mapped { uid, win_sid }) => (Some(*uid), Some(win_sid.clone())),
            None => (None, None),
        };
        let (io_offset, io_length) = match req.fields {
            OperationFields::Read { offset, length }
            | OperationFields::Write { offset, length } => (Some(offset), Some(length)),
            _ => (None, None),
        };
        let (protocol, protocol_version) = protocol_name(req);
        let event_id = IdBuilder::new()
            .str(&session.svm_uuid)
            .str(&session.policy_name)
            .str(&session.session_id)
            .u64(req.req_id)
            .str(req.req_type.as_str())
            .u64(common.generation_time.unwrap_or(u64::MAX))
            .u64(common.vol_msid)
            .str(&file_path)
            .str(previous_path.as_deref().unwrap_or(""))
            .finish();
        let when = self
            .generation_time
            .resolve(common.generation_time, received);
        let client_ip = common
            .client_ip
            .as_deref()
            .map(str::trim)
            .filter(|ip| !ip.is_empty())
            .map(str::to_owned);
        Event {
            event_id,
            operation_type: op,
            file_path: file_path.clone(),
            previous_path,
            volume_name: self
                .names
                .volume_name(&session.svm_uuid, common.vol_msid)
                .to_string(),
            svm_name: self.names.svm_name(&session.svm_uuid).to_string(),
            timestamp: rfc3339(when),
            file_size: common.file_size,
            client_ip,
            metadata: Metadata {
                protocol,
                protocol_version,
                req_type: req.req_type.as_str().to_owned(),
                user_id_type: common.user_id_type.as_ref().map(|t| t.as_str().to_owned()),
                uid,
                sid,
                user_name: None,
                user_principal: None,
                file_type: common.file_type.as_ref().map(|t| t.as_str().to_owned()),
                vol_msid: common.vol_msid,
                svm_uuid: session.svm_uuid.clone(),
                policy_name: session.policy_name.clone(),
                session_id: session.session_id.clone(),
                req_id: req.req_id,
                ontap_peer: session.peer.clone(),
                s3_key: file_path.trim_start_matches('/').to_owned(),
                link_path,
                io_offset,
                io_length,
                generation_time: common.generation_time,
                received_at: rfc3339(received),
                engine: match session.engine {
                    EngineType::Asynchronous => "async",
                    EngineType::Synchronous => "sync",
                }
                .to_owned(),
                screening: None,
                screening_rule: None,
                origin: None,
                routes: Vec::new(),
                coalesced: None,
            },
        }
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn version_text_is_major_dot_minor_for_any_number() {
        for (major, minor) in [(0, 0), (3, 1), (9, 9), (10, 0), (4, 12), (u32::MAX, 7)] {
            let v = ClientProtocolVersion { major, minor };
            assert_eq!(version_text(v), format!("{major}.{minor}"));
        }
    }
}
