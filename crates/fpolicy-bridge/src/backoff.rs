//! The one retry delay used by every loop that retries: sink deliveries,
//! spool reads, pollers and the ONTAP calls. Exponential, capped, with
//! jitter drawn from a real random source, so that many instances (or
//! many sinks) that failed together do not retry together.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is drawn uniformly
/// from [d/2, d], where d doubles from `min` up to `max` on every failure.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        // RandomState is seeded from the OS once per process and varied per
        // instance: enough to spread retries, no extra dependency.
        let mut h = RandomState::new().build_hasher();
        h.write_u64(min.as_nanos() as u64);
        Backoff {
            min,
            max: max.max(min),
            current: min,
            rng: h.finish() | 1,
        }
    }

    /// The delay before the next attempt; the one after it doubles.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let nanos = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        let half = nanos / 2;
        Duration::from_nanos(half + self.next_random() % (nanos - half + 1))
    }

    /// The undrawn delay the next attempt would wait about (for logs).
    pub fn current(&self) -> Duration {
        self.current
    }

    /// At least `floor` for the next delay (a throttled service).
    pub fn at_least(&mut self, floor: Duration) {
        self.current = self.current.max(floor).min(self.max);
    }

    /// After a success: start again from `min`.
    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// splitmix64.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_delays_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut expected = Duration::from_millis(100);
        for _ in 0..8 {
            let d = b.next_delay();
            assert!(d >= expected / 2 && d <= expected, "{d:?} for {expected:?}");
            expected = (expected * 2).min(Duration::from_secs(1));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
        b.at_least(Duration::from_millis(500));
        assert!(b.next_delay() >= Duration::from_millis(250));
    }

    #[test]
    fn two_instances_draw_different_delays() {
        let draws = |b: &mut Backoff| -> Vec<Duration> {
            (0..6)
                .map(|_| {
                    b.reset();
                    b.next_delay()
                })
                .collect()
        };
        let mut a = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        assert_ne!(draws(&mut a), draws(&mut b));
    }
}
