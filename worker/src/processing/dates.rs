//! Dates in uploaded files: Excel serial numbers from workbooks, and the textual forms
//! found in CSV files and ISO cells. Everything becomes a UTC instant: files carry no
//! time zone, and the SDK stored naive date-times as UTC too.

use mongodb::bson::DateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Serial of 1970-01-01 in Excel's 1900 date system (days since 1899-12-30).
const UNIX_EPOCH_SERIAL: f64 = 25_569.0;
/// Serial of 10000-01-01: Excel's own upper bound.
const SERIAL_END: f64 = 2_958_466.0;
const MILLIS_PER_DAY: f64 = 86_400_000.0;

/// An Excel date-time serial as a UTC instant, rounded to the millisecond (Excel stores
/// 10:00:16 as a fraction that is a hair under it). `None` when the number cannot be a
/// date (negative, beyond year 9999, not finite).
pub fn excel_serial_to_datetime(serial: f64) -> Option<DateTime> {
    if !serial.is_finite() || !(0.0..SERIAL_END).contains(&serial) {
        return None;
    }
    // Excel believes 1900 was a leap year: serials before its fictional 1900-02-29
    // (serial 60) are one day ahead of the 1899-12-30 epoch used for all later ones.
    let serial = if serial < 60.0 { serial + 1.0 } else { serial };
    // In range by the check above: |millis| < 2^53, exact in f64 and in i64.
    let millis = ((serial - UNIX_EPOCH_SERIAL) * MILLIS_PER_DAY).round() as i64;
    Some(DateTime::from_millis(millis))
}

/// The text a user would read for a date cell mapped to a string field:
/// `2020-08-22` for a whole day, `2020-08-22T10:00:16` (with `.mmm` when needed)
/// otherwise. Naive, like the cell it comes from.
pub fn excel_serial_to_text(serial: f64) -> Option<String> {
    let instant = excel_serial_to_datetime(serial)?;
    let utc = OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(instant.timestamp_millis()) * 1_000_000,
    )
    .ok()?;
    let text = if utc.time() == time::Time::MIDNIGHT {
        utc.format(format_description!("[year]-[month]-[day]"))
    } else if utc.millisecond() == 0 {
        utc.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"))
    } else {
        utc.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
        ))
    };
    text.ok()
}

/// Parses the date forms uploads use, as a UTC instant:
/// - RFC 3339 / ISO 8601 with a zone: `2020-08-22T10:00:16Z`, `...+02:00`;
/// - naive date-times (taken as UTC) with `T`, a space or `_` between date and time
///   (`2020-08-22_10:00:16` is what the SDK's fixtures hold), seconds and fractions
///   optional;
/// - a bare date `2020-08-22` (midnight UTC).
///
/// Day-first or month-first forms (`22/08/2020`) are ambiguous and not guessed.
pub fn parse_date_text(text: &str) -> Option<DateTime> {
    let text = text.trim();
    parse_common_shapes(text.as_bytes()).or_else(|| parse_any_shape(text))
}

/// Every form [`parse_date_text`] accepts, through the general parsers.
fn parse_any_shape(text: &str) -> Option<DateTime> {
    let normalised = normalise_separator(text);
    let instant = OffsetDateTime::parse(&normalised, &Rfc3339)
        .ok()
        .or_else(|| parse_naive_date_time(&normalised))
        .or_else(|| {
            Date::parse(text, format_description!("[year]-[month]-[day]"))
                .ok()
                .map(|date| date.midnight().assume_utc())
        })?;
    let millis = instant.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis).ok().map(DateTime::from_millis)
}

/// `YYYY-MM-DD` and `YYYY-MM-DD HH:MM:SS` (separator ` `, `T`, `t` or `_`), the
/// shapes nearly every export uses, read without the general parsers (which made
/// dates the costliest column of a CSV). `None` for anything else, which then goes
/// through the general path; the two agree on every input this accepts.
fn parse_common_shapes(text: &[u8]) -> Option<DateTime> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        text.get(range)?.iter().try_fold(0_u32, |value, byte| {
            byte.is_ascii_digit().then(|| value * 10 + u32::from(byte - b'0'))
        })
    };
    if text.len() != 10 && text.len() != 19 {
        return None;
    }
    if text[4] != b'-' || text[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time_of_day = if text.len() == 19 {
        if !matches!(text[10], b' ' | b'T' | b't' | b'_') || text[13] != b':' || text[16] != b':' {
            return None;
        }
        let [hour, minute, second] =
            [digits(11..13)?, digits(14..16)?, digits(17..19)?].map(|part| part as u8);
        time::Time::from_hms(hour, minute, second).ok()?
    } else {
        time::Time::MIDNIGHT
    };
    let millis = date.with_time(time_of_day).assume_utc().unix_timestamp() * 1000;
    Some(DateTime::from_millis(millis))
}

/// `2020-08-22 10:00:16` and `2020-08-22_10:00:16` become `2020-08-22T10:00:16`.
fn normalise_separator(text: &str) -> String {
    let mut normalised = text.to_owned();
    let separator_at_10 = text.as_bytes().get(10).copied();
    if text.len() > 11 && matches!(separator_at_10, Some(b' ' | b'_' | b't')) {
        // Byte 10 is ASCII, so 10..11 is a character boundary.
        normalised.replace_range(10..11, "T");
    }
    normalised
}

fn parse_naive_date_time(text: &str) -> Option<OffsetDateTime> {
    let with_seconds = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let without_seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    PrimitiveDateTime::parse(text, with_seconds)
        .or_else(|_| PrimitiveDateTime::parse(text, without_seconds))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc3339(instant: DateTime) -> String {
        instant.try_to_rfc3339_string().unwrap()
    }

    #[test]
    fn excel_serials_count_days_from_1899_12_30() {
        assert_eq!(rfc3339(excel_serial_to_datetime(25_569.0).unwrap()), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(excel_serial_to_datetime(44_065.5).unwrap()), "2020-08-22T12:00:00Z");
        assert_eq!(rfc3339(excel_serial_to_datetime(1.0).unwrap()), "1900-01-01T00:00:00Z");
        assert_eq!(rfc3339(excel_serial_to_datetime(61.0).unwrap()), "1900-03-01T00:00:00Z");
    }

    #[test]
    fn excel_time_fractions_round_to_the_millisecond() {
        // 10:00:16 as Excel stores it: slightly less than the exact fraction.
        let serial = 44_065.0 + (10.0 * 3600.0 + 16.0) / 86_400.0 - 1e-10;
        assert_eq!(rfc3339(excel_serial_to_datetime(serial).unwrap()), "2020-08-22T10:00:16Z");
        assert_eq!(excel_serial_to_text(serial).unwrap(), "2020-08-22T10:00:16");
        assert_eq!(excel_serial_to_text(44_065.0).unwrap(), "2020-08-22");
    }

    #[test]
    fn numbers_that_cannot_be_dates_are_refused() {
        for serial in [-1.0, f64::NAN, f64::INFINITY, 3_000_000.0] {
            assert_eq!(excel_serial_to_datetime(serial), None, "{serial}");
        }
    }

    #[test]
    fn the_fast_shapes_agree_with_the_general_parsers() {
        let cases = [
            "2020-08-22",
            "2020-08-22 10:00:16",
            "2020-08-22T23:59:59",
            "2020-08-22t00:00:00",
            "2020-08-22_10:00:16",
            "2020-02-30",
            "2020-13-01",
            "2020-08-22 24:00:00",
            "2020-08-22 10:60:00",
            "2020-08-22 10:00:60",
            "0000-01-01",
            "9999-12-31 23:59:59",
            "2020-08-22x10:00:16",
            "2020/08/22",
            "2020-8-22 1:00:16",
            "+020-08-22",
            "2021-02-29",
            "2024-02-29 12:00:00",
        ];
        for text in cases {
            let general = parse_any_shape(text);
            let fast = parse_common_shapes(text.as_bytes());
            if fast.is_some() {
                assert_eq!(fast, general, "{text}");
            }
            assert_eq!(parse_date_text(text), general, "{text}");
        }
    }

    #[test]
    fn the_textual_forms_of_uploads_parse() {
        let cases = [
            ("2020-08-22T10:00:16Z", "2020-08-22T10:00:16Z"),
            ("2020-08-22T10:00:16+02:00", "2020-08-22T08:00:16Z"),
            ("2020-08-22T10:00:16.250Z", "2020-08-22T10:00:16.25Z"),
            ("2020-08-22T10:00:16", "2020-08-22T10:00:16Z"),
            ("2020-08-22 10:00:16", "2020-08-22T10:00:16Z"),
            ("2020-08-22_10:00:16", "2020-08-22T10:00:16Z"),
            (" 2020-08-22 10:00 ", "2020-08-22T10:00:00Z"),
            ("2020-08-22", "2020-08-22T00:00:00Z"),
        ];
        for (text, expected) in cases {
            let parsed = parse_date_text(text).unwrap_or_else(|| panic!("{text} did not parse"));
            assert_eq!(rfc3339(parsed), expected, "{text}");
        }
    }

    #[test]
    fn ambiguous_or_broken_dates_do_not_parse() {
        for text in
            ["22/08/2020", "08/22/2020", "2020-13-01", "2020-02-30", "yesterday", "", "44065"]
        {
            assert_eq!(parse_date_text(text), None, "{text}");
        }
    }
}
