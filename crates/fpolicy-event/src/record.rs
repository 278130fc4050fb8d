//! The spool record of one event.
//!
//! ```text
//! u8      format version (2; version 1 lacks the sink list)
//! u8      operation code (Operation::code)
//! i64 LE  receive time, ns since the Unix epoch
//! u64 LE  file size
//! u32 LE  length of file_path, then its UTF-8 bytes
//! u32 LE  length of previous_path (0 = none), then its bytes
//! u8      number of routed sinks, then for each: u8 length, name bytes
//! [u8]    the event as JSON (what sinks deliver)
//! ```
//!
//! The fixed part lets the write-complete coalescer, the sink filter and the
//! JSON Lines sink work without parsing JSON. The sink list is the routing
//! decision made at ingest (`[[route]]`); JSON Lines and stdout take every
//! record regardless. Version-1 records carry no list and go to every sink.

use crate::event::{Event, Operation};
use crate::time::UnixNanos;

const VERSION: u8 = 2;
/// Most sinks one record can name (and longest sink name).
pub const MAX_SINKS: usize = 255;

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
    #[error("sink name {0:?} is empty or longer than 255 bytes")]
    SinkName(String),
}

/// A decoded record borrowing from the spool's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub operation: Operation,
    pub received: UnixNanos,
    pub file_size: u64,
    pub file_path: &'a str,
    pub previous_path: Option<&'a str>,
    /// The routed sinks, encoded; `None` for version-1 records.
    sinks: Option<&'a [u8]>,
    pub json: &'a [u8],
}

impl RecordView<'_> {
    /// Whether the record was routed to `sink` (version-1 records: always).
    pub fn routed_to(&self, sink: &str) -> bool {
        let Some(mut rest) = self.sinks else {
            return true;
        };
        while let Some((&len, tail)) = rest.split_first() {
            let (name, tail) = tail.split_at(usize::from(len).min(tail.len()));
            if name == sink.as_bytes() {
                return true;
            }
            rest = tail;
        }
        false
    }
}

/// Appends the record of `event`, routed to `sinks`, to `out`.
pub fn encode<'s>(
    event: &Event,
    received: UnixNanos,
    sinks: impl IntoIterator<Item = &'s str>,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    out.push(VERSION);
    out.push(event.operation_type.code());
    out.extend_from_slice(&received.to_le_bytes());
    out.extend_from_slice(&event.file_size.to_le_bytes());
    for s in [Some(&event.file_path), event.previous_path.as_ref()] {
        let s = s.map_or("", String::as_str);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let count_at = out.len();
    out.push(0);
    let mut count = 0usize;
    for sink in sinks {
        if sink.is_empty() || sink.len() > 255 || count == MAX_SINKS {
            return Err(RecordError::SinkName(sink.to_owned()));
        }
        out.push(sink.len() as u8);
        out.extend_from_slice(sink.as_bytes());
        count += 1;
    }
    out[count_at] = count as u8;
    crate::json::write_event(event, out);
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let s = self
            .bytes
            .get(self.at..self.at.checked_add(n).ok_or(RecordError::Truncated)?)
            .ok_or(RecordError::Truncated)?;
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        self.take(N)?.try_into().map_err(|_| RecordError::Truncated)
    }

    fn string(&mut self) -> Result<&'a str, RecordError> {
        let len = u32::from_le_bytes(self.array()?);
        std::str::from_utf8(self.take(len as usize)?).map_err(|_| RecordError::Utf8)
    }
}

pub fn decode(bytes: &[u8]) -> Result<RecordView<'_>, RecordError> {
    let mut r = Reader { bytes, at: 0 };
    let [version] = r.array()?;
    if version != 1 && version != VERSION {
        return Err(RecordError::Version(version));
    }
    let [code] = r.array()?;
    let operation = Operation::from_code(code).ok_or(RecordError::Operation(code))?;
    let received = i64::from_le_bytes(r.array()?);
    let file_size = u64::from_le_bytes(r.array()?);
    let file_path = r.string()?;
    let previous = r.string()?;
    let sinks = if version >= 2 {
        let [count] = r.array()?;
        let start = r.at;
        for _ in 0..count {
            let [len] = r.array()?;
            r.take(usize::from(len))?;
        }
        Some(&bytes[start..r.at])
    } else {
        None
    };
    Ok(RecordView {
        operation,
        received,
        file_size,
        file_path,
        previous_path: (!previous.is_empty()).then_some(previous),
        sinks,
        json: &bytes[r.at..],
    })
}
