//! HYBRID deduplication: a poll-detected change is emitted only when no
//! FPolicy event already covered it. Both paths use one key, volume +
//! volume-relative path. The index of recent FPolicy events is bounded
//! (oldest entries leave first).

use std::collections::{HashMap, VecDeque};

/// What an FPolicy event said about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Unix seconds of the event.
    pub at: i64,
    pub size: u64,
}

#[derive(Debug)]
pub struct RecentEvents {
    map: HashMap<(String, String), Seen>,
    order: VecDeque<(String, String)>,
    capacity: usize,
}

impl RecentEvents {
    pub fn new(capacity: usize) -> RecentEvents {
        RecentEvents {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records an FPolicy event (create, write, rename target, delete).
    pub fn record(&mut self, volume: &str, path: &str, seen: Seen) {
        let key = (volume.to_owned(), path.to_owned());
        if self.map.insert(key.clone(), seen).is_none() {
            self.order.push_back(key);
            while self.map.len() > self.capacity {
                let Some(old) = self.order.pop_front() else {
                    break;
                };
                self.map.remove(&old);
            }
        }
    }

    /// Whether an FPolicy event covers an object last modified at
    /// `last_modified` with `size`: an event at or after the modification
    /// (minus `skew_secs` of clock difference), or one with the same size.
    pub fn covers(
        &self,
        volume: &str,
        path: &str,
        last_modified: i64,
        size: u64,
        skew_secs: i64,
    ) -> bool {
        self.map
            .get(&(volume.to_owned(), path.to_owned()))
            .is_some_and(|s| s.at >= last_modified - skew_secs || s.size == size)
    }
}
