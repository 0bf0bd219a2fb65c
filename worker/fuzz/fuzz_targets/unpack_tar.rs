#![no_main]
//! Any bytes as a tar, a tar.gz whose decompressed stream they are, or a tar.gz as they
//! are (the first byte chooses): unpacking within small limits must succeed or be
//! refused with a typed error, never panic, write outside its directory or exceed the
//! fuzzer's memory limit.

use libfuzzer_sys::fuzz_target;
use licenseware_worker::archive::{ArchiveLimits, unpack_into};

#[path = "common.rs"]
mod common;
#[path = "packages.rs"]
mod packages;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let (archive, extension) = match selector % 3 {
        0 => (bytes.to_vec(), "tar"),
        1 => (packages::stored_gzip(bytes), "tar.gz"),
        _ => (bytes.to_vec(), "tar.gz"),
    };
    let (dir, path) = common::write_input(&archive, extension);
    let limits = ArchiveLimits { max_total_bytes: 16 << 20, max_entries: 256, ..Default::default() };
    let dest = dir.path().join("out");
    if let Err(error) = unpack_into(&path, &dest, &limits) {
        assert!(!error.reason().is_empty());
        assert!(!dest.exists() || std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_none()));
    }
});
