#![no_main]
//! Any bytes as one part (chosen by the first byte) of an otherwise valid xlsx: the
//! shared strings, a sheet, the workbook, its relationships, the styles. Validation must
//! answer, processing's reader (calamine behind its guards) must open or refuse the
//! file and read every row of every sheet, the bounded reader must agree with it, and
//! none may panic or exceed the fuzzer's memory limit.

use libfuzzer_sys::fuzz_target;
use licenseware_worker::read::{Workbook, XlsxHead};
use licenseware_worker::validation::{FileToValidate, Validator};

#[path = "common.rs"]
mod common;
#[path = "packages.rs"]
mod packages;

fuzz_target!(|data: &[u8]| {
    common::allow_caught_panics();
    let Some((&selector, part)) = data.split_first() else { return };
    let mut parts = packages::xlsx_parts();
    let replaced = usize::from(selector) % parts.len();
    parts[replaced].1 = part.to_vec();
    let entries: Vec<(&str, &[u8])> =
        parts.iter().map(|(name, content)| (*name, content.as_slice())).collect();
    let (_dir, path) = common::write_input(&packages::stored_zip(&entries), "xlsx");
    let rules = common::demanding_rules();
    let response =
        Validator::new(&rules).check_member(&FileToValidate::new(&path, "input.xlsx"));
    assert!(!response.message.is_empty());
    let Ok(mut book) = Workbook::open(&path) else { return };
    let bounded = XlsxHead::open(&path);
    for sheet in book.sheet_names() {
        let Ok(table) = book.table(&sheet, 0) else { continue };
        for row in table.take(10_000) {
            if row.is_err() {
                break;
            }
        }
    }
    if let Ok(mut bounded) = bounded {
        assert_eq!(bounded.sheet_names(), book.sheet_names());
        for sheet in bounded.sheet_names() {
            let ours = bounded.sheet_head(&sheet, 0, 3);
            let Ok(mut table) = book.table(&sheet, 0) else { continue };
            let header = table.header().to_vec();
            let (Ok(ours), Ok(rows)) = (ours, table.count_rows(3)) else { continue };
            assert_eq!((ours.header, ours.rows), (header, rows), "sheet {sheet:?}");
        }
    }
});
