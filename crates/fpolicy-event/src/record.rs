//! The spool record of one event.
//!
//! ```text
//! u8      format version (1)
//! u8      operation code (Operation::code)
//! i64 LE  receive time, ns since the Unix epoch
//! u64 LE  file size
//! u32 LE  length of file_path, then its UTF-8 bytes
//! u32 LE  length of previous_path (0 = none), then its bytes
//! [u8]    the event as JSON (what sinks deliver)
//! ```
//!
//! The fixed part lets the write-complete coalescer and the JSON Lines
//! sink work without parsing JSON.

use crate::event::{Event, Operation};
use crate::time::UnixNanos;

const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("spool record is truncated")]
    Truncated,
    #[error("spool record has unknown format version {0}")]
    Version(u8),
    #[error("spool record has unknown operation code {0}")]
    Operation(u8),
    #[error("spool record path is not UTF-8")]
    Utf8,
}

/// A decoded record borrowing from the spool's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub operation: Operation,
    pub received: UnixNanos,
    pub file_size: u64,
    pub file_path: &'a str,
    pub previous_path: Option<&'a str>,
    pub json: &'a [u8],
}

/// Appends the record of `event` to `out`.
pub fn encode(event: &Event, received: UnixNanos, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.push(event.operation_type.code());
    out.extend_from_slice(&received.to_le_bytes());
    out.extend_from_slice(&event.file_size.to_le_bytes());
    for s in [Some(&event.file_path), event.previous_path.as_ref()] {
        let s = s.map_or("", String::as_str);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    // Serializing plain structs of strings and integers cannot fail.
    let _ = serde_json::to_writer(&mut *out, event);
}

pub fn decode(bytes: &[u8]) -> Result<RecordView<'_>, RecordError> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], RecordError> {
        let s = bytes.get(at..at + n).ok_or(RecordError::Truncated)?;
        at += n;
        Ok(s)
    };
    let version = take(1)?[0];
    if version != VERSION {
        return Err(RecordError::Version(version));
    }
    let code = take(1)?[0];
    let operation = Operation::from_code(code).ok_or(RecordError::Operation(code))?;
    let received = i64::from_le_bytes(take(8)?.try_into().map_err(|_| RecordError::Truncated)?);
    let file_size = u64::from_le_bytes(take(8)?.try_into().map_err(|_| RecordError::Truncated)?);
    let mut string = || -> Result<&str, RecordError> {
        let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| RecordError::Truncated)?);
        std::str::from_utf8(take(len as usize)?).map_err(|_| RecordError::Utf8)
    };
    let file_path = string()?;
    let previous = string()?;
    Ok(RecordView {
        operation,
        received,
        file_size,
        file_path,
        previous_path: (!previous.is_empty()).then_some(previous),
        json: &bytes[at..],
    })
}
