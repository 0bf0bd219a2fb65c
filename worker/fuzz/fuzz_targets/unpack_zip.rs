#![no_main]
//! Any bytes as a zip: unpacking within small limits must succeed or be refused with a
//! typed error, never panic or exceed the fuzzer's memory limit, and leave nothing
//! behind when refused.

use libfuzzer_sys::fuzz_target;
use licenseware_worker::archive::{ArchiveLimits, unpack_into};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (dir, path) = common::write_input(data, "zip");
    let limits = ArchiveLimits { max_total_bytes: 16 << 20, max_entries: 256, ..Default::default() };
    let dest = dir.path().join("out");
    if let Err(error) = unpack_into(&path, &dest, &limits) {
        assert!(!error.reason().is_empty());
        assert!(!dest.exists() || std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_none()));
    }
});
