//! Framing: `"` + u32 big-endian payload length + `"` + payload.
//!
//! These functions know nothing of sockets. [`parse_frame`] works on a byte
//! slice and says how much to consume; [`FrameDecoder`] applies it to a
//! `BytesMut` read buffer, so a connection can call it after every read.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::FrameError;

/// The byte before and after the length: an ASCII double quote.
pub const MARKER: u8 = b'"';
/// Marker, 4 length bytes, marker.
pub const PREFIX_LEN: usize = 6;
/// Default cap on a frame's payload. SCREEN_REQs are about 1–2 KiB; the cap
/// only has to leave room for very long paths.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1024 * 1024;

/// Outcome of looking for one frame at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus<'a> {
    /// Not enough bytes yet. `frame_len` is the total length (prefix and
    /// payload) once the length is known, so a reader can reserve it.
    Incomplete { frame_len: Option<usize> },
    /// One whole frame: its payload, and how many bytes of the buffer it spans.
    Complete { payload: &'a [u8], consumed: usize },
}

/// Looks for one frame at the start of `buf`.
///
/// The length is checked against `max_frame_len` as soon as its four bytes
/// are present, before any payload is buffered; a bad marker is reported as
/// soon as the byte is seen.
pub fn parse_frame(buf: &[u8], max_frame_len: usize) -> Result<FrameStatus<'_>, FrameError> {
    if let Some(&first) = buf.first()
        && first != MARKER
    {
        return Err(FrameError::BadMarker {
            offset: 0,
            found: first,
        });
    }
    if buf.len() < 5 {
        return Ok(FrameStatus::Incomplete { frame_len: None });
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len as usize > max_frame_len {
        return Err(FrameError::TooLarge {
            len,
            max: max_frame_len,
        });
    }
    let frame_len = PREFIX_LEN + len as usize;
    match buf.get(5) {
        None => {
            return Ok(FrameStatus::Incomplete {
                frame_len: Some(frame_len),
            });
        }
        Some(&b) if b != MARKER => {
            return Err(FrameError::BadMarker {
                offset: 5,
                found: b,
            });
        }
        Some(_) => {}
    }
    if buf.len() < frame_len {
        return Ok(FrameStatus::Incomplete {
            frame_len: Some(frame_len),
        });
    }
    Ok(FrameStatus::Complete {
        payload: &buf[PREFIX_LEN..frame_len],
        consumed: frame_len,
    })
}

/// Incremental frame decoder over a read buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    pub fn new(max_frame_len: usize) -> Self {
        FrameDecoder { max_frame_len }
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Takes exactly one frame's bytes off the front of `buf` and returns its
    /// payload, or `None` if the frame is not complete yet (nothing consumed).
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match parse_frame(buf, self.max_frame_len)? {
            FrameStatus::Incomplete { frame_len } => {
                if let Some(total) = frame_len {
                    buf.reserve(total.saturating_sub(buf.len()));
                }
                Ok(None)
            }
            FrameStatus::Complete { consumed, .. } => {
                let mut frame = buf.split_to(consumed);
                frame.advance(PREFIX_LEN);
                Ok(Some(frame.freeze()))
            }
        }
    }
}

/// Writes the 6-byte prefix for a payload of `len` bytes.
pub fn write_prefix(out: &mut Vec<u8>, len: u32) {
    out.push(MARKER);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(MARKER);
}
