//! OUTAGE_MSG (`Outage`, protocol 2.0): ONTAP reports notifications it could
//! not deliver for a path, and later that the outage is over.

use crate::error::MessageError;
use crate::message::fields::{expect_root, string};
use crate::xml::{Document, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub file_path: String,
    pub policy_name: String,
    /// As sent (`incomplete`, `Done`, …).
    pub status: String,
}

impl Outage {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "Outage")?;
        let mut o = Outage {
            file_path: String::new(),
            policy_name: String::new(),
            status: String::new(),
        };
        for child in doc.children(root) {
            match doc.name(child) {
                "FilePath" => o.file_path = string(doc, child),
                "PolicyName" => o.policy_name = string(doc, child).trim_ascii().to_owned(),
                "Status" => o.status = string(doc, child).trim_ascii().to_owned(),
                _ => {}
            }
        }
        Ok(o)
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("Outage");
        w.text("FilePath", &self.file_path);
        w.text("PolicyName", &self.policy_name);
        w.text("Status", &self.status);
        w.close("Outage");
    }
}
