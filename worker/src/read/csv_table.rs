//! CSV files as tables: the delimiter is sniffed on the header line, then the `csv`
//! crate parses the file as a stream, one record in memory at a time, whatever the
//! file's size. A UTF-8 byte order mark is dropped and UTF-16 files (with a byte order
//! mark) are decoded; other bytes that are not UTF-8 become U+FFFD.

use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use super::limits::{LIMIT_MARK, MAX_CSV_LINE_BYTES};
use super::sniff::sniff_delimiter;
use super::table::{RawRow, RowSource, Table, check_row};
use super::{Cell, ReadError};

/// How much of the header line the sniffer sees; a longer line is still parsed whole.
const MAX_SNIFFED_LINE: u64 = 1 << 20;

type Source = Box<dyn Read + Send>;

/// Opens a CSV file: skips `header_starts_at` lines and the blank lines after them; the
/// next line is the header and gives the delimiter.
pub fn open_csv(path: &Path, header_starts_at: u64) -> Result<Table<'static>, ReadError> {
    let file = std::fs::File::open(path)?;
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new().strip_bom(true).build(file);
    let mut reader = BufReader::new(LineBounded { inner: decoded, line: 0, quoted: false });
    for _ in 0..header_starts_at {
        if !skip_line(&mut reader)? {
            break;
        }
    }
    let header_line = loop {
        let line = read_line_capped(&mut reader)?;
        let blank = line.ends_with(b"\n") && line.iter().all(u8::is_ascii_whitespace);
        if !blank {
            break line;
        }
    };
    let delimiter = sniff_delimiter(&String::from_utf8_lossy(&header_line));
    let source: Source = Box::new(Cursor::new(header_line).chain(reader));
    let rows = CsvRows::new(source, delimiter);
    Table::start(RowSource::Csv(rows), 0)
}

/// The delimiter `open_csv` would use for this file.
pub fn csv_delimiter(path: &Path, header_starts_at: u64) -> Result<u8, ReadError> {
    let table = open_csv(path, header_starts_at)?;
    Ok(table.delimiter().unwrap_or(b','))
}

/// Skips one line without keeping it; false at the end of the file.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(any);
        }
        any = true;
        match buffer.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(true);
            }
            None => {
                let length = buffer.len();
                reader.consume(length);
            }
        }
    }
}

/// One line with its `\n`, or its first `MAX_SNIFFED_LINE` bytes when longer.
fn read_line_capped(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.take(MAX_SNIFFED_LINE).read_until(b'\n', &mut line)?;
    Ok(line)
}

/// Refuses a record longer than `MAX_CSV_LINE_BYTES`: the csv parser holds a record
/// whole with an offset per field, so a line of commas costs many times its size before
/// the record can be refused by its cell count. A record ends at a line feed outside
/// quotes: a quoted field may hold line feeds, and must not grow without bound either.
struct LineBounded<R> {
    inner: R,
    /// Bytes since the last line feed outside quotes.
    line: u64,
    /// Inside a quoted field; `""` (an escaped quote) toggles twice, so parity holds.
    quoted: bool,
}

impl<R: Read> Read for LineBounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        let chunk = &buffer[..read];
        let mut start = 0;
        let mut longest = 0;
        for at in memchr::memchr2_iter(b'\n', b'"', chunk) {
            if chunk[at] == b'"' {
                self.quoted = !self.quoted;
            } else if !self.quoted {
                longest = longest.max(self.line + (at - start) as u64);
                self.line = 0;
                start = at + 1;
            }
        }
        self.line += (read - start) as u64;
        if longest.max(self.line) > MAX_CSV_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a record is longer than {MAX_CSV_LINE_BYTES} bytes, {LIMIT_MARK}"),
            ));
        }
        Ok(read)
    }
}

/// The records of a CSV stream, each converted to cells.
pub(crate) struct CsvRows {
    reader: csv::Reader<Source>,
    record: csv::ByteRecord,
    index: u64,
    delimiter: u8,
}

impl CsvRows {
    fn new(source: Source, delimiter: u8) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            // Rows shorter or longer than the header are kept, as pandas kept them.
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(source);
        Self { reader, record: csv::ByteRecord::new(), index: 0, delimiter }
    }

    pub(crate) fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Err(error) => Some(Err(error.into())),
            Ok(true) => {
                let bytes = self.record.as_slice().len();
                if let Err(error) = check_row(self.index, self.record.len(), bytes) {
                    return Some(Err(error));
                }
                let cells = self.record.iter().map(cell_from_field).collect();
                let row = RawRow { index: self.index, cells };
                self.index += 1;
                Some(Ok(row))
            }
        }
    }

    pub(crate) fn delimiter(&self) -> u8 {
        self.delimiter
    }
}

fn cell_from_field(field: &[u8]) -> Cell {
    if field.is_empty() {
        Cell::Empty
    } else {
        // Checking for UTF-8 first is several times faster than the lossy decoder, and
        // nearly every field is valid.
        match std::str::from_utf8(field) {
            Ok(text) => Cell::Text(text.to_owned()),
            Err(_) => Cell::Text(String::from_utf8_lossy(field).into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn csv_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn texts(row: Vec<Cell>) -> Vec<String> {
        row.iter().map(Cell::to_text).collect()
    }

    #[test]
    fn header_and_rows_come_from_the_sniffed_delimiter() {
        let file = csv_file(b"a;b;c\n1;\"x;y\";3\n\n4;5\n");
        let mut table = open_csv(file.path(), 0).unwrap();
        assert_eq!(table.header(), ["a", "b", "c"]);
        assert_eq!(table.delimiter(), Some(b';'));
        assert_eq!(texts(table.next().unwrap().unwrap()), ["1", "x;y", "3"]);
        let short = table.next().unwrap().unwrap();
        assert_eq!(short, [Cell::Text("4".into()), Cell::Text("5".into()), Cell::Empty]);
        assert!(table.next().is_none(), "the blank line is skipped");
    }

    #[test]
    fn records_are_bounded_across_the_line_feeds_of_a_quoted_field() {
        let file = csv_file(b"a,b\n\"two\nlines\",\"say \"\"hi\"\"\"\nx,y\n");
        let mut table = open_csv(file.path(), 0).unwrap();
        assert_eq!(texts(table.next().unwrap().unwrap()), ["two\nlines", "say \"hi\""]);
        assert_eq!(texts(table.next().unwrap().unwrap()), ["x", "y"]);

        let field =
            [b"\"".as_slice(), &b"x\n".repeat(MAX_CSV_LINE_BYTES as usize), b"\"\n"].concat();
        let mut source = LineBounded { inner: field.as_slice(), line: 0, quoted: false };
        let error = std::io::copy(&mut source, &mut std::io::sink()).unwrap_err();
        assert!(error.to_string().contains("a record is longer than"), "{error}");
    }

    #[test]
    fn lines_before_the_header_are_skipped_and_not_sniffed() {
        let file = csv_file(b"report|generated|today\n\nname,count\nx,1\n");
        let mut table = open_csv(file.path(), 1).unwrap();
        assert_eq!(table.header(), ["name", "count"]);
        assert_eq!(table.count_rows(10).unwrap(), 1);
    }

    #[test]
    fn byte_order_marks_and_bad_bytes_are_handled() {
        let file = csv_file(b"\xEF\xBB\xBFname,v\xFFalue\nx,1\n");
        let table = open_csv(file.path(), 0).unwrap();
        assert_eq!(table.header(), ["name", "v\u{FFFD}alue"]);
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("h1\th2\r\n1\t2\r\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let file = csv_file(&utf16);
        let mut table = open_csv(file.path(), 0).unwrap();
        assert_eq!(table.header(), ["h1", "h2"]);
        assert_eq!(texts(table.next().unwrap().unwrap()), ["1", "2"]);
    }

    #[test]
    fn empty_files_and_too_many_skipped_lines_give_an_empty_table() {
        let file = csv_file(b"");
        let mut table = open_csv(file.path(), 0).unwrap();
        assert!(table.header().is_empty());
        assert!(table.next().is_none());
        let file = csv_file(b"a,b\n1,2\n");
        assert!(open_csv(file.path(), 5).unwrap().header().is_empty());
    }

    #[test]
    fn counting_stops_at_the_limit() {
        let file = csv_file(b"h\n1\n2\n3\n4\n");
        let mut table = open_csv(file.path(), 0).unwrap();
        assert_eq!(table.count_rows(2).unwrap(), 2);
        assert_eq!(table.count_rows(10).unwrap(), 2, "the rest");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let error = open_csv(Path::new("/nonexistent.csv"), 0).unwrap_err();
        assert_eq!(error.reason(), "FileUnreadable");
    }
}
