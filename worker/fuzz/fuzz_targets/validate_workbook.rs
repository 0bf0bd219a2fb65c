#![no_main]
//! Any bytes as a workbook upload (.xlsx, .xls, .ods, .xlsb by the first byte):
//! validation must answer with entries, never panic. An .xlsx is also read by both the
//! bounded reader (what validation uses) and calamine (what processing uses): when both
//! read a sheet, they must agree on its header and rows.

use libfuzzer_sys::fuzz_target;
use licenseware_worker::read::{Workbook, XlsxHead};
use licenseware_worker::validation::{FileToValidate, Validator};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::allow_caught_panics();
    let Some((&selector, bytes)) = data.split_first() else { return };
    let extension = ["xlsx", "xls", "ods", "xlsb"][usize::from(selector % 4)];
    let (_dir, path) = common::write_input(bytes, extension);
    let rules = common::demanding_rules();
    let name = format!("input.{extension}");
    let response = Validator::new(&rules).check_member(&FileToValidate::new(&path, name));
    assert!(!response.message.is_empty());
    if extension == "xlsx" {
        compare_readers(&path);
    }
});

fn compare_readers(path: &std::path::Path) {
    let (Ok(mut bounded), Ok(mut calamine)) = (XlsxHead::open(path), Workbook::open(path)) else {
        return;
    };
    assert_eq!(bounded.sheet_names(), calamine.sheet_names());
    for sheet in bounded.sheet_names() {
        let ours = bounded.sheet_head(&sheet, 1, 3);
        let Ok(mut table) = calamine.table(&sheet, 1) else { continue };
        let header = table.header().to_vec();
        let (Ok(ours), Ok(rows)) = (ours, table.count_rows(3)) else { continue };
        assert_eq!((ours.header, ours.rows), (header, rows), "sheet {sheet:?}");
    }
}
