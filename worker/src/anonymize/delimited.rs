//! CSV files with a named column: streamed row by row, each value of a named column
//! (exact match of a header in the first row) replaced by its token, the other fields
//! through the `filecontent` rules (CSV is text: the SDK applied them to the whole
//! file). Empty values stay empty.
//!
//! Kept: the delimiter (`,` `;` `|` or tab, whichever the header line holds most of,
//! outside quotes), the line ending of the header line, a UTF-8 byte order mark, bytes
//! that are not UTF-8, rows of uneven length. Quoting is rewritten where needed only
//! (a field holding the delimiter, a quote or a line break), which any CSV reader reads
//! as the same values.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use csv::{ByteRecord, QuoteStyle, Terminator};

use super::error::FileError;
use super::rules::Rules;
use super::token::Tokenizer;

const BOM: &[u8] = b"\xEF\xBB\xBF";
const DELIMITERS: [u8; 4] = [b',', b';', b'|', b'\t'];
/// Enough of the header line to find its delimiter: headers are not this long.
const HEADER_PEEK: u64 = 1 << 20;

/// What the header line says about the file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    delimiter: u8,
    crlf: bool,
    bom: bool,
}

/// Anonymizes the named columns into `output`. `Ok(false)` when no header is named
/// (nothing written): the caller treats the file as text.
pub fn anonymize(
    input: &Path,
    output: &Path,
    columns: &[String],
    content_rules: &Rules,
    tokenizer: &mut Tokenizer,
) -> Result<bool, FileError> {
    let read_error = |source| FileError::Read { path: input.to_owned(), source };
    let csv_error = |source| FileError::Csv { path: input.to_owned(), source: Box::new(source) };
    let format = sniff(input)?;
    let file = File::open(input).map_err(read_error)?;
    // csv-core drops a leading byte order mark itself; it is written back below.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(format.delimiter)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let mut record = ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        return Ok(false);
    }
    let named: Vec<bool> =
        record.iter().map(|header| columns.iter().any(|c| c.as_bytes() == header)).collect();
    if !named.contains(&true) {
        return Ok(false);
    }
    let write_error = |source| FileError::Write { path: output.to_owned(), source };
    let mut file = std::io::BufWriter::new(File::create(output).map_err(write_error)?);
    if format.bom {
        file.write_all(BOM).map_err(write_error)?;
    }
    let mut writer = csv::WriterBuilder::new()
        .delimiter(format.delimiter)
        .terminator(if format.crlf { Terminator::CRLF } else { Terminator::Any(b'\n') })
        .quote_style(QuoteStyle::Necessary)
        .flexible(true)
        .from_writer(file);
    let token_error = |source| FileError::Token { path: input.to_owned(), source };
    let mut replaced = ByteRecord::new();
    let mut is_header = true;
    loop {
        replaced.clear();
        for (index, field) in record.iter().enumerate() {
            let is_named = !is_header && named.get(index).copied().unwrap_or(false);
            if is_named && !field.is_empty() {
                replaced.push_field(tokenizer.token(field).map_err(token_error)?.as_bytes());
            } else if is_named {
                replaced.push_field(field);
            } else {
                replaced.push_field(&content_rules.apply(field, tokenizer).map_err(token_error)?);
            }
        }
        writer
            .write_byte_record(&replaced)
            .map_err(|e| FileError::Csv { path: output.to_owned(), source: Box::new(e) })?;
        is_header = false;
        if !reader.read_byte_record(&mut record).map_err(csv_error)? {
            break;
        }
    }
    writer.flush().map_err(write_error)?;
    Ok(true)
}

fn sniff(input: &Path) -> Result<Format, FileError> {
    let read_error = |source| FileError::Read { path: input.to_owned(), source };
    let file = File::open(input).map_err(read_error)?;
    let mut line = Vec::new();
    BufReader::new(file.take(HEADER_PEEK)).read_until(b'\n', &mut line).map_err(read_error)?;
    Ok(format_of(&line))
}

fn format_of(line: &[u8]) -> Format {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &byte in line {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = DELIMITERS.iter().position(|&d| d == byte) {
            counts[i] += 1;
        }
    }
    // The most frequent wins; on a tie (or none at all) the earlier in DELIMITERS.
    let mut best = 0;
    for (i, &count) in counts.iter().enumerate() {
        if count > counts[best] {
            best = i;
        }
    }
    Format {
        delimiter: DELIMITERS[best],
        crlf: line.ends_with(b"\r\n"),
        bom: line.starts_with(BOM),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::key::Keys;

    #[test]
    fn the_delimiter_is_the_most_frequent_outside_quotes() {
        assert_eq!(format_of(b"a,b,c\n").delimiter, b',');
        assert_eq!(format_of(b"a;b;c,d\n").delimiter, b';');
        assert_eq!(format_of(b"a|b|c\n").delimiter, b'|');
        assert_eq!(format_of(b"a\tb\tc\n").delimiter, b'\t');
        assert_eq!(format_of(b"\"x;y;z\",b,c\n").delimiter, b',');
        assert_eq!(format_of(b"single\n").delimiter, b',');
        assert!(format_of(b"a,b\r\n").crlf);
        assert!(format_of(b"\xEF\xBB\xBFa,b\n").bom);
    }

    fn run(content: &[u8], columns: &[&str], content_rules: &[&str]) -> (bool, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
        std::fs::write(&input, content).unwrap();
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let rules: Vec<String> = content_rules.iter().map(|c| c.to_string()).collect();
        let rules = Rules::compile("filecontent", &rules).unwrap();
        let written = anonymize(&input, &output, &columns, &rules, &mut tokenizer()).unwrap();
        (written, std::fs::read(&output).unwrap_or_default())
    }

    fn tokenizer() -> Tokenizer {
        Tokenizer::new(&Keys::from_passphrase(b"csv").unwrap()).unwrap()
    }

    fn token(value: &str) -> String {
        tokenizer().token(value.as_bytes()).unwrap()
    }

    #[test]
    fn named_columns_become_tokens_and_the_format_is_kept() {
        let input = b"\xEF\xBB\xBFid;HOST;note\r\n1;h1;\"a;b\"\r\n2;;x\r\n3;h1\r\n";
        let (written, output) = run(input, &["HOST"], &[]);
        assert!(written);
        let expected = format!(
            "\u{FEFF}id;HOST;note\r\n1;{h1};\"a;b\"\r\n2;;x\r\n3;{h1}\r\n",
            h1 = token("h1")
        );
        assert_eq!(String::from_utf8(output).unwrap(), expected);
    }

    #[test]
    fn content_rules_apply_to_the_other_fields() {
        let (_, output) = run(b"HOST,note\nh1,SECRET here\n", &["HOST"], &["SECRET"]);
        let expected = format!("HOST,note\n{},{} here\n", token("h1"), token("SECRET"));
        assert_eq!(String::from_utf8(output).unwrap(), expected);
    }

    #[test]
    fn without_a_named_header_nothing_is_written() {
        assert_eq!(run(b"a,b\n1,2\n", &["HOST"], &[]), (false, Vec::new()));
        assert_eq!(run(b"", &["HOST"], &[]), (false, Vec::new()));
    }
}
