//! Volume and SVM names: the seam where live ONTAP REST lookups plug in.

use std::collections::HashMap;
use std::sync::Arc;

/// Resolves the names the wire does not carry. Implementations must answer
/// from memory (a cache): normalization runs on the session's hot path.
pub trait NameResolver: Send + Sync {
    fn volume_name(&self, svm_uuid: &str, vol_msid: u64) -> Arc<str>;
    fn svm_name(&self, svm_uuid: &str) -> Arc<str>;
    /// A VOL_NOTFICATION arrived for this volume: forget what is cached.
    fn invalidate_volume(&self, _svm_uuid: &str, _vol_msid: u64) {}
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
