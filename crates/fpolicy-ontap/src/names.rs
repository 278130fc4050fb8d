//! Volume and SVM names from ONTAP, for the event path.
//!
//! [`OntapNames`] answers from memory only: configured names first, then
//! names learned from ONTAP (cached with a TTL), then the defaults. A miss
//! or an expired entry queues a lookup for a background task (bounded
//! queue; a full queue just means a later retry), so the socket reader
//! never waits on ONTAP and events are never held back: the first events of
//! an unknown volume carry the default name. VOL_NOTFICATION invalidates
//! the volume's entry.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fpolicy_event::{NameResolver, StaticNames};
use tokio::sync::mpsc;

use crate::client::{OntapClient, encode};
use crate::types::{Records, Svm, Volume};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Volume(String, u64),
    Svm(String),
}

struct Entry {
    name: Arc<str>,
    fetched: Instant,
}

pub struct OntapNames {
    configured_volumes: HashMap<u64, Arc<str>>,
    configured_svms: HashMap<String, Arc<str>>,
    fallback: StaticNames,
    cache: RwLock<HashMap<Key, Entry>>,
    queued: Mutex<HashSet<Key>>,
    tx: mpsc::Sender<Key>,
    ttl: Duration,
}

/// Most lookups waiting for the background task.
const QUEUE: usize = 1024;

impl OntapNames {
    /// Returns the resolver and the future that performs lookups (spawn it).
    pub fn new(
        client: OntapClient,
        configured_volumes: HashMap<u64, String>,
        configured_svms: HashMap<String, String>,
        default_volume: &str,
        default_svm: &str,
        ttl: Duration,
    ) -> (
        Arc<OntapNames>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (tx, mut rx) = mpsc::channel::<Key>(QUEUE);
        let names = Arc::new(OntapNames {
            configured_volumes: configured_volumes
                .iter()
                .map(|(k, v)| (*k, v.as_str().into()))
                .collect(),
            configured_svms: configured_svms
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().into()))
                .collect(),
            fallback: StaticNames::new([], [], default_volume, default_svm),
            cache: RwLock::default(),
            queued: Mutex::default(),
            tx,
            ttl,
        });
        let me = Arc::downgrade(&names);
        let worker = async move {
            while let Some(key) = rx.recv().await {
                let Some(names) = me.upgrade() else { return };
                let found = match &key {
                    Key::Volume(svm, msid) => client
                        .get::<Records<Volume>>(&format!(
                            "/api/storage/volumes?msid={msid}&svm.uuid={}&fields=name,msid,svm",
                            encode(svm)
                        ))
                        .await
                        .map(|r| r.records.into_iter().next().map(|v| v.name)),
                    Key::Svm(uuid) => client
                        .get::<Records<Svm>>(&format!(
                            "/api/svm/svms?uuid={}&fields=name,uuid",
                            encode(uuid)
                        ))
                        .await
                        .map(|r| r.records.into_iter().next().map(|s| s.name)),
                };
                match found {
                    Ok(Some(name)) => {
                        let mut cache = names.cache.write().unwrap_or_else(|p| p.into_inner());
                        cache.insert(
                            key.clone(),
                            Entry {
                                name: name.into(),
                                fetched: Instant::now(),
                            },
                        );
                    }
                    Ok(None) => tracing::warn!(
                        ?key,
                        "ONTAP does not know this volume/SVM; using the default name"
                    ),
                    Err(e) => {
                        tracing::warn!(?key, error = %e, "name lookup failed; using the default name for now")
                    }
                }
                names
                    .queued
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
            }
        };
        (names, worker)
    }

    fn cached(&self, key: Key) -> Option<Arc<str>> {
        let (hit, fresh) = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key) {
                Some(e) => (Some(e.name.clone()), e.fetched.elapsed() < self.ttl),
                None => (None, false),
            }
        };
        if !fresh
            && self
                .queued
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone())
            && self.tx.try_send(key.clone()).is_err()
        {
            // Queue full: forget it, a later event asks again.
            self.queued
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
        hit
    }
}

impl NameResolver for OntapNames {
    fn volume_name(&self, svm_uuid: &str, vol_msid: u64) -> Arc<str> {
        if let Some(n) = self.configured_volumes.get(&vol_msid) {
            return n.clone();
        }
        self.cached(Key::Volume(svm_uuid.to_owned(), vol_msid))
            .unwrap_or_else(|| self.fallback.volume_name(svm_uuid, vol_msid))
    }

    fn svm_name(&self, svm_uuid: &str) -> Arc<str> {
        if let Some(n) = self.configured_svms.get(svm_uuid) {
            return n.clone();
        }
        self.cached(Key::Svm(svm_uuid.to_owned()))
            .unwrap_or_else(|| self.fallback.svm_name(svm_uuid))
    }

    fn invalidate_volume(&self, svm_uuid: &str, vol_msid: u64) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.remove(&Key::Volume(svm_uuid.to_owned(), vol_msid));
    }
}
