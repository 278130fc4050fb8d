//! Typed errors. Every error names what was wrong and where; none of the
//! decoding paths panic.

use std::fmt;

/// Which XML part of a frame an error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Body,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Body => "body",
        })
    }
}

/// The byte stream is not FPolicy framing. The connection cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(
        "bad frame marker at byte {offset} of the frame: expected '\"' (0x22), found 0x{found:02x}"
    )]
    BadMarker { offset: usize, found: u8 },
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u32, max: usize },
    #[error("empty frame (length 0)")]
    Empty,
}

/// The frame was well delimited but its content is not a valid FPolicy message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("malformed XML in the {part} at byte {offset}: {reason}")]
    Xml {
        part: Part,
        offset: usize,
        reason: String,
    },
    #[error("the {part} is not valid UTF-8")]
    InvalidUtf8 { part: Part },
    #[error("the {part} nests deeper than {max} elements")]
    TooDeep { part: Part, max: usize },
    #[error("the {part} has more than {max} elements")]
    TooManyElements { part: Part, max: usize },
    #[error("expected root element <{expected}> in the {part}, found <{found}>")]
    UnexpectedRoot {
        part: Part,
        expected: &'static str,
        found: String,
    },
    #[error("missing element {path}")]
    MissingElement { path: String },
    #[error("invalid value {value:?} for {path}: expected {expected}")]
    InvalidValue {
        path: String,
        value: String,
        expected: &'static str,
    },
    #[error("unknown NotfType {0:?}")]
    UnknownNotfType(String),
    #[error("unknown ReqType {0:?}")]
    UnknownReqType(String),
    #[error("unsupported DataFormat {0:?} (only XML is implemented)")]
    UnsupportedDataFormat(String),
    #[error("{notf_type} requires a body, but the frame has only a header")]
    MissingBody { notf_type: &'static str },
    #[error("NotfInfo has no child element")]
    EmptyNotfInfo,
}
