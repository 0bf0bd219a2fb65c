#![no_main]
//! Any bytes as a workbook upload (.xlsx, .xls, .ods by the first byte): validation must
//! answer with entries, never panic.

use libfuzzer_sys::fuzz_target;
use licenseware_worker::validation::{FileToValidate, Validator};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let extension = ["xlsx", "xls", "ods", "xlsb"][usize::from(selector % 4)];
    let (_dir, path) = common::write_input(bytes, extension);
    let rules = common::demanding_rules();
    let name = format!("input.{extension}");
    let response = Validator::new(&rules).check_member(&FileToValidate::new(&path, name));
    assert!(!response.message.is_empty());
});
