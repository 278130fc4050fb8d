//! Volume and SVM names from ONTAP, for the event path.
//!
//! [`OntapNames`] answers from memory only: configured names first, then
//! names learned from ONTAP (cached with a TTL), then the defaults. Lookups
//! run in a background task (bounded queue; a full queue just means a
//! later retry), so the socket reader never waits on ONTAP:
//! - an SVM is loaded whole, its name and every volume (MSID → name) in one
//!   paged listing: at start for the configured SVM, and for any SVM UUID
//!   first seen in a NEGO_REQ, so the first SCREEN_REQ finds its names;
//! - a volume still unknown (created since) is looked up on its own;
//! - callers learn that a lookup ended through [`OntapNames::subscribe`],
//!   so a session can hold an event a bounded time for its name;
//! - a lookup that failed or found nothing is remembered for
//!   [`NEGATIVE_TTL`], so an unreachable ONTAP does not hold every event;
//! - VOL_NOTFICATION invalidates the volume's entry.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fpolicy_event::{NameResolver, NameState, StaticNames};
use tokio::sync::{mpsc, watch};

use crate::client::{OntapClient, encode};
use crate::error::OntapError;
use crate::types::{Records, Svm, Volume};

/// How long a failed or empty lookup is not repeated.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Most volumes one SVM load reads.
const MAX_VOLUMES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Volume(String, u64),
    /// An SVM by UUID: its name and all its volumes.
    Svm(String),
    /// An SVM by name (the configured one, at start): then as `Svm`.
    SvmNamed(String),
}

struct Entry {
    /// `None`: looked up and not found, or the lookup failed.
    name: Option<Arc<str>>,
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
    /// Bumped after every lookup, found or not.
    done: watch::Sender<u64>,
}

/// Most lookups waiting for the background task.
const QUEUE: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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
            done: watch::Sender::new(0),
        });
        let me = Arc::downgrade(&names);
        let worker = async move {
            while let Some(key) = rx.recv().await {
                let Some(names) = me.upgrade() else { return };
                let found = names.fetch(&client, &key).await;
                names.store(&key, found);
                lock(&names.queued).remove(&key);
                names.done.send_modify(|n| *n += 1);
            }
        };
        (names, worker)
    }

    /// Learns when lookups end (the value changes after each).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.done.subscribe()
    }

    /// Loads the SVM with this name and its volumes (at start).
    pub fn prefetch_svm_named(&self, name: &str) {
        self.queue(Key::SvmNamed(name.to_owned()));
    }

    /// The names a key's lookup found: (key, name) pairs to cache.
    async fn fetch(
        &self,
        client: &OntapClient,
        key: &Key,
    ) -> Result<Vec<(Key, Option<String>)>, OntapError> {
        match key {
            Key::Volume(svm, msid) => {
                let r: Records<Volume> = client
                    .get(&format!(
                        "/api/storage/volumes?msid={msid}&svm.uuid={}&fields=name,msid,svm",
                        encode(svm)
                    ))
                    .await?;
                Ok(vec![(
                    key.clone(),
                    r.records.into_iter().next().map(|v| v.name),
                )])
            }
            Key::Svm(uuid) => {
                let r: Records<Svm> = client
                    .get(&format!(
                        "/api/svm/svms?uuid={}&fields=name,uuid",
                        encode(uuid)
                    ))
                    .await?;
                let name = r.records.into_iter().next().map(|s| s.name);
                let mut out = vec![(key.clone(), name.clone())];
                if name.is_some() {
                    out.extend(load_volumes(client, uuid).await?);
                }
                Ok(out)
            }
            Key::SvmNamed(name) => {
                let r: Records<Svm> = client
                    .get(&format!(
                        "/api/svm/svms?name={}&fields=name,uuid",
                        encode(name)
                    ))
                    .await?;
                let Some(svm) = r.records.into_iter().next() else {
                    return Ok(vec![(key.clone(), None)]);
                };
                let mut out = vec![
                    (key.clone(), Some(svm.name.clone())),
                    (Key::Svm(svm.uuid.clone()), Some(svm.name)),
                ];
                out.extend(load_volumes(client, &svm.uuid).await?);
                Ok(out)
            }
        }
    }

    fn store(&self, key: &Key, found: Result<Vec<(Key, Option<String>)>, OntapError>) {
        let now = Instant::now();
        let entries = match found {
            Ok(entries) => {
                if entries.iter().any(|(k, n)| k == key && n.is_none()) {
                    tracing::warn!(
                        ?key,
                        "ONTAP does not know this volume/SVM; using the default name"
                    );
                }
                entries
            }
            Err(e) => {
                tracing::warn!(?key, error = %e, "name lookup failed; using the default name for now");
                vec![(key.clone(), None)]
            }
        };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        for (k, name) in entries {
            cache.insert(
                k,
                Entry {
                    name: name.map(Arc::from),
                    fetched: now,
                },
            );
        }
    }

    fn queue(&self, key: Key) {
        if lock(&self.queued).insert(key.clone()) && self.tx.try_send(key.clone()).is_err() {
            // Queue full: forget it, a later event asks again.
            lock(&self.queued).remove(&key);
        }
    }

    /// The cached name and its state; a missing or stale entry queues a
    /// lookup.
    fn cached(&self, key: Key) -> (Option<Arc<str>>, NameState) {
        let (name, fresh, seen) = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key) {
                Some(e) => {
                    let ttl = if e.name.is_some() {
                        self.ttl
                    } else {
                        NEGATIVE_TTL
                    };
                    (e.name.clone(), e.fetched.elapsed() < ttl, true)
                }
                None => (None, false, false),
            }
        };
        if !fresh {
            self.queue(key.clone());
        }
        let state = match (&name, seen) {
            (Some(_), _) => NameState::Known,
            (None, true) if fresh => NameState::Unknown,
            _ if lock(&self.queued).contains(&key) => NameState::Pending,
            _ => NameState::Unknown,
        };
        (name, state)
    }
}

impl OntapNames {
    /// This SVM, or the configured one (by name, UUID not known yet), is
    /// being loaded.
    fn svm_loading(&self, svm_uuid: &str) -> bool {
        lock(&self.queued)
            .iter()
            .any(|k| matches!(k, Key::SvmNamed(_)) || *k == Key::Svm(svm_uuid.to_owned()))
    }
}

/// Every volume of an SVM, page by page.
async fn load_volumes(
    client: &OntapClient,
    svm_uuid: &str,
) -> Result<Vec<(Key, Option<String>)>, OntapError> {
    let volumes: Vec<Volume> = client
        .get_all(
            &format!(
                "/api/storage/volumes?svm.uuid={}&fields=name,msid&max_records=1000",
                encode(svm_uuid)
            ),
            MAX_VOLUMES,
        )
        .await?;
    Ok(volumes
        .into_iter()
        .filter_map(|v| Some((Key::Volume(svm_uuid.to_owned(), v.msid?), Some(v.name))))
        .collect())
}

impl NameResolver for OntapNames {
    fn volume_name(&self, svm_uuid: &str, vol_msid: u64) -> Arc<str> {
        if let Some(n) = self.configured_volumes.get(&vol_msid) {
            return n.clone();
        }
        self.cached(Key::Volume(svm_uuid.to_owned(), vol_msid))
            .0
            .unwrap_or_else(|| self.fallback.volume_name(svm_uuid, vol_msid))
    }

    fn svm_name(&self, svm_uuid: &str) -> Arc<str> {
        if let Some(n) = self.configured_svms.get(svm_uuid) {
            return n.clone();
        }
        self.cached(Key::Svm(svm_uuid.to_owned()))
            .0
            .unwrap_or_else(|| self.fallback.svm_name(svm_uuid))
    }

    fn invalidate_volume(&self, svm_uuid: &str, vol_msid: u64) {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.remove(&Key::Volume(svm_uuid.to_owned(), vol_msid));
    }

    fn volume_state(&self, svm_uuid: &str, vol_msid: u64) -> NameState {
        if self.configured_volumes.contains_key(&vol_msid) {
            return NameState::Known;
        }
        // While the whole SVM is loading, its volumes are on their way too.
        let svm_loading = self.svm_loading(svm_uuid);
        match self.cached(Key::Volume(svm_uuid.to_owned(), vol_msid)).1 {
            NameState::Unknown if svm_loading => NameState::Pending,
            state => state,
        }
    }

    fn svm_state(&self, svm_uuid: &str) -> NameState {
        if self.configured_svms.contains_key(svm_uuid) {
            return NameState::Known;
        }
        let key = Key::Svm(svm_uuid.to_owned());
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&key);
        // The configured SVM, loading by name since the start, may be this
        // one: wait for it rather than list the same volumes twice.
        if !cached && self.svm_loading(svm_uuid) {
            return NameState::Pending;
        }
        self.cached(key).1
    }
}
