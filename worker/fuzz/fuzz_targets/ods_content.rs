#![no_main]
//! Any bytes as the content.xml of an ods: the guard must refuse what would make
//! calamine allocate without bound (repeats, expanded spaces, long tokens), and what it
//! lets through must open or be refused cleanly, its rows read, nothing panic.

use libfuzzer_sys::fuzz_target;
use licenseware_worker::read::Workbook;
use licenseware_worker::validation::{FileToValidate, Validator};

#[path = "common.rs"]
mod common;
#[path = "packages.rs"]
mod packages;

fuzz_target!(|data: &[u8]| {
    common::allow_caught_panics();
    let (_dir, path) = common::write_input(&packages::ods(data), "ods");
    let rules = common::demanding_rules();
    let response =
        Validator::new(&rules).check_member(&FileToValidate::new(&path, "input.ods"));
    assert!(!response.message.is_empty());
    let Ok(mut book) = Workbook::open(&path) else { return };
    for sheet in book.sheet_names() {
        let Ok(table) = book.table(&sheet, 0) else { continue };
        for row in table.take(10_000) {
            if row.is_err() {
                break;
            }
        }
    }
});
