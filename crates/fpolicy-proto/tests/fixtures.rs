//! Hand-written wire fixtures, one or more per message type, written from the
//! protocol facts: indentation as in real captures, entities, Unicode paths,
//! unknown elements, trailing NULs and trailing spaces in numbers.

use fpolicy_proto::*;

/// Builds a frame from a header NotfType and a hand-written body.
fn wire(notf_type: &str, body: Option<&str>, nul: bool) -> Vec<u8> {
    let body_len = body.map_or(0, str::len);
    let mut payload = format!(
        "<?xml version=\"1.0\"?><Header><NotfType>{notf_type}</NotfType><ContentLen>{body_len}</ContentLen><DataFormat>XML</DataFormat></Header>"
    );
    if let Some(b) = body {
        payload.push_str("\n\n");
        payload.push_str(b);
    }
    let mut bytes = payload.into_bytes();
    if nul {
        bytes.push(0);
    }
    let mut out = vec![b'"'];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.push(b'"');
    out.extend_from_slice(&bytes);
    out
}

fn decode(frame: &[u8]) -> Decoded {
    match parse_frame(frame, DEFAULT_MAX_FRAME_LEN).expect("framing") {
        FrameStatus::Complete { payload, consumed } => {
            assert_eq!(consumed, frame.len());
            decode_payload(payload).expect("message")
        }
        FrameStatus::Incomplete { .. } => panic!("incomplete"),
    }
}

fn screen(frame: &[u8]) -> ScreenRequest {
    match decode(frame).message {
        Message::ScreenReq(r) => r,
        other => panic!("expected SCREEN_REQ, got {other:?}"),
    }
}

#[test]
fn nego_req_offering_two_versions() {
    let body = r#"<?xml version="1.0"?><Handshake><VsUUID>0a1b2c3d-0000-11ee-9f00-00a098aa0001</VsUUID><PolicyName>audit_pol</PolicyName><SessionId>11111111-2222-3333-4444-555555555555</SessionId><ProtVersion><Vers>1.0</Vers><Vers>1.1</Vers></ProtVersion></Handshake>"#;
    let d = decode(&wire("NEGO_REQ", Some(body), true));
    assert_eq!(d.header.notf_type, NotfType::NegoReq);
    assert_eq!(d.content_len_mismatch(), None);
    let Message::NegoReq(hs) = d.message else {
        panic!()
    };
    assert_eq!(hs.vs_uuid, "0a1b2c3d-0000-11ee-9f00-00a098aa0001");
    assert_eq!(hs.policy_name, "audit_pol");
    assert_eq!(hs.session_id, "11111111-2222-3333-4444-555555555555");
    assert_eq!(hs.versions, ["1.0", "1.1"]);
    assert_eq!(
        hs.negotiate(&ProtocolVersion::ALL),
        Some(ProtocolVersion::V1_1)
    );
    let resp = hs.accept(ProtocolVersion::V1_1);
    assert_eq!(resp.policy_name, "audit_pol");
    assert_eq!(resp.version, "1.1");
}

#[test]
fn nego_req_negotiation_picks_highest_known_offer() {
    let hs = sample::handshake(&["1.0", "9.9", "1.2", "garbage"]);
    assert_eq!(
        hs.negotiate(&ProtocolVersion::ALL),
        Some(ProtocolVersion::V1_2)
    );
    assert_eq!(
        hs.negotiate(&[ProtocolVersion::V1_0, ProtocolVersion::V1_1]),
        Some(ProtocolVersion::V1_0)
    );
    assert_eq!(
        sample::handshake(&["3.0"]).negotiate(&ProtocolVersion::ALL),
        None
    );
    assert_eq!(
        sample::handshake(&[]).negotiate(&ProtocolVersion::ALL),
        None
    );
}

#[test]
fn nego_resp_scalar_and_nested_version() {
    let scalar = r#"<?xml version="1.0"?><HandshakeResp><VsUUID>v</VsUUID><PolicyName>p</PolicyName><SessionId>s</SessionId><ProtVersion>1.2</ProtVersion></HandshakeResp>"#;
    let Message::NegoResp(r) = decode(&wire("NEGO_RESP", Some(scalar), false)).message else {
        panic!()
    };
    assert_eq!(r.version, "1.2");
    // NetApp's document sample nests <Vers>; accept it too.
    let nested = r#"<?xml version="1.0"?><HandshakeResp><VsUUID>v</VsUUID><PolicyName>p</PolicyName><SessionId>s</SessionId><ProtVersion><Vers>1.0</Vers></ProtVersion></HandshakeResp>"#;
    let Message::NegoResp(r) = decode(&wire("NEGO_RESP", Some(nested), false)).message else {
        panic!()
    };
    assert_eq!(r.version, "1.0");
}

/// An indented SMB create as a real capture looks, with an unknown element,
/// whitespace in numbers and a mapped identity.
const SMB_CREAT_INDENTED: &str = "<?xml version=\"1.0\"?>
\t<FscreenReq>
\t\t<ReqId>3</ReqId>
\t\t<ReqType>SMB_CREAT</ReqType>
\t\t<NotfInfo>
\t\t\t<SmbCreatReq>
\t\t\t<CommonInfo>
\t\t\t  <ProtCommonInfo>
\t\t\t    <ClientIp>192.0.2.31</ClientIp>
\t\t\t    <UsrIdType>MAPPED_ID</UsrIdType>
\t\t\t    <UsrContext><MappedId><Uid>0</Uid><WinSid>S-1-5-21-1-2-3-500</WinSid></MappedId></UsrContext>
\t\t\t    <FileOwner><WinSid>S-1-5-32-544</WinSid></FileOwner>
\t\t\t    <AccessPath>
\t\t\t      <Path><PathNameType>WIN_NAME</PathNameType><PathName>\\Reports\\Q3 draft.docx</PathName></Path>
\t\t\t      <Path><PathNameType>UNIX_NAME</PathNameType><PathName>/Reports/Q3 draft.docx</PathName></Path>
\t\t\t    </AccessPath>
\t\t\t    <VolMsid>2157093236 </VolMsid>
\t\t\t    <FileSize>0</FileSize>
\t\t\t    <NumHardLnk>0</NumHardLnk>
\t\t\t    <IsOfflineAttr>0</IsOfflineAttr>
\t\t\t    <FileType>FILE</FileType>
\t\t\t    <IsSparse>0</IsSparse>
\t\t\t    <IsDense>0</IsDense>
\t\t\t    <SomeFutureField><Nested>7</Nested></SomeFutureField>
\t\t\t  </ProtCommonInfo>
\t\t\t  <DisplayPath>\\\\SVM1-01\\share\\Reports\\Q3 draft.docx</DisplayPath>
\t\t\t  <ProtVer><MajorNum>3</MajorNum> <MinorNum>1</MinorNum></ProtVer>
\t\t\t</CommonInfo>
\t\t\t<CreatAccmode>393631</CreatAccmode>
\t\t\t<CreatSharemode>0</CreatSharemode>
\t\t\t<CreatDisposition>2</CreatDisposition>
\t\t\t<CreatOptions>100</CreatOptions>
\t\t\t<CreatNewObject>1 </CreatNewObject>
\t\t\t</SmbCreatReq>
\t\t</NotfInfo>
\t</FscreenReq>";

#[test]
fn screen_req_indented_smb_create_with_unknown_elements() {
    // Indented header too, and ContentLen deliberately off (re-indented capture).
    let payload = format!(
        "<?xml version=\"1.0\"?>\n\t<Header>\n\t\t<NotfType>SCREEN_REQ</NotfType>\n\t\t<ContentLen>1120</ContentLen>\n\t\t<DataFormat>XML</DataFormat>\n\t</Header>\n\n{SMB_CREAT_INDENTED}"
    );
    let mut frame = vec![b'"'];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.push(b'"');
    frame.extend_from_slice(payload.as_bytes());
    let d = decode(&frame);
    assert!(d.content_len_mismatch().is_some());
    let Message::ScreenReq(r) = d.message else {
        panic!()
    };
    assert_eq!(r.req_id, 3);
    assert_eq!(r.req_type, ReqType::SmbCreat);
    let c = &r.common;
    assert_eq!(c.client_ip.as_deref(), Some("192.0.2.31"));
    assert_eq!(c.generation_time, None);
    assert_eq!(c.user_id_type, Some(UserIdType::MappedId));
    assert_eq!(
        c.user,
        Some(UserIdentity::Mapped {
            uid: 0,
            win_sid: "S-1-5-21-1-2-3-500".into()
        })
    );
    assert_eq!(
        c.file_owner,
        Some(UserIdentity::WinSid("S-1-5-32-544".into()))
    );
    assert_eq!(
        c.path(&PathNameType::UnixName),
        Some("/Reports/Q3 draft.docx")
    );
    assert_eq!(
        c.path(&PathNameType::WinName),
        Some("\\Reports\\Q3 draft.docx")
    );
    assert_eq!(c.vol_msid, 2_157_093_236);
    assert_eq!(c.file_type, Some(FileType::File));
    assert_eq!(
        c.display_path.as_deref(),
        Some("\\\\SVM1-01\\share\\Reports\\Q3 draft.docx")
    );
    assert_eq!(
        c.protocol_version,
        Some(ClientProtocolVersion { major: 3, minor: 1 })
    );
    assert_eq!(
        r.fields,
        OperationFields::SmbCreate {
            access_mode: 393_631,
            share_mode: 0,
            disposition: 2,
            options: 100,
            new_object: true
        }
    );
}

#[test]
fn screen_req_entities_and_unicode_in_paths() {
    let body = r#"<?xml version="1.0"?><FscreenReq><ReqId>9</ReqId><ReqType>NFS_REN</ReqType><NotfInfo><NfsRenReq><CommonInfo><ProtCommonInfo><ClientIp>2001:db8::7</ClientIp><GenerationTime>1767225600000000000</GenerationTime><UsrIdType>UNIX_ONLY</UsrIdType><UsrContext><UnixUid>4242</UnixUid></UsrContext><FileOwner><UnixUid>4242</UnixUid></FileOwner><AccessPath><Path><PathNameType>UNIX_NAME</PathNameType><PathName>/R&amp;D/&#x65E5;&#26412;/a&lt;b&gt;.txt</PathName></Path></AccessPath><VolMsid>7</VolMsid><FileSize>12</FileSize><NumHardLnk>1</NumHardLnk><IsOfflineAttr>false</IsOfflineAttr><FileType>FILE</FileType><IsSparse>true</IsSparse><IsDense>0</IsDense></ProtCommonInfo><ProtVer><MajorNum>4</MajorNum><MinorNum>1</MinorNum></ProtVer><UserGids>100</UserGids></CommonInfo><TargetAccessPath><Path><PathNameType>UNIX_NAME</PathNameType><PathName>/R&amp;D/日本/&quot;final&quot; &apos;v2&apos;.txt</PathName></Path></TargetAccessPath></NfsRenReq></NotfInfo></FscreenReq>"#;
    let r = screen(&wire("SCREEN_REQ", Some(body), true));
    assert_eq!(
        r.common.path(&PathNameType::UnixName),
        Some("/R&D/日本/a<b>.txt")
    );
    assert_eq!(
        r.fields.target_path(&PathNameType::UnixName),
        Some("/R&D/日本/\"final\" 'v2'.txt")
    );
    assert_eq!(r.common.client_ip.as_deref(), Some("2001:db8::7"));
    assert_eq!(r.common.generation_time, Some(1_767_225_600_000_000_000));
    assert_eq!(r.common.user, Some(UserIdentity::UnixUid(4242)));
    assert!(r.common.is_sparse);
    assert_eq!(r.common.user_gids, Some(100));
    assert_eq!(
        r.common.protocol_version,
        Some(ClientProtocolVersion { major: 4, minor: 1 })
    );
}

/// Builds a minimal, hand-written SCREEN_REQ body around `op_fields` for
/// `req_type`, with the child element `element`.
fn screen_body(req_type: &str, element: &str, protocol_extra: &str, op_fields: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><FscreenReq><ReqId>77</ReqId><ReqType>{req_type}</ReqType><NotfInfo>\
<{element}><CommonInfo><ProtCommonInfo><ClientIp>198.51.100.9</ClientIp><UsrIdType>UNIX_ONLY</UsrIdType>\
<UsrContext><UnixUid>10</UnixUid></UsrContext><FileOwner><UnixUid>10</UnixUid></FileOwner><AccessPath>\
<Path><PathNameType>UNIX_NAME</PathNameType><PathName>/d/f</PathName></Path></AccessPath><VolMsid>5</VolMsid>\
<FileSize>1</FileSize><NumHardLnk>1</NumHardLnk><IsOfflineAttr>0</IsOfflineAttr><FileType>FILE</FileType>\
<IsSparse>0</IsSparse><IsDense>0</IsDense></ProtCommonInfo>{protocol_extra}</CommonInfo>{op_fields}</{element}></NotfInfo></FscreenReq>"
    )
}

const SMB_EXTRA: &str =
    "<DisplayPath>-</DisplayPath><ProtVer><MajorNum>2</MajorNum><MinorNum>1</MinorNum></ProtVer>";
const NFS_EXTRA: &str =
    "<ProtVer><MajorNum>3</MajorNum><MinorNum>0</MinorNum></ProtVer><UserGids>0</UserGids>";
const TARGET: &str = "<TargetAccessPath><Path><PathNameType>UNIX_NAME</PathNameType><PathName>/d/g</PathName></Path></TargetAccessPath>";

fn target() -> OperationFields {
    OperationFields::Target {
        target: vec![PathName {
            name_type: Some(PathNameType::UnixName),
            name: "/d/g".into(),
        }],
    }
}

/// Every ReqType: its wire name, the element NetApp uses, the op fields as
/// written on the wire, and what they must decode to.
#[test]
fn every_req_type_dispatches_to_its_fields() {
    let smb_open = "<OpenAccmode>1180063</OpenAccmode><OpenSharemode>7</OpenSharemode><OpenOptions>64</OpenOptions>";
    let smb_creat = "<CreatAccmode>1</CreatAccmode><CreatSharemode>2</CreatSharemode><CreatDisposition>3</CreatDisposition><CreatOptions>4</CreatOptions><CreatNewObject>0</CreatNewObject>";
    let smb_close = "<RdBytes>10</RdBytes><WrBytes>20</WrBytes>";
    let rd = "<RdOffset>4096</RdOffset><RdLength>512</RdLength>";
    let wr = "<WrOffset>8192</WrOffset><WrLength>1024</WrLength>";
    let smb_setattr = "<SetAttrChangeAttr>273</SetAttrChangeAttr><SetAttrNewOwner><WinSid>S-1-5-18</WinSid></SetAttrNewOwner><SetAttrFileSize>99</SetAttrFileSize><SetAttrMtime><Secs>-5</Secs><NanoSecs>6</NanoSecs></SetAttrMtime>";
    let nfs_setattr = "<ChangeAttr>128</ChangeAttr><SetAttrCommon><SetAttrMode>420</SetAttrMode><SetAttrUid>7</SetAttrUid></SetAttrCommon>";
    let create = OperationFields::SmbCreate {
        access_mode: 1,
        share_mode: 2,
        disposition: 3,
        options: 4,
        new_object: false,
    };
    let cases: Vec<(&str, &str, &str, &str, OperationFields)> = vec![
        (
            "SMB_OPEN",
            "SmbOpenReq",
            SMB_EXTRA,
            smb_open,
            OperationFields::SmbOpen {
                access_mode: 1_180_063,
                share_mode: 7,
                options: 64,
            },
        ),
        (
            "SMB_CLOSE",
            "SmbCloseReq",
            SMB_EXTRA,
            smb_close,
            OperationFields::SmbClose {
                read_bytes: Some(10),
                write_bytes: Some(20),
            },
        ),
        (
            "SMB_CREAT",
            "SmbCreatReq",
            SMB_EXTRA,
            smb_creat,
            create.clone(),
        ),
        ("SMB_CREAT_DIR", "SmbCreatReq", SMB_EXTRA, smb_creat, create),
        ("SMB_DEL", "SmbDelReq", SMB_EXTRA, "", OperationFields::None),
        (
            "SMB_DEL_DIR",
            "SmbDelReq",
            SMB_EXTRA,
            "",
            OperationFields::None,
        ),
        ("SMB_REN", "SmbRenReq", SMB_EXTRA, TARGET, target()),
        ("SMB_REN_DIR", "SmbRenReq", SMB_EXTRA, TARGET, target()),
        (
            "SMB_GET_ATTR",
            "SmbGetAttrReq",
            SMB_EXTRA,
            "",
            OperationFields::None,
        ),
        (
            "SMB_SET_ATTR",
            "SmbSetAttrReq",
            SMB_EXTRA,
            smb_setattr,
            OperationFields::SmbSetAttr(SmbSetAttr {
                change_mask: 273,
                new_owner: Some(UserIdentity::WinSid("S-1-5-18".into())),
                file_size: Some(99),
                mtime: Some(AttrTime { secs: -5, nanos: 6 }),
                ..SmbSetAttr::default()
            }),
        ),
        (
            "SMB_RD",
            "SmbRdReq",
            SMB_EXTRA,
            rd,
            OperationFields::Read {
                offset: 4096,
                length: 512,
            },
        ),
        (
            "SMB_WR",
            "SmbWrReq",
            SMB_EXTRA,
            wr,
            OperationFields::Write {
                offset: 8192,
                length: 1024,
            },
        ),
        ("SMB_LNK", "SmbLnkReq", SMB_EXTRA, TARGET, target()),
        (
            "SMB_SYM_LNK",
            "SmbSymLnkReq",
            SMB_EXTRA,
            "",
            OperationFields::None,
        ),
        (
            "NFS_LOOKUP",
            "NfsLookupReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
        (
            "NFS_CREAT",
            "NfsCreatReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
        (
            "NFS_CREAT_DIR",
            "NfsCreatReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
        ("NFS_DEL", "NfsDelReq", NFS_EXTRA, "", OperationFields::None),
        (
            "NFS_DEL_DIR",
            "NfsDelReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
        ("NFS_REN", "NfsRenReq", NFS_EXTRA, TARGET, target()),
        ("NFS_REN_DIR", "NfsRenReq", NFS_EXTRA, TARGET, target()),
        (
            "NFS_OPEN",
            "NfsOpenReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
        (
            "NFS_CLOSE",
            "NfsCloseReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
        (
            "NFS_RD",
            "NfsRdReq",
            NFS_EXTRA,
            rd,
            OperationFields::Read {
                offset: 4096,
                length: 512,
            },
        ),
        (
            "NFS_WR",
            "NfsWrReq",
            NFS_EXTRA,
            wr,
            OperationFields::Write {
                offset: 8192,
                length: 1024,
            },
        ),
        (
            "NFS_GET_ATTR",
            "NfsGetAttrReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
        (
            "NFS_SET_ATTR",
            "NfsSetAttrReq",
            NFS_EXTRA,
            nfs_setattr,
            OperationFields::NfsSetAttr(NfsSetAttr {
                change_mask: 128,
                mode: Some(420),
                uid: Some(7),
                ..NfsSetAttr::default()
            }),
        ),
        ("NFS_LNK", "NfsLnkReq", NFS_EXTRA, TARGET, target()),
        (
            "NFS_SYM_LNK",
            "NfsSymLnkReq",
            NFS_EXTRA,
            "",
            OperationFields::None,
        ),
    ];
    assert_eq!(cases.len(), ReqType::ALL.len(), "a case for every ReqType");
    for (wire_name, element, extra, op, expected) in cases {
        let r = screen(&wire(
            "SCREEN_REQ",
            Some(&screen_body(wire_name, element, extra, op)),
            true,
        ));
        assert_eq!(r.req_type.as_str(), wire_name);
        assert_eq!(r.req_type.element_name(), element, "{wire_name}");
        assert_eq!(r.fields, expected, "{wire_name}");
        assert_eq!(r.common.path(&PathNameType::UnixName), Some("/d/f"));
        // Dispatch is on ReqType, not on the element name.
        let renamed = screen(&wire(
            "SCREEN_REQ",
            Some(&screen_body(wire_name, "AnyOtherName", extra, op)),
            false,
        ));
        assert_eq!(
            renamed.fields, expected,
            "{wire_name} under another element name"
        );
    }
}

#[test]
fn screen_resp_cancel_and_status() {
    let resp = r#"<?xml version="1.0"?><FscreenResp><ReqId>3240772</ReqId><ReqType>SMB_CLOSE</ReqType><NotfResp>1 </NotfResp></FscreenResp>"#;
    assert_eq!(
        decode(&wire("SCREEN_RESP", Some(resp), true)).message,
        Message::ScreenResp(ScreenResponse {
            req_id: 3_240_772,
            req_type: ReqType::SmbClose,
            decision: ScreenDecision::Allow
        })
    );
    let deny = r#"<?xml version="1.0"?>
<FscreenResp>
    <ReqId>899</ReqId>
    <ReqType>SMB_CREAT</ReqType>
    <NotfResp>2</NotfResp>
</FscreenResp>"#;
    let Message::ScreenResp(d) = decode(&wire("SCREEN_RESP", Some(deny), false)).message else {
        panic!()
    };
    assert_eq!(d.decision, ScreenDecision::Deny);
    let cancel = r#"<?xml version="1.0"?><FscreenCancel><ReqId>3252228</ReqId><ReqType>SMB_OPEN</ReqType> <CancelReason>Cancel Timedout</CancelReason></FscreenCancel>"#;
    assert_eq!(
        decode(&wire("SCREEN_CANCEL", Some(cancel), true)).message,
        Message::ScreenCancel(ScreenCancel {
            req_id: 3_252_228,
            req_type: ReqType::SmbOpen,
            reason: "Cancel Timedout".into()
        })
    );
    let query = r#"<?xml version="1.0"?> <FscreenQueryStatus><ReqId>3250212</ReqId><ReqType>NFS_WR</ReqType> </FscreenQueryStatus>"#;
    let Message::StatusQueryReq(q) = decode(&wire("STATUS_QUERY_REQ", Some(query), true)).message
    else {
        panic!()
    };
    assert_eq!((q.req_id, q.req_type), (3_250_212, ReqType::NfsWr));
    let answer = r#"<?xml version="1.0"?> <FscreenStatusResp><ReqId>3250212</ReqId><ReqType>NFS_WR</ReqType><Resp>2 </Resp></FscreenStatusResp>"#;
    assert_eq!(
        decode(&wire("STATUS_QUERY_RESP", Some(answer), true)).message,
        Message::StatusQueryResp(q.answer(RequestStatus::Lost))
    );
}

#[test]
fn back_pressure_keep_alive_alert_volume_outage() {
    let bp = |apply: u8| {
        format!(
            "<?xml version=\"1.0\"?> <BackPressure><SessionId>sess-1</SessionId> <Apply>{apply}</Apply></BackPressure>"
        )
    };
    assert_eq!(
        decode(&wire("BACK_PRESSURE_APPLY", Some(&bp(1)), true)).message,
        Message::BackPressureApply(BackPressure {
            session_id: "sess-1".into()
        })
    );
    assert_eq!(
        decode(&wire("BACK_PRESSURE_REM", Some(&bp(0)), true)).message,
        Message::BackPressureRem(BackPressure {
            session_id: "sess-1".into()
        })
    );
    // Header-only, with and without the NUL.
    assert_eq!(
        decode(&wire("KEEP_ALIVE", None, true)).message,
        Message::KeepAlive
    );
    assert_eq!(
        decode(&wire("KEEP_ALIVE", None, false)).message,
        Message::KeepAlive
    );

    let alert = r#"<?xml version="1.0"?><Alert><SessionId>sess-2</SessionId> <Severity>FATAL</Severity><AlertMsg>FPolicy Handshake failed.</AlertMsg></Alert>"#;
    assert_eq!(
        decode(&wire("ALERT_MSG", Some(alert), true)).message,
        Message::Alert(Alert {
            session_id: "sess-2".into(),
            severity: Severity::Fatal,
            message: "FPolicy Handshake failed.".into()
        })
    );
    let vol = r#"<?xml version="1.0"?><VolNotf><VolMsid>2147484674</VolMsid><Action>MOUNT</Action><IsActive>1 </IsActive></VolNotf>"#;
    assert_eq!(
        decode(&wire("VOL_NOTFICATION", Some(vol), true)).message,
        Message::VolNotification(VolNotification {
            vol_msid: Some(2_147_484_674),
            action: Some(VolumeAction::Mount),
            is_active: Some(true)
        })
    );
    let outage = r#"<?xml version="1.0"?><Outage><FilePath>//vol2/x y.txt</FilePath><PolicyName>pol</PolicyName><Status>Done</Status></Outage>"#;
    assert_eq!(
        decode(&wire("OUTAGE_MSG", Some(outage), true)).message,
        Message::Outage(Outage {
            file_path: "//vol2/x y.txt".into(),
            policy_name: "pol".into(),
            status: "Done".into()
        })
    );
}

fn decode_err(frame: &[u8]) -> MessageError {
    match parse_frame(frame, DEFAULT_MAX_FRAME_LEN).expect("framing") {
        FrameStatus::Complete { payload, .. } => decode_payload(payload).expect_err("must fail"),
        FrameStatus::Incomplete { .. } => panic!("incomplete"),
    }
}

#[test]
fn message_errors_say_what_and_where() {
    // The message type that does not exist.
    assert_eq!(
        decode_err(&wire("NOTI_REQ", Some("<?xml version=\"1.0\"?><X/>"), true)),
        MessageError::UnknownNotfType("NOTI_REQ".into())
    );
    // A bad number names its path.
    let bad = screen_body("NFS_WR", "NfsWrReq", NFS_EXTRA, "<WrOffset>12x</WrOffset>");
    let err = decode_err(&wire("SCREEN_REQ", Some(&bad), true));
    assert_eq!(
        err,
        MessageError::InvalidValue {
            path: "FscreenReq/NotfInfo/*/WrOffset".into(),
            value: "12x".into(),
            expected: "an unsigned integer"
        }
    );
    assert!(err.to_string().contains("WrOffset"));
    // Unknown ReqType.
    let bad = screen_body("NOTI_REQ", "X", NFS_EXTRA, "");
    assert_eq!(
        decode_err(&wire("SCREEN_REQ", Some(&bad), true)),
        MessageError::UnknownReqType("NOTI_REQ".into())
    );
    // Wrong root for the NotfType.
    assert!(matches!(
        decode_err(&wire(
            "NEGO_REQ",
            Some("<?xml version=\"1.0\"?><FscreenReq/>"),
            true
        )),
        MessageError::UnexpectedRoot {
            expected: "Handshake",
            ..
        }
    ));
    // Torn XML (mismatched end tag) reports a position.
    let err = decode_err(&wire(
        "SCREEN_RESP",
        Some("<?xml version=\"1.0\"?><FscreenResp><ReqId>1</ReqType></FscreenResp>"),
        true,
    ));
    assert!(
        matches!(
            err,
            MessageError::Xml {
                part: Part::Body,
                ..
            }
        ),
        "{err}"
    );
    // A body is required for everything but KEEP_ALIVE.
    assert_eq!(
        decode_err(&wire("SCREEN_REQ", None, true)),
        MessageError::MissingBody {
            notf_type: "SCREEN_REQ"
        }
    );
    // Missing ReqId.
    assert_eq!(
        decode_err(&wire(
            "SCREEN_RESP",
            Some("<FscreenResp><ReqType>SMB_OPEN</ReqType><NotfResp>1</NotfResp></FscreenResp>"),
            true
        )),
        MessageError::MissingElement {
            path: "FscreenResp/ReqId".into()
        }
    );
    // DTDs are refused.
    let err = decode_err(&wire(
        "ALERT_MSG",
        Some(
            "<?xml version=\"1.0\"?><!DOCTYPE Alert [<!ENTITY a \"aaaa\">]><Alert><AlertMsg>&a;</AlertMsg></Alert>",
        ),
        true,
    ));
    assert!(err.to_string().contains("DOCTYPE"), "{err}");
    // Protobuf format is not implemented.
    let mut frame = vec![b'"'];
    let payload = "<?xml version=\"1.0\"?><Header><NotfType>KEEP_ALIVE</NotfType><ContentLen>0</ContentLen><DataFormat>PROTOBUF</DataFormat></Header>";
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.push(b'"');
    frame.extend_from_slice(payload.as_bytes());
    assert_eq!(
        decode_err(&frame),
        MessageError::UnsupportedDataFormat("PROTOBUF".into())
    );
    // Invalid UTF-8 in the body.
    let mut frame = wire(
        "ALERT_MSG",
        Some("<Alert><AlertMsg>ok</AlertMsg></Alert>"),
        false,
    );
    let at = frame.len() - 20;
    frame[at] = 0xff;
    assert_eq!(
        decode_err(&frame),
        MessageError::InvalidUtf8 { part: Part::Body }
    );
}

#[test]
fn deep_nesting_is_bounded() {
    let deep = format!("<Alert>{}{}</Alert>", "<a>".repeat(100), "</a>".repeat(100));
    assert!(matches!(
        decode_err(&wire("ALERT_MSG", Some(&deep), true)),
        MessageError::TooDeep { .. }
    ));
    let wide = format!("<Alert>{}</Alert>", "<a/>".repeat(10_000));
    assert!(matches!(
        decode_err(&wire("ALERT_MSG", Some(&wide), true)),
        MessageError::TooManyElements { .. }
    ));
}

#[test]
fn encoded_frames_have_the_documented_layout() {
    let msg = Message::ScreenResp(ScreenResponse {
        req_id: 5,
        req_type: ReqType::SmbCreat,
        decision: ScreenDecision::Deny,
    });
    let frame = msg.to_frame();
    assert_eq!(frame[0], b'"');
    assert_eq!(frame[5], b'"');
    let n = u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize;
    assert_eq!(n, frame.len() - 6);
    assert_eq!(
        *frame.last().unwrap(),
        0,
        "trailing NUL counted in the length"
    );
    let text = std::str::from_utf8(&frame[6..frame.len() - 1]).unwrap();
    let (header, body) = text.split_once("\n\n").unwrap();
    assert!(header.starts_with("<?xml version=\"1.0\"?><Header><NotfType>SCREEN_RESP</NotfType>"));
    assert!(header.contains(&format!("<ContentLen>{}</ContentLen>", body.len())));
    assert_eq!(
        body,
        "<?xml version=\"1.0\"?><FscreenResp><ReqId>5</ReqId><ReqType>SMB_CREAT</ReqType><NotfResp>2</NotfResp></FscreenResp>"
    );
    // Without the NUL.
    let mut out = Vec::new();
    Encoder::new(false).encode(&Message::KeepAlive, &mut out);
    assert_eq!(
        std::str::from_utf8(&out[6..]).unwrap(),
        "<?xml version=\"1.0\"?><Header><NotfType>KEEP_ALIVE</NotfType><ContentLen>0</ContentLen><DataFormat>XML</DataFormat></Header>"
    );
}

#[test]
fn escaping_in_built_responses() {
    let hs = Handshake {
        vs_uuid: "u".into(),
        policy_name: "a&b<c>\"d'".into(),
        session_id: "s".into(),
        versions: vec!["1.0".into()],
    };
    let frame = Message::NegoResp(hs.accept(ProtocolVersion::V1_0)).to_frame();
    let text = String::from_utf8_lossy(&frame);
    assert!(
        text.contains("<PolicyName>a&amp;b&lt;c&gt;&quot;d&apos;</PolicyName>"),
        "{text}"
    );
    let Message::NegoResp(back) = decode(&frame).message else {
        panic!()
    };
    assert_eq!(back.policy_name, "a&b<c>\"d'");
}

#[test]
fn character_references_accept_digits_only() {
    let alert = |msg: &str| {
        wire(
            "ALERT_MSG",
            Some(&format!(
                "<Alert><SessionId>s</SessionId><Severity>WARNING</Severity><AlertMsg>{msg}</AlertMsg></Alert>"
            )),
            true,
        )
    };
    let Message::Alert(a) = decode(&alert("&#x41;&#66;&#x0000043;")).message else {
        panic!()
    };
    assert_eq!(a.message, "ABC");
    // Rust's integer parsers accept a sign; XML does not.
    for bad in [
        "&#x+41;",
        "&#+65;",
        "&#x;",
        "&#;",
        "&#xD800;",
        "&#0;",
        "&#x110000;",
        "&nbsp;",
    ] {
        let err = decode_err(&alert(bad));
        assert!(
            matches!(
                err,
                MessageError::Xml {
                    part: Part::Body,
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
}
