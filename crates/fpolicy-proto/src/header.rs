//! The header part: `<Header><NotfType/><ContentLen/><DataFormat/></Header>`.

use std::fmt;
use std::str::FromStr;

use crate::error::MessageError;
use crate::xml::{Document, XmlWriter};

/// Message type, from the header's `NotfType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotfType {
    NegoReq,
    NegoResp,
    ScreenReq,
    ScreenResp,
    ScreenCancel,
    StatusQueryReq,
    StatusQueryResp,
    BackPressureApply,
    BackPressureRem,
    KeepAlive,
    AlertMsg,
    VolNotification,
    OutageMsg,
}

impl NotfType {
    pub const ALL: [NotfType; 13] = [
        NotfType::NegoReq,
        NotfType::NegoResp,
        NotfType::ScreenReq,
        NotfType::ScreenResp,
        NotfType::ScreenCancel,
        NotfType::StatusQueryReq,
        NotfType::StatusQueryResp,
        NotfType::BackPressureApply,
        NotfType::BackPressureRem,
        NotfType::KeepAlive,
        NotfType::AlertMsg,
        NotfType::VolNotification,
        NotfType::OutageMsg,
    ];

    /// The wire spelling (note ONTAP's `VOL_NOTFICATION`).
    pub fn as_str(self) -> &'static str {
        match self {
            NotfType::NegoReq => "NEGO_REQ",
            NotfType::NegoResp => "NEGO_RESP",
            NotfType::ScreenReq => "SCREEN_REQ",
            NotfType::ScreenResp => "SCREEN_RESP",
            NotfType::ScreenCancel => "SCREEN_CANCEL",
            NotfType::StatusQueryReq => "STATUS_QUERY_REQ",
            NotfType::StatusQueryResp => "STATUS_QUERY_RESP",
            NotfType::BackPressureApply => "BACK_PRESSURE_APPLY",
            NotfType::BackPressureRem => "BACK_PRESSURE_REM",
            NotfType::KeepAlive => "KEEP_ALIVE",
            NotfType::AlertMsg => "ALERT_MSG",
            NotfType::VolNotification => "VOL_NOTFICATION",
            NotfType::OutageMsg => "OUTAGE_MSG",
        }
    }
}

impl fmt::Display for NotfType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NotfType {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim_ascii();
        NotfType::ALL
            .into_iter()
            .find(|n| n.as_str() == t)
            .ok_or_else(|| MessageError::UnknownNotfType(t.chars().take(64).collect()))
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub notf_type: NotfType,
    /// Body length without the trailing NUL, as the sender claims it. Framing
    /// uses the frame length; this is only a cross-check.
    pub content_len: Option<u32>,
}

impl Header {
    pub(crate) fn from_document(doc: &Document<'_>) -> Result<Header, MessageError> {
        let root = doc.root();
        if doc.name(root) != "Header" {
            return Err(MessageError::UnexpectedRoot {
                part: doc.part(),
                expected: "Header",
                found: doc.name(root).to_owned(),
            });
        }
        let mut notf_type = None;
        let mut content_len = None;
        for child in doc.children(root) {
            match doc.name(child) {
                "NotfType" => notf_type = Some(doc.text(child).parse::<NotfType>()?),
                "ContentLen" => {
                    let t = doc.text(child).trim_ascii();
                    if !t.is_empty() {
                        content_len =
                            Some(t.parse::<u32>().map_err(|_| MessageError::InvalidValue {
                                path: "Header/ContentLen".into(),
                                value: t.chars().take(64).collect(),
                                expected: "an unsigned 32-bit integer",
                            })?);
                    }
                }
                "DataFormat" => {
                    let t = doc.text(child).trim_ascii();
                    // Nillable in the schema: empty means the default, XML.
                    if !t.is_empty() && t != "XML" {
                        return Err(MessageError::UnsupportedDataFormat(
                            t.chars().take(64).collect(),
                        ));
                    }
                }
                _ => {}
            }
        }
        let notf_type = notf_type.ok_or_else(|| MessageError::MissingElement {
            path: "Header/NotfType".into(),
        })?;
        Ok(Header {
            notf_type,
            content_len,
        })
    }

    pub(crate) fn write(notf_type: NotfType, content_len: usize, w: &mut XmlWriter<'_>) {
        w.declaration();
        w.open("Header");
        w.text("NotfType", notf_type.as_str());
        w.uint("ContentLen", content_len as u64);
        w.text("DataFormat", "XML");
        w.close("Header");
    }
}
