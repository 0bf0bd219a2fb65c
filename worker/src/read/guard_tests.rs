//! Crafted xls and ods files that would make calamine allocate beyond reason (an abort)
//! or panic: each gives a typed `ReadError` instead; honest files still open.

use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;

use super::Workbook;

const END_OF_CHAIN: u32 = 0xFFFF_FFFE;

fn record(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut bytes = kind.to_le_bytes().to_vec();
    bytes.extend((data.len() as u16).to_le_bytes());
    bytes.extend(data);
    bytes
}

/// A BIFF8 workbook stream: globals naming one sheet "S", then the sheet's records.
fn biff(sheet_records: &[Vec<u8>]) -> Vec<u8> {
    let bof = |kind: u16| {
        record(0x0809, &[&0x0600u16.to_le_bytes()[..], &kind.to_le_bytes(), &[0; 12]].concat())
    };
    let boundsheet_len = 4 + 9;
    let globals_len = (4 + 16) + boundsheet_len + 4;
    let mut stream = bof(0x0005);
    stream.extend(record(
        0x0085,
        &[&(globals_len as u32).to_le_bytes()[..], &[0, 0, 1, 0], b"S"].concat(),
    ));
    stream.extend(record(0x000A, &[]));
    assert_eq!(stream.len(), globals_len);
    stream.extend(bof(0x0010));
    sheet_records.iter().for_each(|r| stream.extend(r));
    stream.extend(record(0x000A, &[]));
    stream
}

fn dimensions(first_row: u32, last_row: u32, first_col: u16, last_col: u16) -> Vec<u8> {
    let data = [
        &first_row.to_le_bytes()[..],
        &last_row.to_le_bytes(),
        &first_col.to_le_bytes(),
        &last_col.to_le_bytes(),
        &[0, 0],
    ];
    record(0x0200, &data.concat())
}

fn number(row: u16, col: u16, value: f64) -> Vec<u8> {
    let data = [&row.to_le_bytes()[..], &col.to_le_bytes(), &[0, 0], &value.to_le_bytes()];
    record(0x0203, &data.concat())
}

/// An OLE compound file (version 3) holding `stream` as "Workbook" in the regular FAT;
/// `fat_loop` makes the stream's chain point back to its first sector, and its entry
/// claim 4 GB: calamine would follow the loop until it had read that much.
fn ole(mut stream: Vec<u8>, fat_loop: bool) -> Vec<u8> {
    stream.resize(stream.len().max(4096).div_ceil(512) * 512, 0);
    let sectors = stream.len() / 512;
    let mut header = vec![0xFFu8; 512];
    header[..76].fill(0);
    header[..8].copy_from_slice(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1");
    let mut put = |at: usize, value: u32| header[at..at + 4].copy_from_slice(&value.to_le_bytes());
    put(24, 0x0003_003E);
    put(28, 0x0009_FFFE);
    put(32, 6);
    put(44, 1); // one FAT sector, sector 0
    put(48, 1); // the directory is sector 1
    put(56, 4096);
    put(60, END_OF_CHAIN);
    put(68, END_OF_CHAIN);
    put(76, 0);
    let mut fat = vec![0xFFFF_FFFD, END_OF_CHAIN];
    fat.extend((3..sectors as u32 + 2).chain([if fat_loop { 2 } else { END_OF_CHAIN }]));
    let mut fat: Vec<u8> = fat.iter().flat_map(|v| v.to_le_bytes()).collect();
    fat.resize(512, 0xFF);
    let mut directory = vec![0u8; 512];
    for (slot, (name, kind, start, len)) in [
        ("Root Entry", 5, END_OF_CHAIN, 0),
        ("Workbook", 2, 2, if fat_loop { u32::MAX } else { stream.len() as u32 }),
    ]
    .into_iter()
    .enumerate()
    {
        let entry = &mut directory[slot * 128..(slot + 1) * 128];
        let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        entry[..utf16.len()].copy_from_slice(&utf16);
        entry[64..66].copy_from_slice(&((utf16.len() + 2) as u16).to_le_bytes());
        entry[66] = kind;
        entry[116..120].copy_from_slice(&start.to_le_bytes());
        entry[120..124].copy_from_slice(&len.to_le_bytes());
    }
    [header, fat, directory, stream].concat()
}

fn open_xls(dir: &Path, bytes: &[u8]) -> Result<Workbook, super::ReadError> {
    let path = dir.join("crafted.xls");
    std::fs::write(&path, bytes).unwrap();
    Workbook::open(&path)
}

#[test]
fn an_honest_xls_opens() {
    let dir = tempfile::tempdir().unwrap();
    let stream = biff(&[dimensions(0, 2, 0, 2), number(0, 0, 1.0), number(1, 1, 2.0)]);
    let mut book = open_xls(dir.path(), &ole(stream, false)).unwrap();
    assert_eq!(book.sheet_names(), ["S"]);
    assert_eq!(book.table("S", 0).unwrap().header(), ["1", ""]);
}

#[test]
fn crafted_xls_dimensions_and_cell_spans_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("huge DIMENSIONS", vec![dimensions(0, u32::MAX, 0, 255), number(0, 0, 1.0)]),
        ("DIMENSIONS first row after the last", vec![dimensions(9, 3, 0, 2)]),
        ("DIMENSIONS first column at the last", vec![dimensions(0, 2, 2, 2)]),
        ("cells far apart", vec![number(0, 0, 1.0), number(65_535, 65_535, 2.0)]),
        ("MULRK columns backwards", vec![record(0x00BD, &[0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0])]),
    ];
    for (case, records) in cases {
        let Err(error) = open_xls(dir.path(), &ole(biff(&records), false)) else {
            panic!("{case}: opened");
        };
        assert_eq!(error.reason(), "NotAWorkbook", "{case}: {error}");
    }
    let error = open_xls(dir.path(), &ole(biff(&[number(0, 0, 1.0)]), true)).unwrap_err();
    assert!(error.to_string().contains("chain loops"), "{error}");
}

fn write_ods(path: &Path, table: &str) {
    write_ods_content(
        path,
        &format!(
            r#"<office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x"><office:body><office:spreadsheet><table:table table:name="S">{table}</table:table></office:spreadsheet></office:body></office:document-content>"#
        ),
    );
}

fn write_ods_content(path: &Path, content: &str) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let mut part = |name: &str, body: &str| {
        zip.start_file(name, SimpleFileOptions::default()).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    };
    part("mimetype", "application/vnd.oasis.opendocument.spreadsheet");
    part(
        "META-INF/manifest.xml",
        r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"></manifest:manifest>"#,
    );
    part("content.xml", content);
    zip.finish().unwrap();
}

#[test]
fn crafted_ods_repeats_are_refused_and_trailing_empty_repeats_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.ods");
    let cell = r#"<table:table-cell office:value-type="float" office:value="1" table:number-columns-repeated="16384"/>"#;
    write_ods(
        &path,
        &format!(
            r#"<table:table-row table:number-rows-repeated="1000000">{cell}</table:table-row>"#
        ),
    );
    let error = Workbook::open(&path).unwrap_err();
    assert_eq!(error.reason(), "FileTooLarge");
    assert!(error.to_string().contains("expand to"), "{error}");
    // Rows each with 16,384 values, not repeated: the count adds up all the same.
    let rows = format!("<table:table-row>{cell}</table:table-row>").repeat(700);
    write_ods(&path, &rows);
    assert_eq!(Workbook::open(&path).unwrap_err().reason(), "FileTooLarge");
    // LibreOffice ends a sheet with empty cells repeated to the last row and column.
    let honest = concat!(
        r#"<table:table-row><table:table-cell office:value-type="string"><text:p>h</text:p></table:table-cell></table:table-row>"#,
        r#"<table:table-row table:number-rows-repeated="1048575"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>"#,
    );
    write_ods(&path, honest);
    let mut book = Workbook::open(&path).unwrap();
    assert_eq!(book.table("S", 0).unwrap().header(), ["h"]);
}

#[test]
fn ods_spaces_are_counted_expanded_even_when_their_count_is_an_entity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spaces.ods");
    let header = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>h</text:p></table:table-cell></table:table-row>"#;
    for count in ["2147483647", "&#50;147483647"] {
        let cell = format!(
            r#"<table:table-row><table:table-cell office:value-type="string"><text:p>a<text:s text:c="{count}"/></text:p></table:table-cell></table:table-row>"#
        );
        write_ods(&path, &format!("{header}{cell}"));
        let error = Workbook::open(&path).unwrap_err();
        assert_eq!(error.reason(), "FileTooLarge", "{count}: {error}");
    }
    let few = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>a<text:s text:c="3"/>b</text:p></table:table-cell></table:table-row>"#;
    write_ods(&path, &format!("{header}{few}"));
    let mut book = Workbook::open(&path).unwrap();
    let row = book.table("S", 0).unwrap().next().unwrap().unwrap();
    assert_eq!(row[0].to_text(), "a   b");
}

#[test]
fn an_ods_ending_inside_a_table_is_refused_instead_of_read_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.ods");
    let head = r#"<office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x"><office:body><office:spreadsheet><table:table table:name="S">"#;
    let row = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>h</text:p></table:table-cell></table:table-row>"#;
    // Found by fuzzing: calamine loops at the end of the file until `</table:table>`,
    // and inside an annotation until `</office:annotation>`.
    let annotated = r#"<table:table-row><table:table-cell office:value-type="string"><office:annotation></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
    // A malformed attribute that quick-xml refuses and calamine's scanner reads past.
    let lax = r#"<table:table-row><table:table-cell officeoffice="o" ="float" office:value="1"/></table:table-row>"#;
    for content in
        [format!("{head}{row}"), format!("{head}{row}{annotated}"), format!("{head}{row}{lax}")]
    {
        write_ods_content(&path, &content);
        let error = Workbook::open(&path).unwrap_err();
        assert_eq!(error.reason(), "NotAWorkbook", "{error}");
    }
}
