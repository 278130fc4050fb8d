//! The path every event takes before the spool, the same for FPolicy
//! sessions and pollers: screening (synchronous engines), HYBRID
//! bookkeeping, routing, encoding into a spool record, and the batch for
//! the spool writer. No I/O and no waiting: an in-memory step of the
//! socket reader.

use std::sync::{Arc, Mutex};

use fpolicy_event::record::{self, RecordError};
use fpolicy_event::{Event, Operation, Router, ScreeningRules, Verdict};
use fpolicy_poll::hybrid::{RecentEvents, Seen};
use fpolicy_proto::ScreenDecision;

use super::IngestBatch;

/// What the ingest step applies, shared by every session and poller.
pub struct IngestRules {
    pub router: Router,
    pub screening: ScreeningRules,
    /// HYBRID: recent FPolicy paths, for the pollers' dedup.
    pub recent: Option<Arc<Mutex<RecentEvents>>>,
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

    /// Synchronous engines: the screening decision, recorded in the event.
    pub fn screen(&self, event: &mut Event) -> ScreenDecision {
        let paths = [
            Some(event.file_path.as_str()),
            event.previous_path.as_deref(),
            event.metadata.link_path.as_deref(),
        ];
        match self
            .rules
            .screening
            .verdict(event.operation_type, paths.into_iter().flatten())
        {
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
