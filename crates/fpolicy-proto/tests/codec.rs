//! The tokio_util codec adapter (feature `codec`).
#![cfg(feature = "codec")]

use bytes::BytesMut;
use fpolicy_proto::codec::{CodecError, FpolicyCodec};
use fpolicy_proto::{FrameError, Message, sample};
use tokio_util::codec::{Decoder, Encoder};

#[test]
fn encodes_and_decodes_every_sample_message() {
    let mut codec = FpolicyCodec::default();
    let mut buf = BytesMut::new();
    let messages: Vec<Message> = sample::every_message()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    for m in &messages {
        codec.encode(m, &mut buf).unwrap();
    }
    let mut back = Vec::new();
    while let Some(d) = codec.decode(&mut buf).unwrap() {
        back.push(d.message);
    }
    assert!(buf.is_empty());
    assert_eq!(back, messages);
}

#[test]
fn frame_cap_and_bad_marker_surface_as_frame_errors() {
    let mut codec = FpolicyCodec::new(16);
    let mut buf = BytesMut::from(&b"\"\x00\x00\x01\x00\""[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::Frame(FrameError::TooLarge {
            len: 256,
            max: 16
        }))
    ));
    let mut buf = BytesMut::from(&b"<Header>"[..]);
    assert!(matches!(
        FpolicyCodec::default().decode(&mut buf),
        Err(CodecError::Frame(FrameError::BadMarker { .. }))
    ));
}
