//! Checks on rows and columns: requiredSheets, requiredColumns and minRowsNumber, read
//! from the header rows and at most `minRowsNumber` rows of each selected sheet.

use std::path::Path;

use super::required_items::{alternatives, missing_items};
use super::validator::Validator;
use crate::read::{FileKind, WorkbookHead, open_csv};

/// The entry of a file whose type holds no rows while row rules are set (the SDK
/// answered 500 to any file other than csv and excel, divergence 5).
pub const NOT_TABULAR: &str =
    "File is not a csv or excel file: its sheets, columns and rows cannot be checked";

/// The rules of this module that ask something.
struct TabularRules<'a> {
    sheets: Option<&'a [Vec<String>]>,
    columns: Option<&'a [Vec<String>]>,
    min_rows: usize,
    header_starts_at: u64,
}

impl Validator<'_> {
    pub(super) fn tabular_failures(&self, path: &Path, filename: &str) -> Vec<String> {
        let params = self.params;
        let rules = TabularRules {
            sheets: asked(params.required_sheets.as_deref()),
            columns: asked(params.required_columns.as_deref()),
            min_rows: usize::try_from(params.min_rows_number).unwrap_or(0),
            header_starts_at: u64::try_from(params.header_starts_at).unwrap_or(0),
        };
        let rows_asked = rules.columns.is_some() || rules.min_rows > 0;
        match reading_kind(filename, params.required_input_type.as_deref()) {
            // Archives are opaque here: the worker validates their members once unpacked.
            FileKind::Archive => Vec::new(),
            // The SDK checked sheets on workbooks only.
            FileKind::Csv if rows_asked => csv_failures(path, &rules),
            FileKind::Excel if rows_asked || rules.sheets.is_some() => {
                excel_failures(path, filename, &rules)
            }
            FileKind::Csv | FileKind::Excel => Vec::new(),
            _ if rows_asked || rules.sheets.is_some() => vec![NOT_TABULAR.to_owned()],
            _ => Vec::new(),
        }
    }
}

/// A rule with at least one non-empty alternative; `None` when it asks nothing.
fn asked(rule: Option<&[Vec<String>]>) -> Option<&[Vec<String>]> {
    rule.filter(|required| alternatives(required).next().is_some())
}

/// How to read the file: its extension's kind, or else the kind requiredInputType
/// names (a `.dat` file required to be csv is read as csv).
fn reading_kind(filename: &str, required_input_type: Option<&str>) -> FileKind {
    let kind = FileKind::from_name(filename);
    if kind.is_tabular() || kind == FileKind::Archive {
        return kind;
    }
    match required_input_type {
        Some("excel") => FileKind::Excel,
        Some("csv") => FileKind::Csv,
        Some(extension) if FileKind::from_name(extension).is_tabular() => {
            FileKind::from_name(extension)
        }
        _ => kind,
    }
}

fn csv_failures(path: &Path, rules: &TabularRules<'_>) -> Vec<String> {
    let mut table = match open_csv(path, rules.header_starts_at) {
        Ok(table) => table,
        Err(error) => return vec![error.to_string()],
    };
    let mut failures = Vec::new();
    if let Some(required) = rules.columns {
        failures.extend(missing_items(table.header(), required, "columns"));
    }
    if rules.min_rows > 0 {
        match table.count_rows(rules.min_rows) {
            Ok(count) if count < rules.min_rows => failures
                .push(format!("File doesn't have the minimum number of rows: {}", rules.min_rows)),
            Ok(_) => {}
            Err(error) => failures.push(error.to_string()),
        }
    }
    failures
}

fn excel_failures(path: &Path, filename: &str, rules: &TabularRules<'_>) -> Vec<String> {
    let mut book = match WorkbookHead::open_named(path, filename) {
        Ok(book) => book,
        Err(error) => return vec![error.to_string()],
    };
    let sheet_names = book.sheet_names();
    let mut headers = Vec::new();
    let mut short_sheet = None;
    let mut read_error = None;
    if rules.columns.is_some() || rules.min_rows > 0 {
        for sheet in select_sheets(&sheet_names, rules.sheets) {
            // Only the first short sheet is reported, as the SDK stopped there, so later
            // sheets are not counted.
            let rows_wanted = if short_sheet.is_none() { rules.min_rows } else { 0 };
            match book.sheet_head(&sheet, rules.header_starts_at, rows_wanted) {
                Ok(head) => {
                    headers.extend(head.header);
                    if head.rows < rows_wanted {
                        short_sheet = Some(sheet);
                    }
                }
                Err(error) => {
                    read_error = Some(error);
                    break;
                }
            }
        }
    }
    let mut failures = Vec::new();
    // Columns of an unreadable sheet are unknown: the read error says why instead.
    if let (Some(required), None) = (rules.columns, &read_error) {
        failures.extend(missing_items(&headers, required, "columns"));
    }
    if let Some(required) = rules.sheets {
        failures.extend(missing_items(&sheet_names, required, "sheets"));
    }
    if let Some(sheet) = short_sheet {
        failures.push(format!(
            "Sheet {sheet} doesn't have the minimum number of rows: {}",
            rules.min_rows
        ));
    }
    failures.extend(read_error.map(|error| error.to_string()));
    failures
}

/// The sheets whose headers and rows are checked: the only sheet of a one-sheet
/// workbook; else the first alternative of requiredSheets that is fully present; else
/// the required sheets that exist; all sheets when requiredSheets is not set.
pub fn select_sheets(sheet_names: &[String], required: Option<&[Vec<String>]>) -> Vec<String> {
    let Some(required) = required.filter(|_| sheet_names.len() != 1) else {
        return sheet_names.to_vec();
    };
    let exists = |sheet: &&String| sheet_names.contains(sheet);
    let chosen: Vec<&String> =
        match alternatives(required).find(|group| group.iter().all(|s| exists(&s))) {
            Some(group) => group.iter().collect(),
            None => required.iter().flatten().filter(exists).collect(),
        };
    let mut selected: Vec<String> = Vec::new();
    for sheet in chosen {
        if !selected.contains(sheet) {
            selected.push(sheet.clone());
        }
    }
    selected
}
