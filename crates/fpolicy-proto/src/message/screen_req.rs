//! SCREEN_REQ (`FscreenReq`): one file operation, sent by ONTAP to both
//! synchronous and asynchronous engines.
//!
//! Parsing dispatches on `ReqType`, accepts any `NotfInfo` child element
//! name, reads fields in any order and ignores unknown elements, so that
//! fields later ONTAP releases add do not break decoding. Fields the schema
//! marks required but that carry no information downstream default when
//! absent (0, false, `None`); a present but malformed value is an error.

use crate::error::MessageError;
use crate::message::fields::{
    boolean, expect_root, int, opt_string, opt_uint, require, string, uint,
};
use crate::message::req_type::{Protocol, ReqType};
use crate::xml::{Document, NodeId, XmlWriter};

/// A decoded SCREEN_REQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenRequest {
    pub req_id: u64,
    pub req_type: ReqType,
    pub common: CommonInfo,
    pub fields: OperationFields,
}

/// Which form of a user identity ONTAP reports (`UsrIdType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserIdType {
    UnixOnly,
    WinOnly,
    MappedId,
    /// A value later ONTAP releases may add.
    Other(String),
}

impl UserIdType {
    pub fn as_str(&self) -> &str {
        match self {
            UserIdType::UnixOnly => "UNIX_ONLY",
            UserIdType::WinOnly => "WIN_ONLY",
            UserIdType::MappedId => "MAPPED_ID",
            UserIdType::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s.trim_ascii() {
            "UNIX_ONLY" => UserIdType::UnixOnly,
            "WIN_ONLY" => UserIdType::WinOnly,
            "MAPPED_ID" => UserIdType::MappedId,
            other => UserIdType::Other(other.to_owned()),
        }
    }
}

/// A user (`UsrIdU`): a UNIX uid, a Windows SID, or both when mapped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserIdentity {
    UnixUid(u32),
    WinSid(String),
    Mapped { uid: u32, win_sid: String },
}

/// Kind of a path name (`PathNameType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathNameType {
    WinName,
    Win83Name,
    UnixName,
    Other(String),
}

impl PathNameType {
    pub fn as_str(&self) -> &str {
        match self {
            PathNameType::WinName => "WIN_NAME",
            PathNameType::Win83Name => "WIN_8_3_NAME",
            PathNameType::UnixName => "UNIX_NAME",
            PathNameType::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s.trim_ascii() {
            "WIN_NAME" => PathNameType::WinName,
            "WIN_8_3_NAME" => PathNameType::Win83Name,
            "UNIX_NAME" => PathNameType::UnixName,
            other => PathNameType::Other(other.to_owned()),
        }
    }
}

/// One volume-relative path of a file, in one naming form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathName {
    /// Nillable in the schema.
    pub name_type: Option<PathNameType>,
    pub name: String,
}

/// `FileType`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileType {
    File,
    Dir,
    Stream,
    Symlink,
    Other(String),
}

impl FileType {
    pub fn as_str(&self) -> &str {
        match self {
            FileType::File => "FILE",
            FileType::Dir => "DIR",
            FileType::Stream => "STREAM",
            FileType::Symlink => "SYMLINK",
            FileType::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s.trim_ascii() {
            "FILE" => FileType::File,
            "DIR" => FileType::Dir,
            "STREAM" => FileType::Stream,
            "SYMLINK" => FileType::Symlink,
            other => FileType::Other(other.to_owned()),
        }
    }
}

/// Version of the file access protocol the client used (`ProtVer`):
/// NFS 3.0, 4.0, 4.1; SMB 1.0, 2.0, 2.1, 3.0, 3.1 …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientProtocolVersion {
    pub major: u32,
    pub minor: u32,
}

/// Information every SCREEN_REQ carries (`ProtCommonInfo` plus the SMB or
/// NFS wrapper's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonInfo {
    pub client_ip: Option<String>,
    /// Protocol 1.2 and later.
    pub generation_time: Option<u64>,
    pub user_id_type: Option<UserIdType>,
    pub user: Option<UserIdentity>,
    pub file_owner: Option<UserIdentity>,
    /// Up to three names of the file (Windows, 8.3, UNIX).
    pub access_path: Vec<PathName>,
    pub vol_msid: u64,
    pub file_size: u64,
    pub num_hard_links: u32,
    pub is_offline: bool,
    pub file_type: Option<FileType>,
    pub is_sparse: bool,
    pub is_dense: bool,
    /// SMB only: the UNC path the client used, or `-`.
    pub display_path: Option<String>,
    pub protocol_version: Option<ClientProtocolVersion>,
    /// NFS only.
    pub user_gids: Option<u32>,
}

impl CommonInfo {
    /// The first path of the given kind.
    pub fn path(&self, kind: &PathNameType) -> Option<&str> {
        self.access_path
            .iter()
            .find(|p| p.name_type.as_ref() == Some(kind))
            .map(|p| p.name.as_str())
    }
}

/// A time in a set-attribute request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrTime {
    pub secs: i64,
    pub nanos: u32,
}

/// Bits of `SetAttrChangeAttr` / `ChangeAttr`.
pub mod change_mask {
    pub const OWNER: u32 = 0x0001;
    pub const GROUP: u32 = 0x0002;
    pub const SACL: u32 = 0x0004;
    pub const DACL: u32 = 0x0008;
    pub const MODIFY_TIME: u32 = 0x0010;
    pub const ACCESS_TIME: u32 = 0x0020;
    pub const CREATION_TIME: u32 = 0x0040;
    pub const MODE: u32 = 0x0080;
    pub const SIZE: u32 = 0x0100;
    pub const ALLOC_SIZE: u32 = 0x0200;

    /// Names of the set bits, for logs and events.
    pub fn names(mask: u32) -> impl Iterator<Item = &'static str> {
        const NAMES: [(u32, &str); 10] = [
            (OWNER, "owner"),
            (GROUP, "group"),
            (SACL, "sacl"),
            (DACL, "dacl"),
            (MODIFY_TIME, "mtime"),
            (ACCESS_TIME, "atime"),
            (CREATION_TIME, "crtime"),
            (MODE, "mode"),
            (SIZE, "size"),
            (ALLOC_SIZE, "alloc_size"),
        ];
        NAMES
            .into_iter()
            .filter(move |(bit, _)| mask & bit != 0)
            .map(|(_, name)| name)
    }
}

/// SMB set-attribute fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmbSetAttr {
    pub change_mask: u32,
    pub new_owner: Option<UserIdentity>,
    pub new_group: Option<UserIdentity>,
    pub file_size: Option<u64>,
    pub alloc_size: Option<u64>,
    pub mtime: Option<AttrTime>,
    pub atime: Option<AttrTime>,
    pub ctime: Option<AttrTime>,
}

/// NFS set-attribute fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NfsSetAttr {
    pub change_mask: u32,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<AttrTime>,
    pub atime: Option<AttrTime>,
}

/// The fields specific to an operation. Which variant a request carries is
/// decided by its ReqType ([`OperationFields::kind_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationFields {
    /// Only common info (delete, get-attr, NFS create/open/close/lookup, symlinks).
    None,
    SmbOpen {
        access_mode: u32,
        share_mode: u32,
        options: u32,
    },
    SmbCreate {
        access_mode: u32,
        share_mode: u32,
        disposition: u32,
        options: u32,
        new_object: bool,
    },
    /// Byte counts from protocol 1.2.
    SmbClose {
        read_bytes: Option<u64>,
        write_bytes: Option<u64>,
    },
    /// Renames and hard links: the new name.
    Target {
        target: Vec<PathName>,
    },
    Read {
        offset: u64,
        length: u32,
    },
    Write {
        offset: u64,
        length: u32,
    },
    SmbSetAttr(SmbSetAttr),
    NfsSetAttr(NfsSetAttr),
}

/// Which [`OperationFields`] variant a ReqType carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsKind {
    None,
    SmbOpen,
    SmbCreate,
    SmbClose,
    Target,
    Read,
    Write,
    SmbSetAttr,
    NfsSetAttr,
}

impl OperationFields {
    pub fn kind(&self) -> FieldsKind {
        match self {
            OperationFields::None => FieldsKind::None,
            OperationFields::SmbOpen { .. } => FieldsKind::SmbOpen,
            OperationFields::SmbCreate { .. } => FieldsKind::SmbCreate,
            OperationFields::SmbClose { .. } => FieldsKind::SmbClose,
            OperationFields::Target { .. } => FieldsKind::Target,
            OperationFields::Read { .. } => FieldsKind::Read,
            OperationFields::Write { .. } => FieldsKind::Write,
            OperationFields::SmbSetAttr(_) => FieldsKind::SmbSetAttr,
            OperationFields::NfsSetAttr(_) => FieldsKind::NfsSetAttr,
        }
    }

    pub fn kind_for(req_type: ReqType) -> FieldsKind {
        use ReqType::*;
        match req_type {
            SmbOpen => FieldsKind::SmbOpen,
            SmbCreat | SmbCreatDir => FieldsKind::SmbCreate,
            SmbClose => FieldsKind::SmbClose,
            SmbRen | SmbRenDir | NfsRen | NfsRenDir | NfsLnk | SmbLnk => FieldsKind::Target,
            SmbRd | NfsRd => FieldsKind::Read,
            SmbWr | NfsWr => FieldsKind::Write,
            SmbSetAttr => FieldsKind::SmbSetAttr,
            NfsSetAttr => FieldsKind::NfsSetAttr,
            SmbDel | SmbDelDir | SmbGetAttr | SmbSymLnk | NfsLookup | NfsCreat | NfsCreatDir
            | NfsDel | NfsDelDir | NfsOpen | NfsClose | NfsGetAttr | NfsSymLnk => FieldsKind::None,
        }
    }

    /// The first target path of the given kind (rename/link destination).
    pub fn target_path(&self, kind: &PathNameType) -> Option<&str> {
        match self {
            OperationFields::Target { target } => target
                .iter()
                .find(|p| p.name_type.as_ref() == Some(kind))
                .map(|p| p.name.as_str()),
            _ => None,
        }
    }
}

const P_REQ: &str = "FscreenReq";
const P_OP: &str = "FscreenReq/NotfInfo/*";
const P_CI: &str = "FscreenReq/NotfInfo/*/CommonInfo";
const P_PCI: &str = "FscreenReq/NotfInfo/*/CommonInfo/ProtCommonInfo";

impl ScreenRequest {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "FscreenReq")?;
        let mut req_id = None;
        let mut req_type = None;
        let mut notf_info = None;
        for child in doc.children(root) {
            match doc.name(child) {
                "ReqId" => req_id = Some(uint::<u64>(doc, child, P_REQ)?),
                "ReqType" => req_type = Some(doc.text(child).parse::<ReqType>()?),
                "NotfInfo" => notf_info = Some(child),
                _ => {}
            }
        }
        let req_id = require(req_id, "FscreenReq/ReqId")?;
        let req_type = require(req_type, "FscreenReq/ReqType")?;
        let notf_info = require(notf_info, "FscreenReq/NotfInfo")?;
        let op = doc
            .first_child(notf_info)
            .ok_or(MessageError::EmptyNotfInfo)?;
        let (common, fields) = parse_operation(doc, op, req_type)?;
        Ok(ScreenRequest {
            req_id,
            req_type,
            common,
            fields,
        })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("FscreenReq");
        w.uint("ReqId", self.req_id);
        w.text("ReqType", self.req_type.as_str());
        w.open("NotfInfo");
        let element = self.req_type.element_name();
        w.open(element);
        write_common(w, &self.common, self.req_type.protocol());
        write_fields(w, &self.fields);
        w.close(element);
        w.close("NotfInfo");
        w.close("FscreenReq");
    }
}

fn parse_operation(
    doc: &Document<'_>,
    op: NodeId,
    req_type: ReqType,
) -> Result<(CommonInfo, OperationFields), MessageError> {
    let mut common = None;
    let kind = OperationFields::kind_for(req_type);
    let mut fields = match kind {
        FieldsKind::None => OperationFields::None,
        FieldsKind::SmbOpen => OperationFields::SmbOpen {
            access_mode: 0,
            share_mode: 0,
            options: 0,
        },
        FieldsKind::SmbCreate => OperationFields::SmbCreate {
            access_mode: 0,
            share_mode: 0,
            disposition: 0,
            options: 0,
            new_object: false,
        },
        FieldsKind::SmbClose => OperationFields::SmbClose {
            read_bytes: None,
            write_bytes: None,
        },
        FieldsKind::Target => OperationFields::Target { target: Vec::new() },
        FieldsKind::Read => OperationFields::Read {
            offset: 0,
            length: 0,
        },
        FieldsKind::Write => OperationFields::Write {
            offset: 0,
            length: 0,
        },
        FieldsKind::SmbSetAttr => OperationFields::SmbSetAttr(SmbSetAttr::default()),
        FieldsKind::NfsSetAttr => OperationFields::NfsSetAttr(NfsSetAttr::default()),
    };
    for child in doc.children(op) {
        let name = doc.name(child);
        if name == "CommonInfo" {
            common = Some(parse_common(doc, child)?);
            continue;
        }
        match &mut fields {
            OperationFields::None => {}
            OperationFields::SmbOpen {
                access_mode,
                share_mode,
                options,
            } => match name {
                "OpenAccmode" => *access_mode = uint(doc, child, P_OP)?,
                "OpenSharemode" => *share_mode = uint(doc, child, P_OP)?,
                "OpenOptions" => *options = uint(doc, child, P_OP)?,
                _ => {}
            },
            OperationFields::SmbCreate {
                access_mode,
                share_mode,
                disposition,
                options,
                new_object,
            } => match name {
                "CreatAccmode" => *access_mode = uint(doc, child, P_OP)?,
                "CreatSharemode" => *share_mode = uint(doc, child, P_OP)?,
                "CreatDisposition" => *disposition = uint(doc, child, P_OP)?,
                "CreatOptions" => *options = uint(doc, child, P_OP)?,
                "CreatNewObject" => *new_object = boolean(doc, child, P_OP)?,
                _ => {}
            },
            OperationFields::SmbClose {
                read_bytes,
                write_bytes,
            } => match name {
                "RdBytes" => *read_bytes = opt_uint(doc, child, P_OP)?,
                "WrBytes" => *write_bytes = opt_uint(doc, child, P_OP)?,
                _ => {}
            },
            OperationFields::Target { target } => {
                if name == "TargetAccessPath" {
                    *target = parse_access_path(doc, child)?;
                }
            }
            OperationFields::Read { offset, length } => match name {
                "RdOffset" => *offset = uint(doc, child, P_OP)?,
                "RdLength" => *length = uint(doc, child, P_OP)?,
                _ => {}
            },
            OperationFields::Write { offset, length } => match name {
                "WrOffset" => *offset = uint(doc, child, P_OP)?,
                "WrLength" => *length = uint(doc, child, P_OP)?,
                _ => {}
            },
            OperationFields::SmbSetAttr(attr) => match name {
                "SetAttrChangeAttr" => attr.change_mask = uint(doc, child, P_OP)?,
                "SetAttrNewOwner" => attr.new_owner = parse_user(doc, child)?,
                "SetAttrNewGroup" => attr.new_group = parse_user(doc, child)?,
                "SetAttrFileSize" => attr.file_size = opt_uint(doc, child, P_OP)?,
                "SetAttrFileAllocSize" => attr.alloc_size = opt_uint(doc, child, P_OP)?,
                "SetAttrMtime" => attr.mtime = Some(parse_time(doc, child)?),
                "SetAttrAtime" => attr.atime = Some(parse_time(doc, child)?),
                "SetAttrCtime" => attr.ctime = Some(parse_time(doc, child)?),
                _ => {}
            },
            OperationFields::NfsSetAttr(attr) => match name {
                "ChangeAttr" => attr.change_mask = uint(doc, child, P_OP)?,
                "SetAttrCommon" => parse_nfs_set_attr_common(doc, child, attr)?,
                _ => {}
            },
        }
    }
    let common = require(common, "FscreenReq/NotfInfo/*/CommonInfo")?;
    Ok((common, fields))
}

fn parse_common(doc: &Document<'_>, node: NodeId) -> Result<CommonInfo, MessageError> {
    let mut info = CommonInfo::default();
    let mut saw_prot_common = false;
    for child in doc.children(node) {
        match doc.name(child) {
            "ProtCommonInfo" => {
                saw_prot_common = true;
                parse_prot_common(doc, child, &mut info)?;
            }
            "DisplayPath" => info.display_path = Some(string(doc, child)),
            "ProtVer" => {
                let mut major = 0;
                let mut minor = 0;
                for v in doc.children(child) {
                    match doc.name(v) {
                        "MajorNum" => {
                            major = uint(doc, v, "FscreenReq/NotfInfo/*/CommonInfo/ProtVer")?
                        }
                        "MinorNum" => {
                            minor = uint(doc, v, "FscreenReq/NotfInfo/*/CommonInfo/ProtVer")?
                        }
                        _ => {}
                    }
                }
                info.protocol_version = Some(ClientProtocolVersion { major, minor });
            }
            "UserGids" => info.user_gids = opt_uint(doc, child, P_CI)?,
            _ => {}
        }
    }
    if !saw_prot_common {
        return Err(MessageError::MissingElement {
            path: format!("{P_CI}/ProtCommonInfo"),
        });
    }
    Ok(info)
}

fn parse_prot_common(
    doc: &Document<'_>,
    node: NodeId,
    info: &mut CommonInfo,
) -> Result<(), MessageError> {
    for child in doc.children(node) {
        match doc.name(child) {
            "ClientIp" => {
                info.client_ip = opt_string(doc, child).map(|s| s.trim_ascii().to_owned())
            }
            "GenerationTime" => info.generation_time = opt_uint(doc, child, P_PCI)?,
            "UsrIdType" => {
                let t = doc.text(child);
                info.user_id_type = (!t.trim_ascii().is_empty()).then(|| UserIdType::parse(t));
            }
            "UsrContext" => info.user = parse_user(doc, child)?,
            "FileOwner" => info.file_owner = parse_user(doc, child)?,
            "AccessPath" => info.access_path = parse_access_path(doc, child)?,
            "VolMsid" => info.vol_msid = uint(doc, child, P_PCI)?,
            "FileSize" => info.file_size = uint(doc, child, P_PCI)?,
            "NumHardLnk" => info.num_hard_links = uint(doc, child, P_PCI)?,
            "IsOfflineAttr" => info.is_offline = boolean(doc, child, P_PCI)?,
            "FileType" => {
                let t = doc.text(child);
                info.file_type = (!t.trim_ascii().is_empty()).then(|| FileType::parse(t));
            }
            "IsSparse" => info.is_sparse = boolean(doc, child, P_PCI)?,
            "IsDense" => info.is_dense = boolean(doc, child, P_PCI)?,
            _ => {}
        }
    }
    Ok(())
}

fn parse_user(doc: &Document<'_>, node: NodeId) -> Result<Option<UserIdentity>, MessageError> {
    const P: &str = "FscreenReq/NotfInfo/*/CommonInfo/ProtCommonInfo/UsrContext";
    for child in doc.children(node) {
        match doc.name(child) {
            "UnixUid" => return Ok(Some(UserIdentity::UnixUid(uint(doc, child, P)?))),
            "WinSid" => {
                return Ok(Some(UserIdentity::WinSid(
                    string(doc, child).trim_ascii().to_owned(),
                )));
            }
            "MappedId" => {
                let mut uid = 0;
                let mut win_sid = String::new();
                for m in doc.children(child) {
                    match doc.name(m) {
                        "Uid" => uid = uint(doc, m, P)?,
                        "WinSid" => win_sid = string(doc, m).trim_ascii().to_owned(),
                        _ => {}
                    }
                }
                return Ok(Some(UserIdentity::Mapped { uid, win_sid }));
            }
            _ => {}
        }
    }
    Ok(None)
}

fn parse_access_path(doc: &Document<'_>, node: NodeId) -> Result<Vec<PathName>, MessageError> {
    let mut paths = Vec::with_capacity(3);
    for path in doc.children(node) {
        if doc.name(path) != "Path" {
            continue;
        }
        let mut name_type = None;
        let mut name = None;
        for field in doc.children(path) {
            match doc.name(field) {
                "PathNameType" => {
                    let t = doc.text(field);
                    name_type = (!t.trim_ascii().is_empty()).then(|| PathNameType::parse(t));
                }
                "PathName" => name = Some(string(doc, field)),
                _ => {}
            }
        }
        let name = require(
            name,
            "FscreenReq/NotfInfo/*/CommonInfo/ProtCommonInfo/AccessPath/Path/PathName",
        )?;
        paths.push(PathName { name_type, name });
    }
    Ok(paths)
}

fn parse_time(doc: &Document<'_>, node: NodeId) -> Result<AttrTime, MessageError> {
    let mut t = AttrTime { secs: 0, nanos: 0 };
    for child in doc.children(node) {
        match doc.name(child) {
            "Secs" => t.secs = int(doc, child, P_OP)?,
            "NanoSecs" => t.nanos = uint(doc, child, P_OP)?,
            _ => {}
        }
    }
    Ok(t)
}

fn parse_nfs_set_attr_common(
    doc: &Document<'_>,
    node: NodeId,
    attr: &mut NfsSetAttr,
) -> Result<(), MessageError> {
    const P: &str = "FscreenReq/NotfInfo/*/SetAttrCommon";
    for child in doc.children(node) {
        match doc.name(child) {
            "SetAttrMode" => attr.mode = opt_uint(doc, child, P)?,
            "SetAttrUid" => attr.uid = opt_uint(doc, child, P)?,
            "SetAttrGid" => attr.gid = opt_uint(doc, child, P)?,
            "SetAttrSize" => attr.size = opt_uint(doc, child, P)?,
            "SetAttrMtime" => attr.mtime = Some(parse_time(doc, child)?),
            "SetAttrAtime" => attr.atime = Some(parse_time(doc, child)?),
            _ => {}
        }
    }
    Ok(())
}

fn write_user(w: &mut XmlWriter<'_>, element: &str, user: &Option<UserIdentity>) {
    w.open(element);
    match user {
        None => {}
        Some(UserIdentity::UnixUid(uid)) => w.uint("UnixUid", u64::from(*uid)),
        Some(UserIdentity::WinSid(sid)) => w.text("WinSid", sid),
        Some(UserIdentity::Mapped { uid, win_sid }) => {
            w.open("MappedId");
            w.uint("Uid", u64::from(*uid));
            w.text("WinSid", win_sid);
            w.close("MappedId");
        }
    }
    w.close(element);
}

fn write_access_path(w: &mut XmlWriter<'_>, element: &str, paths: &[PathName]) {
    w.open(element);
    for p in paths {
        w.open("Path");
        w.text(
            "PathNameType",
            p.name_type.as_ref().map_or("", |t| t.as_str()),
        );
        w.text("PathName", &p.name);
        w.close("Path");
    }
    w.close(element);
}

fn write_time(w: &mut XmlWriter<'_>, element: &str, t: &Option<AttrTime>) {
    if let Some(t) = t {
        w.open(element);
        w.int("Secs", t.secs);
        w.uint("NanoSecs", u64::from(t.nanos));
        w.close(element);
    }
}

fn write_opt_uint(w: &mut XmlWriter<'_>, element: &str, v: Option<u64>) {
    if let Some(v) = v {
        w.uint(element, v);
    }
}

/// Writes `CommonInfo` in the schema's element order for the protocol.
fn write_common(w: &mut XmlWriter<'_>, c: &CommonInfo, protocol: Protocol) {
    w.open("CommonInfo");
    w.open("ProtCommonInfo");
    w.text("ClientIp", c.client_ip.as_deref().unwrap_or(""));
    write_opt_uint(w, "GenerationTime", c.generation_time);
    if let Some(t) = &c.user_id_type {
        w.text("UsrIdType", t.as_str());
    }
    write_user(w, "UsrContext", &c.user);
    write_user(w, "FileOwner", &c.file_owner);
    write_access_path(w, "AccessPath", &c.access_path);
    w.uint("VolMsid", c.vol_msid);
    w.uint("FileSize", c.file_size);
    w.uint("NumHardLnk", u64::from(c.num_hard_links));
    w.bool("IsOfflineAttr", c.is_offline);
    if let Some(t) = &c.file_type {
        w.text("FileType", t.as_str());
    }
    w.bool("IsSparse", c.is_sparse);
    w.bool("IsDense", c.is_dense);
    w.close("ProtCommonInfo");
    let write_ver = |w: &mut XmlWriter<'_>| {
        if let Some(v) = c.protocol_version {
            w.open("ProtVer");
            w.uint("MajorNum", u64::from(v.major));
            w.uint("MinorNum", u64::from(v.minor));
            w.close("ProtVer");
        }
    };
    match protocol {
        Protocol::Smb => {
            if let Some(d) = &c.display_path {
                w.text("DisplayPath", d);
            }
            write_ver(w);
            if let Some(g) = c.user_gids {
                w.uint("UserGids", u64::from(g));
            }
        }
        Protocol::Nfs => {
            write_ver(w);
            if let Some(g) = c.user_gids {
                w.uint("UserGids", u64::from(g));
            }
            if let Some(d) = &c.display_path {
                w.text("DisplayPath", d);
            }
        }
    }
    w.close("CommonInfo");
}

fn write_fields(w: &mut XmlWriter<'_>, fields: &OperationFields) {
    match fields {
        OperationFields::None => {}
        OperationFields::SmbOpen {
            access_mode,
            share_mode,
            options,
        } => {
            w.uint("OpenAccmode", u64::from(*access_mode));
            w.uint("OpenSharemode", u64::from(*share_mode));
            w.uint("OpenOptions", u64::from(*options));
        }
        OperationFields::SmbCreate {
            access_mode,
            share_mode,
            disposition,
            options,
            new_object,
        } => {
            w.uint("CreatAccmode", u64::from(*access_mode));
            w.uint("CreatSharemode", u64::from(*share_mode));
            w.uint("CreatDisposition", u64::from(*disposition));
            w.uint("CreatOptions", u64::from(*options));
            w.bool("CreatNewObject", *new_object);
        }
        OperationFields::SmbClose {
            read_bytes,
            write_bytes,
        } => {
            write_opt_uint(w, "RdBytes", *read_bytes);
            write_opt_uint(w, "WrBytes", *write_bytes);
        }
        OperationFields::Target { target } => write_access_path(w, "TargetAccessPath", target),
        OperationFields::Read { offset, length } => {
            w.uint("RdOffset", *offset);
            w.uint("RdLength", u64::from(*length));
        }
        OperationFields::Write { offset, length } => {
            w.uint("WrOffset", *offset);
            w.uint("WrLength", u64::from(*length));
        }
        OperationFields::SmbSetAttr(a) => {
            w.uint("SetAttrChangeAttr", u64::from(a.change_mask));
            if a.new_owner.is_some() {
                write_user(w, "SetAttrNewOwner", &a.new_owner);
            }
            if a.new_group.is_some() {
                write_user(w, "SetAttrNewGroup", &a.new_group);
            }
            write_opt_uint(w, "SetAttrFileSize", a.file_size);
            write_opt_uint(w, "SetAttrFileAllocSize", a.alloc_size);
            write_time(w, "SetAttrMtime", &a.mtime);
            write_time(w, "SetAttrAtime", &a.atime);
            write_time(w, "SetAttrCtime", &a.ctime);
        }
        OperationFields::NfsSetAttr(a) => {
            w.uint("ChangeAttr", u64::from(a.change_mask));
            w.open("SetAttrCommon");
            write_opt_uint(w, "SetAttrMode", a.mode.map(u64::from));
            write_opt_uint(w, "SetAttrUid", a.uid.map(u64::from));
            write_opt_uint(w, "SetAttrGid", a.gid.map(u64::from));
            write_opt_uint(w, "SetAttrSize", a.size);
            write_time(w, "SetAttrMtime", &a.mtime);
            write_time(w, "SetAttrAtime", &a.atime);
            w.close("SetAttrCommon");
        }
    }
}
