//! Registration: engine, events, policy (and scope, persistent store) made
//! to match the configuration, idempotently; server list changes that keep
//! other live instances; the connection state per node.
//!
//! ONTAP refuses to modify an engine (or events) used by an enabled policy.
//! Every modification therefore runs in one "disabled window": read the
//! policy's `enabled` and `priority`, disable it, patch, re-enable it with
//! the **same priority**. If a step fails the policy is re-enabled as it
//! was and the error says what was restored.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::client::{OntapClient, encode};
use crate::error::OntapError;
use crate::types::*;

/// What fpolicy-bridge registers (from `[ontap]`).
#[derive(Debug, Clone)]
pub struct Registration {
    pub svm: String,
    pub policy: String,
    pub engine: String,
    /// Events are named `<event_prefix>_<protocol>`.
    pub event_prefix: String,
    pub port: u16,
    /// `cifs`, `nfsv3`, `nfsv4`.
    pub protocols: Vec<String>,
    pub operations: FileOperations,
    /// Scope: volumes to include (`*` = all).
    pub volumes: Vec<String>,
    /// `asynchronous` or `synchronous`.
    pub engine_type: String,
    /// `no_auth`, `server_auth`, `mutual_auth`.
    pub ssl_option: String,
    pub mandatory: bool,
    /// Priority (1–10) used when fpolicy-bridge enables the policy itself.
    pub priority: u32,
    /// ISO 8601, e.g. `PT2M`.
    pub keep_alive_interval: String,
    pub send_buffer: u64,
    pub persistent_store: Option<PersistentStore>,
}

/// How `register` and the server commands change the primary servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerChange {
    Keep,
    Add(Vec<String>),
    Remove(Vec<String>),
    Set(Vec<String>),
}

impl ServerChange {
    pub fn apply(&self, current: &[String]) -> Vec<String> {
        let mut out: Vec<String> = current.to_vec();
        match self {
            ServerChange::Keep => {}
            ServerChange::Add(add) => {
                for a in add {
                    if !out.contains(a) {
                        out.push(a.clone());
                    }
                }
            }
            ServerChange::Remove(rm) => out.retain(|s| !rm.contains(s)),
            ServerChange::Set(set) => out = set.clone(),
        }
        out
    }

    /// Whether `servers` shows this change done (for the verify loop).
    pub fn holds(&self, servers: &[String]) -> bool {
        match self {
            ServerChange::Keep => true,
            ServerChange::Add(add) => add.iter().all(|a| servers.contains(a)),
            ServerChange::Remove(rm) => rm.iter().all(|r| !servers.contains(r)),
            ServerChange::Set(set) => {
                set.iter().collect::<BTreeSet<_>>() == servers.iter().collect::<BTreeSet<_>>()
            }
        }
    }
}

/// Everything `ontap status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub svm: Svm,
    pub engine: Option<Engine>,
    pub policy: Option<Policy>,
    pub events: Vec<Event>,
    pub persistent_store: Option<PersistentStore>,
    pub connections: Vec<Connection>,
}

pub struct Control {
    client: OntapClient,
    reg: Registration,
    svm: Svm,
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

impl Control {
    /// Resolves the SVM and returns a controller for it.
    pub async fn connect(client: OntapClient, reg: Registration) -> Result<Control, OntapError> {
        let svms: Records<Svm> = client
            .get(&format!(
                "/api/svm/svms?name={}&fields=uuid,name",
                encode(&reg.svm)
            ))
            .await?;
        let svm = svms.records.into_iter().next().ok_or_else(|| {
            OntapError::NotFound(format!("SVM {:?} not found on the cluster", reg.svm))
        })?;
        Ok(Control { client, reg, svm })
    }

    pub fn client(&self) -> &OntapClient {
        &self.client
    }

    pub fn svm(&self) -> &Svm {
        &self.svm
    }

    fn base(&self) -> String {
        format!("/api/protocols/fpolicy/{}", self.svm.uuid)
    }

    fn event_names(&self) -> Vec<String> {
        self.reg
            .protocols
            .iter()
            .map(|p| format!("{}_{p}", self.reg.event_prefix))
            .collect()
    }

    pub async fn engine(&self) -> Result<Option<Engine>, OntapError> {
        self.client
            .get_opt(&format!(
                "{}/engines/{}",
                self.base(),
                encode(&self.reg.engine)
            ))
            .await
    }

    pub async fn policy(&self) -> Result<Option<Policy>, OntapError> {
        self.client
            .get_opt(&format!(
                "{}/policies/{}?fields=*",
                self.base(),
                encode(&self.reg.policy)
            ))
            .await
    }

    async fn event(&self, name: &str) -> Result<Option<Event>, OntapError> {
        self.client
            .get_opt(&format!("{}/events/{}", self.base(), encode(name)))
            .await
    }

    pub async fn connections(&self) -> Result<Vec<Connection>, OntapError> {
        let r: Records<Connection> = self
            .client
            .get(&format!(
                "{}/connections?policy.name={}&fields=*",
                self.base(),
                encode(&self.reg.policy)
            ))
            .await?;
        Ok(r.records)
    }

    pub async fn status(&self) -> Result<Status, OntapError> {
        let mut events = Vec::new();
        for n in self.event_names() {
            if let Some(e) = self.event(&n).await? {
                events.push(e);
            }
        }
        let persistent_store = match &self.reg.persistent_store {
            Some(ps) => {
                self.client
                    .get_opt(&format!(
                        "{}/persistent-stores/{}",
                        self.base(),
                        encode(&ps.name)
                    ))
                    .await?
            }
            None => None,
        };
        Ok(Status {
            svm: self.svm.clone(),
            engine: self.engine().await?,
            policy: self.policy().await?,
            events,
            persistent_store,
            connections: self.connections().await.unwrap_or_default(),
        })
    }

    fn desired_engine(&self, servers: Vec<String>) -> Engine {
        Engine {
            name: self.reg.engine.clone(),
            port: Some(self.reg.port),
            primary_servers: Some(servers),
            secondary_servers: None,
            kind: Some(self.reg.engine_type.clone()),
            format: Some("xml".into()),
            ssl_option: Some(self.reg.ssl_option.clone()),
            keep_alive_interval: Some(self.reg.keep_alive_interval.clone()),
            buffer_size: Some(BufferSize {
                recv_buffer: None,
                send_buffer: Some(self.reg.send_buffer),
            }),
        }
    }

    fn desired_policy(&self) -> Policy {
        Policy {
            name: self.reg.policy.clone(),
            enabled: None,
            priority: None,
            mandatory: Some(self.reg.mandatory),
            engine: Some(NameRef {
                name: self.reg.engine.clone(),
            }),
            events: Some(
                self.event_names()
                    .into_iter()
                    .map(|name| NameRef { name })
                    .collect(),
            ),
            scope: Some(Scope {
                include_volumes: self.reg.volumes.clone(),
            }),
            persistent_store: self.reg.persistent_store.as_ref().map(|p| p.name.clone()),
        }
    }

    /// Runs `patches` with the policy disabled (if it exists and is
    /// enabled), then re-enables it with its priority; on failure restores.
    async fn in_disabled_window<F, Fut>(&self, action: &str, patches: F) -> Result<(), OntapError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), OntapError>>,
    {
        let policy_path = format!("{}/policies/{}", self.base(), encode(&self.reg.policy));
        let current = self.policy().await?;
        let was = current.as_ref().and_then(|p| {
            (p.enabled == Some(true)).then_some(p.priority.unwrap_or(self.reg.priority))
        });
        if was.is_some() {
            self.client
                .patch(&policy_path, &serde_json::json!({"enabled": false}))
                .await?;
        }
        let result = patches().await;
        if let Some(priority) = was {
            let enable = serde_json::json!({"enabled": true, "priority": priority});
            let restored = self.client.patch(&policy_path, &enable).await;
            if let Err(cause) = result {
                return Err(OntapError::RolledBack {
                    action: action.to_owned(),
                    cause: Box::new(cause),
                    restored: match restored {
                        Ok(()) => format!(
                            "policy {:?} re-enabled with priority {priority}",
                            self.reg.policy
                        ),
                        Err(e) => format!(
                            "NOT RESTORED: re-enabling policy {:?} failed too: {e}",
                            self.reg.policy
                        ),
                    },
                });
            }
            restored?;
        }
        result
    }

    /// Creates or updates everything, then enables the policy. Returns what
    /// changed (empty: nothing to do).
    pub async fn register(&self, servers: &ServerChange) -> Result<Vec<String>, OntapError> {
        let base = self.base();
        let mut changes = Vec::new();
        if let Some(ps) = &self.reg.persistent_store {
            let path = format!("{base}/persistent-stores/{}", encode(&ps.name));
            if self
                .client
                .get_opt::<PersistentStore>(&path)
                .await?
                .is_none()
            {
                self.client
                    .post(&format!("{base}/persistent-stores"), ps)
                    .await?;
                changes.push(format!("created persistent store {}", ps.name));
            }
        }
        // Engine.
        let current = self.engine().await?;
        let current_servers = current
            .as_ref()
            .and_then(|e| e.primary_servers.clone())
            .unwrap_or_default();
        let want_servers = servers.apply(&current_servers);
        if want_servers.is_empty() {
            return Err(OntapError::Config(
                "the engine would have no primary server: give one (advertise_address, --server or add-server)".into(),
            ));
        }
        let desired = self.desired_engine(want_servers.clone());
        let engine_patch = match &current {
            None => {
                self.client
                    .post(&format!("{base}/engines"), &desired)
                    .await?;
                changes.push(format!(
                    "created engine {} with servers {want_servers:?}",
                    desired.name
                ));
                None
            }
            Some(e) => {
                let differs = e.port != desired.port
                    || e.kind != desired.kind
                    || e.ssl_option != desired.ssl_option
                    || !same_set(&current_servers, &want_servers)
                    || e.format.as_deref().unwrap_or("xml") != "xml"
                    || e.buffer_size.as_ref().and_then(|b| b.send_buffer)
                        < Some(self.reg.send_buffer);
                differs.then(|| {
                    let mut patch = desired.clone();
                    patch.name = String::new();
                    patch
                })
            }
        };
        // Events.
        let mut event_posts = Vec::new();
        let mut event_patches = Vec::new();
        for (name, protocol) in self.event_names().into_iter().zip(&self.reg.protocols) {
            let want = Event {
                name: name.clone(),
                protocol: Some(protocol.clone()),
                file_operations: Some(self.reg.operations.clone()),
                volume_monitoring: Some(false),
            };
            match self.event(&name).await? {
                None => event_posts.push(want),
                Some(e)
                    if e.file_operations != want.file_operations || e.protocol != want.protocol =>
                {
                    event_patches.push(want)
                }
                Some(_) => {}
            }
        }
        for e in &event_posts {
            self.client.post(&format!("{base}/events"), e).await?;
            changes.push(format!("created event {}", e.name));
        }
        // Policy.
        let desired_policy = self.desired_policy();
        let policy = self.policy().await?;
        let policy_patch = match &policy {
            None => None,
            Some(p) => {
                let events: Vec<String> =
                    p.events.iter().flatten().map(|n| n.name.clone()).collect();
                let want_events: Vec<String> = self.event_names();
                let differs = p.engine != desired_policy.engine
                    || !same_set(&events, &want_events)
                    || p.mandatory != desired_policy.mandatory
                    || p.scope.as_ref().map(|s| &s.include_volumes) != Some(&self.reg.volumes)
                    || (desired_policy.persistent_store.is_some()
                        && p.persistent_store != desired_policy.persistent_store);
                differs.then(|| {
                    let mut patch = desired_policy.clone();
                    patch.name = String::new();
                    patch
                })
            }
        };
        if engine_patch.is_some() || !event_patches.is_empty() || policy_patch.is_some() {
            let engine_path = format!("{base}/engines/{}", encode(&self.reg.engine));
            self.in_disabled_window("updating the FPolicy configuration", || async {
                if let Some(p) = &engine_patch {
                    self.client.patch(&engine_path, &strip_name(p)).await?;
                }
                for e in &event_patches {
                    let path = format!("{base}/events/{}", encode(&e.name));
                    self.client.patch(&path, &strip_name(e)).await?;
                }
                if let Some(p) = &policy_patch {
                    let path = format!("{base}/policies/{}", encode(&self.reg.policy));
                    self.client.patch(&path, &strip_name(p)).await?;
                }
                Ok(())
            })
            .await?;
            if engine_patch.is_some() {
                changes.push(format!(
                    "updated engine {} (servers {want_servers:?})",
                    self.reg.engine
                ));
            }
            for e in &event_patches {
                changes.push(format!("updated event {}", e.name));
            }
            if policy_patch.is_some() {
                changes.push(format!("updated policy {}", self.reg.policy));
            }
        }
        match policy {
            None => {
                let mut p = desired_policy;
                p.enabled = Some(true);
                p.priority = Some(self.reg.priority);
                self.client.post(&format!("{base}/policies"), &p).await?;
                changes.push(format!(
                    "created and enabled policy {} (priority {})",
                    self.reg.policy, self.reg.priority
                ));
            }
            Some(p) if p.enabled != Some(true) => {
                let priority = p.priority.unwrap_or(self.reg.priority);
                let path = format!("{base}/policies/{}", encode(&self.reg.policy));
                self.client
                    .patch(
                        &path,
                        &serde_json::json!({"enabled": true, "priority": priority}),
                    )
                    .await?;
                changes.push(format!(
                    "enabled policy {} (priority {priority})",
                    self.reg.policy
                ));
            }
            Some(_) => {}
        }
        Ok(changes)
    }

    /// Changes the engine's primary servers and re-reads until the change
    /// holds (another instance may be changing the list at the same time).
    pub async fn change_servers(&self, change: &ServerChange) -> Result<Vec<String>, OntapError> {
        let engine_path = format!("{}/engines/{}", self.base(), encode(&self.reg.engine));
        let mut backoff = Duration::from_millis(100);
        for attempt in 0..8 {
            let engine = self.engine().await?.ok_or_else(|| {
                OntapError::NotFound(format!(
                    "engine {:?} does not exist: run `ontap register`",
                    self.reg.engine
                ))
            })?;
            let current = engine.primary_servers.unwrap_or_default();
            if change.holds(&current) {
                return Ok(current);
            }
            let want = change.apply(&current);
            if want.is_empty() {
                return Err(OntapError::Config(
                    "refusing to remove the last primary server (use `ontap unregister`)".into(),
                ));
            }
            let patch = serde_json::json!({"primary_servers": want});
            self.in_disabled_window("changing the engine's servers", || async {
                self.client.patch(&engine_path, &patch).await
            })
            .await?;
            tracing::debug!(attempt, ?want, "engine servers patched; verifying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        Err(OntapError::Timeout {
            what: "the server list change to hold (another instance keeps changing it)".into(),
            secs: 10,
        })
    }

    /// Disables and removes the policy, its events and the engine (and the
    /// persistent store when configured).
    pub async fn unregister(&self) -> Result<Vec<String>, OntapError> {
        let base = self.base();
        let mut changes = Vec::new();
        let policy_path = format!("{base}/policies/{}", encode(&self.reg.policy));
        if let Some(p) = self.policy().await? {
            if p.enabled == Some(true) {
                self.client
                    .patch(&policy_path, &serde_json::json!({"enabled": false}))
                    .await?;
                changes.push(format!("disabled policy {}", self.reg.policy));
            }
            self.client.delete(&policy_path).await?;
            changes.push(format!("deleted policy {}", self.reg.policy));
        }
        for name in self.event_names() {
            if self.event(&name).await?.is_some() {
                self.client
                    .delete(&format!("{base}/events/{}", encode(&name)))
                    .await?;
                changes.push(format!("deleted event {name}"));
            }
        }
        if self.engine().await?.is_some() {
            self.client
                .delete(&format!("{base}/engines/{}", encode(&self.reg.engine)))
                .await?;
            changes.push(format!("deleted engine {}", self.reg.engine));
        }
        if let Some(ps) = &self.reg.persistent_store {
            let path = format!("{base}/persistent-stores/{}", encode(&ps.name));
            if self
                .client
                .get_opt::<PersistentStore>(&path)
                .await?
                .is_some()
            {
                self.client.delete(&path).await?;
                changes.push(format!("deleted persistent store {}", ps.name));
            }
        }
        Ok(changes)
    }

    /// Polls the connections until every node reports `connected` for every
    /// one of `servers`, or `timeout`. Returns the last state seen.
    pub async fn wait_connected(
        &self,
        servers: &[String],
        timeout: Duration,
    ) -> Result<Vec<Connection>, OntapError> {
        let start = Instant::now();
        loop {
            let conns = self.connections().await?;
            let nodes: BTreeSet<&str> = conns.iter().map(|c| c.node.name.as_str()).collect();
            let all = !nodes.is_empty()
                && nodes.iter().all(|n| {
                    servers.iter().all(|s| {
                        conns
                            .iter()
                            .any(|c| c.node.name == *n && c.server == *s && c.state == "connected")
                    })
                });
            if all {
                return Ok(conns);
            }
            if start.elapsed() >= timeout {
                return Err(OntapError::Timeout {
                    what: format!(
                        "every node to connect to {servers:?} (last state: {})",
                        conns
                            .iter()
                            .map(|c| format!("{} → {}: {}", c.node.name, c.server, c.state))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The same object without `name` (ONTAP refuses renames in a PATCH body).
fn strip_name<T: serde::Serialize>(v: &T) -> serde_json::Value {
    let mut j = serde_json::to_value(v).unwrap_or_default();
    if let Some(o) = j.as_object_mut() {
        o.remove("name");
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_changes() {
        let cur = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            ServerChange::Add(vec!["c".into(), "a".into()]).apply(&cur),
            ["a", "b", "c"]
        );
        assert_eq!(ServerChange::Remove(vec!["a".into()]).apply(&cur), ["b"]);
        assert_eq!(ServerChange::Set(vec!["z".into()]).apply(&cur), ["z"]);
        assert_eq!(ServerChange::Keep.apply(&cur), cur);
        assert!(ServerChange::Add(vec!["a".into()]).holds(&cur));
        assert!(!ServerChange::Remove(vec!["a".into()]).holds(&cur));
        assert!(ServerChange::Set(vec!["b".into(), "a".into()]).holds(&cur));
    }
}
