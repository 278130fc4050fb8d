//! ALERT_MSG (`Alert`): ONTAP reports a problem with the session.

use crate::error::MessageError;
use crate::message::fields::{expect_root, string};
use crate::xml::{Document, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Severity {
    Fatal,
    Warning,
    Other(String),
}

impl Severity {
    pub fn as_str(&self) -> &str {
        match self {
            Severity::Fatal => "FATAL",
            Severity::Warning => "WARNING",
            Severity::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s.trim_ascii() {
            "FATAL" => Severity::Fatal,
            "WARNING" => Severity::Warning,
            other => Severity::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub session_id: String,
    pub severity: Severity,
    pub message: String,
}

impl Alert {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "Alert")?;
        let mut alert = Alert {
            session_id: String::new(),
            severity: Severity::Other(String::new()),
            message: String::new(),
        };
        for child in doc.children(root) {
            match doc.name(child) {
                "SessionId" => alert.session_id = string(doc, child).trim_ascii().to_owned(),
                "Severity" => alert.severity = Severity::parse(doc.text(child)),
                "AlertMsg" => alert.message = string(doc, child),
                _ => {}
            }
        }
        Ok(alert)
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("Alert");
        w.text("SessionId", &self.session_id);
        w.text("Severity", self.severity.as_str());
        w.text("AlertMsg", &self.message);
        w.close("Alert");
    }
}
