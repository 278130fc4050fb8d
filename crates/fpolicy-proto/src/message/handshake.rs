//! NEGO_REQ (`Handshake`, ONTAP → server) and NEGO_RESP (`HandshakeResp`).

use crate::error::MessageError;
use crate::message::fields::{expect_root, require, string};
use crate::version::{ProtocolVersion, negotiate};
use crate::xml::{Document, XmlWriter};

/// Most `<Vers>` offers kept from one handshake.
pub const MAX_OFFERED_VERSIONS: usize = 16;

/// NEGO_REQ: ONTAP opens a session and offers protocol versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub vs_uuid: String,
    pub policy_name: String,
    pub session_id: String,
    /// Offered versions as sent, including ones this crate does not know.
    pub versions: Vec<String>,
}

impl Handshake {
    /// The highest offered version among `accepted`.
    pub fn negotiate(&self, accepted: &[ProtocolVersion]) -> Option<ProtocolVersion> {
        negotiate(self.versions.iter().map(String::as_str), accepted)
    }

    /// The reply that accepts this handshake at `version`.
    pub fn accept(&self, version: ProtocolVersion) -> HandshakeResp {
        HandshakeResp {
            vs_uuid: self.vs_uuid.clone(),
            policy_name: self.policy_name.clone(),
            session_id: self.session_id.clone(),
            version: version.as_str().to_owned(),
        }
    }

    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "Handshake")?;
        let (mut vs_uuid, mut policy_name, mut session_id) = (None, None, None);
        let mut versions = Vec::new();
        let mut saw_versions = false;
        for child in doc.children(root) {
            match doc.name(child) {
                "VsUUID" => vs_uuid = Some(string(doc, child).trim_ascii().to_owned()),
                "PolicyName" => policy_name = Some(string(doc, child).trim_ascii().to_owned()),
                "SessionId" => session_id = Some(string(doc, child).trim_ascii().to_owned()),
                "ProtVersion" => {
                    saw_versions = true;
                    for v in doc.children(child) {
                        if doc.name(v) == "Vers" && versions.len() < MAX_OFFERED_VERSIONS {
                            versions.push(doc.text(v).trim_ascii().to_owned());
                        }
                    }
                    // Tolerate a scalar <ProtVersion>1.2</ProtVersion>.
                    let scalar = doc.text(child).trim_ascii();
                    if versions.is_empty() && !scalar.is_empty() {
                        versions.push(scalar.to_owned());
                    }
                }
                _ => {}
            }
        }
        if !saw_versions {
            return Err(MessageError::MissingElement {
                path: "Handshake/ProtVersion".into(),
            });
        }
        Ok(Handshake {
            vs_uuid: require(vs_uuid, "Handshake/VsUUID")?,
            policy_name: require(policy_name, "Handshake/PolicyName")?,
            session_id: require(session_id, "Handshake/SessionId")?,
            versions,
        })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("Handshake");
        w.text("VsUUID", &self.vs_uuid);
        w.text("PolicyName", &self.policy_name);
        w.text("SessionId", &self.session_id);
        w.open("ProtVersion");
        for v in &self.versions {
            w.text("Vers", v);
        }
        w.close("ProtVersion");
        w.close("Handshake");
    }
}

/// NEGO_RESP: the server echoes the identifiers and picks one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResp {
    pub vs_uuid: String,
    pub policy_name: String,
    pub session_id: String,
    /// One version, scalar text (as NetApp's own servers send it).
    pub version: String,
}

impl HandshakeResp {
    pub(crate) fn parse(doc: &Document<'_>) -> Result<Self, MessageError> {
        let root = expect_root(doc, "HandshakeResp")?;
        let (mut vs_uuid, mut policy_name, mut session_id, mut version) = (None, None, None, None);
        for child in doc.children(root) {
            match doc.name(child) {
                "VsUUID" => vs_uuid = Some(string(doc, child).trim_ascii().to_owned()),
                "PolicyName" => policy_name = Some(string(doc, child).trim_ascii().to_owned()),
                "SessionId" => session_id = Some(string(doc, child).trim_ascii().to_owned()),
                "ProtVersion" => {
                    // Scalar per the schema; NetApp's document sample nests <Vers>.
                    let nested = doc
                        .children(child)
                        .find(|&v| doc.name(v) == "Vers")
                        .map(|v| doc.text(v).trim_ascii().to_owned());
                    version =
                        Some(nested.unwrap_or_else(|| doc.text(child).trim_ascii().to_owned()));
                }
                _ => {}
            }
        }
        Ok(HandshakeResp {
            vs_uuid: require(vs_uuid, "HandshakeResp/VsUUID")?,
            policy_name: require(policy_name, "HandshakeResp/PolicyName")?,
            session_id: require(session_id, "HandshakeResp/SessionId")?,
            version: require(version, "HandshakeResp/ProtVersion")?,
        })
    }

    pub(crate) fn write(&self, w: &mut XmlWriter<'_>) {
        w.open("HandshakeResp");
        w.text("VsUUID", &self.vs_uuid);
        w.text("PolicyName", &self.policy_name);
        w.text("SessionId", &self.session_id);
        w.text("ProtVersion", &self.version);
        w.close("HandshakeResp");
    }
}
