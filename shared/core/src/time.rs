//! Timestamps and time windows.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

/// How far back any query may look; older data has expired.
pub const MAX_WINDOW_DAYS: i64 = 400;
/// How far ahead of the server's clock a reported timestamp may be (clock skew).
pub const MAX_FUTURE_SKEW_HOURS: i64 = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTime {
    #[error("must be an RFC 3339 timestamp such as 2026-11-22T08:30:00Z, got {0:?}")]
    NotRfc3339(String),
    #[error("is more than {MAX_FUTURE_SKEW_HOURS} hours in the future; check the sender's clock")]
    InFuture,
    #[error(
        "is more than {MAX_WINDOW_DAYS} days in the past, older than anything retained; check the sender's clock"
    )]
    TooOld,
    #[error("must be a window such as 30m, 12h, 7d or 2w, or an RFC 3339 timestamp, got {0:?}")]
    NotAWindow(String),
    #[error("reaches back more than {MAX_WINDOW_DAYS} days, beyond what is retained")]
    BeyondRetention,
}

/// Parses an RFC 3339 timestamp (any offset) into UTC, refusing ones far in the future.
pub fn parse_timestamp(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidTime> {
    let parsed = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| InvalidTime::NotRfc3339(raw.chars().take(64).collect()))?
        .with_timezone(&Utc);
    if parsed > now + Duration::hours(MAX_FUTURE_SKEW_HOURS) {
        return Err(InvalidTime::InFuture);
    }
    if parsed < now - Duration::days(MAX_WINDOW_DAYS) {
        return Err(InvalidTime::TooOld);
    }
    Ok(parsed)
}

/// Parses the timestamp forms CI providers send: RFC 3339 (`2021-02-23T02:41:37.886Z`) and
/// GitLab's `2016-08-12 15:23:28 UTC` (also with a numeric offset such as `+0200`).
pub fn parse_provider_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    if let Some(naive) = raw.strip_suffix(" UTC") {
        return chrono::NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|at| at.and_utc());
    }
    DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f %z")
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// Fixed-width UTC form (millisecond precision) that sorts lexicographically by time.
pub fn sortable(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serialises a time the one way answers show times: RFC 3339 in UTC with milliseconds
/// (`#[serde(serialize_with = "crate::time::millis")]`).
pub fn millis<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&sortable(*at))
}

/// A relative window (`30m`, `12h`, `7d`, `2w`) as a duration.
pub fn parse_window(raw: &str) -> Result<Duration, InvalidTime> {
    let raw = raw.trim();
    let bad = || InvalidTime::NotAWindow(raw.chars().take(64).collect());
    let split = raw.len().checked_sub(1).ok_or_else(bad)?;
    if !raw.is_char_boundary(split) {
        return Err(bad());
    }
    let (digits, unit) = raw.split_at(split);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let amount: i64 = digits.parse().map_err(|_| bad())?;
    if amount == 0 {
        return Err(bad());
    }
    let window = match unit {
        "m" => Duration::minutes(amount),
        "h" => Duration::hours(amount),
        "d" => Duration::days(amount),
        "w" => Duration::weeks(amount),
        _ => return Err(bad()),
    };
    if window > Duration::days(MAX_WINDOW_DAYS) {
        return Err(InvalidTime::BeyondRetention);
    }
    Ok(window)
}

/// `since` as either a window back from `now` or an absolute timestamp.
pub fn parse_since(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidTime> {
    let trimmed = raw.trim();
    let since = if trimmed.contains('T') || trimmed.contains('-') {
        DateTime::parse_from_rfc3339(trimmed)
            .map_err(|_| InvalidTime::NotAWindow(trimmed.chars().take(64).collect()))?
            .with_timezone(&Utc)
    } else {
        now - parse_window(trimmed)?
    };
    if since < now - Duration::days(MAX_WINDOW_DAYS) {
        return Err(InvalidTime::BeyondRetention);
    }
    Ok(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn timestamps_far_in_the_past_are_refused() {
        for raw in ["0000-01-01T00:00:00Z", "1970-01-01T00:00:00Z"] {
            assert_eq!(
                parse_timestamp(raw, now()),
                Err(InvalidTime::TooOld),
                "{raw}"
            );
        }
        let recent = (now() - Duration::days(MAX_WINDOW_DAYS - 1)).to_rfc3339();
        assert!(parse_timestamp(&recent, now()).is_ok());
    }

    #[test]
    fn timestamps_normalise_to_utc_and_sort() {
        let at = parse_timestamp("2026-11-22T10:00:00+02:00", now()).unwrap();
        assert_eq!(sortable(at), "2026-11-22T08:00:00.000Z");
        assert!(sortable(at) < sortable(now()));
        assert!(parse_timestamp("yesterday", now()).is_err());
        assert!(parse_timestamp("2026-11-22 10:00:00", now()).is_err());
        assert_eq!(
            parse_timestamp("2026-11-25T00:00:00Z", now()),
            Err(InvalidTime::InFuture)
        );
    }

    #[test]
    fn provider_times_in_both_gitlab_forms() {
        let expected = DateTime::parse_from_rfc3339("2016-08-12T15:23:28Z").unwrap();
        assert_eq!(
            parse_provider_time("2016-08-12 15:23:28 UTC"),
            Some(expected.into())
        );
        assert_eq!(
            parse_provider_time("2016-08-12T15:23:28Z"),
            Some(expected.into())
        );
        assert_eq!(
            parse_provider_time("2016-08-12 17:23:28 +0200"),
            Some(expected.into())
        );
        assert!(parse_provider_time("2021-02-23T02:41:37.886Z").is_some());
        assert_eq!(parse_provider_time("12 Aug 2016"), None);
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_window("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_window("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_window("2w").unwrap(), Duration::weeks(2));
        for bad in ["", "d", "7", "7x", "-7d", "0d", "7 d", "1.5h", "7дd", "é"] {
            assert!(parse_window(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_window("999d"), Err(InvalidTime::BeyondRetention));
    }

    #[test]
    fn since_takes_windows_or_timestamps() {
        assert_eq!(parse_since("1d", now()).unwrap(), now() - Duration::days(1));
        assert_eq!(
            parse_since("2026-11-20T00:00:00Z", now()).unwrap(),
            DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_since("2020-01-01T00:00:00Z", now()),
            Err(InvalidTime::BeyondRetention)
        );
        assert!(parse_since("soon", now()).is_err());
    }
}
