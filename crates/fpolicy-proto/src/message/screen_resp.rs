//! SCREEN_RESP (`FscreenResp`): a synchronous engine's verdict on one request.

use crate::error::MessageError;
use crate::message::fields::{expect_root, require, uint};
use crate::message::req_type::ReqType;
use crate::xml::{Document, XmlWriter};

/// `NotfResp`: 1 allow, 2 deny; 3–7 are error codes from protocol 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScreenDecision {
    Allow,
    Deny,
    Code(u32),
}

impl ScreenDecision {
    pub fn code(self) -> u32 {
        match self {
            ScreenDecision::Allow => 1,
            ScreenDecision::Deny => 2,
            ScreenDecision::Code(c) => c,
        }
    }

    pub fn from_code(code: u32) -> Self {
        match code {
            1 => ScreenDecision::Allow,
            2 => ScreenDecision::Deny,
            c => ScreenDecision::Code(c),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenResponse {
    pub req_id: u64,
    pub req_type: ReqType,
    pub decision: ScreenDecision,
}

impl ScreenResponse {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        const P: &str = "FscreenResp";
        let root = expect_root(doc, "FscreenResp")?;
        let (mut req_id, mut req_type, mut code) = (None, None, None);
        for child in doc.children(root) {
            match doc.name(child) {
                "ReqId" => req_id = Some(uint::<u64>(doc, child, P)?),
                "ReqType" => req_type = Some(doc.text(child).parse::<ReqType>()?),
                "NotfResp" => code = Some(uint::<u32>(doc, child, P)?),
                _ => {}
            }
        }
        Ok(ScreenResponse {
            req_id: require(req_id, "FscreenResp/ReqId")?,
            req_type: require(req_type, "FscreenResp/ReqType")?,
            decision: ScreenDecision::from_code(require(code, "FscreenResp/NotfResp")?),
        })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("FscreenResp");
        w.uint("ReqId", self.req_id);
        w.text("ReqType", self.req_type.as_str());
        w.uint("NotfResp", u64::from(self.decision.code()));
        w.close("FscreenResp");
    }
}
