//! Tests of `workbook.rs`: the RVTools fixture, hand-built workbooks and broken files.

use std::path::{Path, PathBuf};

use super::*;
use crate::read::test_xlsx::{write_xlsx, write_xlsx_declaring};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn texts(row: &[Cell]) -> Vec<String> {
    row.iter().map(Cell::to_text).collect()
}

#[test]
fn the_rvtools_fixture_streams_its_sheets() {
    let mut book = Workbook::open(&fixture("RVTools.xlsx")).unwrap();
    let names = book.sheet_names();
    for sheet in ["tabvInfo", "tabvCPU", "tabvCluster", "tabvHost"] {
        assert!(names.iter().any(|name| name == sheet), "{sheet} in {names:?}");
    }
    let mut table = book.table("tabvInfo", 0).unwrap();
    assert_eq!(table.header()[0], "VM");
    let first = table.next().unwrap().unwrap();
    assert!(first.len() >= table.header().len(), "rows are as wide as the header");
    assert_eq!(table.count_rows(usize::MAX).unwrap(), 386, "387 data rows in all");
    drop(table);
    let mut cluster = book.table("tabvCluster", 0).unwrap();
    assert_eq!(cluster.count_rows(usize::MAX).unwrap(), 7);
    drop(cluster);
    assert_eq!(book.format_name(), "xlsx");
}

#[test]
fn header_rows_are_found_below_skipped_and_blank_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.xlsx");
    let rows: &[&[&str]] =
        &[&["Report"], &[""], &["name", "count"], &["a", "", "3"], &[""], &["b", "2"]];
    write_xlsx(&path, &[("Data", rows)]);
    let mut book = Workbook::open(&path).unwrap();
    let mut table = book.table("Data", 1).unwrap();
    assert_eq!(table.header(), ["name", "count"]);
    let first = table.next().unwrap().unwrap();
    assert_eq!(first, [Cell::Text("a".into()), Cell::Empty, Cell::Float(3.0)]);
    assert_eq!(texts(&table.next().unwrap().unwrap()), ["b", "2"]);
    assert!(table.next().is_none(), "the blank row is skipped");
    drop(table);
    let table = book.table("Data", 0).unwrap();
    assert_eq!(table.header(), ["Report"], "without skipping, the title is the header");
}

#[test]
fn sparse_rows_keep_their_columns_and_reading_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.xlsx");
    let rows: &[&[&str]] = &[&["", "h2", "", "h4"], &["1"], &["2"], &["3"], &["4"]];
    write_xlsx(&path, &[("S", rows)]);
    let mut book = Workbook::open(&path).unwrap();
    let mut table = book.table("S", 0).unwrap();
    assert_eq!(table.header(), ["", "h2", "", "h4"]);
    assert_eq!(table.count_rows(2).unwrap(), 2);
    assert_eq!(texts(&table.next().unwrap().unwrap()), ["3", "", "", ""]);
}

#[test]
fn an_empty_sheet_has_no_header_and_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("book.xlsx");
    write_xlsx(&path, &[("Empty", &[]), ("Other", &[&["x"]])]);
    let mut book = Workbook::open(&path).unwrap();
    let mut table = book.table("Empty", 0).unwrap();
    assert!(table.header().is_empty());
    assert!(table.next().is_none());
    drop(table);
    let error = book.table("Missing", 0).unwrap_err();
    assert_eq!(error.reason(), "SheetNotFound");
    assert_eq!(error.to_string(), "Workbook has no sheet named \"Missing\"");
}

#[test]
fn an_xlsx_saved_as_xls_opens_by_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.xls");
    write_xlsx(&path, &[("S", &[&["h"]])]);
    let book = Workbook::open(&path).unwrap();
    assert_eq!(book.format_name(), "xlsx");
    assert_eq!(sheet_names(&path).unwrap(), ["S"]);
}

#[test]
fn files_that_are_not_workbooks_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("renamed.xlsx");
    std::fs::copy(fixture("lms_detail.csv"), &text).unwrap();
    let error = Workbook::open(&text).unwrap_err();
    assert_eq!(error.reason(), "NotAWorkbook");
    assert!(error.to_string().contains("holds text"), "{error}");

    let empty = dir.path().join("empty.xlsx");
    std::fs::write(&empty, b"").unwrap();
    assert!(Workbook::open(&empty).unwrap_err().to_string().contains("empty"));

    let binary = dir.path().join("binary.ods");
    std::fs::write(&binary, [0u8, 159, 146, 150, 255]).unwrap();
    assert_eq!(Workbook::open(&binary).unwrap_err().reason(), "NotAWorkbook");

    let corrupt = dir.path().join("corrupt.xlsx");
    std::fs::write(&corrupt, b"PK\x03\x04 not really a zip").unwrap();
    let error = Workbook::open(&corrupt).unwrap_err();
    assert_eq!(error.reason(), "NotAWorkbook", "{error}");

    let csv = fixture("comma.csv");
    assert_eq!(Workbook::open(&csv).unwrap_err().reason(), "NotAWorkbookName");
    let missing = Workbook::open(Path::new("/nonexistent/book.xlsx")).unwrap_err();
    assert_eq!(missing.reason(), "FileUnreadable");
}

/// An OLE compound file holding an `EncryptedPackage` stream: what Office writes for
/// an xlsx saved with a password (header, one FAT sector, one directory sector).
fn encrypted_package() -> Vec<u8> {
    const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
    let mut header = vec![0u8; 512];
    header[..8].copy_from_slice(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1");
    let mut put = |at: usize, value: u32| header[at..at + 4].copy_from_slice(&value.to_le_bytes());
    put(24, 0x0003_003E); // minor version 0x3E, major version 3
    put(28, 0x0009_FFFE); // byte order, sector shift 9 (512 bytes)
    put(32, 0x0000_0006); // mini sector shift
    put(44, 1); // one FAT sector
    put(48, 1); // the directory starts at sector 1
    put(56, 4096); // mini stream cutoff
    put(60, END_OF_CHAIN); // no mini FAT
    put(68, END_OF_CHAIN); // no DIFAT sectors
    put(76, 0); // the FAT is sector 0
    for at in (80..512).step_by(4) {
        put(at, 0xFFFF_FFFF);
    }
    let mut fat: Vec<u8> =
        [0xFFFF_FFFD, END_OF_CHAIN].iter().flat_map(|v: &u32| v.to_le_bytes()).collect();
    fat.resize(512, 0xFF);
    let mut directory = vec![0u8; 512];
    for (slot, name) in ["Root Entry", "EncryptedPackage"].iter().enumerate() {
        let entry = &mut directory[slot * 128..(slot + 1) * 128];
        let utf16: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        entry[..utf16.len()].copy_from_slice(&utf16);
        entry[64..66].copy_from_slice(&((utf16.len() + 2) as u16).to_le_bytes());
        entry[66] = if slot == 0 { 5 } else { 2 };
        entry[116..120].copy_from_slice(&END_OF_CHAIN.to_le_bytes());
    }
    [header, fat, directory].concat()
}

#[test]
fn password_protected_workbooks_are_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.xlsx");
    std::fs::write(&path, encrypted_package()).unwrap();
    let error = Workbook::open(&path).unwrap_err();
    assert_eq!(error.reason(), "WorkbookEncrypted");
    assert!(error.to_string().starts_with("File is a password-protected or encrypted xlsx"));
    let as_xls = dir.path().join("secret.xls");
    std::fs::write(&as_xls, encrypted_package()).unwrap();
    assert_eq!(Workbook::open(&as_xls).unwrap_err().reason(), "NotAWorkbook");
}

#[test]
fn an_impossible_shared_string_count_is_refused_before_calamine_allocates_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.xlsx");
    write_xlsx_declaring(&path, &[("S", &[&["h"], &["v"]])], Some(999_999_999_999));
    let error = Workbook::open(&path).unwrap_err();
    assert_eq!(error.reason(), "FileTooLarge");
    assert!(error.to_string().contains("declares 999999999999 strings"), "{error}");
    let honest = dir.path().join("honest.xlsx");
    write_xlsx_declaring(&honest, &[("S", &[&["h"], &["v"]])], Some(2));
    assert!(Workbook::open(&honest).is_ok());
}
