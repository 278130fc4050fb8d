//! `ReqType`: which file operation a SCREEN_REQ reports.

use std::fmt;
use std::str::FromStr;

use crate::error::MessageError;

/// File access protocol family of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Smb,
    Nfs,
}

/// The operation, independent of protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Open,
    Close,
    Create,
    CreateDir,
    Delete,
    DeleteDir,
    Rename,
    RenameDir,
    GetAttr,
    SetAttr,
    Read,
    Write,
    Lookup,
    Link,
    Symlink,
}

macro_rules! req_types {
    ($($variant:ident = $wire:literal, $proto:ident, $op:ident, $element:literal;)*) => {
        /// Every ReqType of NetApp's schema, plus SMB_LNK and SMB_SYM_LNK.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ReqType { $($variant,)* }

        impl ReqType {
            pub const ALL: &'static [ReqType] = &[$(ReqType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ReqType::$variant => $wire,)* }
            }

            pub fn protocol(self) -> Protocol {
                match self { $(ReqType::$variant => Protocol::$proto,)* }
            }

            pub fn operation(self) -> Operation {
                match self { $(ReqType::$variant => Operation::$op,)* }
            }

            /// The `NotfInfo` child element this crate writes. Parsing accepts
            /// any child name and dispatches on the ReqType instead.
            pub fn element_name(self) -> &'static str {
                match self { $(ReqType::$variant => $element,)* }
            }
        }

        impl FromStr for ReqType {
            type Err = MessageError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim_ascii() {
                    $($wire => Ok(ReqType::$variant),)*
                    other => Err(MessageError::UnknownReqType(other.chars().take(64).collect())),
                }
            }
        }
    };
}

// Directory variants share the file variant's element: NetApp's schema
// defines no separate element for them.
req_types! {
    SmbOpen = "SMB_OPEN", Smb, Open, "SmbOpenReq";
    SmbClose = "SMB_CLOSE", Smb, Close, "SmbCloseReq";
    SmbCreat = "SMB_CREAT", Smb, Create, "SmbCreatReq";
    SmbCreatDir = "SMB_CREAT_DIR", Smb, CreateDir, "SmbCreatReq";
    SmbDel = "SMB_DEL", Smb, Delete, "SmbDelReq";
    SmbDelDir = "SMB_DEL_DIR", Smb, DeleteDir, "SmbDelReq";
    SmbRen = "SMB_REN", Smb, Rename, "SmbRenReq";
    SmbRenDir = "SMB_REN_DIR", Smb, RenameDir, "SmbRenReq";
    SmbGetAttr = "SMB_GET_ATTR", Smb, GetAttr, "SmbGetAttrReq";
    SmbSetAttr = "SMB_SET_ATTR", Smb, SetAttr, "SmbSetAttrReq";
    SmbRd = "SMB_RD", Smb, Read, "SmbRdReq";
    SmbWr = "SMB_WR", Smb, Write, "SmbWrReq";
    SmbLnk = "SMB_LNK", Smb, Link, "SmbLnkReq";
    SmbSymLnk = "SMB_SYM_LNK", Smb, Symlink, "SmbSymLnkReq";
    NfsLookup = "NFS_LOOKUP", Nfs, Lookup, "NfsLookupReq";
    NfsCreat = "NFS_CREAT", Nfs, Create, "NfsCreatReq";
    NfsCreatDir = "NFS_CREAT_DIR", Nfs, CreateDir, "NfsCreatReq";
    NfsDel = "NFS_DEL", Nfs, Delete, "NfsDelReq";
    NfsDelDir = "NFS_DEL_DIR", Nfs, DeleteDir, "NfsDelReq";
    NfsRen = "NFS_REN", Nfs, Rename, "NfsRenReq";
    NfsRenDir = "NFS_REN_DIR", Nfs, RenameDir, "NfsRenReq";
    NfsOpen = "NFS_OPEN", Nfs, Open, "NfsOpenReq";
    NfsClose = "NFS_CLOSE", Nfs, Close, "NfsCloseReq";
    NfsRd = "NFS_RD", Nfs, Read, "NfsRdReq";
    NfsWr = "NFS_WR", Nfs, Write, "NfsWrReq";
    NfsGetAttr = "NFS_GET_ATTR", Nfs, GetAttr, "NfsGetAttrReq";
    NfsSetAttr = "NFS_SET_ATTR", Nfs, SetAttr, "NfsSetAttrReq";
    NfsLnk = "NFS_LNK", Nfs, Link, "NfsLnkReq";
    NfsSymLnk = "NFS_SYM_LNK", Nfs, Symlink, "NfsSymLnkReq";
}

impl ReqType {
    /// Whether NetApp's 2017 schema lists this ReqType (SMB_LNK and
    /// SMB_SYM_LNK appear only in its samples).
    pub fn in_netapp_schema(self) -> bool {
        !matches!(self, ReqType::SmbLnk | ReqType::SmbSymLnk)
    }
}

impl fmt::Display for ReqType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
