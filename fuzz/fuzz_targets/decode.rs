//! Feeds arbitrary bytes through the frame decoder in arbitrary chunks and
//! every complete payload through the message decoder. Any panic, or a frame
//! larger than the cap, is a bug. See docs/fuzzing.md.
#![no_main]

use bytes::BytesMut;
use fpolicy_proto::{FrameDecoder, decode_payload};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // First byte picks the chunk size, so read boundaries are fuzzed too.
    let (chunk, data) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c).max(1), rest),
        None => return,
    };
    let decoder = FrameDecoder::new(MAX);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(payload)) => {
                    assert!(payload.len() <= MAX);
                    let _ = decode_payload(&payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    // The raw input as a payload too: exercises the XML layer directly.
    let _ = decode_payload(data);
});
