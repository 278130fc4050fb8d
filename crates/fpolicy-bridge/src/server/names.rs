//! Waiting for ONTAP's names, bounded and outside the socket reader: the
//! handshake waits for a new SVM's volumes before it answers, and a session
//! holds the notifications of a volume created since ([`Held`]) while its
//! lookup runs, reading on meanwhile. Nothing waits longer than
//! `ontap.name_wait_secs`; then events go on with the default names.

use std::collections::VecDeque;
use std::time::Duration;

use fpolicy_proto::ScreenRequest;
use tokio::sync::watch;
use tokio::time::Instant;

/// Most notifications one session holds; beyond, the reader stops reading
/// until the names arrive or the wait is over (bounded memory).
pub const MAX_HELD: usize = 4096;

/// Lookups ending, and how long to wait for one.
pub struct NameWait {
    pub done: watch::Receiver<u64>,
    pub bound: Duration,
}

impl NameWait {
    /// Returns once `pending()` is false or at `deadline`.
    pub async fn until(&self, deadline: Instant, mut pending: impl FnMut() -> bool) {
        let mut done = self.done.clone();
        while pending() {
            tokio::select! {
                changed = done.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }
}

/// A notification waiting for its volume's name.
pub struct HeldRequest {
    pub req: ScreenRequest,
    /// Receive time, as every event of the read carries it.
    pub received: i64,
    /// When it goes on regardless.
    pub until: Instant,
}

/// A session's held notifications, in arrival order: once one is held,
/// later ones queue behind it, so events keep their order.
#[derive(Default)]
pub struct Held(VecDeque<HeldRequest>);

impl Held {
    pub fn push(&mut self, h: HeldRequest) {
        self.0.push_back(h);
    }

    pub fn front(&self) -> Option<&HeldRequest> {
        self.0.front()
    }

    pub fn pop(&mut self) -> Option<HeldRequest> {
        self.0.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.0.len() >= MAX_HELD
    }

    /// A synchronous request held is still being worked on.
    pub fn contains(&self, req_id: u64) -> bool {
        self.0.iter().any(|h| h.req.req_id == req_id)
    }
}
