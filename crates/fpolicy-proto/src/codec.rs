//! A `tokio_util::codec` adapter over the pure framing and message functions.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder as CodecEncoder};

use crate::error::{FrameError, MessageError};
use crate::frame::FrameDecoder;
use crate::message::{Decoded, Encoder, Message, decode_payload};

/// Either layer's error, plus the I/O error the codec traits require.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Decodes frames into typed messages and encodes messages into frames.
#[derive(Debug, Clone, Default)]
pub struct FpolicyCodec {
    frames: FrameDecoder,
    encoder: Encoder,
}

impl FpolicyCodec {
    pub fn new(max_frame_len: usize) -> Self {
        FpolicyCodec {
            frames: FrameDecoder::new(max_frame_len),
            encoder: Encoder::default(),
        }
    }
}

impl Decoder for FpolicyCodec {
    type Item = Decoded;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>, CodecError> {
        match self.frames.decode(src)? {
            None => Ok(None),
            Some(payload) => Ok(Some(decode_payload(&payload)?)),
        }
    }
}

impl CodecEncoder<&Message> for FpolicyCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut out = Vec::with_capacity(512);
        self.encoder.encode(item, &mut out);
        dst.extend_from_slice(&out);
        Ok(())
    }
}
