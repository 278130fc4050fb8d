//! Rate-limited log lines for conditions that can happen once per event,
//! frame or connection: at most one line per interval per condition, with
//! the number of occurrences since the last line. A flood of bad input must
//! not turn into a flood of log.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::time::{Duration, Instant};

/// One condition's limiter; share it (a `static`) between every place the
/// condition is logged from.
#[derive(Debug)]
pub struct LogLimit {
    interval_ms: u64,
    /// Milliseconds since `epoch()` of the last line, plus one (0: never).
    last: AtomicU64,
    /// Occurrences since the last line.
    count: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Lines withheld by every limiter (`fpolicy_log_lines_suppressed_total`).
pub static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

impl LogLimit {
    pub const fn new(interval: Duration) -> LogLimit {
        LogLimit {
            interval_ms: interval.as_millis() as u64,
            last: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence; `Some(n)` when a line should be written now,
    /// with `n` occurrences (this one included) since the previous line.
    pub fn hit(&self) -> Option<u64> {
        self.count.fetch_add(1, Relaxed);
        let now = epoch().elapsed().as_millis() as u64 + 1;
        let last = self.last.load(Acquire);
        if last != 0 && now < last + self.interval_ms {
            SUPPRESSED.fetch_add(1, Relaxed);
            return None;
        }
        if self
            .last
            .compare_exchange(last, now, AcqRel, Acquire)
            .is_err()
        {
            SUPPRESSED.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.count.swap(0, AcqRel).max(1))
    }
}

/// Logs through a [`LogLimit`]: `limited!(LIMIT, warn, field = …, "message")`
/// adds `occurrences` (since the last line) to the fields.
#[macro_export]
macro_rules! limited {
    ($limit:expr, $level:ident, $($rest:tt)+) => {
        if let Some(occurrences) = $limit.hit() {
            tracing::$level!(occurrences, $($rest)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let l = LogLimit::new(Duration::from_millis(200));
        assert_eq!(l.hit(), Some(1));
        let withheld = (0..10_000).filter(|_| l.hit().is_some()).count();
        assert_eq!(withheld, 0);
        std::thread::sleep(Duration::from_millis(220));
        assert_eq!(l.hit(), Some(10_001));
    }
}
