//! Duration shorthand such as `7d`, `12h`, `30m`, as used by `Topic.spec.retention`.

use std::fmt;

/// A whole number followed by one unit: ms, s, m, h, d or w. Kept in step with
/// [`parse_duration_ms`].
pub const DURATION_PATTERN: &str = r"^[0-9]+(ms|s|m|h|d|w)$";

/// Why a duration string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// The string is empty.
    Empty,
    /// The string does not start with a number, e.g. `d7` or `-1d`.
    MissingNumber(String),
    /// The unit is missing or not one of ms, s, m, h, d, w.
    UnknownUnit(String),
    /// The value does not fit in 64-bit milliseconds.
    TooLarge(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "expected a whole number and a unit (ms, s, m, h, d or w), e.g. 7d";
        match self {
            Self::Empty => write!(f, "empty duration: {FORM}"),
            Self::MissingNumber(s) => {
                write!(f, "duration {s:?} does not start with a number: {FORM}")
            }
            Self::UnknownUnit(s) => write!(f, "duration {s:?} has no known unit: {FORM}"),
            Self::TooLarge(s) => write!(f, "duration {s:?} is too large"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses `7d`, `12h`, `30m`, `45s`, `500ms` or `2w` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    if number.is_empty() {
        return Err(DurationError::MissingNumber(s.to_owned()));
    }
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return Err(DurationError::UnknownUnit(s.to_owned())),
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(|| DurationError::TooLarge(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("12h"), Ok(43_200_000));
        assert_eq!(parse_duration_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_duration_ms("45s"), Ok(45_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("2w"), Ok(1_209_600_000));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
    }

    #[test]
    fn bad_strings_say_what_is_wrong() {
        assert_eq!(parse_duration_ms(""), Err(DurationError::Empty));
        assert_eq!(parse_duration_ms("d7"), Err(DurationError::MissingNumber("d7".into())));
        assert_eq!(parse_duration_ms("-1d"), Err(DurationError::MissingNumber("-1d".into())));
        assert_eq!(parse_duration_ms("7"), Err(DurationError::UnknownUnit("7".into())));
        assert_eq!(parse_duration_ms("7 d"), Err(DurationError::UnknownUnit("7 d".into())));
        assert_eq!(parse_duration_ms("1y"), Err(DurationError::UnknownUnit("1y".into())));
        assert_eq!(parse_duration_ms("1h30m"), Err(DurationError::UnknownUnit("1h30m".into())));
        assert_eq!(
            parse_duration_ms("99999999999999999999d"),
            Err(DurationError::TooLarge("99999999999999999999d".into()))
        );
        assert_eq!(
            parse_duration_ms("9999999999999999d"),
            Err(DurationError::TooLarge("9999999999999999d".into()))
        );
        let message = parse_duration_ms("1y").unwrap_err().to_string();
        assert!(message.contains("\"1y\"") && message.contains("e.g. 7d"), "{message}");
    }
}
