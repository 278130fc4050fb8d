//! Prints one event per ReqType (and protocol version) as JSON lines, for
//! the schema conformance step (`.ci/schema-conformance.sh`); with
//! `--format s3|s3-eventbridge|ocsf|ecs|cef`, in that output format (one
//! line per SQS body, EventBridge event or CEF line), for the format
//! conformance step (`.ci/format-conformance.sh`).

use fpolicy_event::*;
use fpolicy_proto::sample::screen_request;
use fpolicy_proto::{ProtocolVersion, ReqType};

fn main() {
    let names = StaticNames::new(
        [(2_157_093_236u64, "vol_legal".to_owned())],
        [],
        "vol0",
        "svm0",
    );
    let normalizer = Normalizer {
        names: &names,
        generation_time: GenerationTimeUnit::Auto,
    };
    let format = std::env::args()
        .skip_while(|a| a != "--format")
        .nth(1)
        .unwrap_or_else(|| "fpolicy".into());
    let access_points = AccessPoints::new(vec![
        AccessPoint::new("vol_legal", "legal-ap-ext-s3alias", "/"),
        AccessPoint::new("vol0", "vol0-ap-ext-s3alias", "/"),
    ])
    .with_region("us-east-1");
    let mut out = String::new();
    for (i, &rt) in ReqType::ALL.iter().enumerate() {
        for (v, engine) in [
            (ProtocolVersion::V1_0, EngineType::Asynchronous),
            (ProtocolVersion::V2_0, EngineType::Synchronous),
        ] {
            let session = SessionInfo {
                svm_uuid: "5b701784-7459-11e8-8e95-00a098bc5a13".into(),
                policy_name: "audit".into(),
                session_id: "s1".into(),
                peer: "10.0.0.5:41234".into(),
                engine,
            };
            let req = screen_request(i as u64 + 1, rt, "/legal/契約/a b.pdf", v);
            let mut e = normalizer.normalize(&req, &session, 1_767_225_601_000_000_000);
            if engine == EngineType::Synchronous {
                e.metadata.screening = Some("allow".into());
            }
            render(&format, &e, &access_points, &mut out);
        }
    }
    print!("{out}");
}

/// Appends `e` in `format` (nothing when the format skips it).
fn render(format: &str, e: &Event, access_points: &AccessPoints, out: &mut String) {
    use fpolicy_event::format::{self, cef, s3};
    let version = env!("CARGO_PKG_VERSION");
    let mut line = Vec::new();
    match format {
        "s3-eventbridge" => {
            // As EventBridge hands the event to a target.
            for c in s3::changes(e, access_points).unwrap_or_default() {
                let event = serde_json::json!({
                    "version": "0",
                    "id": e.event_id,
                    "detail-type": c.detail_type(),
                    "source": "fsxn.fpolicy",
                    "account": "123456789012",
                    "time": c.time,
                    "region": "us-east-1",
                    "resources": [],
                    "detail": c.detail(),
                });
                out.push_str(&event.to_string());
                out.push('\n');
            }
            return;
        }
        "cef" => {
            cef::render(e, version, out);
            out.push('\n');
            return;
        }
        _ => {}
    }
    let f: Format = serde_json::from_value(serde_json::Value::String(format.into()))
        .unwrap_or_else(|_| panic!("unknown format {format:?}"));
    if format::render_json(f, e, access_points, version, &mut line).is_ok() {
        out.push_str(std::str::from_utf8(&line).expect("JSON is UTF-8"));
        out.push('\n');
    }
}
