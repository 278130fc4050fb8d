//! A session's read side: the socket's read half and its buffer, with the
//! one frame-reading path. The buffer is owned here, so a read cancelled
//! in a `select!` loses nothing (`read_more` is cancel-safe).

use bytes::{Buf, BytesMut};
use fpolicy_proto::{FrameError, FrameStatus, parse_frame};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What the buffer holds next.
pub enum Next<'a> {
    /// A whole frame: its payload, and how many bytes to consume after it.
    Frame { payload: &'a [u8], consumed: usize },
    /// Part of a frame; its whole length when the prefix is in.
    Partial { frame_len: Option<usize> },
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct Connection<R> {
    rd: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Connection<R> {
    pub fn new(rd: R, capacity: usize) -> Self {
        Connection {
            rd,
            buf: BytesMut::with_capacity(capacity),
        }
    }

    /// The next buffered frame, if whole; frames above `max` are an error.
    pub fn next(&self, max: usize) -> Result<Next<'_>, FrameError> {
        Ok(match parse_frame(&self.buf, max)? {
            FrameStatus::Complete { payload, consumed } => Next::Frame { payload, consumed },
            FrameStatus::Incomplete { frame_len } => Next::Partial { frame_len },
        })
    }

    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
    }

    /// Room for a whole frame of `frame_len` bytes (already checked
    /// against the frame limit by [`Connection::next`]).
    pub fn make_room(&mut self, frame_len: usize) {
        self.buf.reserve(frame_len.saturating_sub(self.buf.len()));
    }

    /// Room for at least `n` more bytes per read.
    pub fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Gives a large frame's memory back once it is consumed.
    pub fn shrink_to(&mut self, keep: usize) {
        if self.buf.capacity() > 4 * keep {
            let mut small = BytesMut::with_capacity(keep.max(self.buf.len()));
            small.extend_from_slice(&self.buf);
            self.buf = small;
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    /// Cancel-safe.
    pub async fn read_more(&mut self) -> std::io::Result<usize> {
        self.rd.read_buf(&mut self.buf).await
    }

    /// Reads until one whole frame is buffered and returns its payload;
    /// `None` when the peer closes first.
    pub async fn read_frame(&mut self, max: usize) -> Result<Option<BytesMut>, ReadError> {
        loop {
            match self.next(max)? {
                Next::Frame { consumed, .. } => {
                    let mut frame = self.buf.split_to(consumed);
                    frame.advance(fpolicy_proto::frame::PREFIX_LEN);
                    return Ok(Some(frame));
                }
                Next::Partial { frame_len: Some(n) } => self.make_room(n),
                Next::Partial { frame_len: None } => {}
            }
            if self.read_more().await? == 0 {
                return Ok(None);
            }
        }
    }
}
