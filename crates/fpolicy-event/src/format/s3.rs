//! Amazon S3 event notifications from file events, for consumers written
//! against an S3 bucket or an S3 access point attached to an FSx for
//! ONTAP volume.
//!
//! | event | S3 |
//! |---|---|
//! | create, write | `ObjectCreated:Put` (EventBridge: "Object Created", reason `PutObject`) |
//! | delete | `ObjectRemoved:Delete` ("Object Deleted", reason `DeleteObject`) |
//! | rename | a removal of the old key, then a creation of the new one |
//! | directories, reads, attributes, links, lookups | not sent ([`Skip::NotAnObject`]) |
//!
//! The bucket is the access point (`[[access_point]]`) whose volume is the
//! event's and whose root holds the path (the deepest root wins); the key is
//! the path below that root, URL-encoded as S3 encodes keys in
//! notifications. A path under no access point is not sent
//! ([`Skip::OutsideAccessPoints`]).

use serde::{Deserialize, Serialize};

use super::Skip;
use crate::event::{Event, Operation};

/// One `[[access_point]]`: where an S3 access point is attached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPoint {
    /// The `volume_name` of the events it covers.
    pub volume: String,
    /// The access point's alias: the bucket name in the events.
    pub alias: String,
    /// The volume path where it is attached (`/` = the whole volume).
    #[serde(default = "default_root")]
    pub root: String,
    /// The bucket ARN in SQS notifications (default `arn:aws:s3:::<alias>`).
    #[serde(default)]
    pub arn: Option<String>,
    /// `awsRegion` in SQS notifications (default: the AWS region the
    /// bridge runs in, from `AWS_REGION`).
    #[serde(default)]
    pub region: Option<String>,
}

fn default_root() -> String {
    "/".into()
}

impl AccessPoint {
    pub fn new(volume: &str, alias: &str, root: &str) -> AccessPoint {
        AccessPoint {
            volume: volume.into(),
            alias: alias.into(),
            root: root.into(),
            arn: None,
            region: None,
        }
    }

    /// The root without its trailing `/` (`""` for the volume's root).
    fn root_prefix(&self) -> &str {
        self.root.trim_end_matches('/')
    }

    /// The object key of `path` (volume-relative, leading `/`), if the path
    /// is below this access point's root. The root itself is no object.
    pub fn key_of<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.root_prefix())?;
        let key = rest.strip_prefix('/')?;
        (!key.is_empty()).then_some(key)
    }

    /// Checks the fields (for `validate()` of the configuration).
    pub fn validate(&self) -> Result<(), String> {
        let valid_alias = (3..=63).contains(&self.alias.len())
            && self
                .alias
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if self.volume.is_empty() {
            return Err(format!("access point {:?}: volume is required", self.alias));
        }
        if !valid_alias {
            return Err(format!(
                "access point alias {:?}: an S3 bucket name or access point alias (3-63 lowercase letters, digits, '-', '.')",
                self.alias
            ));
        }
        if !self.root.starts_with('/') {
            return Err(format!(
                "access point {:?}: root {:?} must be a volume path starting with /",
                self.alias, self.root
            ));
        }
        Ok(())
    }
}

/// Every `[[access_point]]`, looked up by volume and path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPoints {
    list: Vec<AccessPoint>,
    /// For access points without their own `region`.
    region: String,
}

impl AccessPoints {
    pub fn new(list: Vec<AccessPoint>) -> AccessPoints {
        AccessPoints {
            list,
            region: String::new(),
        }
    }

    /// The region of access points that name none.
    pub fn with_region(mut self, region: &str) -> AccessPoints {
        self.region = region.to_owned();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn by_alias(&self, alias: &str) -> Option<&AccessPoint> {
        self.list.iter().find(|a| a.alias == alias)
    }

    /// The access point holding `path` of `volume` (the deepest root), with
    /// the path's key.
    pub fn locate<'a, 'p>(
        &'a self,
        volume: &str,
        path: &'p str,
    ) -> Option<(&'a AccessPoint, &'p str)> {
        self.list
            .iter()
            .filter(|a| a.volume == volume)
            .filter_map(|a| a.key_of(path).map(|k| (a, k)))
            .max_by_key(|(a, _)| a.root_prefix().len())
    }

    fn region_of<'a>(&'a self, ap: &'a AccessPoint) -> &'a str {
        ap.region.as_deref().unwrap_or(&self.region)
    }
}

/// URL-encodes a key the way S3 notifications carry it
/// (`application/x-www-form-urlencoded`): letters, digits, `-`, `_`, `.`,
/// `*` and `/` stay, a space becomes `+`, every other byte is `%XX`.
/// Python's `unquote_plus` (which Powertools uses) reverses it.
pub fn encode_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(key.len() + 8);
    for &b in key.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    out
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Removed,
}

/// One object change: a record of a notification, or one EventBridge event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    pub kind: ChangeKind,
    pub access_point: &'a AccessPoint,
    pub region: &'a str,
    /// URL-encoded.
    pub key: String,
    /// Creations only.
    pub size: Option<u64>,
    /// Creations only: not the content's MD5 (the bridge never reads file
    /// contents) but a value unique to this version of the object.
    pub etag: Option<String>,
    /// Orders changes of one key: the receive time in hex.
    pub sequencer: String,
    /// S3's eventTime: the event's time with milliseconds.
    pub time: String,
    /// The user (name, else SID or UID, else `unknown`).
    pub principal: String,
    pub source_ip: &'a str,
    pub request_id: &'a str,
}

/// The object changes of `event`: none (skipped), one, or two for a rename.
pub fn changes<'a>(event: &'a Event, aps: &'a AccessPoints) -> Result<Vec<Change<'a>>, Skip> {
    if super::is_directory(event) {
        return Err(Skip::NotAnObject);
    }
    let parts: &[(ChangeKind, Option<&str>)] = match event.operation_type {
        Operation::Create | Operation::Write => &[(ChangeKind::Created, Some(&event.file_path))],
        Operation::Delete => &[(ChangeKind::Removed, Some(&event.file_path))],
        Operation::Rename => &[
            (ChangeKind::Removed, event.previous_path.as_deref()),
            (ChangeKind::Created, Some(&event.file_path)),
        ],
        _ => return Err(Skip::NotAnObject),
    };
    let m = &event.metadata;
    let principal = m
        .user_name
        .clone()
        .or_else(|| super::user_id(event))
        .unwrap_or_else(|| "unknown".into());
    let received = crate::time::parse_rfc3339(&m.received_at)
        .or_else(|_| crate::time::parse_rfc3339(&event.timestamp))
        .unwrap_or(0);
    let mut out = Vec::with_capacity(parts.len());
    for &(kind, path) in parts {
        let Some(path) = path else { continue };
        let Some((ap, key)) = aps.locate(&event.volume_name, path) else {
            continue;
        };
        let created = kind == ChangeKind::Created;
        out.push(Change {
            kind,
            access_point: ap,
            region: aps.region_of(ap),
            key: encode_key(key),
            size: created.then_some(event.file_size),
            etag: created.then(|| {
                format!(
                    "{:032x}",
                    xxhash_rust::xxh3::xxh3_128(event.event_id.as_bytes())
                )
            }),
            sequencer: format!("{:016X}", received.max(0)),
            time: millis_time(&event.timestamp),
            principal: principal.clone(),
            source_ip: event.client_ip.as_deref().unwrap_or(""),
            request_id: &event.event_id,
        });
    }
    if out.is_empty() {
        return Err(Skip::OutsideAccessPoints);
    }
    Ok(out)
}

/// `2026-12-02T10:00:00.123456Z` → `2026-12-02T10:00:00.123Z`.
fn millis_time(timestamp: &str) -> String {
    match timestamp.get(..23) {
        Some(head) if timestamp.len() > 23 && head.as_bytes()[19] == b'.' => format!("{head}Z"),
        _ => timestamp.to_owned(),
    }
}

// ---- The SQS (and SNS, Lambda) notification: {"Records":[…]} ----

/// An S3 event notification with one record per change.
#[derive(Debug, Serialize)]
pub struct Notification<'a> {
    #[serde(rename = "Records")]
    records: Vec<Record<'a>>,
}

impl<'a> Notification<'a> {
    pub fn new(changes: &'a [Change<'a>]) -> Notification<'a> {
        Notification {
            records: changes.iter().map(Record::new).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    event_source: &'static str,
    aws_region: &'a str,
    event_time: &'a str,
    event_name: &'static str,
    user_identity: Principal<'a>,
    request_parameters: RequestParameters<'a>,
    response_elements: ResponseElements<'a>,
    s3: Entity<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Principal<'a> {
    principal_id: &'a str,
}

#[derive(Debug, Serialize)]
struct RequestParameters<'a> {
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
}

#[derive(Debug, Serialize)]
struct ResponseElements<'a> {
    #[serde(rename = "x-amz-request-id")]
    request_id: &'a str,
    #[serde(rename = "x-amz-id-2")]
    id_2: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Entity<'a> {
    s3_schema_version: &'static str,
    configuration_id: &'static str,
    bucket: Bucket<'a>,
    object: Object<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Bucket<'a> {
    name: &'a str,
    owner_identity: Principal<'a>,
    arn: std::borrow::Cow<'a, str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Object<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e_tag: Option<&'a str>,
    sequencer: &'a str,
}

impl<'a> Record<'a> {
    fn new(c: &'a Change<'a>) -> Record<'a> {
        let ap = c.access_point;
        Record {
            event_version: "2.1",
            event_source: "aws:s3",
            aws_region: c.region,
            event_time: &c.time,
            event_name: match c.kind {
                ChangeKind::Created => "ObjectCreated:Put",
                ChangeKind::Removed => "ObjectRemoved:Delete",
            },
            user_identity: Principal {
                principal_id: &c.principal,
            },
            request_parameters: RequestParameters {
                source_ip_address: c.source_ip,
            },
            response_elements: ResponseElements {
                request_id: c.request_id,
                id_2: c.request_id,
            },
            s3: Entity {
                s3_schema_version: "1.0",
                configuration_id: "fpolicy-bridge",
                bucket: Bucket {
                    name: &ap.alias,
                    owner_identity: Principal {
                        principal_id: &c.principal,
                    },
                    arn: match &ap.arn {
                        Some(arn) => arn.into(),
                        None => format!("arn:aws:s3:::{}", ap.alias).into(),
                    },
                },
                object: Object {
                    key: &c.key,
                    size: c.size,
                    e_tag: c.etag.as_deref(),
                    sequencer: &c.sequencer,
                },
            },
        }
    }
}

// ---- EventBridge: "Object Created" / "Object Deleted" ----

impl Change<'_> {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self.kind {
            ChangeKind::Created => "Object Created",
            ChangeKind::Removed => "Object Deleted",
        }
    }

    /// The EventBridge `detail`, as S3 sends it.
    pub fn detail(&self) -> Detail<'_> {
        let created = self.kind == ChangeKind::Created;
        Detail {
            version: "0",
            bucket: DetailBucket {
                name: &self.access_point.alias,
            },
            object: DetailObject {
                key: &self.key,
                size: self.size,
                etag: self.etag.as_deref(),
                sequencer: &self.sequencer,
            },
            request_id: self.request_id,
            requester: &self.principal,
            source_ip_address: self.source_ip,
            reason: if created { "PutObject" } else { "DeleteObject" },
            deletion_type: (!created).then_some("Permanently Deleted"),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Detail<'a> {
    version: &'static str,
    bucket: DetailBucket<'a>,
    object: DetailObject<'a>,
    request_id: &'a str,
    requester: &'a str,
    source_ip_address: &'a str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_type: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct DetailBucket<'a> {
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct DetailObject<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
    sequencer: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tests_support::{all_events, event};

    fn aps() -> AccessPoints {
        AccessPoints::new(vec![
            AccessPoint::new("vol1", "vol1-ap", "/"),
            AccessPoint::new("vol1", "projects-ap", "/projects/"),
            AccessPoint::new("vol2", "vol2-ap", "/data"),
        ])
        .with_region("ap-northeast-1")
    }

    /// Python's `unquote_plus`, to check the encoding round-trips.
    fn unquote_plus(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_encode_as_s3_does_and_decode_back() {
        assert_eq!(encode_key("red flower.jpg"), "red+flower.jpg");
        assert_eq!(encode_key("a/b+c=d&e"), "a/b%2Bc%3Dd%26e");
        assert_eq!(encode_key("報告.pdf"), "%E5%A0%B1%E5%91%8A.pdf");
        for key in [
            "x y/z",
            "100%",
            "a~b(c)!'",
            "tab\there",
            "日本語/ファイル.txt",
            "+",
        ] {
            assert_eq!(unquote_plus(&encode_key(key)), key);
        }
    }

    #[test]
    fn the_deepest_root_of_the_volume_names_the_bucket() {
        let aps = aps();
        assert_eq!(
            aps.locate("vol1", "/projects/a.txt")
                .map(|(a, k)| (a.alias.as_str(), k)),
            Some(("projects-ap", "a.txt"))
        );
        assert_eq!(
            aps.locate("vol1", "/other/a.txt")
                .map(|(a, k)| (a.alias.as_str(), k)),
            Some(("vol1-ap", "other/a.txt"))
        );
        // A sibling that shares the root's prefix is not inside it.
        assert!(aps.locate("vol2", "/database/x").is_none());
        assert_eq!(aps.locate("vol2", "/data/x").map(|(_, k)| k), Some("x"));
        assert!(
            aps.locate("vol2", "/data").is_none(),
            "the root is no object"
        );
        assert!(aps.locate("vol3", "/a").is_none());
    }

    #[test]
    fn every_operation_maps_to_its_s3_changes() {
        let aps = aps();
        for e in all_events() {
            let got = changes(&e, &aps);
            match e.operation_type {
                Operation::Create | Operation::Write => {
                    let c = got.unwrap();
                    assert_eq!(c.len(), 1);
                    assert_eq!(c[0].kind, ChangeKind::Created);
                    assert_eq!(c[0].size, Some(2048));
                    assert_eq!(c[0].access_point.alias, "projects-ap");
                    assert_eq!(c[0].key, "q4+report%2Bfinal.pdf");
                    assert_eq!(c[0].etag.as_ref().map(String::len), Some(32));
                }
                Operation::Delete => {
                    let c = got.unwrap();
                    assert_eq!(c.len(), 1);
                    assert_eq!(c[0].kind, ChangeKind::Removed);
                    assert_eq!((c[0].size, c[0].etag.as_ref()), (None, None));
                }
                Operation::Rename => {
                    let c = got.unwrap();
                    assert_eq!(c.len(), 2);
                    assert_eq!(c[0].kind, ChangeKind::Removed);
                    assert_eq!(c[0].key, "draft.pdf");
                    assert_eq!(c[1].kind, ChangeKind::Created);
                    assert_eq!(c[1].key, "q4+report%2Bfinal.pdf");
                }
                _ => assert_eq!(got.unwrap_err(), Skip::NotAnObject),
            }
        }
    }

    #[test]
    fn outside_every_access_point_is_skipped_and_half_a_rename_is_kept() {
        let aps = AccessPoints::new(vec![AccessPoint::new("vol1", "in-ap", "/in")]);
        let mut e = event(Operation::Create, "smb");
        e.file_path = "/out/a".into();
        assert_eq!(changes(&e, &aps).unwrap_err(), Skip::OutsideAccessPoints);
        e.volume_name = "elsewhere".into();
        assert_eq!(changes(&e, &aps).unwrap_err(), Skip::OutsideAccessPoints);
        // Moved into the access point: only the creation.
        let mut r = event(Operation::Rename, "smb");
        r.previous_path = Some("/out/a".into());
        r.file_path = "/in/a".into();
        let c = changes(&r, &aps).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].kind, c[0].key.as_str()), (ChangeKind::Created, "a"));
        // A create whose file type is a directory is no object.
        let mut d = event(Operation::Create, "nfsv3");
        d.metadata.file_type = Some("DIR".into());
        assert_eq!(changes(&d, &aps).unwrap_err(), Skip::NotAnObject);
    }

    #[test]
    fn the_notification_has_the_shape_s3_sends() {
        let aps = aps();
        let e = event(Operation::Create, "smb");
        let c = changes(&e, &aps).unwrap();
        let v = serde_json::to_value(Notification::new(&c)).unwrap();
        let r = &v["Records"][0];
        assert_eq!(r["eventVersion"], "2.1");
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["awsRegion"], "ap-northeast-1");
        assert_eq!(r["eventTime"], "2026-12-02T10:00:00.123Z");
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["userIdentity"]["principalId"], "alice");
        assert_eq!(r["requestParameters"]["sourceIPAddress"], "10.0.0.5");
        assert_eq!(r["s3"]["bucket"]["name"], "projects-ap");
        assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::projects-ap");
        assert_eq!(r["s3"]["object"]["key"], "q4+report%2Bfinal.pdf");
        assert_eq!(r["s3"]["object"]["size"], 2048);
        assert_eq!(r["s3"]["object"]["sequencer"].as_str().unwrap().len(), 16);
        let d = event(Operation::Delete, "nfsv3");
        let c = changes(&d, &aps).unwrap();
        let v = serde_json::to_value(Notification::new(&c)).unwrap();
        let o = &v["Records"][0]["s3"]["object"];
        assert_eq!(v["Records"][0]["eventName"], "ObjectRemoved:Delete");
        assert!(o.get("size").is_none() && o.get("eTag").is_none());
    }

    #[test]
    fn the_eventbridge_detail_has_the_shape_s3_sends() {
        let aps = aps();
        let e = event(Operation::Rename, "smb");
        let c = changes(&e, &aps).unwrap();
        assert_eq!(c[0].detail_type(), "Object Deleted");
        assert_eq!(c[1].detail_type(), "Object Created");
        let gone = serde_json::to_value(c[0].detail()).unwrap();
        assert_eq!(gone["reason"], "DeleteObject");
        assert_eq!(gone["deletion-type"], "Permanently Deleted");
        assert_eq!(gone["bucket"]["name"], "projects-ap");
        let made = serde_json::to_value(c[1].detail()).unwrap();
        assert_eq!(made["reason"], "PutObject");
        assert_eq!(made["object"]["size"], 2048);
        assert_eq!(made["source-ip-address"], "10.0.0.5");
        assert_eq!(made["requester"], "alice");
        assert!(made.get("deletion-type").is_none());
    }

    /// The Rust consumers' types (`aws_lambda_events`) read the
    /// notification and the EventBridge event back: bucket, decoded key,
    /// size, event name.
    #[test]
    fn aws_lambda_events_reads_what_we_send() {
        use aws_lambda_events::event::eventbridge::EventBridgeEvent;
        use aws_lambda_events::event::s3::S3Event;
        let aps = aps();
        for e in all_events() {
            let Ok(c) = changes(&e, &aps) else { continue };
            let body = serde_json::to_string(&Notification::new(&c)).unwrap();
            let parsed: S3Event = serde_json::from_str(&body).unwrap();
            assert_eq!(parsed.records.len(), c.len());
            for (r, change) in parsed.records.iter().zip(&c) {
                assert_eq!(r.s3.bucket.name.as_deref(), Some("projects-ap"));
                let key = unquote_plus(r.s3.object.key.as_deref().unwrap());
                let created = change.kind == ChangeKind::Created;
                let path = if created {
                    &e.file_path
                } else {
                    e.previous_path.as_ref().unwrap_or(&e.file_path)
                };
                assert_eq!(key, path.strip_prefix("/projects/").unwrap());
                assert_eq!(r.s3.object.size, created.then_some(2048));
                assert_eq!(
                    r.event_name.as_deref(),
                    Some(if created {
                        "ObjectCreated:Put"
                    } else {
                        "ObjectRemoved:Delete"
                    })
                );
                assert_eq!(r.event_time.timestamp_millis(), 1_796_205_600_123);
                let envelope = serde_json::json!({
                    "version": "0", "id": "1", "detail-type": change.detail_type(),
                    "source": "fsxn.fpolicy", "account": "123456789012",
                    "time": "2026-12-02T10:00:00Z", "region": "us-east-1", "resources": [],
                    "detail": change.detail(),
                });
                let bus: EventBridgeEvent = serde_json::from_value(envelope).unwrap();
                assert_eq!(bus.detail["bucket"]["name"], "projects-ap");
                assert_eq!(
                    unquote_plus(bus.detail["object"]["key"].as_str().unwrap()),
                    key
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_key_decodes_back(key in "\\PC{0,40}") {
            let encoded = encode_key(&key);
            proptest::prop_assert!(!encoded.contains(' '));
            proptest::prop_assert_eq!(unquote_plus(&encoded), key);
        }
    }

    #[test]
    fn access_points_are_validated() {
        assert!(
            AccessPoint::new("vol1", "fsxn-vol1-ap-abcdef-ext-s3alias", "/")
                .validate()
                .is_ok()
        );
        assert!(AccessPoint::new("", "ok-alias", "/").validate().is_err());
        assert!(AccessPoint::new("v", "Bad_Alias", "/").validate().is_err());
        assert!(
            AccessPoint::new("v", "ok-alias", "data")
                .validate()
                .is_err()
        );
    }
}
