//! The savings estimate and the concurrency formula.

use jiff::Timestamp;

use crate::schedule::Schedule;

/// Inputs of the savings estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SavingsInputs {
    /// ListObjectsV2 pages per cycle (objects / 1,000, at least 1).
    pub pages_per_cycle: u64,
    /// USD per 1,000 LIST requests (S3 Standard: 0.005).
    pub price_per_1000: f64,
}

/// What the schedule saves per month against polling at the business
/// interval around the clock: (baseline runs − scheduled runs) over 30 days
/// from `from`, × pages per cycle × price per request. Never negative.
pub fn monthly_savings_usd(
    schedule: &Schedule,
    business_interval: std::time::Duration,
    inputs: SavingsInputs,
    from: Timestamp,
) -> f64 {
    let baseline = Schedule::Every(business_interval).runs_per_30_days(from);
    let scheduled = schedule.runs_per_30_days(from);
    let saved_requests = baseline.saturating_sub(scheduled) * inputs.pages_per_cycle.max(1);
    saved_requests as f64 * inputs.price_per_1000 / 1000.0
}

/// The predecessor's formula, finally used: how much to keep in flight.
/// `max(1, min(pending work, api_rate_limit / calls_per_item, upper_bound))`.
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
