//! Wall-clock times as the SDK wrote them: UTC ISO 8601 without a zone suffix
//! (`datetime.utcnow().isoformat()`), and durations as `str(timedelta)` zero-padded.

use std::time::Duration;

use jiff::{Timestamp, tz::TimeZone};

/// Now, e.g. `2026-01-02T03:04:05.123456`.
pub fn now_iso() -> String {
    iso(Timestamp::now())
}

pub fn iso(at: Timestamp) -> String {
    at.to_zoned(TimeZone::UTC).datetime().strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// `HH:MM:SS.ffffff`, e.g. `00:00:00.300123`; hours go past 24 rather than being
/// dropped (the SDK's `MM:SS` lost them).
pub fn hms(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        duration.subsec_micros()
    )
}

/// Milliseconds, saturating (a duration never gets near the limit).
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_their_hours() {
        assert_eq!(hms(Duration::from_micros(300_123)), "00:00:00.300123");
        assert_eq!(hms(Duration::from_secs(3725)), "01:02:05.000000");
        assert_eq!(hms(Duration::from_secs(90_000)), "25:00:00.000000");
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }

    #[test]
    fn timestamps_are_utc_without_zone() {
        let at: Timestamp = "2026-01-02T03:04:05.123456789Z".parse().unwrap();
        assert_eq!(iso(at), "2026-01-02T03:04:05.123456");
        assert_eq!(now_iso().len(), "2026-01-02T03:04:05.123456".len());
    }
}
