//! How much work to keep in flight: one formula for every caller that
//! fans out API calls (the SQS and EventBridge sinks' batch calls, the
//! pollers' prefix listings), so they bound themselves the same way.

/// `max(1, min(pending work, api_rate_limit / calls_per_item, upper_bound))`.
/// A rate limit of 0 (or not finite) means "no limit"; the result is never
/// 0, so work always moves.
pub fn concurrency(
    pending: u64,
    api_rate_limit: f64,
    calls_per_item: f64,
    upper_bound: u32,
) -> u32 {
    let by_rate = if calls_per_item > 0.0 && api_rate_limit.is_finite() && api_rate_limit > 0.0 {
        (api_rate_limit / calls_per_item).floor()
    } else {
        f64::from(upper_bound)
    };
    let v = (pending as f64).min(by_rate).min(f64::from(upper_bound));
    (v as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::concurrency;
    use proptest::prelude::*;

    #[test]
    fn each_bound_can_be_the_one_that_holds() {
        assert_eq!(concurrency(2, 0.0, 1.0, 8), 2, "pending work");
        assert_eq!(concurrency(100, 3.0, 1.0, 8), 3, "API rate");
        assert_eq!(concurrency(100, 0.0, 1.0, 8), 8, "upper bound");
        assert_eq!(concurrency(0, 0.5, 1.0, 8), 1, "never zero");
    }

    proptest! {
        #[test]
        fn concurrency_stays_within_its_bounds(pending in 0u64..1_000_000, rate in 0.0f64..10_000.0, calls in 0.0f64..50.0, upper in 1u32..512) {
            let c = concurrency(pending, rate, calls, upper);
            prop_assert!(c >= 1);
            prop_assert!(c <= upper);
            prop_assert!(u64::from(c) <= pending.max(1));
            if calls > 0.0 && rate > 0.0 {
                prop_assert!(f64::from(c) <= (rate / calls).floor().max(1.0));
            }
        }
    }
}
