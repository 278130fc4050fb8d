//! Decode-to-typed throughput of a realistic SCREEN_REQ (issue target:
//! ≥ 400,000 SCREEN_REQs/s on one core). Results: docs/benchmarks.md.
//!
//! Run: `cargo bench -p fpolicy-proto --bench decode`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fpolicy_proto::{
    Encoder, FrameDecoder, Message, ProtocolVersion, ReqType, decode_payload, sample,
};

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let smb = sample::screen_request(
        3_244_068,
        ReqType::SmbWr,
        "/legal/contracts/2026/Q3 review/contract-0042.docx",
        ProtocolVersion::V1_2,
    );
    let nfs_ren = sample::screen_request(
        3_244_069,
        ReqType::NfsRen,
        "/projects/été/données/build output/report final.pdf",
        ProtocolVersion::V1_2,
    );
    vec![
        ("smb_write", Message::ScreenReq(smb).to_frame()),
        ("nfs_rename_unicode", Message::ScreenReq(nfs_ren).to_frame()),
    ]
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_screen_req");
    for (name, frame) in frames() {
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}_{}B", frame.len()), |b| {
            let decoder = FrameDecoder::default();
            let mut buf = BytesMut::with_capacity(frame.len());
            b.iter(|| {
                buf.extend_from_slice(&frame);
                let payload = decoder.decode(&mut buf).unwrap().unwrap();
                let decoded = decode_payload(black_box(&payload)).unwrap();
                black_box(decoded);
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("encode");
    let (_, frame) = &frames()[0];
    let msg = decode_payload(&frame[6..]).unwrap().message;
    group.throughput(Throughput::Elements(1));
    group.bench_function("screen_req_smb_write", |b| {
        let mut enc = Encoder::default();
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            enc.encode(black_box(&msg), &mut out);
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
