//! VOL_NOTFICATION (`VolNotf`, ONTAP's spelling): a volume was mounted,
//! unmounted or modified; cached volume names for its MSID are stale.

use crate::error::MessageError;
use crate::message::fields::{boolean, expect_root, opt_uint};
use crate::xml::{Document, XmlWriter};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VolumeAction {
    Mount,
    Unmount,
    Modify,
    Other(String),
}

impl VolumeAction {
    pub fn as_str(&self) -> &str {
        match self {
            VolumeAction::Mount => "MOUNT",
            VolumeAction::Unmount => "UNMOUNT",
            VolumeAction::Modify => "MODIFY",
            VolumeAction::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s.trim_ascii() {
            "MOUNT" => VolumeAction::Mount,
            "UNMOUNT" => VolumeAction::Unmount,
            "MODIFY" => VolumeAction::Modify,
            other => VolumeAction::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolNotification {
    pub vol_msid: Option<u64>,
    pub action: Option<VolumeAction>,
    pub is_active: Option<bool>,
}

impl VolNotification {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        const P: &str = "VolNotf";
        let root = expect_root(doc, "VolNotf")?;
        let mut n = VolNotification {
            vol_msid: None,
            action: None,
            is_active: None,
        };
        for child in doc.children(root) {
            match doc.name(child) {
                "VolMsid" => n.vol_msid = opt_uint(doc, child, P)?,
                "Action" => {
                    let t = doc.text(child);
                    n.action = (!t.trim_ascii().is_empty()).then(|| VolumeAction::parse(t));
                }
                "IsActive" if !doc.text(child).trim_ascii().is_empty() => {
                    n.is_active = Some(boolean(doc, child, P)?);
                }
                _ => {}
            }
        }
        Ok(n)
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("VolNotf");
        match self.vol_msid {
            Some(m) => w.uint("VolMsid", m),
            None => w.text("VolMsid", ""),
        }
        w.text("Action", self.action.as_ref().map_or("", |a| a.as_str()));
        match self.is_active {
            Some(b) => w.bool("IsActive", b),
            None => w.text("IsActive", ""),
        }
        w.close("VolNotf");
    }
}
