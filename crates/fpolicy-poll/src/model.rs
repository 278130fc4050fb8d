//! The savings estimate.

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
