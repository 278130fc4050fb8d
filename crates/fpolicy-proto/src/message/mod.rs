//! Typed FPolicy messages: one module per message kind, and the payload
//! decoder/encoder that ties header and body together.

mod alert;
mod back_pressure;
mod fields;
mod handshake;
mod outage;
mod req_type;
mod screen_cancel;
mod screen_req;
mod screen_resp;
mod status_query;
mod vol_notification;

pub use alert::{Alert, Severity};
pub use back_pressure::BackPressure;
pub use handshake::{Handshake, HandshakeResp, MAX_OFFERED_VERSIONS};
pub use outage::Outage;
pub use req_type::{Operation, Protocol, ReqType};
pub use screen_cancel::ScreenCancel;
pub use screen_req::{
    AttrTime, ClientProtocolVersion, CommonInfo, FieldsKind, FileType, NfsSetAttr, OperationFields,
    PathName, PathNameType, ScreenRequest, SmbSetAttr, UserIdType, UserIdentity, change_mask,
};
pub use screen_resp::{ScreenDecision, ScreenResponse};
pub use status_query::{RequestStatus, StatusQuery, StatusQueryResponse};
pub use vol_notification::{VolNotification, VolumeAction};

use crate::error::{MessageError, Part};
use crate::frame::{PREFIX_LEN, write_prefix};
use crate::header::{Header, NotfType};
use crate::xml::{Document, XmlWriter};

/// Every FPolicy message, in both directions.
// SCREEN_REQ is nearly every message on the wire; boxing it would add an
// allocation per message to the hot path to shrink the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    NegoReq(Handshake),
    NegoResp(HandshakeResp),
    ScreenReq(ScreenRequest),
    ScreenResp(ScreenResponse),
    ScreenCancel(ScreenCancel),
    StatusQueryReq(StatusQuery),
    StatusQueryResp(StatusQueryResponse),
    BackPressureApply(BackPressure),
    BackPressureRem(BackPressure),
    KeepAlive,
    Alert(Alert),
    VolNotification(VolNotification),
    Outage(Outage),
}

impl Message {
    pub fn notf_type(&self) -> NotfType {
        match self {
            Message::NegoReq(_) => NotfType::NegoReq,
            Message::NegoResp(_) => NotfType::NegoResp,
            Message::ScreenReq(_) => NotfType::ScreenReq,
            Message::ScreenResp(_) => NotfType::ScreenResp,
            Message::ScreenCancel(_) => NotfType::ScreenCancel,
            Message::StatusQueryReq(_) => NotfType::StatusQueryReq,
            Message::StatusQueryResp(_) => NotfType::StatusQueryResp,
            Message::BackPressureApply(_) => NotfType::BackPressureApply,
            Message::BackPressureRem(_) => NotfType::BackPressureRem,
            Message::KeepAlive => NotfType::KeepAlive,
            Message::Alert(_) => NotfType::AlertMsg,
            Message::VolNotification(_) => NotfType::VolNotification,
            Message::Outage(_) => NotfType::OutageMsg,
        }
    }

    /// Writes the body document (declaration included); nothing for KEEP_ALIVE.
    pub fn write_body(&self, out: &mut Vec<u8>) {
        let mut w = XmlWriter::new(out);
        if matches!(self, Message::KeepAlive) {
            return;
        }
        w.declaration();
        match self {
            Message::NegoReq(m) => m.write(&mut w),
            Message::NegoResp(m) => m.write(&mut w),
            Message::ScreenReq(m) => m.write(&mut w),
            Message::ScreenResp(m) => m.write(&mut w),
            Message::ScreenCancel(m) => m.write(&mut w),
            Message::StatusQueryReq(m) => m.write(&mut w),
            Message::StatusQueryResp(m) => m.write(&mut w),
            Message::BackPressureApply(m) => m.write(true, &mut w),
            Message::BackPressureRem(m) => m.write(false, &mut w),
            Message::Alert(m) => m.write(&mut w),
            Message::VolNotification(m) => m.write(&mut w),
            Message::Outage(m) => m.write(&mut w),
            Message::KeepAlive => {}
        }
    }

    /// The whole frame with default options, as a new buffer.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        Encoder::default().encode(self, &mut out);
        out
    }

    fn parse_body(notf_type: NotfType, doc: &Document<'_>) -> Result<Message, MessageError> {
        Ok(match notf_type {
            NotfType::NegoReq => Message::NegoReq(Handshake::parse(doc)?),
            NotfType::NegoResp => Message::NegoResp(HandshakeResp::parse(doc)?),
            NotfType::ScreenReq => Message::ScreenReq(ScreenRequest::parse(doc)?),
            NotfType::ScreenResp => Message::ScreenResp(ScreenResponse::parse(doc)?),
            NotfType::ScreenCancel => Message::ScreenCancel(ScreenCancel::parse(doc)?),
            NotfType::StatusQueryReq => Message::StatusQueryReq(StatusQuery::parse(doc)?),
            NotfType::StatusQueryResp => Message::StatusQueryResp(StatusQueryResponse::parse(doc)?),
            NotfType::BackPressureApply => Message::BackPressureApply(BackPressure::parse(doc)?),
            NotfType::BackPressureRem => Message::BackPressureRem(BackPressure::parse(doc)?),
            NotfType::KeepAlive => Message::KeepAlive,
            NotfType::AlertMsg => Message::Alert(Alert::parse(doc)?),
            NotfType::VolNotification => Message::VolNotification(VolNotification::parse(doc)?),
            NotfType::OutageMsg => Message::Outage(Outage::parse(doc)?),
        })
    }
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub header: Header,
    pub message: Message,
    /// Length of the body part as received (without separator or NUL).
    pub body_len: usize,
}

impl Decoded {
    /// `Some((claimed, actual))` when the header's ContentLen disagrees with
    /// the body received. Framing does not depend on it; callers may count it.
    pub fn content_len_mismatch(&self) -> Option<(u32, usize)> {
        match self.header.content_len {
            Some(claimed) if claimed as usize != self.body_len => Some((claimed, self.body_len)),
            _ => None,
        }
    }
}

/// Decodes a frame payload (header XML, `\n\n`, body XML, optional NUL).
///
/// The header ends where its root element closes, so indentation or a
/// missing blank line between the parts does not matter.
pub fn decode_payload(payload: &[u8]) -> Result<Decoded, MessageError> {
    let payload = payload.strip_suffix(&[0]).unwrap_or(payload);
    // On invalid UTF-8, parse the valid prefix to tell which part is bad.
    let (text, utf8_valid) = match std::str::from_utf8(payload) {
        Ok(t) => (t, true),
        Err(e) => (
            std::str::from_utf8(&payload[..e.valid_up_to()]).unwrap_or(""),
            false,
        ),
    };
    let (header_doc, header_end) = Document::parse_prefix(text, Part::Header).map_err(|e| {
        if utf8_valid {
            e
        } else {
            MessageError::InvalidUtf8 { part: Part::Header }
        }
    })?;
    if !utf8_valid {
        return Err(MessageError::InvalidUtf8 { part: Part::Body });
    }
    let header = Header::from_document(&header_doc)?;
    let rest = &text[header_end..];
    let start = rest
        .bytes()
        .position(|b| !matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
        .unwrap_or(rest.len());
    let body = rest[start..].trim_end_matches('\0');
    if header.notf_type == NotfType::KeepAlive {
        // Header-only by definition; anything after the header is ignored.
        return Ok(Decoded {
            header,
            message: Message::KeepAlive,
            body_len: body.len(),
        });
    }
    if body.trim_ascii().is_empty() {
        return Err(MessageError::MissingBody {
            notf_type: header.notf_type.as_str(),
        });
    }
    let body_doc = Document::parse(body, Part::Body)?;
    let message = Message::parse_body(header.notf_type, &body_doc)?;
    Ok(Decoded {
        header,
        message,
        body_len: body.len(),
    })
}

/// Encodes messages into frames, reusing a scratch buffer for the body.
#[derive(Debug, Clone)]
pub struct Encoder {
    scratch: Vec<u8>,
    trailing_nul: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(true)
    }
}

impl Encoder {
    /// `trailing_nul`: end each payload with a NUL counted in the frame
    /// length, as ONTAP and NetApp's sample server do. ONTAP accepts either.
    pub fn new(trailing_nul: bool) -> Self {
        Encoder {
            scratch: Vec::with_capacity(2048),
            trailing_nul,
        }
    }

    /// Appends one complete frame for `message` to `out`.
    pub fn encode(&mut self, message: &Message, out: &mut Vec<u8>) {
        self.scratch.clear();
        message.write_body(&mut self.scratch);
        let start = out.len();
        write_prefix(out, 0);
        Header::write(
            message.notf_type(),
            self.scratch.len(),
            &mut XmlWriter::new(out),
        );
        if !self.scratch.is_empty() {
            out.extend_from_slice(b"\n\n");
            out.extend_from_slice(&self.scratch);
        }
        if self.trailing_nul {
            out.push(0);
        }
        let len = (out.len() - start - PREFIX_LEN) as u32;
        out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    }
}
