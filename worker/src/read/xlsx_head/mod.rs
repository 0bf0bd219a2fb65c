//! A bounded xlsx reader for validation: sheet names, a sheet's header and at most the
//! rows a rule asks for, at a cost that does not grow with the file. calamine loads the
//! whole shared-string table when it opens a workbook (memory and time in proportion to
//! the distinct strings of every sheet); this reader streams the sheet's XML, stops
//! after the rows it needs, and reads the string table only up to the largest index
//! those rows use.
//!
//! Texts are calamine's (same XML handling, copied in `xml.rs`), so that validation
//! and processing see the same header. Not read: styles (a date is a number styled as a
//! date and validation only sees its text, which is the number's), formulas (their
//! cached value is the value), the string table past the last needed index. A broken
//! part that calamine would refuse at open (styles, the end of the string table) is
//! therefore not noticed here; processing, which opens the workbook with calamine,
//! reports it.

mod cells;
pub(super) mod parts;
mod rows;
mod strings;
pub(super) mod xml;

use std::path::{Path, PathBuf};

use zip::ZipArchive;

use super::ReadError;
use super::xlsx_guard::{check_shared_strings, limits_only};
use cells::SheetCells;
use parts::{Package, open_package};
pub use rows::SheetHead;
use strings::SharedStrings;
use xml::FileReader;

/// An xlsx (or xlsm) opened for validation.
pub struct XlsxHead {
    zip: ZipArchive<FileReader>,
    package: Package,
    strings: SharedStrings,
}

impl std::fmt::Debug for XlsxHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XlsxHead").field("sheets", &self.package.sheets).finish_non_exhaustive()
    }
}

impl XlsxHead {
    /// Opens the xlsx at `path`: its package and workbook parts, not its sheets.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        // The same refusal of an absurd declared string count as when calamine opens it,
        // so that validation does not accept what processing will refuse.
        let mut zip = open_package(path)?;
        let package = Package::read(&mut zip)?;
        limits_only(check_shared_strings(&mut zip, &package, false))?;
        let table = format!("{}sharedStrings.xml", package.xl_path);
        let entry = package.entries.get(&table.to_ascii_lowercase()).cloned();
        let strings = SharedStrings::new(PathBuf::from(path), entry);
        Ok(Self { zip, package, strings })
    }

    /// The sheet names, in workbook order.
    pub fn sheet_names(&self) -> Vec<String> {
        self.package.sheets.iter().map(|(name, _)| name.clone()).collect()
    }

    /// The header of `sheet` (the first non-blank row at or after the 0-based row
    /// `header_starts_at`) and how many data rows follow it, counting no further than
    /// `rows_wanted`.
    pub fn sheet_head(
        &mut self,
        sheet: &str,
        header_starts_at: u64,
        rows_wanted: usize,
    ) -> Result<SheetHead, ReadError> {
        let not_found = || ReadError::SheetNotFound { sheet: sheet.to_owned() };
        let (_, part) =
            self.package.sheets.iter().find(|(name, _)| name == sheet).ok_or_else(not_found)?;
        let missing =
            || ReadError::workbook(format!("sheet {sheet:?}: its part {part} is missing"));
        let xml = self.package.open(&mut self.zip, part)?.ok_or_else(missing)?;
        let mut cells = SheetCells::start(xml, part)?;
        rows::sheet_head(&mut cells, &mut self.strings, header_starts_at, rows_wanted)
    }
}

#[cfg(test)]
mod tests;
