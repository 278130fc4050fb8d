use fpolicy_event::normalize::{operation, volume_path};
use fpolicy_event::record;
use fpolicy_event::time::parse_rfc3339;
use fpolicy_event::*;
use fpolicy_proto::sample::screen_request;
use fpolicy_proto::{PathName, PathNameType, ProtocolVersion, ReqType};

fn session() -> SessionInfo {
    SessionInfo {
        svm_uuid: "svm-uuid-1".into(),
        policy_name: "audit".into(),
        session_id: "s-1".into(),
        peer: "10.0.0.5:40000".into(),
        engine: EngineType::Asynchronous,
    }
}

fn names() -> StaticNames {
    StaticNames::new(
        [(2_157_093_236u64, "vol_legal".to_owned())],
        [("svm-uuid-1".to_owned(), "svm_prod".to_owned())],
        "vol_default",
        "svm_default",
    )
}

const RECEIVED: i64 = 1_767_225_601_000_000_000;

#[test]
fn every_req_type_maps_and_renders() {
    let names = names();
    let n = Normalizer {
        names: &names,
        generation_time: GenerationTimeUnit::Auto,
    };
    for &rt in ReqType::ALL {
        let req = screen_request(7, rt, "/legal/contracts/a.pdf", ProtocolVersion::V1_2);
        let e = n.normalize(&req, &session(), RECEIVED);
        assert_eq!(e.operation_type, operation(&req));
        assert_eq!(e.volume_name, "vol_legal");
        assert_eq!(e.svm_name, "svm_prod");
        assert_eq!(e.metadata.req_type, rt.as_str());
        assert_eq!(e.metadata.s3_key, e.file_path.trim_start_matches('/'));
        assert!(e.file_path.starts_with('/'));
        // The JSON round-trips through the record.
        let mut buf = Vec::new();
        record::encode(&e, RECEIVED, ["bus", "ingest"], &mut buf).unwrap();
        let view = record::decode(&buf).unwrap();
        assert_eq!(view.operation, e.operation_type);
        assert_eq!(view.file_path, e.file_path);
        assert_eq!(view.previous_path, e.previous_path.as_deref());
        assert!(view.routed_to("bus") && view.routed_to("ingest"));
        assert!(!view.routed_to("bu") && !view.routed_to("other"));
        let back: Event = serde_json::from_slice(view.json).unwrap();
        assert_eq!(back, e);
    }
}

#[test]
fn operation_names_cover_the_contract() {
    let want = [
        (ReqType::NfsCreat, "create"),
        (ReqType::SmbWr, "write"),
        (ReqType::NfsDel, "delete"),
        (ReqType::SmbRen, "rename"),
        (ReqType::SmbCreatDir, "create_dir"),
        (ReqType::NfsDelDir, "delete_dir"),
        (ReqType::NfsRenDir, "rename_dir"),
        (ReqType::NfsRd, "read"),
        (ReqType::SmbOpen, "open"),
        (ReqType::SmbClose, "close"),
        (ReqType::NfsSetAttr, "setattr"),
        (ReqType::SmbGetAttr, "getattr"),
        (ReqType::NfsLnk, "link"),
        (ReqType::NfsSymLnk, "symlink"),
        (ReqType::NfsLookup, "lookup"),
    ];
    for (rt, name) in want {
        let req = screen_request(1, rt, "/a", ProtocolVersion::V1_2);
        assert_eq!(operation(&req).as_str(), name, "{rt}");
        let json = serde_json::to_value(operation(&req)).unwrap();
        assert_eq!(json, name);
    }
    // A directory reported with the file ReqType is still a directory op.
    let mut req = screen_request(1, ReqType::SmbDel, "/d", ProtocolVersion::V1_2);
    req.common.file_type = Some(fpolicy_proto::FileType::Dir);
    assert_eq!(operation(&req), Operation::DeleteDir);
}

#[test]
fn rename_puts_new_path_first_and_keeps_the_old() {
    let names = names();
    let n = Normalizer {
        names: &names,
        generation_time: GenerationTimeUnit::Auto,
    };
    let req = screen_request(9, ReqType::SmbRen, "/docs/old.txt", ProtocolVersion::V1_2);
    let e = n.normalize(&req, &session(), RECEIVED);
    assert_eq!(e.operation_type, Operation::Rename);
    assert_eq!(e.previous_path.as_deref(), Some("/docs/old.txt"));
    assert_ne!(e.file_path, "/docs/old.txt");
    assert_eq!(e.metadata.protocol, "smb");
    assert_eq!(e.metadata.uid, Some(1001));
    assert!(e.metadata.sid.as_deref().unwrap().starts_with("S-1-5-21"));
}

#[test]
fn paths_prefer_unix_names_and_convert_windows_names() {
    let p = |t: PathNameType, s: &str| PathName {
        name_type: Some(t),
        name: s.into(),
    };
    assert_eq!(
        volume_path(&[
            p(PathNameType::WinName, "\\A\\b.txt"),
            p(PathNameType::UnixName, "/A/b.txt")
        ])
        .unwrap(),
        "/A/b.txt"
    );
    assert_eq!(
        volume_path(&[p(PathNameType::WinName, "\\legal\\契約\\a b.pdf")]).unwrap(),
        "/legal/契約/a b.pdf"
    );
    assert_eq!(
        volume_path(&[p(PathNameType::UnixName, "x//y/")]).unwrap(),
        "/x/y"
    );
    // A backslash is a legal character in a UNIX name.
    assert_eq!(
        volume_path(&[p(PathNameType::UnixName, "/a\\b")]).unwrap(),
        "/a\\b"
    );
    assert_eq!(volume_path(&[p(PathNameType::UnixName, "")]).unwrap(), "/");
    assert_eq!(volume_path(&[]), None);
}

#[test]
fn protocol_names_and_unknown_names_fall_back_to_defaults() {
    let names = names();
    let n = Normalizer {
        names: &names,
        generation_time: GenerationTimeUnit::Auto,
    };
    let mut req = screen_request(1, ReqType::NfsWr, "/f", ProtocolVersion::V1_2);
    req.common.vol_msid = 1;
    req.common.protocol_version = Some(fpolicy_proto::ClientProtocolVersion { major: 3, minor: 0 });
    let mut s = session();
    s.svm_uuid = "other".into();
    let e = n.normalize(&req, &s, RECEIVED);
    assert_eq!(e.metadata.protocol, "nfsv3");
    assert_eq!(e.volume_name, "vol_default");
    assert_eq!(e.svm_name, "svm_default");
    assert!(
        e.metadata.io_offset.is_some() && e.metadata.io_length.is_some(),
        "writes carry offset and length"
    );
    req.common.protocol_version = Some(fpolicy_proto::ClientProtocolVersion { major: 4, minor: 0 });
    assert_eq!(n.normalize(&req, &s, RECEIVED).metadata.protocol, "nfsv4.0");
}

#[test]
fn ids_are_stable_per_notification_and_distinct_across_requests() {
    let names = names();
    let n = Normalizer {
        names: &names,
        generation_time: GenerationTimeUnit::Auto,
    };
    let a = screen_request(1, ReqType::NfsWr, "/f", ProtocolVersion::V1_2);
    let b = screen_request(2, ReqType::NfsWr, "/f", ProtocolVersion::V1_2);
    let e1 = n.normalize(&a, &session(), RECEIVED);
    let e2 = n.normalize(&a, &session(), RECEIVED + 5_000_000_000);
    let e3 = n.normalize(&b, &session(), RECEIVED);
    assert_eq!(e1.event_id, e2.event_id, "receive time is not identity");
    assert_ne!(e1.event_id, e3.event_id);
}

#[test]
fn generation_time_units() {
    let received = parse_rfc3339("2026-01-01T00:00:01Z").unwrap();
    let gen_ns = 1_767_225_600_123_456_789u64; // 2026-01-01T00:00:00.123456789Z
    let auto = GenerationTimeUnit::Auto;
    assert_eq!(auto.resolve(Some(gen_ns), received), gen_ns as i64);
    assert_eq!(
        auto.resolve(Some(gen_ns / 1_000_000), received),
        1_767_225_600_123_000_000
    );
    assert_eq!(
        auto.resolve(Some(1_767_225_600), received),
        1_767_225_600_000_000_000
    );
    // NetApp's published sample value is no Unix time: use the receive time.
    assert_eq!(auto.resolve(Some(9_685_710_478), received), received);
    assert_eq!(auto.resolve(None, received), received);
    assert_eq!(
        GenerationTimeUnit::Ignore.resolve(Some(gen_ns), received),
        received
    );
    assert_eq!(
        GenerationTimeUnit::Seconds.resolve(Some(5), received),
        5_000_000_000
    );
    assert_eq!(
        GenerationTimeUnit::Nanoseconds.resolve(Some(u64::MAX), received),
        received
    );
    let names = names();
    let n = Normalizer {
        names: &names,
        generation_time: auto,
    };
    let e = n.normalize(
        &screen_request(1, ReqType::NfsWr, "/f", ProtocolVersion::V1_2),
        &session(),
        received,
    );
    assert_eq!(e.timestamp, "2026-01-01T00:00:00.123456Z");
    assert_eq!(e.metadata.received_at, "2026-01-01T00:00:01.000000Z");
}

#[test]
fn version_1_records_go_to_every_sink() {
    let mut v1 = vec![1u8, 0];
    v1.extend_from_slice(&5i64.to_le_bytes());
    v1.extend_from_slice(&7u64.to_le_bytes());
    v1.extend_from_slice(&2u32.to_le_bytes());
    v1.extend_from_slice(b"/a");
    v1.extend_from_slice(&0u32.to_le_bytes());
    v1.extend_from_slice(b"{}");
    let view = record::decode(&v1).unwrap();
    assert_eq!(
        (view.file_path, view.file_size, view.json),
        ("/a", 7, &b"{}"[..])
    );
    assert!(view.routed_to("anything"));
    let mut e = Vec::new();
    let event: Event = serde_json::from_str(r#"{"event_id":"x","operation_type":"create","file_path":"/a","volume_name":"v","svm_name":"s","timestamp":"t","file_size":1,"metadata":{"protocol":"smb","req_type":"SMB_CREAT","vol_msid":1,"svm_uuid":"u","policy_name":"p","session_id":"s","req_id":1,"ontap_peer":"x","s3_key":"a","received_at":"t","engine":"async"}}"#).unwrap();
    assert!(
        record::encode(&event, 0, [""], &mut e).is_err(),
        "empty sink names are refused"
    );
    assert!(record::encode(&event, 0, ["x".repeat(256).as_str()], &mut e).is_err());
}

#[test]
fn records_reject_garbage() {
    assert!(record::decode(&[]).is_err());
    assert!(record::decode(&[2, 0]).is_err());
    assert!(record::decode(&[1, 99, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    assert!(
        record::decode(&[
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255
        ])
        .is_err()
    );
}

proptest::proptest! {
    /// Whatever ONTAP sends as names, the event path is clean: a leading
    /// `/`, no empty component, no trailing `/` (except the root), the same
    /// components as the input, and `s3_key` is the path without its `/`.
    #[test]
    fn any_names_give_clean_paths(
        parts in proptest::collection::vec("[^/\\\\\u{0}]{0,12}", 0..8),
        windows in proptest::bool::ANY,
        leading in proptest::bool::ANY,
    ) {
        let sep = if windows { "\\" } else { "/" };
        let raw = format!("{}{}", if leading { sep } else { "" }, parts.join(sep));
        let name_type = if windows { PathNameType::WinName } else { PathNameType::UnixName };
        let path = volume_path(&[PathName { name_type: Some(name_type), name: raw }]).unwrap();
        proptest::prop_assert!(path.starts_with('/'));
        proptest::prop_assert!(!path.contains("//"));
        proptest::prop_assert!(path == "/" || !path.ends_with('/'));
        let want: Vec<&str> = parts.iter().map(String::as_str).filter(|p| !p.is_empty()).collect();
        let got: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        proptest::prop_assert_eq!(got, want);
    }
}
