//! Which part of a file a table reads: a sheet of a workbook, or the whole CSV or text
//! file.

use licenseware_crds::uploader::processing::TableMapping;

/// Where a table's rows come from in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// This sheet of the workbook.
    Sheet(String),
    /// The whole file (CSV or text: a single table).
    WholeFile,
}

/// Why a table has nothing to read in a file. The table is skipped for that file, the
/// reason goes to the history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("none of the sheets {wanted:?} is in the workbook (it has {available:?})")]
    SheetNotFound { wanted: Vec<String>, available: Vec<String> },
    #[error("the table reads the sheets {wanted:?}, and this file is not a workbook")]
    NotAWorkbook { wanted: Vec<String> },
    #[error("the workbook has no sheets")]
    EmptyWorkbook,
}

impl SelectionError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SheetNotFound { .. } => "SheetNotFound",
            Self::NotAWorkbook { .. } => "NotAWorkbook",
            Self::EmptyWorkbook => "EmptyWorkbook",
        }
    }
}

/// Picks the table's source in a file. `sheet_names` are the workbook's sheets in
/// workbook order, or `None` for a CSV or text file.
///
/// - `sheets` listed, workbook: the first listed sheet the workbook has (names are
///   case-sensitive, like the SDK's sheet checks).
/// - `sheets` listed, not a workbook: skipped. Mapping the whole CSV instead would pour
///   the same rows into every table of a multi-sheet mapping.
/// - no `sheets`, workbook: its first sheet (what pandas' `read_excel` reads by default).
/// - no `sheets`, not a workbook: the whole file.
pub fn select_table(
    table: &TableMapping,
    sheet_names: Option<&[String]>,
) -> Result<TableSource, SelectionError> {
    match (&table.sheets, sheet_names) {
        (Some(wanted), Some(available)) => wanted
            .iter()
            .find(|sheet| available.contains(sheet))
            .map(|sheet| TableSource::Sheet(sheet.clone()))
            .ok_or_else(|| SelectionError::SheetNotFound {
                wanted: wanted.clone(),
                available: available.to_vec(),
            }),
        (Some(wanted), None) => Err(SelectionError::NotAWorkbook { wanted: wanted.clone() }),
        (None, Some(available)) => available
            .first()
            .map(|sheet| TableSource::Sheet(sheet.clone()))
            .ok_or(SelectionError::EmptyWorkbook),
        (None, None) => Ok(TableSource::WholeFile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sheets: Option<&[&str]>) -> TableMapping {
        let sheets: Option<Vec<String>> =
            sheets.map(|names| names.iter().map(|name| (*name).to_owned()).collect());
        serde_json::from_value(serde_json::json!({
            "sheets": sheets,
            "collection": "vms",
            "columns": [{"from": "VM", "to": "name"}],
        }))
        .unwrap()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn the_first_listed_sheet_present_wins() {
        let workbook = names(&["tabvCPU", "vInfo", "tabvInfo"]);
        let selected = select_table(&table(Some(&["tabvInfo", "vInfo"])), Some(&workbook));
        assert_eq!(selected, Ok(TableSource::Sheet("tabvInfo".into())));
        let selected = select_table(&table(Some(&["missing", "vInfo"])), Some(&workbook));
        assert_eq!(selected, Ok(TableSource::Sheet("vInfo".into())));
    }

    #[test]
    fn sheet_names_are_case_sensitive_and_a_missing_sheet_skips_the_table() {
        let workbook = names(&["TabvInfo"]);
        let error = select_table(&table(Some(&["tabvInfo"])), Some(&workbook)).unwrap_err();
        assert_eq!(error.reason(), "SheetNotFound");
        assert!(error.to_string().contains("TabvInfo"), "{error}");
    }

    #[test]
    fn csv_files_are_one_table_and_only_for_tables_without_sheets() {
        assert_eq!(select_table(&table(None), None), Ok(TableSource::WholeFile));
        let error = select_table(&table(Some(&["tabvInfo"])), None).unwrap_err();
        assert_eq!(error.reason(), "NotAWorkbook");
    }

    #[test]
    fn a_table_without_sheets_reads_the_first_sheet_of_a_workbook() {
        let workbook = names(&["first", "second"]);
        assert_eq!(
            select_table(&table(None), Some(&workbook)),
            Ok(TableSource::Sheet("first".into()))
        );
        assert_eq!(select_table(&table(None), Some(&[])), Err(SelectionError::EmptyWorkbook));
    }
}
