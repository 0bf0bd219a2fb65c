//! Converting one cell to the type its mapping asks for. A value that does not convert
//! is kept as it was (never dropped) and reported, so that the data survives and the
//! history can say which rows need a look.

use licenseware_crds::uploader::processing::MappingType;
use mongodb::bson::Bson;

use super::dates::{excel_serial_to_datetime, excel_serial_to_text, parse_date_text};
use crate::read::Cell;

/// 2^53: beyond it an f64 no longer holds every integer, so `as i64` would invent digits.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A converted cell: the value to store, and whether it is the converted value or the
/// raw value kept because conversion failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Converted {
    Value(Bson),
    /// The cell did not convert; this is its raw value (text as written, numbers and
    /// booleans as their BSON values).
    Raw(Bson),
}

impl Converted {
    pub fn into_bson(self) -> Bson {
        match self {
            Self::Value(value) | Self::Raw(value) => value,
        }
    }
}

/// Converts `cell` to `target`. Empty cells (and text of only whitespace) are `null`
/// whatever the type; spreadsheet error cells (`#N/A`) never convert.
pub fn convert_cell(cell: &Cell, target: MappingType) -> Converted {
    if is_blank(cell) {
        return Converted::Value(Bson::Null);
    }
    let converted = match target {
        MappingType::String => to_string(cell).map(Bson::String),
        MappingType::Number => to_number(cell).map(Bson::Double),
        MappingType::Integer => to_integer(cell).map(Bson::Int64),
        MappingType::Bool => to_bool(cell).map(Bson::Boolean),
        MappingType::Date => to_date(cell).map(Bson::DateTime),
    };
    converted.map_or_else(|| Converted::Raw(raw_value(cell)), Converted::Value)
}

/// What [`convert_owned_cell`] made of a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedConversion {
    Value(Bson),
    /// Did not convert: the raw value, and the value as the file shows it.
    Raw {
        value: Bson,
        text: String,
    },
}

/// [`convert_cell`] for a cell the caller gives away: a text cell that needs no
/// trimming moves into a `string` value instead of being copied.
pub fn convert_owned_cell(cell: Cell, target: MappingType) -> OwnedConversion {
    match (cell, target) {
        (Cell::Text(text), MappingType::String) if !is_padded(&text) => {
            OwnedConversion::Value(Bson::String(text))
        }
        (cell, target) => match convert_cell(&cell, target) {
            Converted::Value(value) => OwnedConversion::Value(value),
            Converted::Raw(value) => OwnedConversion::Raw { value, text: cell.to_text() },
        },
    }
}

/// Empty, or with whitespace to trim at either end.
fn is_padded(text: &str) -> bool {
    text.trim().len() != text.len() || text.is_empty()
}

/// Blank for mapping: no value, or only whitespace (CSV cells are untrimmed).
pub(super) fn is_blank(cell: &Cell) -> bool {
    match cell {
        Cell::Empty => true,
        Cell::Text(text) => text.trim().is_empty(),
        _ => false,
    }
}

fn raw_value(cell: &Cell) -> Bson {
    match cell {
        Cell::Empty => Bson::Null,
        Cell::Text(text) | Cell::IsoDateTime(text) | Cell::Error(text) => {
            Bson::String(text.clone())
        }
        Cell::Int(value) => Bson::Int64(*value),
        Cell::Float(value) | Cell::ExcelDateTime(value) => Bson::Double(*value),
        Cell::Bool(value) => Bson::Boolean(*value),
    }
}

fn to_string(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Text(text) | Cell::IsoDateTime(text) => Some(text.trim().to_owned()),
        Cell::Int(value) => Some(value.to_string()),
        // Rust prints 42.0 as "42" and 0.1 as "0.1": what the user typed, not "42.0".
        Cell::Float(value) => Some(value.to_string()),
        Cell::Bool(value) => Some(value.to_string()),
        Cell::ExcelDateTime(serial) => {
            Some(excel_serial_to_text(*serial).unwrap_or_else(|| serial.to_string()))
        }
        Cell::Error(_) | Cell::Empty => None,
    }
}

fn to_number(cell: &Cell) -> Option<f64> {
    match cell {
        // i64 → f64 may round beyond 2^53, the accepted cost of a `number` mapping.
        Cell::Int(value) => Some(*value as f64),
        Cell::Float(value) | Cell::ExcelDateTime(value) => Some(*value),
        Cell::Text(text) => parse_number_text(text),
        _ => None,
    }
}

fn to_integer(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Int(value) => Some(*value),
        Cell::Float(value) | Cell::ExcelDateTime(value) => whole_f64_to_i64(*value),
        Cell::Text(text) => {
            let text = text.trim();
            text.parse::<i64>().ok().or_else(|| parse_number_text(text).and_then(whole_f64_to_i64))
        }
        _ => None,
    }
}

/// 4.0 → 4; 4.5 (a fraction) and numbers beyond f64's exact integers → not an integer.
fn whole_f64_to_i64(value: f64) -> Option<i64> {
    if value.is_finite() && value.fract() == 0.0 && value.abs() <= EXACT_INTEGER_LIMIT {
        // Whole and within ±2^53: the cast is exact.
        Some(value as i64)
    } else {
        None
    }
}

/// A number as text: Rust's float syntax (`42`, `-1.5`, `1e3`), optionally with commas
/// as thousands separators in groups of three (`1,234,567.5`). A comma in any other
/// place (`1,5`, a decimal comma) is ambiguous between locales, so it is not guessed.
/// `inf` and `NaN` are not numbers a file means.
fn parse_number_text(text: &str) -> Option<f64> {
    let text = text.trim();
    let plain: String = if text.contains(',') {
        if !has_thousands_groups(text) {
            return None;
        }
        text.chars().filter(|c| *c != ',').collect()
    } else {
        text.to_owned()
    };
    plain.parse::<f64>().ok().filter(|value| value.is_finite())
}

fn has_thousands_groups(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let integer_part = unsigned.split(['.', 'e', 'E']).next().unwrap_or_default();
    let mut groups = integer_part.split(',');
    let leading_ok = groups.next().is_some_and(|first| {
        (1..=3).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_digit())
    });
    leading_ok
        && groups.all(|group| group.len() == 3 && group.bytes().all(|b| b.is_ascii_digit()))
        && !unsigned[integer_part.len()..].contains(',')
}

fn to_bool(cell: &Cell) -> Option<bool> {
    match cell {
        Cell::Bool(value) => Some(*value),
        Cell::Int(1) => Some(true),
        Cell::Int(0) => Some(false),
        Cell::Float(value) if *value == 1.0 => Some(true),
        Cell::Float(value) if *value == 0.0 => Some(false),
        Cell::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Some(true),
            "false" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Workbook numbers in a date column are Excel serials (a date cell without a date
/// format). Numeric text is not: in a CSV `2020` is more likely a year than a serial.
fn to_date(cell: &Cell) -> Option<mongodb::bson::DateTime> {
    match cell {
        Cell::ExcelDateTime(serial) | Cell::Float(serial) => excel_serial_to_datetime(*serial),
        Cell::Int(serial) => excel_serial_to_datetime(*serial as f64),
        Cell::Text(text) | Cell::IsoDateTime(text) => parse_date_text(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Cell {
        Cell::Text(value.to_owned())
    }

    fn value(cell: Cell, target: MappingType) -> Bson {
        match convert_cell(&cell, target) {
            Converted::Value(value) => value,
            Converted::Raw(raw) => panic!("{cell:?} did not convert to {target:?}: kept {raw}"),
        }
    }

    fn raw(cell: Cell, target: MappingType) -> Bson {
        match convert_cell(&cell, target) {
            Converted::Raw(raw) => raw,
            Converted::Value(value) => panic!("{cell:?} converted to {target:?} as {value}"),
        }
    }

    #[test]
    fn empty_cells_are_null_for_every_type() {
        use MappingType::*;
        for target in [String, Number, Integer, Bool, Date] {
            assert_eq!(value(Cell::Empty, target), Bson::Null);
            assert_eq!(value(text("   "), target), Bson::Null);
        }
    }

    #[test]
    fn strings_are_trimmed_and_whole_floats_lose_their_fraction() {
        use MappingType::String as S;
        assert_eq!(value(text("  vm-01 \t"), S), Bson::String("vm-01".into()));
        assert_eq!(value(Cell::Float(42.0), S), Bson::String("42".into()));
        assert_eq!(value(Cell::Float(0.5), S), Bson::String("0.5".into()));
        assert_eq!(value(Cell::Int(-7), S), Bson::String("-7".into()));
        assert_eq!(value(Cell::Bool(true), S), Bson::String("true".into()));
        assert_eq!(value(Cell::ExcelDateTime(44_065.0), S), Bson::String("2020-08-22".into()));
        assert_eq!(raw(Cell::Error("#N/A".into()), S), Bson::String("#N/A".into()));
    }

    #[test]
    fn numbers_accept_ints_floats_and_numeric_text() {
        use MappingType::Number as N;
        assert_eq!(value(Cell::Int(3), N), Bson::Double(3.0));
        assert_eq!(value(Cell::Float(2.5), N), Bson::Double(2.5));
        assert_eq!(value(text(" -1.5e3 "), N), Bson::Double(-1500.0));
        assert_eq!(value(text("1,234.5"), N), Bson::Double(1234.5));
        assert_eq!(value(text("1,234,567"), N), Bson::Double(1_234_567.0));
        for bad in ["1,5", "12,34", ",123", "1,234,5", "abc", "NaN", "inf", "1.2.3"] {
            assert_eq!(raw(text(bad), N), Bson::String(bad.into()), "{bad}");
        }
        assert_eq!(raw(Cell::Bool(true), N), Bson::Boolean(true));
    }

    #[test]
    fn integers_accept_whole_values_only() {
        use MappingType::Integer as I;
        assert_eq!(value(Cell::Float(4.0), I), Bson::Int64(4));
        assert_eq!(value(text("4"), I), Bson::Int64(4));
        assert_eq!(value(text("4.0"), I), Bson::Int64(4));
        assert_eq!(value(text("-1,024"), I), Bson::Int64(-1024));
        assert_eq!(value(text("9223372036854775807"), I), Bson::Int64(i64::MAX));
        assert_eq!(raw(Cell::Float(4.5), I), Bson::Double(4.5));
        assert_eq!(raw(text("4.5"), I), Bson::String("4.5".into()));
        assert_eq!(raw(Cell::Float(1e300), I), Bson::Double(1e300));
    }

    #[test]
    fn booleans_accept_the_usual_words_in_any_case() {
        use MappingType::Bool as B;
        for yes in ["true", "TRUE", "Yes", "y", "1"] {
            assert_eq!(value(text(yes), B), Bson::Boolean(true), "{yes}");
        }
        for no in ["false", "No", "N", "0"] {
            assert_eq!(value(text(no), B), Bson::Boolean(false), "{no}");
        }
        assert_eq!(value(Cell::Bool(false), B), Bson::Boolean(false));
        assert_eq!(value(Cell::Int(1), B), Bson::Boolean(true));
        assert_eq!(raw(text("maybe"), B), Bson::String("maybe".into()));
        assert_eq!(raw(Cell::Int(2), B), Bson::Int64(2));
    }

    #[test]
    fn dates_come_from_serials_and_text() {
        use MappingType::Date as D;
        let expected = Bson::DateTime(mongodb::bson::DateTime::from_millis(1_598_090_416_000));
        assert_eq!(value(text("2020-08-22_10:00:16"), D), expected);
        assert_eq!(value(Cell::IsoDateTime("2020-08-22T10:00:16".into()), D), expected);
        let serial = 44_065.0 + (10.0 * 3600.0 + 16.0) / 86_400.0;
        assert_eq!(value(Cell::ExcelDateTime(serial), D), expected);
        assert_eq!(raw(text("44065"), D), Bson::String("44065".into()));
        assert_eq!(raw(Cell::Bool(true), D), Bson::Boolean(true));
    }
}
