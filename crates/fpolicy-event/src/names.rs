//! Volume and SVM names: the seam where live ONTAP REST lookups plug in.

use std::collections::HashMap;
use std::sync::Arc;

/// Whether a name is known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    Known,
    /// A lookup is on its way: worth a short wait.
    Pending,
    /// Not known and not being looked up (not found, or the lookup failed
    /// recently): the default name.
    Unknown,
}

/// Resolves the names the wire does not carry. Implementations must answer
/// from memory (a cache): normalization runs on the session's hot path.
pub trait NameResolver: Send + Sync {
    fn volume_name(&self, svm_uuid: &str, vol_msid: u64) -> Arc<str>;
    fn svm_name(&self, svm_uuid: &str) -> Arc<str>;
    /// A VOL_NOTFICATION arrived for this volume: forget what is cached.
    fn invalidate_volume(&self, _svm_uuid: &str, _vol_msid: u64) {}
    /// Whether the volume's name is known; asking starts a lookup when it
    /// is not.
    fn volume_state(&self, _svm_uuid: &str, _vol_msid: u64) -> NameState {
        NameState::Known
    }
    /// Whether the SVM (its name and its volumes) is loaded; asking starts
    /// the load when it is not.
    fn svm_state(&self, _svm_uuid: &str) -> NameState {
        NameState::Known
    }
}

/// Names from configuration: VolMsid → name and SVM UUID → name maps with
/// defaults for everything else.
#[derive(Debug, Clone)]
pub struct StaticNames {
    volumes: HashMap<u64, Arc<str>>,
    svms: HashMap<String, Arc<str>>,
    default_volume: Arc<str>,
    default_svm: Arc<str>,
}

impl StaticNames {
    pub fn new(
        volumes: impl IntoIterator<Item = (u64, String)>,
        svms: impl IntoIterator<Item = (String, String)>,
        default_volume: &str,
        default_svm: &str,
    ) -> Self {
        StaticNames {
            volumes: volumes.into_iter().map(|(k, v)| (k, v.into())).collect(),
            svms: svms.into_iter().map(|(k, v)| (k, v.into())).collect(),
            default_volume: default_volume.into(),
            default_svm: default_svm.into(),
        }
    }
}

impl NameResolver for StaticNames {
    fn volume_name(&self, _svm_uuid: &str, vol_msid: u64) -> Arc<str> {
        self.volumes
            .get(&vol_msid)
            .unwrap_or(&self.default_volume)
            .clone()
    }

    fn svm_name(&self, svm_uuid: &str) -> Arc<str> {
        self.svms.get(svm_uuid).unwrap_or(&self.default_svm).clone()
    }
}
