//! RFC 3339 UTC timestamps without a date library: events format one per
//! notification, so this is on the hot path.

/// Nanoseconds since the Unix epoch.
pub type UnixNanos = i64;

const NANOS_PER_SEC: i64 = 1_000_000_000;
/// One UTC day (no leap seconds, as in Unix time).
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SEC;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push_2(out: &mut String, v: u32) {
    out.push(char::from(b'0' + (v / 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, UTC).
pub fn format_rfc3339(nanos: UnixNanos, out: &mut String) {
    let secs = nanos.div_euclid(NANOS_PER_SEC);
    let micros = (nanos.rem_euclid(NANOS_PER_SEC) / 1000) as u32;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let year = year.clamp(0, 9999) as u32;
    push_2(out, year / 100);
    push_2(out, year % 100);
    out.push('-');
    push_2(out, month);
    out.push('-');
    push_2(out, day);
    out.push('T');
    push_2(out, sod / 3600);
    out.push(':');
    push_2(out, sod / 60 % 60);
    out.push(':');
    push_2(out, sod % 60);
    out.push('.');
    push_2(out, micros / 10_000);
    push_2(out, micros / 100 % 100);
    push_2(out, micros % 100);
    out.push('Z');
}

/// The RFC 3339 text of `nanos`.
pub fn rfc3339(nanos: UnixNanos) -> String {
    let mut s = String::with_capacity(27);
    format_rfc3339(nanos, &mut s);
    s
}

/// `YYYY-MM-DD` of `nanos` in UTC (the JSON Lines file name's date).
pub fn utc_date(nanos: UnixNanos) -> String {
    let (y, m, d) = civil_from_days(nanos.div_euclid(NANOS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {0:?}: use RFC 3339 (2026-11-27T12:00:00Z, offsets allowed) or a date (2026-11-27)"
)]
pub struct TimestampError(pub String);

/// Parses RFC 3339 (`2026-11-27T12:00:00Z`, `…T12:00:00.5+09:00`, a space
/// instead of `T`) or a bare date (midnight UTC) into Unix nanoseconds.
pub fn parse_rfc3339(text: &str) -> Result<UnixNanos, TimestampError> {
    let err = || TimestampError(text.to_owned());
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<u32, TimestampError> {
        let part = b.get(range).ok_or_else(err)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        Ok(part
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(err());
    }
    let mut secs = days_from_civil(i64::from(year), month, day) * 86_400;
    let to_nanos = |secs: i64, frac: i64| {
        secs.checked_mul(NANOS_PER_SEC)
            .and_then(|n| n.checked_add(frac))
            .ok_or_else(err)
    };
    if b.len() == 10 {
        return to_nanos(secs, 0);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || s > 60 {
        return Err(err());
    }
    secs += i64::from(h * 3600 + mi * 60 + s);
    let mut at = 19;
    let mut frac_nanos = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 9 {
                frac_nanos = frac_nanos * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err(err());
        }
        for _ in (at - start).min(9)..9 {
            frac_nanos *= 10;
        }
    }
    let offset_secs = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() && b[at + 3] == b':' => {
            let (oh, om) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if oh > 23 || om > 59 {
                return Err(err());
            }
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'+' { o } else { -o }
        }
        _ => return Err(err()),
    };
    to_nanos(secs - offset_secs, frac_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_795_779_296_123_456_789),
            "2026-11-27T11:34:56.123456Z"
        );
        assert_eq!(
            rfc3339(951_782_400 * NANOS_PER_SEC),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(utc_date(1_795_779_296 * NANOS_PER_SEC), "2026-11-27");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for n in [
            0,
            1_795_779_296_123_456_000,
            951_782_400 * NANOS_PER_SEC,
            4_102_444_799 * NANOS_PER_SEC,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(n)).unwrap(), n);
        }
        assert_eq!(
            parse_rfc3339("2026-11-27T20:34:56+09:00").unwrap(),
            parse_rfc3339("2026-11-27T11:34:56Z").unwrap()
        );
        assert_eq!(
            parse_rfc3339("2026-11-27").unwrap(),
            parse_rfc3339("2026-11-27T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00.5Z").unwrap(),
            500_000_000
        );
        // Past i64 nanoseconds (year 2262): an error, not an overflow.
        assert!(parse_rfc3339("9999-12-31T00:00:00Z").is_err());
        for bad in [
            "",
            "2026-13-01",
            "2026-11-27T25:00:00Z",
            "2026-11-27T10:00:00",
            "2026-11-27T10:00:00+0900",
            "x026-11-27",
            "2026-11-27T10:00:00.Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn roundtrips_any_microsecond(micros in 0i64..9_000_000_000_000_000) {
            let n = micros * 1000;
            proptest::prop_assert_eq!(parse_rfc3339(&rfc3339(n)).unwrap(), n);
        }
    }
}
