//! SCREEN_CANCEL (`FscreenCancel`): ONTAP gave up on a synchronous request.

use crate::error::MessageError;
use crate::message::fields::{expect_root, require, string, uint};
use crate::message::req_type::ReqType;
use crate::xml::{Document, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenCancel {
    pub req_id: u64,
    pub req_type: ReqType,
    /// A code 1–4 per the schema's notes, or text (`Cancel Timedout`) as seen.
    pub reason: String,
}

impl ScreenCancel {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "FscreenCancel")?;
        let (mut req_id, mut req_type, mut reason) = (None, None, None);
        for child in doc.children(root) {
            match doc.name(child) {
                "ReqId" => req_id = Some(uint::<u64>(doc, child, "FscreenCancel")?),
                "ReqType" => req_type = Some(doc.text(child).parse::<ReqType>()?),
                "CancelReason" => reason = Some(string(doc, child)),
                _ => {}
            }
        }
        Ok(ScreenCancel {
            req_id: require(req_id, "FscreenCancel/ReqId")?,
            req_type: require(req_type, "FscreenCancel/ReqType")?,
            reason: reason.unwrap_or_default(),
        })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("FscreenCancel");
        w.uint("ReqId", self.req_id);
        w.text("ReqType", self.req_type.as_str());
        w.text("CancelReason", &self.reason);
        w.close("FscreenCancel");
    }
}
