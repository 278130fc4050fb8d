//! Reading the names a NATS or SQS sink keys an event by (id, operation,
//! path, volume, SVM, protocol, first route) from the event's JSON: the
//! hand-written walk of `fpolicy_event::keys` against the serde parse it
//! replaced. Results: docs/benchmarks.md.
//!
//! Run: `cargo bench -p fpolicy-event --bench keys`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fpolicy_event::{Event, Metadata, Operation};

/// An SMB write as the normalizer writes it, with a user and a route.
fn event_json() -> Vec<u8> {
    let event = Event {
        event_id: "0b6f3c52-8d0e-5a8e-9d57-2f4c1a7e9b10".into(),
        operation_type: Operation::Write,
        file_path: "/legal/contracts/2026/Q3 review/contract-0042.docx".into(),
        previous_path: None,
        volume_name: "vol_legal".into(),
        svm_name: "svm_prod".into(),
        timestamp: "2026-12-02T18:14:16.123456789Z".into(),
        file_size: 482_113,
        client_ip: Some("10.20.30.41".into()),
        metadata: Metadata {
            protocol: "smb".into(),
            protocol_version: Some("1.2".into()),
            req_type: "SMB_WR".into(),
            user_id_type: Some("sid".into()),
            sid: Some("S-1-5-21-3623811015-3361044348-30300820-1013".into()),
            user_name: Some("CORP\\akiko.tanaka".into()),
            vol_msid: 2_147_484_711,
            svm_uuid: "8a0e2b1c-3f4d-11ee-9c2a-005056b0a1f2".into(),
            policy_name: "fpolicy_bridge".into(),
            session_id: "5c6e1a7f-0b2d-4e8f-a1c3-9d7e6f5a4b3c".into(),
            req_id: 3_244_068,
            ontap_peer: "10.20.0.11:40112".into(),
            s3_key: "legal/contracts/2026/Q3 review/contract-0042.docx".into(),
            received_at: "2026-12-02T18:14:16.124001Z".into(),
            engine: "async".into(),
            routes: vec!["audit".into()],
            ..Metadata::default()
        },
    };
    let mut out = Vec::new();
    fpolicy_event::json::write_event(&event, &mut out);
    out
}

// The serde parse it replaced, shared with the keys' property test.
#[path = "../src/keys/serde_oracle.rs"]
mod serde_oracle;
use fpolicy_event::keys::EventKeys;
use serde_oracle::SerdeKeys;

fn bench(c: &mut Criterion) {
    let json = event_json();
    let mut g = c.benchmark_group("event_keys");
    g.throughput(Throughput::Elements(1));
    g.bench_function("keys_read", |b| {
        b.iter(|| fpolicy_event::keys::read(black_box(&json)).unwrap())
    });
    g.bench_function("serde_probe", |b| {
        b.iter(|| {
            serde_json::from_slice::<SerdeKeys<'_>>(black_box(&json))
                .map(SerdeKeys::into_keys)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
