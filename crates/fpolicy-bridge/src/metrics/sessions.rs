//! The live sessions, for `/sessions` and `fpolicy-bridge top`: who is
//! connected (node address, SVM, policy) and how many notifications each
//! has sent. Bounded by `server.max_connections` (an entry lives as long
//! as its established session); not in `/metrics`, whose labels stay
//! bounded by configuration.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// One established session.
#[derive(Debug)]
pub struct SessionStat {
    /// The ONTAP node's address (its data LIF).
    pub peer: String,
    pub policy: String,
    pub svm_uuid: String,
    pub svm_name: String,
    pub session_id: String,
    /// `sync` or `async`.
    pub engine: &'static str,
    /// Unix seconds when it was established.
    pub since: u64,
    /// Notifications received.
    pub events: AtomicU64,
}

#[derive(Debug, Default)]
pub struct SessionTable {
    next: AtomicU64,
    live: Mutex<BTreeMap<u64, Arc<SessionStat>>>,
}

/// Removes its session from the table when dropped (however the session
/// ends).
pub struct Registered<'a> {
    table: &'a SessionTable,
    id: u64,
    pub stat: Arc<SessionStat>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.table
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl SessionTable {
    pub fn register(&self, stat: SessionStat) -> Registered<'_> {
        let id = self.next.fetch_add(1, Relaxed);
        let stat = Arc::new(stat);
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, stat.clone());
        Registered {
            table: self,
            id,
            stat,
        }
    }

    /// The table as JSON (`GET /sessions`).
    pub fn to_json(&self) -> String {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let rows: Vec<serde_json::Value> = live
            .values()
            .map(|s| {
                serde_json::json!({
                    "peer": s.peer,
                    "policy": s.policy,
                    "svm_uuid": s.svm_uuid,
                    "svm_name": s.svm_name,
                    "session_id": s.session_id,
                    "engine": s.engine,
                    "since": s.since,
                    "events": s.events.load(Relaxed),
                })
            })
            .collect();
        serde_json::Value::Array(rows).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_listed_while_it_lives() {
        let table = SessionTable::default();
        let stat = || SessionStat {
            peer: "10.0.0.1:5000".into(),
            policy: "audit".into(),
            svm_uuid: "u".into(),
            svm_name: "svm1".into(),
            session_id: "s".into(),
            engine: "async",
            since: 1,
            events: AtomicU64::new(0),
        };
        let a = table.register(stat());
        {
            let _b = table.register(stat());
            a.stat.events.fetch_add(3, Relaxed);
            let rows: serde_json::Value = serde_json::from_str(&table.to_json()).unwrap();
            assert_eq!(rows.as_array().unwrap().len(), 2);
            assert_eq!(rows[0]["events"], 3);
        }
        let rows: serde_json::Value = serde_json::from_str(&table.to_json()).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 1);
    }
}
