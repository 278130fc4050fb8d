//! When a poll runs: a fixed interval, or a business-hours schedule whose
//! interval switches at the boundaries in an IANA timezone (DST-correct:
//! boundaries are wall-clock times in that zone).

use std::time::Duration;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid days {0:?}: use e.g. \"Mon-Fri\", \"Sat,Sun\" or \"Mon-Sun\"")]
    Days(String),
    #[error("invalid time {0:?}: use HH:MM")]
    Time(String),
    #[error("unknown timezone {0:?}: use an IANA name such as Asia/Tokyo")]
    TimeZone(String),
    #[error("business hours start ({start}) must be before end ({end})")]
    Order { start: String, end: String },
    #[error("intervals must be at least one second")]
    Interval,
}

/// Days of the week, Monday = bit 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(u8);

const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Days {
    pub fn parse(s: &str) -> Result<Days, ScheduleError> {
        let err = || ScheduleError::Days(s.to_owned());
        let day = |d: &str| {
            NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(d.trim()))
                .ok_or_else(err)
        };
        let mut bits = 0u8;
        for part in s.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    let mut d = a;
                    loop {
                        bits |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => bits |= 1 << day(part)?,
            }
        }
        if bits == 0 {
            return Err(err());
        }
        Ok(Days(bits))
    }

    pub fn contains(self, w: Weekday) -> bool {
        self.0 & (1 << (w.to_monday_zero_offset() as u8)) != 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    pub days: Days,
    pub start: Time,
    pub end: Time,
    pub tz: TimeZone,
}

impl BusinessHours {
    pub fn new(
        days: &str,
        start: &str,
        end: &str,
        tz: &str,
    ) -> Result<BusinessHours, ScheduleError> {
        let time = |t: &str| {
            t.parse::<Time>()
                .map_err(|_| ScheduleError::Time(t.to_owned()))
        };
        let (start_t, end_t) = (time(start)?, time(end)?);
        if start_t >= end_t {
            return Err(ScheduleError::Order {
                start: start.into(),
                end: end.into(),
            });
        }
        Ok(BusinessHours {
            days: Days::parse(days)?,
            start: start_t,
            end: end_t,
            tz: TimeZone::get(tz).map_err(|_| ScheduleError::TimeZone(tz.to_owned()))?,
        })
    }

    /// Whether `at` falls inside business hours.
    pub fn contains(&self, at: Timestamp) -> bool {
        let z = at.to_zoned_datetime(self.tz.clone());
        self.days.contains(z.weekday()) && z.time() >= self.start && z.time() < self.end
    }

    /// The first boundary (start or end of business hours) strictly after `at`.
    pub fn next_boundary(&self, at: Timestamp) -> Timestamp {
        let z = at.to_zoned_datetime(self.tz.clone());
        let mut day: ZonedDateTime = z.start_of_day().unwrap_or(z.clone());
        for _ in 0..9 {
            if self.days.contains(day.weekday()) {
                for t in [self.start, self.end] {
                    // Wall-clock time in the zone; a time that does not exist
                    // on a DST day resolves to the later instant.
                    if let Ok(b) = day.date().to_datetime(t).to_zoned_datetime(self.tz.clone())
                        && b.timestamp() > at
                    {
                        return b.timestamp();
                    }
                }
            }
            day = match day.checked_add(1.day()) {
                Ok(d) => d,
                Err(_) => break,
            };
        }
        // No business day at all in a week cannot happen (Days is never empty).
        at + Duration::from_secs(86_400)
    }
}

/// A poll's timing.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Every(Duration),
    BusinessHours {
        hours: BusinessHours,
        business: Duration,
        off_hours: Duration,
    },
}

impl Schedule {
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let ok = |d: &Duration| d.as_secs() >= 1;
        match self {
            Schedule::Every(d) if ok(d) => Ok(()),
            Schedule::BusinessHours {
                business,
                off_hours,
                ..
            } if ok(business) && ok(off_hours) => Ok(()),
            _ => Err(ScheduleError::Interval),
        }
    }

    /// The interval in force at `at`.
    pub fn interval_at(&self, at: Timestamp) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::BusinessHours {
                hours,
                business,
                off_hours,
            } => {
                if hours.contains(at) {
                    *business
                } else {
                    *off_hours
                }
            }
        }
    }

    /// When the next run after one at `last` is due: one interval later, or
    /// at the next business-hours boundary if that comes first (the interval
    /// switches there).
    pub fn next_run(&self, last: Timestamp) -> Timestamp {
        let by_interval = last + self.interval_at(last);
        match self {
            Schedule::Every(_) => by_interval,
            Schedule::BusinessHours { hours, .. } => by_interval.min(hours.next_boundary(last)),
        }
    }

    /// Runs in the 30 days from `from` (the savings model's unit).
    pub fn runs_per_30_days(&self, from: Timestamp) -> u64 {
        let end = from + Duration::from_secs(30 * 86_400);
        let mut at = from;
        let mut n = 0;
        while at < end {
            n += 1;
            at = self.next_run(at);
        }
        n
    }
}
