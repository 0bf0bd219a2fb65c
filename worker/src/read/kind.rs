//! What a file is, judged from its name: the SDK decided from extensions too, and an
//! upload carries nothing more reliable before it is opened.

use std::path::Path;

/// The families of files the worker knows how to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A workbook: .xls .xlsx .xlsm .xlsb .ods.
    Excel,
    Csv,
    /// Plain text: .txt.
    Text,
    Xml,
    /// .zip .tar .tar.gz .tgz .tar.bz2 .tar.xz: unpacked by the worker, opaque to validation.
    Archive,
    Other,
}

/// Suffixes of each kind, lowercase. Multi-part suffixes (.tar.gz) come before the
/// single ones they end with, so that the first match is the most specific.
const SUFFIXES: &[(&str, FileKind)] = &[
    (".tar.gz", FileKind::Archive),
    (".tar.bz2", FileKind::Archive),
    (".tar.xz", FileKind::Archive),
    (".tgz", FileKind::Archive),
    (".tar", FileKind::Archive),
    (".zip", FileKind::Archive),
    (".xlsx", FileKind::Excel),
    (".xlsm", FileKind::Excel),
    (".xlsb", FileKind::Excel),
    (".xls", FileKind::Excel),
    (".ods", FileKind::Excel),
    (".csv", FileKind::Csv),
    (".txt", FileKind::Text),
    (".xml", FileKind::Xml),
];

impl FileKind {
    /// The kind of a file from its name (case-insensitive), e.g. `RVTools.XLSX` → Excel.
    pub fn from_name(name: &str) -> Self {
        let lower = name.to_lowercase();
        SUFFIXES
            .iter()
            .find(|(suffix, _)| lower.ends_with(suffix))
            .map_or(Self::Other, |&(_, kind)| kind)
    }

    /// The kind of the file at `path`, from its file name.
    pub fn from_path(path: &Path) -> Self {
        path.file_name().map_or(Self::Other, |name| Self::from_name(&name.to_string_lossy()))
    }

    /// Whether the kind holds rows and columns (sheets, headers, row counts).
    pub fn is_tabular(self) -> bool {
        matches!(self, Self::Excel | Self::Csv)
    }

    /// The lowercase name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Excel => "excel",
            Self::Csv => "csv",
            Self::Text => "text",
            Self::Xml => "xml",
            Self::Archive => "archive",
            Self::Other => "other",
        }
    }
}

/// The workbook formats, each read by its own calamine reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkbookFormat {
    Xlsx,
    Xlsb,
    Xls,
    Ods,
}

impl WorkbookFormat {
    /// The format named by the file's extension (xlsm is an xlsx with macros).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_lowercase();
        let extension = lower.rsplit_once('.').map(|(_, extension)| extension)?;
        match extension {
            "xlsx" | "xlsm" => Some(Self::Xlsx),
            "xlsb" => Some(Self::Xlsb),
            "xls" => Some(Self::Xls),
            "ods" => Some(Self::Ods),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Xlsb => "xlsb",
            Self::Xls => "xls",
            Self::Ods => "ods",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_extensions_whatever_their_case() {
        for name in ["a.xls", "a.XLSX", "a.xlsm", "b.xlsb", "c.ods"] {
            assert_eq!(FileKind::from_name(name), FileKind::Excel, "{name}");
        }
        assert_eq!(FileKind::from_name("lms.CSV"), FileKind::Csv);
        assert_eq!(FileKind::from_name("notes.txt"), FileKind::Text);
        assert_eq!(FileKind::from_name("data.xml"), FileKind::Xml);
        for name in ["a.zip", "a.tar", "a.tar.gz", "a.TGZ", "a.tar.bz2", "zip.tar.xz"] {
            assert_eq!(FileKind::from_name(name), FileKind::Archive, "{name}");
        }
        for name in ["a.gz", "a.json", "xlsx", "", "a.xlsx.bak"] {
            assert_eq!(FileKind::from_name(name), FileKind::Other, "{name}");
        }
    }

    #[test]
    fn only_workbooks_and_csv_are_tabular() {
        assert!(FileKind::Excel.is_tabular());
        assert!(FileKind::Csv.is_tabular());
        assert!(!FileKind::Archive.is_tabular());
        assert!(!FileKind::Text.is_tabular());
    }

    #[test]
    fn workbook_formats_follow_the_extension() {
        assert_eq!(WorkbookFormat::from_name("RV.XLSM"), Some(WorkbookFormat::Xlsx));
        assert_eq!(WorkbookFormat::from_name("a.xlsb"), Some(WorkbookFormat::Xlsb));
        assert_eq!(WorkbookFormat::from_name("a.xls"), Some(WorkbookFormat::Xls));
        assert_eq!(WorkbookFormat::from_name("a.ods"), Some(WorkbookFormat::Ods));
        assert_eq!(WorkbookFormat::from_name("a.csv"), None);
    }
}
