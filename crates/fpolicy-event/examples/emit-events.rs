//! Prints one event per ReqType (and protocol version) as JSON lines, for
//! the schema conformance step (`.ci/schema-conformance.sh`).

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
            out.push_str(&serde_json::to_string(&e).expect("serializable"));
            out.push('\n');
        }
    }
    print!("{out}");
}
