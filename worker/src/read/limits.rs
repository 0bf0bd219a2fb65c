//! Bounds on what reading one file may cost, whatever the file claims. Each is far above
//! what a real upload needs (Excel's own limits are quoted where they apply) and far
//! below what would exhaust a worker: a crafted file is refused with a typed error
//! ([`super::ReadError::TooLarge`]) instead of being allocated for.

/// Decompressed bytes of one zip part (a sheet, the shared strings, the styles): a bound
/// on time, since parts are streamed.
pub(crate) const MAX_PART_BYTES: u64 = 2 << 30;
/// Decompressed bytes of a package part other than a sheet or the shared strings (the
/// relationships, the workbook part, the styles): their readers hold what they list
/// (calamine too), and Excel writes them in kilobytes.
pub(crate) const MAX_PACKAGE_PART_BYTES: u64 = 64 << 20;
/// Decompressed bytes of the shared-string table, which calamine holds whole.
pub(crate) const MAX_SHARED_STRINGS_BYTES: u64 = 256 << 20;
/// Distinct shared strings (calamine holds each, 24 bytes plus its text).
pub(crate) const MAX_SHARED_STRINGS: u64 = 16 << 20;
/// One XML token: a tag with its attributes, a run of text, a comment. An XML parser
/// holds a token whole; Excel's cells hold at most 32,767 characters.
pub(crate) const MAX_XML_TOKEN: usize = 8 << 20;
/// Cells in one row: Excel's 16,384 columns (XFD). More cell elements in one row only
/// repeat columns.
pub(crate) const MAX_ROW_CELLS: usize = 16_384;
/// Bytes of text in one row, its cells together (shared strings resolved).
pub(crate) const MAX_ROW_BYTES: usize = 64 << 20;
/// Characters of one cell's text (ods spaces expanded, rich-text runs joined).
pub(crate) const MAX_CELL_BYTES: u64 = 8 << 20;
/// Entries of a workbook's zip package; Excel writes a few dozen.
pub(crate) const MAX_PACKAGE_ENTRIES: u64 = 10_000;
/// Bytes of one CSV line (between two line feeds): the csv parser holds a record and an
/// offset per field, so a line of commas costs nine times its size.
pub(crate) const MAX_CSV_LINE_BYTES: u64 = 8 << 20;

/// The words every limit error carries, so that an error that went through a parser's
/// message (quick-xml keeps the reader's `io::Error` as text) is still recognised as a
/// limit and not as a broken file.
pub(crate) const LIMIT_MARK: &str = "over the worker's limit";
