//! FPolicy protocol versions and negotiation.

use std::fmt;
use std::str::FromStr;

/// A protocol version this crate implements.
///
/// 1.1 adds NotfResp codes 3–7; 1.2 adds `GenerationTime` and the SMB close
/// byte counts; 2.0 adds OUTAGE_MSG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V1_0,
    V1_1,
    V1_2,
    V2_0,
}

impl ProtocolVersion {
    /// Every implemented version, lowest first.
    pub const ALL: [ProtocolVersion; 4] = [
        ProtocolVersion::V1_0,
        ProtocolVersion::V1_1,
        ProtocolVersion::V1_2,
        ProtocolVersion::V2_0,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V1_0 => "1.0",
            ProtocolVersion::V1_1 => "1.1",
            ProtocolVersion::V1_2 => "1.2",
            ProtocolVersion::V2_0 => "2.0",
        }
    }

    /// Whether SCREEN_REQ carries `GenerationTime` and SMB close byte counts.
    pub fn has_generation_time(self) -> bool {
        self >= ProtocolVersion::V1_2
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a version this crate implements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported protocol version {0:?}")]
pub struct UnsupportedVersion(pub String);

impl FromStr for ProtocolVersion {
    type Err = UnsupportedVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim_ascii();
        ProtocolVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == t)
            .ok_or_else(|| UnsupportedVersion(t.to_owned()))
    }
}

/// Picks the highest offered version that is also in `accepted`.
/// Offers this crate does not know (a future "3.0") are ignored.
pub fn negotiate<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    accepted: &[ProtocolVersion],
) -> Option<ProtocolVersion> {
    offered
        .into_iter()
        .filter_map(|v| v.parse::<ProtocolVersion>().ok())
        .filter(|v| accepted.contains(v))
        .max()
}
