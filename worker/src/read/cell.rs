/// One value of a row, as read from a workbook or a CSV file. CSV yields `Text` (or
/// `Empty`) only; workbooks keep their cell types so that mapping can convert without
/// re-parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An Excel date-time serial number (days since 1899-12-30, fraction = time of day).
    ExcelDateTime(f64),
    /// An ISO 8601 date, time or date-time as the file wrote it (ODS, some xlsx).
    IsoDateTime(String),
    /// A cell holding a spreadsheet error such as `#DIV/0!`.
    Error(String),
}

impl Cell {
    /// The text a user sees for this cell (what header matching and text mappings use).
    pub fn to_text(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Text(text) | Self::IsoDateTime(text) | Self::Error(text) => text.clone(),
            Self::Int(value) => value.to_string(),
            Self::Float(value) => value.to_string(),
            Self::Bool(value) => if *value { "True" } else { "False" }.to_owned(),
            Self::ExcelDateTime(value) => value.to_string(),
        }
    }

    /// Bytes of text the cell holds (what a row's size is counted in).
    pub(crate) fn text_bytes(&self) -> usize {
        match self {
            Self::Text(text) | Self::IsoDateTime(text) | Self::Error(text) => text.len(),
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Text(text) => text.is_empty(),
            _ => false,
        }
    }
}
