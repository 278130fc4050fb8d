//! BACK_PRESSURE_APPLY / BACK_PRESSURE_REM (`BackPressure`): the server asks
//! ONTAP to slow down, or lifts that request.

use crate::error::MessageError;
use crate::message::fields::{expect_root, string};
use crate::xml::{Document, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackPressure {
    pub session_id: String,
}

impl BackPressure {
    /// Reads the session id. `Apply` is implied by the header's NotfType,
    /// which is authoritative.
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "BackPressure")?;
        let session_id = doc
            .children(root)
            .find(|&c| doc.name(c) == "SessionId")
            .map(|c| string(doc, c).trim_ascii().to_owned())
            .unwrap_or_default();
        Ok(BackPressure { session_id })
    }

    pub(crate) fn write(&self, apply: bool, w: &mut XmlWriter<'_>) {
        w.open("BackPressure");
        w.text("SessionId", &self.session_id);
        w.uint("Apply", u64::from(apply));
        w.close("BackPressure");
    }
}
