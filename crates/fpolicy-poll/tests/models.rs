use std::collections::BTreeMap;
use std::time::Duration;

use fpolicy_poll::hybrid::{RecentEvents, Seen};
use fpolicy_poll::model::{SavingsInputs, monthly_savings_usd};
use fpolicy_poll::schedule::*;
use fpolicy_poll::state::*;
use jiff::Timestamp;
use proptest::prelude::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn days_parse_ranges_lists_and_wraps() {
    use jiff::civil::Weekday::*;
    let d = Days::parse("Mon-Fri").unwrap();
    assert!(d.contains(Monday) && d.contains(Friday) && !d.contains(Saturday));
    let d = Days::parse("sat,Sun").unwrap();
    assert!(d.contains(Sunday) && !d.contains(Monday));
    let d = Days::parse("Fri-Mon").unwrap();
    assert!(d.contains(Saturday) && d.contains(Monday) && !d.contains(Tuesday));
    for bad in ["", "Mon-Xyz", "Funday"] {
        assert!(Days::parse(bad).is_err(), "{bad}");
    }
    assert!(BusinessHours::new("Mon-Fri", "18:00", "09:00", "Asia/Tokyo").is_err());
    assert!(BusinessHours::new("Mon-Fri", "09:00", "18:00", "Mars/Olympus").is_err());
    assert!(BusinessHours::new("Mon-Fri", "9", "18:00", "UTC").is_err());
}

fn tokyo() -> Schedule {
    Schedule::BusinessHours {
        hours: BusinessHours::new("Mon-Fri", "09:00", "18:00", "Asia/Tokyo").unwrap(),
        business: Duration::from_secs(3600),
        off_hours: Duration::from_secs(6 * 3600),
    }
}

#[test]
fn the_interval_switches_at_the_boundaries() {
    let s = tokyo();
    // Friday 2026-11-27 08:00 JST = 2026-11-26T23:00Z: off hours, but the
    // next run is at 09:00 JST, when business hours start.
    assert_eq!(
        s.interval_at(ts("2026-11-26T23:00:00Z")),
        Duration::from_secs(6 * 3600)
    );
    assert_eq!(
        s.next_run(ts("2026-11-26T23:00:00Z")),
        ts("2026-11-27T00:00:00Z")
    );
    // Inside: hourly.
    assert_eq!(
        s.next_run(ts("2026-11-27T00:00:00Z")),
        ts("2026-11-27T01:00:00Z")
    );
    // 17:30 JST: the next run is at 18:00, then off-hours spacing.
    assert_eq!(
        s.next_run(ts("2026-11-27T08:30:00Z")),
        ts("2026-11-27T09:00:00Z")
    );
    assert_eq!(
        s.next_run(ts("2026-11-27T09:00:00Z")),
        ts("2026-11-27T15:00:00Z")
    );
    // Friday evening to Monday 09:00 JST: the weekend is off hours.
    let mut at = ts("2026-11-27T09:00:00Z");
    for _ in 0..20 {
        at = s.next_run(at);
    }
    assert!(
        at >= ts("2026-11-30T00:00:00Z"),
        "no business run before Monday: {at}"
    );
}

#[test]
fn boundaries_follow_dst_in_the_zone() {
    // New York moves from UTC-5 to UTC-4 on Sunday 2026-03-08.
    let hours = BusinessHours::new("Mon-Sun", "09:00", "17:00", "America/New_York").unwrap();
    assert_eq!(
        hours.next_boundary(ts("2026-03-07T12:00:00Z")),
        ts("2026-03-07T14:00:00Z"),
        "09:00 EST"
    );
    assert_eq!(
        hours.next_boundary(ts("2026-03-08T12:00:00Z")),
        ts("2026-03-08T13:00:00Z"),
        "09:00 EDT"
    );
    // And back on Sunday 2026-11-01.
    assert_eq!(
        hours.next_boundary(ts("2026-11-01T20:00:00Z")),
        ts("2026-11-01T22:00:00Z"),
        "17:00 EST"
    );
    assert!(hours.contains(ts("2026-03-08T13:30:00Z")));
    assert!(!hours.contains(ts("2026-03-07T13:30:00Z")));
}

#[test]
fn savings_model() {
    let from = ts("2026-11-02T00:00:00Z");
    let hourly = Duration::from_secs(3600);
    // Around the clock at the business interval: no savings.
    let inputs = SavingsInputs {
        pages_per_cycle: 10,
        price_per_1000: 0.005,
    };
    assert_eq!(
        monthly_savings_usd(&Schedule::Every(hourly), hourly, inputs, from),
        0.0
    );
    // Business hours (45 h/week hourly) vs 720 runs: fewer runs, positive savings.
    let s = tokyo();
    let runs = s.runs_per_30_days(from);
    assert!(runs < 720 / 2, "{runs}");
    let saved = monthly_savings_usd(&s, hourly, inputs, from);
    let expect = (720 - runs) as f64 * 10.0 * 0.005 / 1000.0;
    assert!((saved - expect).abs() < 1e-12, "{saved} vs {expect}");
    assert!(saved > 0.0);
}

proptest! {
    /// Applying the reported changes to the old state gives the new one.
    #[test]
    fn diff_reports_exactly_the_changes(
        old in proptest::collection::btree_map("[a-c]{1,3}", (0u8..3, 0u64..3), 0..20),
        new in proptest::collection::btree_map("[a-c]{1,3}", (0u8..3, 0u64..3), 0..20),
    ) {
        let obj = |k: &String, (e, s): &(u8, u64)| ObjectState { key: k.clone(), etag: e.to_string(), size: *s, last_modified: 0 };
        let old_list: Vec<ObjectState> = old.iter().map(|(k, v)| obj(k, v)).collect();
        let new_list: Vec<ObjectState> = new.iter().map(|(k, v)| obj(k, v)).collect();
        let mut state: BTreeMap<String, (String, u64)> = old.iter().map(|(k, (e, s))| (k.clone(), (e.to_string(), *s))).collect();
        let mut kept = Vec::new();
        // (Panics inside the callback fail the case like prop_assert.)
        diff_sorted(old_list, new_list.clone(), |c| match c.kind {
            ChangeKind::Create => assert!(state.insert(c.object.key.clone(), (c.object.etag.clone(), c.object.size)).is_none()),
            ChangeKind::Write => assert!(state.insert(c.object.key.clone(), (c.object.etag.clone(), c.object.size)).is_some()),
            ChangeKind::Delete => assert!(state.remove(&c.object.key).is_some()),
        }, |o| kept.push(o.clone()));
        let want: BTreeMap<String, (String, u64)> = new.iter().map(|(k, (e, s))| (k.clone(), (e.to_string(), *s))).collect();
        prop_assert_eq!(state, want);
        prop_assert_eq!(kept, new_list);
    }
}

#[test]
fn keys_map_to_volume_paths() {
    assert_eq!(file_path("/", "legal/a.pdf"), "/legal/a.pdf");
    assert_eq!(file_path("/share1/", "a.pdf"), "/share1/a.pdf");
    assert_eq!(file_path("", "x//y"), "/x/y");
    assert_eq!(file_path("/", ""), "/");
}

#[test]
fn hybrid_covers_by_time_or_size_and_is_bounded() {
    let mut r = RecentEvents::new(2);
    r.record(
        "vol1",
        "/a",
        Seen {
            at: 1_000,
            size: 10,
        },
    );
    assert!(
        r.covers("vol1", "/a", 1_000, 99, 0),
        "event at the modification time"
    );
    assert!(r.covers("vol1", "/a", 1_030, 99, 60), "within the skew");
    assert!(
        !r.covers("vol1", "/a", 1_100, 99, 60),
        "a later modification FPolicy did not see"
    );
    assert!(r.covers("vol1", "/a", 1_100, 10, 60), "same size");
    assert!(!r.covers("vol2", "/a", 1_000, 10, 0), "another volume");
    r.record("vol1", "/b", Seen { at: 1, size: 1 });
    r.record("vol1", "/c", Seen { at: 1, size: 1 });
    assert_eq!(r.len(), 2);
    assert!(!r.covers("vol1", "/a", 0, 10, 0), "the oldest left");
}
