//! Property tests: build → encode → decode → equal for arbitrary messages;
//! arbitrary bytes never panic; framing is independent of how bytes arrive.

use bytes::BytesMut;
use fpolicy_proto::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Text as it can appear in an element: any Unicode but the control
/// characters XML 1.0 cannot carry (and CR, which parsers normalise).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ._/\\\\-]{0,24}",
        "\\PC{0,16}",
        Just("a&b <c> \"q\" 'x' ]]> &amp;".to_owned()),
        Just("日本語/données/Été 2026".to_owned()),
    ]
}

/// Text whose surrounding whitespace is not significant (ids, SIDs, IPs).
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9:.\\-]{1,40}"
}

fn req_type() -> impl Strategy<Value = ReqType> {
    proptest::sample::select(ReqType::ALL.to_vec())
}

fn user() -> impl Strategy<Value = UserIdentity> {
    prop_oneof![
        any::<u32>().prop_map(UserIdentity::UnixUid),
        token().prop_map(UserIdentity::WinSid),
        (any::<u32>(), token()).prop_map(|(uid, win_sid)| UserIdentity::Mapped { uid, win_sid }),
    ]
}

fn path_name() -> impl Strategy<Value = PathName> {
    (
        option::of(prop_oneof![
            Just(PathNameType::WinName),
            Just(PathNameType::Win83Name),
            Just(PathNameType::UnixName),
            "[A-Z_]{1,12}".prop_map(PathNameType::Other),
        ]),
        text(),
    )
        .prop_map(|(name_type, name)| PathName { name_type, name })
        // An Other() that happens to spell a known kind decodes as that kind.
        .prop_filter("canonical kind", |p| {
            !matches!(&p.name_type, Some(PathNameType::Other(s)) if ["WIN_NAME", "WIN_8_3_NAME", "UNIX_NAME"].contains(&s.as_str()))
        })
}

fn attr_time() -> impl Strategy<Value = AttrTime> {
    (any::<i64>(), any::<u32>()).prop_map(|(secs, nanos)| AttrTime { secs, nanos })
}

fn common(protocol: Protocol) -> impl Strategy<Value = CommonInfo> {
    let ids = (
        option::of(token()),
        option::of(any::<u64>()),
        option::of(prop_oneof![
            Just(UserIdType::UnixOnly),
            Just(UserIdType::WinOnly),
            Just(UserIdType::MappedId)
        ]),
        option::of(user()),
        option::of(user()),
        vec(path_name(), 0..=3),
    );
    let attrs = (
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<[bool; 3]>(),
        option::of(prop_oneof![
            Just(FileType::File),
            Just(FileType::Dir),
            Just(FileType::Stream),
            Just(FileType::Symlink)
        ]),
        option::of(text()),
        option::of(
            (any::<u32>(), any::<u32>())
                .prop_map(|(major, minor)| ClientProtocolVersion { major, minor }),
        ),
        option::of(any::<u32>()),
    );
    (ids, attrs).prop_map(
        move |(
            (client_ip, generation_time, user_id_type, user, file_owner, access_path),
            (
                vol_msid,
                file_size,
                num_hard_links,
                flags,
                file_type,
                display_path,
                protocol_version,
                user_gids,
            ),
        )| CommonInfo {
            client_ip,
            generation_time,
            user_id_type,
            user,
            file_owner,
            access_path,
            vol_msid,
            file_size,
            num_hard_links,
            is_offline: flags[0],
            file_type,
            is_sparse: flags[1],
            is_dense: flags[2],
            // Empty strings in nillable elements decode as absent.
            display_path: display_path.filter(|d| !d.is_empty() || protocol == Protocol::Smb),
            protocol_version,
            user_gids,
        },
    )
}

fn fields(kind: FieldsKind) -> BoxedStrategy<OperationFields> {
    match kind {
        FieldsKind::None => Just(OperationFields::None).boxed(),
        FieldsKind::SmbOpen => any::<[u32; 3]>()
            .prop_map(|[a, s, o]| OperationFields::SmbOpen {
                access_mode: a,
                share_mode: s,
                options: o,
            })
            .boxed(),
        FieldsKind::SmbCreate => (any::<[u32; 4]>(), any::<bool>())
            .prop_map(|([a, s, d, o], n)| OperationFields::SmbCreate {
                access_mode: a,
                share_mode: s,
                disposition: d,
                options: o,
                new_object: n,
            })
            .boxed(),
        FieldsKind::SmbClose => (option::of(any::<u64>()), option::of(any::<u64>()))
            .prop_map(|(read_bytes, write_bytes)| OperationFields::SmbClose {
                read_bytes,
                write_bytes,
            })
            .boxed(),
        FieldsKind::Target => vec(path_name(), 0..=3)
            .prop_map(|target| OperationFields::Target { target })
            .boxed(),
        FieldsKind::Read => (any::<u64>(), any::<u32>())
            .prop_map(|(offset, length)| OperationFields::Read { offset, length })
            .boxed(),
        FieldsKind::Write => (any::<u64>(), any::<u32>())
            .prop_map(|(offset, length)| OperationFields::Write { offset, length })
            .boxed(),
        FieldsKind::SmbSetAttr => (
            any::<u32>(),
            option::of(user()),
            option::of(user()),
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            option::of(attr_time()),
            option::of(attr_time()),
            option::of(attr_time()),
        )
            .prop_map(
                |(
                    change_mask,
                    new_owner,
                    new_group,
                    file_size,
                    alloc_size,
                    mtime,
                    atime,
                    ctime,
                )| {
                    OperationFields::SmbSetAttr(SmbSetAttr {
                        change_mask,
                        new_owner,
                        new_group,
                        file_size,
                        alloc_size,
                        mtime,
                        atime,
                        ctime,
                    })
                },
            )
            .boxed(),
        FieldsKind::NfsSetAttr => (
            any::<u32>(),
            option::of(any::<u32>()),
            option::of(any::<u32>()),
            option::of(any::<u32>()),
            option::of(any::<u64>()),
            option::of(attr_time()),
            option::of(attr_time()),
        )
            .prop_map(|(change_mask, mode, uid, gid, size, mtime, atime)| {
                OperationFields::NfsSetAttr(NfsSetAttr {
                    change_mask,
                    mode,
                    uid,
                    gid,
                    size,
                    mtime,
                    atime,
                })
            })
            .boxed(),
    }
}

fn screen_request() -> impl Strategy<Value = ScreenRequest> {
    (any::<u64>(), req_type()).prop_flat_map(|(req_id, req_type)| {
        (
            common(req_type.protocol()),
            fields(OperationFields::kind_for(req_type)),
        )
            .prop_map(move |(common, fields)| ScreenRequest {
                req_id,
                req_type,
                common,
                fields,
            })
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (token(), token(), token(), vec("[0-9]\\.[0-9]", 0..5)).prop_map(
            |(vs_uuid, policy_name, session_id, versions)| {
                Message::NegoReq(Handshake {
                    vs_uuid,
                    policy_name,
                    session_id,
                    versions,
                })
            }
        ),
        (token(), token(), token(), "[0-9]\\.[0-9]").prop_map(
            |(vs_uuid, policy_name, session_id, version)| {
                Message::NegoResp(HandshakeResp {
                    vs_uuid,
                    policy_name,
                    session_id,
                    version,
                })
            }
        ),
        screen_request().prop_map(Message::ScreenReq),
        screen_request().prop_map(Message::ScreenReq),
        (any::<u64>(), req_type(), any::<u32>()).prop_map(|(req_id, req_type, code)| {
            Message::ScreenResp(ScreenResponse {
                req_id,
                req_type,
                decision: ScreenDecision::from_code(code),
            })
        }),
        (any::<u64>(), req_type(), text()).prop_map(|(req_id, req_type, reason)| {
            Message::ScreenCancel(ScreenCancel {
                req_id,
                req_type,
                reason,
            })
        }),
        (any::<u64>(), req_type()).prop_map(|(req_id, req_type)| Message::StatusQueryReq(
            StatusQuery { req_id, req_type }
        )),
        (any::<u64>(), req_type(), any::<u32>()).prop_map(|(req_id, req_type, code)| {
            Message::StatusQueryResp(StatusQueryResponse {
                req_id,
                req_type,
                status: RequestStatus::from_code(code),
            })
        }),
        token().prop_map(|session_id| Message::BackPressureApply(BackPressure { session_id })),
        token().prop_map(|session_id| Message::BackPressureRem(BackPressure { session_id })),
        Just(Message::KeepAlive),
        (
            token(),
            prop_oneof![Just(Severity::Fatal), Just(Severity::Warning)],
            text()
        )
            .prop_map(|(session_id, severity, message)| Message::Alert(Alert {
                session_id,
                severity,
                message
            })),
        (
            option::of(any::<u64>()),
            option::of(prop_oneof![
                Just(VolumeAction::Mount),
                Just(VolumeAction::Unmount),
                Just(VolumeAction::Modify)
            ]),
            option::of(any::<bool>())
        )
            .prop_map(|(vol_msid, action, is_active)| Message::VolNotification(
                VolNotification {
                    vol_msid,
                    action,
                    is_active
                }
            )),
        (text(), token(), token()).prop_map(|(file_path, policy_name, status)| Message::Outage(
            Outage {
                file_path,
                policy_name,
                status
            }
        )),
    ]
}

fn decode_one(frame: &[u8]) -> Message {
    let mut buf = BytesMut::from(frame);
    let payload = FrameDecoder::default()
        .decode(&mut buf)
        .unwrap()
        .expect("a whole frame");
    assert!(buf.is_empty(), "exactly one frame consumed");
    decode_payload(&payload).unwrap().message
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_decode_roundtrip(msg in message(), nul in any::<bool>()) {
        let mut frame = Vec::new();
        Encoder::new(nul).encode(&msg, &mut frame);
        let back = decode_one(&frame);
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn decoding_is_independent_of_read_boundaries(
        msgs in vec(message(), 1..6),
        cuts in vec(1usize..300, 1..40),
    ) {
        let mut stream = Vec::new();
        let mut encoder = Encoder::default();
        for m in &msgs {
            encoder.encode(m, &mut stream);
        }
        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut cut = cuts.iter().cycle();
        while pos < stream.len() {
            let n = (*cut.next().unwrap()).min(stream.len() - pos);
            buf.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            while let Some(payload) = decoder.decode(&mut buf).unwrap() {
                got.push(decode_payload(&payload).unwrap().message);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }

    /// No input panics; memory is bounded by the frame cap (the decoder
    /// never asks to reserve more than the cap plus the prefix).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..4096), max in 1usize..2048) {
        let decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::from(&bytes[..]);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(payload)) => {
                    prop_assert!(payload.len() <= max);
                    let _ = decode_payload(&payload);
                }
                Ok(None) => {
                    prop_assert!(buf.capacity() <= (max + frame::PREFIX_LEN).max(bytes.len()) + 64);
                    break;
                }
                Err(_) => break,
            }
        }
        let _ = decode_payload(&bytes);
    }

    /// Payloads that look almost right: a valid message with bytes changed.
    #[test]
    fn mutated_payloads_never_panic(msg in message(), edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let frame = msg.to_frame();
        let mut payload = frame[frame::PREFIX_LEN..].to_vec();
        for (i, b) in edits {
            let at = i.index(payload.len());
            payload[at] = b;
        }
        let _ = decode_payload(&payload);
    }
}

#[test]
fn partial_input_needs_more_and_consumes_nothing() {
    let frame = sample::every_message()
        .into_iter()
        .find(|(n, _)| n == "screen_req_smb_creat")
        .unwrap()
        .1
        .to_frame();
    let decoder = FrameDecoder::default();
    for cut in 0..frame.len() {
        let mut buf = BytesMut::from(&frame[..cut]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None, "cut at {cut}");
        assert_eq!(buf.len(), cut);
    }
}

#[test]
fn oversized_length_is_refused_before_the_payload_arrives() {
    // Only the 5 bytes that carry the length: already an error.
    let head = [b'"', 0x7f, 0xff, 0xff, 0xff];
    assert_eq!(
        parse_frame(&head, 1024 * 1024),
        Err(FrameError::TooLarge {
            len: 0x7fff_ffff,
            max: 1024 * 1024
        })
    );
    let mut buf = BytesMut::from(&head[..]);
    assert!(FrameDecoder::new(4096).decode(&mut buf).is_err());
    assert!(
        buf.capacity() < 4096,
        "nothing reserved for a refused frame"
    );
}

#[test]
fn wrong_markers_and_empty_frames() {
    assert_eq!(
        parse_frame(b"X", 100),
        Err(FrameError::BadMarker {
            offset: 0,
            found: b'X'
        })
    );
    assert_eq!(
        parse_frame(b"\"\x00\x00\x00\x05X", 100),
        Err(FrameError::BadMarker {
            offset: 5,
            found: b'X'
        })
    );
    assert_eq!(
        parse_frame(b"\"\x00\x00\x00\x00\"", 100),
        Err(FrameError::Empty)
    );
    assert_eq!(
        parse_frame(b"", 100),
        Ok(FrameStatus::Incomplete { frame_len: None })
    );
}

#[test]
fn garbage_after_a_valid_frame() {
    let mut stream = Message::KeepAlive.to_frame();
    stream.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::from(&stream[..]);
    let first = decoder.decode(&mut buf).unwrap().unwrap();
    assert_eq!(decode_payload(&first).unwrap().message, Message::KeepAlive);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(FrameError::BadMarker {
            offset: 0,
            found: b'G'
        })
    );
}

#[test]
fn every_sample_message_roundtrips() {
    for (name, msg) in sample::every_message() {
        assert_eq!(decode_one(&msg.to_frame()), msg, "{name}");
    }
}
