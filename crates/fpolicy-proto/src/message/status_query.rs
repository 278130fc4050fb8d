//! STATUS_QUERY_REQ (`FscreenQueryStatus`) and STATUS_QUERY_RESP
//! (`FscreenStatusResp`): ONTAP asks about an outstanding synchronous request.

use crate::error::MessageError;
use crate::message::fields::{expect_root, require, uint};
use crate::message::req_type::ReqType;
use crate::xml::{Document, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQuery {
    pub req_id: u64,
    pub req_type: ReqType,
}

/// `Resp`: 1 the server is working on it, 2 the server does not know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    Working,
    Lost,
    Code(u32),
}

impl RequestStatus {
    pub fn code(self) -> u32 {
        match self {
            RequestStatus::Working => 1,
            RequestStatus::Lost => 2,
            RequestStatus::Code(c) => c,
        }
    }

    pub fn from_code(code: u32) -> Self {
        match code {
            1 => RequestStatus::Working,
            2 => RequestStatus::Lost,
            c => RequestStatus::Code(c),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQueryResponse {
    pub req_id: u64,
    pub req_type: ReqType,
    pub status: RequestStatus,
}

impl StatusQuery {
    pub fn answer(&self, status: RequestStatus) -> StatusQueryResponse {
        StatusQueryResponse {
            req_id: self.req_id,
            req_type: self.req_type,
            status,
        }
    }

    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "FscreenQueryStatus")?;
        let (mut req_id, mut req_type) = (None, None);
        for child in doc.children(root) {
            match doc.name(child) {
                "ReqId" => req_id = Some(uint::<u64>(doc, child, "FscreenQueryStatus")?),
                "ReqType" => req_type = Some(doc.text(child).parse::<ReqType>()?),
                _ => {}
            }
        }
        Ok(StatusQuery {
            req_id: require(req_id, "FscreenQueryStatus/ReqId")?,
            req_type: require(req_type, "FscreenQueryStatus/ReqType")?,
        })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("FscreenQueryStatus");
        w.uint("ReqId", self.req_id);
        w.text("ReqType", self.req_type.as_str());
        w.close("FscreenQueryStatus");
    }
}

impl StatusQueryResponse {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        const P: &str = "FscreenStatusResp";
        let root = expect_root(doc, "FscreenStatusResp")?;
        let (mut req_id, mut req_type, mut code) = (None, None, None);
        for child in doc.children(root) {
            match doc.name(child) {
                "ReqId" => req_id = Some(uint::<u64>(doc, child, P)?),
                "ReqType" => req_type = Some(doc.text(child).parse::<ReqType>()?),
                "Resp" => code = Some(uint::<u32>(doc, child, P)?),
                _ => {}
            }
        }
        Ok(StatusQueryResponse {
            req_id: require(req_id, "FscreenStatusResp/ReqId")?,
            req_type: require(req_type, "FscreenStatusResp/ReqType")?,
            status: RequestStatus::from_code(require(code, "FscreenStatusResp/Resp")?),
        })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("FscreenStatusResp");
        w.uint("ReqId", self.req_id);
        w.text("ReqType", self.req_type.as_str());
        w.uint("Resp", u64::from(self.status.code()));
        w.close("FscreenStatusResp");
    }
}
