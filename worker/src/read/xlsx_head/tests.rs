//! The bounded reader against calamine (through `Workbook` and `Table`, what validation
//! used before) on the fixtures, on workbooks written by rust_xlsxwriter and on
//! hand-written XML; and its refusals of broken files.

use std::io::Write;
use std::path::{Path, PathBuf};

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook as XlsxWriter};
use zip::write::SimpleFileOptions;

use super::*;
use crate::read::Workbook;

/// What validation used to read, through calamine.
fn calamine_head(book: &mut Workbook, sheet: &str, from: u64, wanted: usize) -> Option<SheetHead> {
    let mut table = book.table(sheet, from).ok()?;
    let header = table.header().to_vec();
    let rows = table.count_rows(wanted).ok()?;
    Some(SheetHead { header, rows })
}

/// Every sheet, several header rows and row bounds: the same answers as calamine.
fn assert_same_as_calamine(path: &Path) {
    let mut bounded = XlsxHead::open(path).unwrap();
    let mut calamine = Workbook::open(path).unwrap();
    let names = bounded.sheet_names();
    assert_eq!(names, calamine.sheet_names(), "{}", path.display());
    for sheet in &names {
        for from in [0, 2] {
            for wanted in [0, 1, 10, usize::MAX] {
                let ours = bounded.sheet_head(sheet, from, wanted).ok();
                let theirs = calamine_head(&mut calamine, sheet, from, wanted);
                assert_eq!(ours, theirs, "{} {sheet} from {from}, {wanted} rows", path.display());
            }
        }
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dirs = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        PathBuf::from("/work/shared/fixtures/licenseware-sdk"),
    ];
    let files = dirs.iter().filter_map(|dir| std::fs::read_dir(dir).ok()).flatten().flatten();
    files.map(|entry| entry.path()).filter(|p| p.extension().is_some_and(|e| e == "xlsx")).collect()
}

#[test]
fn the_fixtures_read_as_calamine_reads_them() {
    let files = fixtures();
    assert!(!files.is_empty(), "RVTools.xlsx at least");
    for path in files {
        assert_same_as_calamine(&path);
    }
}

#[test]
fn workbooks_written_with_shared_strings_read_as_calamine_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("written.xlsx");
    let mut book = XlsxWriter::new();
    let (bold, date) = (Format::new().set_bold(), Format::new().set_num_format("yyyy-mm-dd"));
    let sheet = book.add_worksheet().set_name("Data").unwrap();
    sheet.write_string(0, 0, "Report title").unwrap();
    for (column, name) in
        ["VM", "  padded  ", "Line\r\nbreak", "_x000D_ literal"].iter().enumerate()
    {
        sheet.write_string(2, column as u16, *name).unwrap();
    }
    sheet.write_rich_string(2, 5, &[(&bold, "Ri"), (&Format::new(), "ch")]).unwrap();
    sheet.write_number(2, 7, 42.5).unwrap();
    for row in 3..40u32 {
        sheet.write_string(row, 0, format!("vm-{row}")).unwrap();
        sheet.write_number(row, 1, f64::from(row)).unwrap();
        sheet.write_boolean(row, 2, row % 2 == 0).unwrap();
        let day = ExcelDateTime::from_ymd(2024, 1, (row % 28 + 1) as u8).unwrap();
        sheet.write_datetime_with_format(row, 3, day, &date).unwrap();
        sheet.write_formula(row, 4, Formula::new("=B4*2").set_result("8")).unwrap();
        if row % 7 == 0 {
            sheet.write_blank(row + 100, 0, &bold).unwrap();
        }
    }
    let other = book.add_worksheet().set_name("Other & more").unwrap();
    other.write_string(4, 3, "sparse").unwrap();
    other.write_string(6, 0, "VM").unwrap();
    book.add_worksheet().set_name("Empty").unwrap();
    book.save(&path).unwrap();
    assert_same_as_calamine(&path);
}

/// A one-sheet xlsx ("S") whose sheet XML (inside `<sheetData>`) and string table
/// (the `<si>` items, `None` for no table part) are given.
fn write_raw(path: &Path, sheet_data: &str, strings: Option<&str>) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let mut part = |name: &str, body: &str| {
        zip.start_file(name, SimpleFileOptions::default()).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    };
    let rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    part(
        "_rels/.rels",
        &format!(
            r#"<Relationships><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
        ),
    );
    part(
        "xl/workbook.xml",
        r#"<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    );
    part(
        "xl/_rels/workbook.xml.rels",
        &format!(
            r#"<Relationships><Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
        ),
    );
    part(
        "xl/worksheets/sheet1.xml",
        &format!("<worksheet><sheetData>{sheet_data}</sheetData></worksheet>"),
    );
    if let Some(items) = strings {
        part("xl/sharedStrings.xml", &format!("<sst>{items}</sst>"));
    }
    zip.finish().unwrap();
}

#[test]
fn hand_written_cells_read_as_calamine_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.xlsx");
    let strings = concat!(
        r#"<si><t>a</t></si><si><t xml:space="preserve"> b </t></si><si><t>  c  </t></si>"#,
        r#"<si><r><t>ri</t></r><r><rPr/><t>ch</t></r><rPh><t>PH</t></rPh></si>"#,
        r#"<si><t>x_x000D_y &amp; &#xA0;z</t></si><si><t></t></si><si/>"#,
    );
    let sheet = concat!(
        // No r attributes: positions are counted.
        r#"<row><c t="s"><v>0</v></c><c t="s"><v>1</v></c><c t="s"><v>2</v></c></row>"#,
        r#"<row><c t="s"><v>5</v></c><c t="s"><v>6</v></c></row>"#, // blank: "" strings
        r#"<row r="4"><c r="B4" t="s"><v>3</v></c><c t="s"><v>4</v></c><c r="E4"/></row>"#,
        r#"<row r="6"><c r="A6" t="inlineStr"><is><t>inline</t></is></c><c r="C6" t="str"><f>1</f><v>s_x0041_</v></c></row>"#,
        r#"<row r="7"><c r="A7" t="b"><v>1</v></c><c r="B7" t="e"><v>#N/A</v></c><c r="C7" t="d"><v>2024-01-01</v></c></row>"#,
        r#"<row r="8"><c r="A8"><v>1.5e3</v></c><c r="B8"><v>text</v></c><c r="C8" s="3"><v>45000</v></c></row>"#,
        r#"<row r="9"><c r="A9" t="s"><v/></c><c r="B9" t="str"><v></v></c></row>"#, // blank
        r#"<row r="10" spans="1:2"><c r="A10" t="s"><v>0</v></c></row><row r="11"/>"#,
    );
    write_raw(&path, sheet, Some(strings));
    assert_same_as_calamine(&path);
    let mut book = XlsxHead::open(&path).unwrap();
    let head = book.sheet_head("S", 0, 10).unwrap();
    assert_eq!(head.header, ["a", " b ", "c"]);
    assert_eq!(head.rows, 5, "the rows of \"\" strings and empty values are blank");
    let head = book.sheet_head("S", 3, 0).unwrap();
    assert_eq!(head.header, ["", "rich", "x\ry & \u{A0}z", "", ""]);
}

#[test]
fn the_string_table_is_read_only_up_to_the_needed_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("early.xlsx");
    let sheet = r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row><row r="3"><c r="A3" t="s"><v>9</v></c></row>"#;
    // Broken after the second item: calamine refuses the file at open, this reader
    // never gets there when one data row is asked for.
    write_raw(&path, sheet, Some("<si><t>h</t></si><si><t>v</t></si><si><t>broken</x></si>"));
    assert!(Workbook::open(&path).is_err());
    let mut book = XlsxHead::open(&path).unwrap();
    let head = book.sheet_head("S", 0, 1).unwrap();
    assert_eq!((head.header.as_slice(), head.rows), (["h".to_owned()].as_slice(), 1));
    let error = book.sheet_head("S", 0, 2).unwrap_err();
    assert_eq!(error.reason(), "WorkbookUnreadable", "{error}");
}

#[test]
fn an_index_past_the_end_of_the_string_table_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.xlsx");
    let sheet = r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>5</v></c></row>"#;
    write_raw(&path, sheet, Some("<si><t>a</t></si><si><t>b</t></si>"));
    let error = XlsxHead::open(&path).unwrap().sheet_head("S", 0, 0).unwrap_err();
    assert_eq!(error.reason(), "WorkbookUnreadable");
    assert_eq!(
        error.to_string(),
        "Workbook cannot be read: a cell refers to shared string 5 but the shared-string table holds 2"
    );
    let no_table = dir.path().join("no-table.xlsx");
    write_raw(&no_table, sheet, None);
    let error = XlsxHead::open(&no_table).unwrap().sheet_head("S", 0, 0).unwrap_err();
    assert!(error.to_string().ends_with("table holds 0"), "{error}");
}

#[test]
fn malformed_xml_gives_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xlsx");
    let sheets = [
        r#"<row r="1"><c r="A1"><v>1</v>"#, // no </c>: the sheet ends inside a cell
        r#"<row r="1"><c r="A1" t="q"><v>1</v></c></row>"#, // unknown type
        r#"<row r="1"><c r="1A"><v>1</v></c></row>"#, // bad reference
        r#"<row r="1"><c r="ZZZZZZ1"><v>1</v></c></row>"#, // beyond column XFD
        r#"<row r="1"><c r="A1" t="b"><v>maybe</v></c></row>"#, // bad boolean
        r#"<row r="1"><c r="A1" t=s><v>1</v></c></row>"#, // unquoted attribute
        r#"<row r="1"><c r="A1"><x>1</x></c></row>"#, // unexpected element
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>"#, // string table broken
    ];
    for sheet in sheets {
        write_raw(&path, sheet, Some("<si><t>a</t>"));
        let error = XlsxHead::open(&path).unwrap().sheet_head("S", 0, 5).unwrap_err();
        assert_eq!(error.reason(), "WorkbookUnreadable", "{sheet}: {error}");
    }
    std::fs::write(&path, b"PK\x03\x04 not a zip").unwrap();
    assert_eq!(XlsxHead::open(&path).unwrap_err().reason(), "NotAWorkbook");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("_rels/.rels", SimpleFileOptions::default()).unwrap();
    zip.write_all(
        b"<Relationships><Relationship Type='x/relationships/officeDocument' Target='wb.xml'",
    )
    .unwrap();
    zip.finish().unwrap();
    assert_eq!(XlsxHead::open(&path).unwrap_err().reason(), "NotAWorkbook");
}

#[test]
fn sheets_and_parts_that_are_missing_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.xlsx");
    write_raw(&path, r#"<row r="1"><c r="A1"><v>1</v></c></row>"#, None);
    let mut book = XlsxHead::open(&path).unwrap();
    assert_eq!(book.sheet_names(), ["S"]);
    assert_eq!(book.sheet_head("T", 0, 1).unwrap_err().reason(), "SheetNotFound");
    let head = book.sheet_head("S", 0, 1).unwrap();
    assert_eq!((head.header, head.rows), (vec!["1".to_owned()], 0));
}

#[test]
fn processing_refuses_a_cell_beyond_the_last_column_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.xlsx");
    let rows =
        r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="ZZZZZZ2"><v>1</v></c></row>"#;
    write_raw(&path, rows, None);
    let mut book = Workbook::open(&path).unwrap();
    // The far cell is met while the header row is gathered (it ends that row).
    let error = book.table("S", 0).unwrap_err();
    assert_eq!(error.reason(), "WorkbookUnreadable", "{error}");
    assert!(error.to_string().contains("beyond the last column"), "{error}");
}
