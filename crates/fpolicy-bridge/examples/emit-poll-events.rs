//! Prints the events polling produces (create, write, delete) as JSON
//! lines, for the schema conformance step (`.ci/schema-conformance.sh`).

use fpolicy_bridge::config::PollConfig;
use fpolicy_bridge::poll::change_event;
use fpolicy_poll::state::{Change, ChangeKind, ObjectState};

fn main() {
    let poll = PollConfig {
        name: "legal".into(),
        access_point: None,
        bucket: "my-ap-alias-s3alias".into(),
        prefix: "legal/".into(),
        prefixes: vec![],
        suffixes: vec![".pdf".into()],
        volume_name: "vol1".into(),
        svm_name: "svm1".into(),
        path_prefix: "/".into(),
        interval: None,
        business_hours: None,
        business_interval: None,
        off_hours_interval: None,
        emit_existing: false,
        endpoint_url: None,
    };
    for kind in [ChangeKind::Create, ChangeKind::Write, ChangeKind::Delete] {
        let object = ObjectState {
            key: "legal/2026/契約 a.pdf".into(),
            etag: "9b2cf535f27731c974343645a3985328".into(),
            size: 48_213,
            last_modified: 1_795_779_296,
        };
        let event = change_event(&poll, &Change { kind, object });
        println!("{}", serde_json::to_string(&event).expect("serializable"));
    }
}
