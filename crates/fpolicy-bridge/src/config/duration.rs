//! Durations: one parser for every duration in the file. The `*_secs` keys
//! take a number of seconds (`300`, `0.2`); the poll intervals take a
//! string with a unit (`"500ms"`, `"90s"`, `"5m"`, `"1h"`, `"2d"`). Each
//! form is accepted wherever a duration is expected, so a value reads the
//! same in every section.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// The longest duration accepted: ten years, far above any sensible
/// setting and far below what overflows an `Instant`.
const MAX_SECS: f64 = 10.0 * 365.0 * 86_400.0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration: a number of seconds, or a number with ms, s, m, h or d")]
pub struct DurationError(pub String);

/// Parses `"90"`, `"1.5"`, `"500ms"`, `"90s"`, `"5m"`, `"1h"`, `"2d"`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let (number, unit_secs) = [
        ("ms", 0.001),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
        ("d", 86_400.0),
    ]
    .iter()
    .find_map(|(suffix, secs)| s.strip_suffix(suffix).map(|n| (n, *secs)))
    .unwrap_or((s, 1.0));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| DurationError(text.to_owned()))?;
    from_secs(value * unit_secs).ok_or_else(|| DurationError(text.to_owned()))
}

fn from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..=MAX_SECS).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration: seconds (300, 0.2) or a string with a unit (\"90s\", \"1h\")")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        from_secs(v as f64).ok_or_else(|| E::custom(DurationError(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        from_secs(v as f64).ok_or_else(|| E::custom(DurationError(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        from_secs(v).ok_or_else(|| E::custom(DurationError(v.to_string())))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

/// `#[serde(deserialize_with = "duration::any")]`
pub fn any<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// `#[serde(deserialize_with = "duration::optional")]` (with `default`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    any(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn every_form_parses_to_the_same_value() {
        for (text, secs) in [
            ("300", 300.0),
            ("0.2", 0.2),
            ("500ms", 0.5),
            ("90s", 90.0),
            ("90m", 5400.0),
            ("1h", 3600.0),
            ("2d", 172_800.0),
            (" 1.5 h ", 5400.0),
            ("0", 0.0),
        ] {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_secs_f64(secs),
                "{text}"
            );
        }
        for bad in [
            "",
            "h",
            "1x",
            "-1s",
            "1e400",
            "NaN",
            "inf",
            "1h30m",
            "99999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "any")]
        d: Duration,
    }

    #[test]
    fn toml_numbers_and_strings_are_both_durations() {
        let t = |s: &str| toml::from_str::<T>(s).map(|t| t.d);
        assert_eq!(t("d = 120").unwrap(), Duration::from_secs(120));
        assert_eq!(t("d = 0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(t("d = \"2m\"").unwrap(), Duration::from_secs(120));
        let e = t("d = -1").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("not a duration"), "{e}");
        assert!(t("d = true").is_err());
    }
}
