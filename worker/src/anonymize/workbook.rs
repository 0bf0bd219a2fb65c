//! Workbooks: read with calamine, written as .xlsx with rust_xlsxwriter. Every sheet is
//! copied cell by cell at its place, with its type: numbers, text, booleans, dates and
//! durations (given a date format, so readers still see dates), error values (as the
//! error constant's formula, e.g. `=#N/A`, with that cached result). In each sheet the
//! values of the named columns (exact match of a header in the sheet's first row) become
//! the tokens of their text; empty cells stay empty.
//!
//! What is not copied: formatting, column widths, formulas (their cached values are),
//! charts, comments. Integers of .xls/.ods files become numbers (xlsx has no integer
//! type); ISO dates of .ods files become text. A .xlsx file in which no sheet has a
//! named column is copied byte for byte instead, formatting and all.

use std::path::Path;

use calamine::{Data, ExcelDateTime, ExcelDateTimeType, Reader, open_workbook_auto};
use rust_xlsxwriter::{Format, Formula, Workbook, Worksheet, XlsxError};

use super::error::FileError;
use super::text;
use super::token::Tokenizer;

/// Days between the 1904 and the 1900 date systems' epochs: written dates use 1900.
const DAYS_1900_TO_1904: f64 = 1462.0;

/// Anonymizes the named columns of every sheet into `output` (an .xlsx file).
/// Returns whether any sheet had a named column.
pub fn anonymize(
    input: &Path,
    output: &Path,
    columns: &[String],
    tokenizer: &mut Tokenizer,
) -> Result<bool, FileError> {
    let read_error =
        |source| FileError::Workbook { path: input.to_owned(), source: Box::new(source) };
    let write_error =
        |source| FileError::WorkbookWrite { path: output.to_owned(), source: Box::new(source) };
    // calamine is trusted with no file the readers' guards have not passed.
    crate::read::check_before_calamine(input).map_err(|source| FileError::WorkbookRefused {
        path: input.to_owned(),
        source: Box::new(source),
    })?;
    let mut reader = open_workbook_auto(input).map_err(read_error)?;
    let mut workbook = Workbook::new();
    let formats = Formats::new();
    let mut any_named = false;
    for name in reader.sheet_names() {
        let range = reader.worksheet_range(&name).map_err(read_error)?;
        // Rows go out in order, so the sheet can be flushed row by row to disk.
        let sheet = workbook.add_worksheet_with_constant_memory().map_err(write_error)?;
        sheet.set_name(&name).map_err(write_error)?;
        let Some((first_row, first_col)) = range.start() else { continue };
        let mut rows = range.rows();
        let Some(header) = rows.next() else { continue };
        let named: Vec<bool> =
            header.iter().map(|cell| columns.iter().any(|c| *c == text_of(cell))).collect();
        any_named |= named.contains(&true);
        for (offset, cell) in header.iter().enumerate() {
            write_cell(sheet, first_row, first_col, offset, cell, &formats).map_err(write_error)?;
        }
        for (row_offset, row) in rows.enumerate() {
            let row_number = first_row + 1 + row_offset as u32;
            for (offset, cell) in row.iter().enumerate() {
                let is_named = named.get(offset).copied().unwrap_or(false);
                if is_named && !matches!(cell, Data::Empty) {
                    let token = tokenizer
                        .token(text_of(cell).as_bytes())
                        .map_err(|source| FileError::Token { path: input.to_owned(), source })?;
                    let column = column_number(first_col, offset).map_err(write_error)?;
                    sheet.write_string(row_number, column, token).map_err(write_error)?;
                } else {
                    write_cell(sheet, row_number, first_col, offset, cell, &formats)
                        .map_err(write_error)?;
                }
            }
        }
    }
    let is_xlsx = input.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if !any_named && is_xlsx {
        text::copy(input, output)?;
        return Ok(false);
    }
    workbook.save(output).map_err(write_error)?;
    Ok(any_named)
}

/// The text a user sees in a cell: what headers are matched on and tokens are made of.
/// Numbers print as Rust does (`41`, `0.5`), booleans as Python did (`True`), dates as
/// their serial number.
fn text_of(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => text.clone(),
        Data::Int(value) => value.to_string(),
        Data::Float(value) => value.to_string(),
        Data::Bool(value) => if *value { "True" } else { "False" }.to_owned(),
        Data::DateTime(value) => value.as_f64().to_string(),
        Data::Error(error) => error.to_string(),
    }
}

/// The number formats written cells need to read back as dates and durations.
struct Formats {
    datetime: Format,
    duration: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            duration: Format::new().set_num_format("[h]:mm:ss"),
        }
    }
}

fn column_number(first_col: u32, offset: usize) -> Result<u16, XlsxError> {
    u16::try_from(first_col as usize + offset).map_err(|_| XlsxError::RowColumnLimitError)
}

fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    first_col: u32,
    offset: usize,
    cell: &Data,
    formats: &Formats,
) -> Result<(), XlsxError> {
    let col = column_number(first_col, offset)?;
    match cell {
        Data::Empty => return Ok(()),
        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => {
            sheet.write_string(row, col, text)?
        }
        // xlsx stores every number as a double.
        Data::Int(value) => sheet.write_number(row, col, *value as f64)?,
        Data::Float(value) => sheet.write_number(row, col, *value)?,
        Data::Bool(value) => sheet.write_boolean(row, col, *value)?,
        Data::DateTime(value) if value.is_duration() => {
            sheet.write_number_with_format(row, col, value.as_f64(), &formats.duration)?
        }
        Data::DateTime(value) => {
            sheet.write_number_with_format(row, col, serial_1900(value), &formats.datetime)?
        }
        Data::Error(calamine::CellErrorType::GettingData) => {
            sheet.write_string(row, col, "#GETTING_DATA")?
        }
        Data::Error(error) => {
            let error = error.to_string();
            sheet.write_formula(row, col, Formula::new(format!("={error}")).set_result(error))?
        }
    };
    Ok(())
}

/// The date's serial number in the 1900 date system. calamine keeps whether the
/// workbook counted from 1904 private; equality with a rebuilt value tells it.
fn serial_1900(value: &ExcelDateTime) -> f64 {
    let serial = value.as_f64();
    if *value == ExcelDateTime::new(serial, ExcelDateTimeType::DateTime, true) {
        serial + DAYS_1900_TO_1904
    } else {
        serial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_text_is_what_a_user_sees() {
        assert_eq!(text_of(&Data::Float(41.0)), "41");
        assert_eq!(text_of(&Data::Float(0.5)), "0.5");
        assert_eq!(text_of(&Data::Int(7)), "7");
        assert_eq!(text_of(&Data::Bool(true)), "True");
        assert_eq!(text_of(&Data::String("VM".into())), "VM");
        assert_eq!(text_of(&Data::Error(calamine::CellErrorType::NA)), "#N/A");
    }

    #[test]
    fn dates_of_1904_workbooks_move_to_the_1900_system() {
        let date_1904 = ExcelDateTime::new(100.0, ExcelDateTimeType::DateTime, true);
        let date_1900 = ExcelDateTime::new(100.0, ExcelDateTimeType::DateTime, false);
        assert_eq!(serial_1900(&date_1904), 1562.0);
        assert_eq!(serial_1900(&date_1900), 100.0);
    }

    fn tokenizer() -> Tokenizer {
        Tokenizer::new(&crate::anonymize::key::Keys::from_passphrase(b"wb").unwrap()).unwrap()
    }

    /// A sheet starting at C2 with every cell type, a second sheet without the column.
    fn sample(path: &Path) {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet().set_name("data").unwrap();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        sheet.write_string(1, 2, "VM").unwrap();
        sheet.write_string(1, 3, "Other").unwrap();
        sheet.write_string(2, 2, "vm-1").unwrap();
        sheet.write_number_with_format(2, 3, 45000.25, &date).unwrap();
        sheet.write_number(3, 2, 42.0).unwrap();
        sheet.write_boolean(3, 3, true).unwrap();
        sheet.write_formula(4, 3, Formula::new("=#N/A").set_result("#N/A")).unwrap();
        sheet.write_number_with_format(5, 3, 1.5, &Format::new().set_num_format("[h]:mm")).unwrap();
        let other = workbook.add_worksheet().set_name("other").unwrap();
        other.write_string(0, 0, "vm-1").unwrap();
        workbook.save(path).unwrap();
    }

    fn read(path: &Path) -> Vec<(String, calamine::Range<Data>)> {
        let mut workbook = open_workbook_auto(path).unwrap();
        let names = workbook.sheet_names();
        names.into_iter().map(|n| (n.clone(), workbook.worksheet_range(&n).unwrap())).collect()
    }

    #[test]
    fn every_cell_keeps_its_place_and_type_and_the_column_becomes_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.xlsx"), dir.path().join("out.xlsx"));
        sample(&input);
        let mut tokenizer = tokenizer();
        assert!(anonymize(&input, &output, &["VM".to_owned()], &mut tokenizer).unwrap());
        let (before, after) = (read(&input), read(&output));
        assert_eq!(before.len(), after.len());
        let (data_in, data_out) = (&before[0].1, &after[0].1);
        assert_eq!(data_out.start(), Some((1, 2)));
        assert_eq!(data_in.get_size(), data_out.get_size());
        assert!(matches!(data_in.get((1, 1)), Some(Data::DateTime(_))), "the sample has a date");
        assert!(matches!(data_in.get((3, 1)), Some(Data::Error(_))), "and an error value");
        assert!(matches!(data_in.get((4, 1)), Some(Data::DateTime(d)) if d.is_duration()));
        for (row, (cells_in, cells_out)) in data_in.rows().zip(data_out.rows()).enumerate() {
            for (col, (cell_in, cell_out)) in cells_in.iter().zip(cells_out).enumerate() {
                if row > 0 && col == 0 && *cell_in != Data::Empty {
                    let token = tokenizer.token(text_of(cell_in).as_bytes()).unwrap();
                    assert_eq!(*cell_out, Data::String(token));
                } else {
                    assert_eq!(cell_in, cell_out, "row {row} col {col}");
                }
            }
        }
        assert_eq!(before[1], after[1], "a sheet without the column is copied");
    }

    #[test]
    fn an_xlsx_without_the_column_is_copied_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.xlsx"), dir.path().join("out.xlsx"));
        sample(&input);
        assert!(!anonymize(&input, &output, &["Host".to_owned()], &mut tokenizer()).unwrap());
        assert_eq!(std::fs::read(&input).unwrap(), std::fs::read(&output).unwrap());
    }

    #[test]
    fn a_file_that_is_not_a_workbook_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("fake.xlsx");
        std::fs::write(&input, "not a zip").unwrap();
        let error =
            anonymize(&input, &dir.path().join("o.xlsx"), &[], &mut tokenizer()).unwrap_err();
        assert_eq!(error.reason(), "NotAWorkbook", "refused by the readers before calamine");
        assert!(error.to_string().contains("fake.xlsx"));
    }
}
