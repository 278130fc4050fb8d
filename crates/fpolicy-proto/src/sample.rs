//! Fully populated example messages, as ONTAP or a server would send them.
//!
//! Used by the simulator's workload, the XSD conformance corpus, the decode
//! benchmark and tests. Every schema-required element is filled, so each
//! message validates against NetApp's XSDs (except SMB_LNK/SMB_SYM_LNK,
//! which that schema does not list).

use crate::message::*;
use crate::version::ProtocolVersion;

/// SVM UUID used by the samples.
pub const SAMPLE_VS_UUID: &str = "5b701784-7459-11e8-8e95-00a098bc5a13";
/// ONTAP session id used by the samples.
pub const SAMPLE_SESSION_ID: &str = "bef098d2-a3a6-11f1-8e8e-d039ea524d0f";
/// Policy name used by the samples.
pub const SAMPLE_POLICY: &str = "fpolicy_bridge";

/// A realistic SCREEN_REQ for `req_type` on the volume-relative UNIX path
/// `path` (leading `/`). Protocol 1.2+ fields are set when `version` has them.
pub fn screen_request(
    req_id: u64,
    req_type: ReqType,
    path: &str,
    version: ProtocolVersion,
) -> ScreenRequest {
    let protocol = req_type.protocol();
    let win_path = path.replace('/', "\\");
    let file_type = match req_type.operation() {
        Operation::CreateDir | Operation::DeleteDir | Operation::RenameDir => FileType::Dir,
        Operation::Symlink => FileType::Symlink,
        _ => FileType::File,
    };
    let (user_id_type, user, protocol_version, display_path, user_gids) = match protocol {
        Protocol::Smb => (
            UserIdType::MappedId,
            UserIdentity::Mapped {
                uid: 1001,
                win_sid: "S-1-5-21-3623811015-3361044348-30300820-1013".into(),
            },
            ClientProtocolVersion { major: 3, minor: 1 },
            Some(format!("\\\\svm1\\share{win_path}")),
            None,
        ),
        Protocol::Nfs => (
            UserIdType::UnixOnly,
            UserIdentity::UnixUid(1001),
            ClientProtocolVersion { major: 4, minor: 1 },
            None,
            Some(1001),
        ),
    };
    let mut access_path = Vec::with_capacity(2);
    if protocol == Protocol::Smb {
        access_path.push(PathName {
            name_type: Some(PathNameType::WinName),
            name: win_path.clone(),
        });
    }
    access_path.push(PathName {
        name_type: Some(PathNameType::UnixName),
        name: path.to_owned(),
    });
    let common = CommonInfo {
        client_ip: Some("10.20.30.40".into()),
        generation_time: version
            .has_generation_time()
            .then_some(1_767_225_600_123_456_789),
        user_id_type: Some(user_id_type),
        user: Some(user),
        file_owner: Some(UserIdentity::UnixUid(1001)),
        access_path,
        vol_msid: 2_157_093_236,
        file_size: 4096,
        num_hard_links: 1,
        is_offline: false,
        file_type: Some(file_type),
        is_sparse: false,
        is_dense: false,
        display_path,
        protocol_version: Some(protocol_version),
        user_gids,
    };
    let target = |suffix: &str| {
        let new_unix = format!("{path}{suffix}");
        let mut t = Vec::with_capacity(2);
        if protocol == Protocol::Smb {
            t.push(PathName {
                name_type: Some(PathNameType::WinName),
                name: new_unix.replace('/', "\\"),
            });
        }
        t.push(PathName {
            name_type: Some(PathNameType::UnixName),
            name: new_unix,
        });
        t
    };
    let fields = match OperationFields::kind_for(req_type) {
        FieldsKind::None => OperationFields::None,
        FieldsKind::SmbOpen => OperationFields::SmbOpen {
            access_mode: 0x0012_0089,
            share_mode: 7,
            options: 0x40,
        },
        FieldsKind::SmbCreate => OperationFields::SmbCreate {
            access_mode: 393_631,
            share_mode: 0,
            disposition: 2,
            options: if req_type.operation() == Operation::CreateDir {
                1
            } else {
                100
            },
            new_object: true,
        },
        FieldsKind::SmbClose => OperationFields::SmbClose {
            read_bytes: version.has_generation_time().then_some(0),
            write_bytes: version.has_generation_time().then_some(4096),
        },
        FieldsKind::Target => OperationFields::Target {
            target: target(if req_type.operation() == Operation::Link {
                ".lnk"
            } else {
                ".renamed"
            }),
        },
        FieldsKind::Read => OperationFields::Read {
            offset: 0,
            length: 4096,
        },
        FieldsKind::Write => OperationFields::Write {
            offset: 8192,
            length: 4096,
        },
        FieldsKind::SmbSetAttr => OperationFields::SmbSetAttr(SmbSetAttr {
            change_mask: change_mask::MODIFY_TIME | change_mask::SIZE,
            new_owner: None,
            new_group: None,
            file_size: Some(8192),
            alloc_size: None,
            mtime: Some(AttrTime {
                secs: 1_767_225_600,
                nanos: 500,
            }),
            atime: None,
            ctime: None,
        }),
        FieldsKind::NfsSetAttr => OperationFields::NfsSetAttr(NfsSetAttr {
            change_mask: change_mask::MODE,
            mode: Some(0o640),
            uid: None,
            gid: None,
            size: None,
            mtime: None,
            atime: None,
        }),
    };
    ScreenRequest {
        req_id,
        req_type,
        common,
        fields,
    }
}

/// A NEGO_REQ offering `versions`.
pub fn handshake(versions: &[&str]) -> Handshake {
    Handshake {
        vs_uuid: SAMPLE_VS_UUID.into(),
        policy_name: SAMPLE_POLICY.into(),
        session_id: SAMPLE_SESSION_ID.into(),
        versions: versions.iter().map(|v| (*v).to_owned()).collect(),
    }
}

/// One message of every NotfType, and a SCREEN_REQ for every ReqType, with
/// a name for each (used as a file name by the conformance corpus).
pub fn every_message() -> Vec<(String, Message)> {
    let hs = handshake(&["1.0", "1.1", "1.2", "2.0"]);
    let mut out = vec![
        ("nego_req".to_owned(), Message::NegoReq(hs.clone())),
        (
            "nego_resp".to_owned(),
            Message::NegoResp(hs.accept(ProtocolVersion::V2_0)),
        ),
        (
            "screen_resp_allow".to_owned(),
            Message::ScreenResp(ScreenResponse {
                req_id: 42,
                req_type: ReqType::SmbCreat,
                decision: ScreenDecision::Allow,
            }),
        ),
        (
            "screen_resp_deny".to_owned(),
            Message::ScreenResp(ScreenResponse {
                req_id: 43,
                req_type: ReqType::NfsWr,
                decision: ScreenDecision::Deny,
            }),
        ),
        (
            "screen_cancel".to_owned(),
            Message::ScreenCancel(ScreenCancel {
                req_id: 44,
                req_type: ReqType::SmbOpen,
                reason: "Cancel Timedout".into(),
            }),
        ),
        (
            "status_query_req".to_owned(),
            Message::StatusQueryReq(StatusQuery {
                req_id: 45,
                req_type: ReqType::SmbOpen,
            }),
        ),
        (
            "status_query_resp".to_owned(),
            Message::StatusQueryResp(StatusQueryResponse {
                req_id: 45,
                req_type: ReqType::SmbOpen,
                status: RequestStatus::Working,
            }),
        ),
        (
            "back_pressure_apply".to_owned(),
            Message::BackPressureApply(BackPressure {
                session_id: SAMPLE_SESSION_ID.into(),
            }),
        ),
        (
            "back_pressure_rem".to_owned(),
            Message::BackPressureRem(BackPressure {
                session_id: SAMPLE_SESSION_ID.into(),
            }),
        ),
        ("keep_alive".to_owned(), Message::KeepAlive),
        (
            "alert_msg".to_owned(),
            Message::Alert(Alert {
                session_id: SAMPLE_SESSION_ID.into(),
                severity: Severity::Warning,
                message: "FPolicy server <10.0.0.5> is slow & backlogged".into(),
            }),
        ),
        (
            "vol_notification".to_owned(),
            Message::VolNotification(VolNotification {
                vol_msid: Some(2_157_093_236),
                action: Some(VolumeAction::Unmount),
                is_active: Some(false),
            }),
        ),
        (
            "outage_msg".to_owned(),
            Message::Outage(Outage {
                file_path: "/vol1/legal/contracts/q3.pdf".into(),
                policy_name: SAMPLE_POLICY.into(),
                status: "incomplete".into(),
            }),
        ),
    ];
    for (i, &req_type) in ReqType::ALL.iter().enumerate() {
        let path = "/legal/contracts/2026/Q3 review — été & co/contrat n°7.pdf";
        let req = screen_request(1000 + i as u64, req_type, path, ProtocolVersion::V2_0);
        out.push((
            format!("screen_req_{}", req_type.as_str().to_ascii_lowercase()),
            Message::ScreenReq(req),
        ));
    }
    out
}
