//! The path every event takes before the spool, the same for FPolicy
//! sessions and pollers: user identity and noise filters (`admit`),
//! screening (synchronous engines), HYBRID bookkeeping, routing, encoding
//! into a spool record, and the batch for the spool writer. No I/O and no
//! waiting: an in-memory step of the socket reader.

use std::sync::{Arc, Mutex};

use fpolicy_event::record::{self, RecordError};
use std::sync::atomic::Ordering::Relaxed;

use fpolicy_event::{Event, FilterReason, NoiseFilter, Operation, Router, ScreeningRules, Verdict};
use fpolicy_identity::Identities;
use fpolicy_poll::hybrid::{RecentEvents, Seen};
use fpolicy_proto::ScreenDecision;

use super::IngestBatch;
use crate::metrics::IngestMetrics;

/// What the ingest step applies, shared by every session and poller.
pub struct IngestRules {
    pub router: Router,
    pub screening: ScreeningRules,
    pub filter: NoiseFilter,
    /// SID/UID → user name, swapped whole by each refresh.
    pub identities: Arc<Identities>,
    pub metrics: Arc<IngestMetrics>,
    /// HYBRID: recent FPolicy paths, for the pollers' dedup.
    pub recent: Option<Arc<Mutex<RecentEvents>>>,
}

impl IngestRules {
    /// The rules without a directory sync or HYBRID index (the identity
    /// table holds the well-known SIDs and the fixed entries): for the
    /// commands that look without serving (`poll once`, `routes test`).
    pub fn offline(cfg: &crate::config::Config) -> anyhow::Result<IngestRules> {
        Ok(IngestRules {
            router: cfg.router()?,
            screening: cfg.screening_rules()?,
            filter: cfg.noise_filter()?,
            identities: Arc::new(Identities::new(crate::identity::offline_table(
                &cfg.identity,
            ))),
            metrics: Arc::default(),
            recent: None,
        })
    }
}

/// One session's (or poller's) ingest step, with its encoding buffer.
pub struct EventIngestor {
    rules: Arc<IngestRules>,
    scratch: Vec<u8>,
}

impl EventIngestor {
    pub fn new(rules: Arc<IngestRules>) -> Self {
        EventIngestor {
            rules,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// The user's name from the identity table, then the noise filters:
    /// `false` when the event is dropped (counted by reason).
    pub fn admit(&self, event: &mut Event) -> bool {
        self.resolve_user(event);
        match self.dropped_by(event) {
            None => true,
            Some(reason) => {
                self.rules.metrics.filtered(reason);
                false
            }
        }
    }

    /// Names the event's SID or UID from the identity table (counted:
    /// resolved or unknown).
    pub fn resolve_user(&self, event: &mut Event) {
        let (sid, uid) = (event.metadata.sid.as_deref(), event.metadata.uid);
        if sid.is_none() && uid.is_none() {
            return;
        }
        let m = &self.rules.metrics;
        match self.rules.identities.load().lookup(sid, uid) {
            Some(user) => {
                event.metadata.user_name = Some(user.name.to_string());
                event.metadata.user_principal = user.principal.as_deref().map(str::to_owned);
                m.users_resolved.fetch_add(1, Relaxed);
            }
            None => {
                m.users_unknown.fetch_add(1, Relaxed);
            }
        }
    }

    /// Which filter, if any, drops the event.
    pub fn dropped_by(&self, event: &Event) -> Option<FilterReason> {
        self.rules.filter.check(event)
    }

    /// Synchronous engines: the screening decision, recorded in the event.
    pub fn screen(&self, event: &mut Event) -> ScreenDecision {
        match self.rules.screening.verdict_for(event) {
            Verdict::Allow => {
                event.metadata.screening = Some("allow".into());
                ScreenDecision::Allow
            }
            Verdict::Deny(rule) => {
                tracing::info!(path = %event.file_path, operation = %event.operation_type, %rule, "denied");
                event.metadata.screening = Some("deny".into());
                event.metadata.screening_rule = Some(rule);
                ScreenDecision::Deny
            }
        }
    }

    /// HYBRID: remembers an FPolicy change, so that pollers skip it.
    pub fn remember(&self, event: &Event, received: i64) {
        let Some(recent) = &self.rules.recent else {
            return;
        };
        if matches!(
            event.operation_type,
            Operation::Create | Operation::Write | Operation::Rename | Operation::Delete
        ) {
            let seen = Seen {
                at: received.div_euclid(1_000_000_000),
                size: event.file_size,
            };
            recent.lock().unwrap_or_else(|e| e.into_inner()).record(
                &event.volume_name,
                &event.file_path,
                seen,
            );
        }
    }

    /// HYBRID: whether FPolicy already reported a change a poller found.
    pub fn covered(&self, event: &Event, last_modified: i64, skew_secs: i64) -> bool {
        self.rules.recent.as_ref().is_some_and(|recent| {
            recent.lock().unwrap_or_else(|e| e.into_inner()).covers(
                &event.volume_name,
                &event.file_path,
                last_modified,
                event.file_size,
                skew_secs,
            )
        })
    }

    /// Routes the event, encodes it as a spool record and adds it to the
    /// batch.
    pub fn push(
        &mut self,
        event: &mut Event,
        received: i64,
        batch: &mut IngestBatch,
    ) -> Result<(), RecordError> {
        let routing = self.rules.router.route(event);
        event.metadata.routes = routing.routes;
        self.scratch.clear();
        record::encode(
            event,
            received,
            routing.sinks.iter().map(String::as_str),
            &mut self.scratch,
        )?;
        batch.push(&self.scratch);
        Ok(())
    }
}
