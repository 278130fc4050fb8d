//! The NetApp ONTAP FPolicy external-server wire protocol, without I/O.
//!
//! - [`frame`]: `"` + u32 big-endian length + `"` + payload; incremental
//!   decoding with the length cap checked before any payload is buffered.
//! - [`decode_payload`]: header and body XML into a typed [`Message`].
//! - [`Encoder`]: typed messages into frames, with correct escaping.
//! - [`version`]: protocol versions 1.0–2.0 and negotiation.
//!
//! Nothing here touches a socket, a clock or a file, so every function can be
//! fuzzed and property-tested; no input makes it panic, and memory use is
//! bounded by the frame cap plus [`xml::MAX_ELEMENTS`] tree nodes.

pub mod error;
pub mod frame;
pub mod header;
pub mod message;
pub mod sample;
pub mod version;
pub mod xml;

#[cfg(feature = "codec")]
pub mod codec;

pub use error::{FrameError, MessageError, Part};
pub use frame::{DEFAULT_MAX_FRAME_LEN, FrameDecoder, FrameStatus, parse_frame};
pub use header::{Header, NotfType};
pub use message::*;
pub use version::{ProtocolVersion, negotiate};
