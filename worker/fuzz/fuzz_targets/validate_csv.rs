#![no_main]
//! Any bytes as a .csv upload: validation must answer with entries, never panic.

use libfuzzer_sys::fuzz_target;
use licenseware_worker::validation::{FileToValidate, Validator};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (_dir, path) = common::write_input(data, "csv");
    let rules = common::demanding_rules();
    let response = Validator::new(&rules).check_member(&FileToValidate::new(&path, "input.csv"));
    assert!(!response.message.is_empty());
});
