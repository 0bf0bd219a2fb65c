//! Archives that try to escape, exhaust or confuse the worker.

use licenseware_worker::archive::{ArchiveError, ArchiveLimits, Limit, extracted_dir, unpack};
use tar::EntryType;

use super::Scratch;
use super::build::{gzip, nested_zips, tar_bytes, tar_with_raw_name, zip_file, zip_with_symlink};

const MIB: usize = 1 << 20;

/// The error, after checking that nothing of the unpack stayed on disk.
fn refused(archive: &std::path::Path, limits: &ArchiveLimits) -> ArchiveError {
    let error = unpack(archive, limits).expect_err("the archive must be refused");
    assert!(!extracted_dir(archive).exists(), "partial output left for {error}");
    error
}

#[test]
fn a_zip_bomb_is_stopped_by_the_ratio_before_it_is_written_out() {
    let scratch = Scratch::create();
    let bomb = scratch.path("bomb.zip");
    zip_file(&bomb, &[("zeros.csv", &vec![0_u8; 8 * MIB])]);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 100_000, "really a bomb");
    let error = refused(&bomb, &ArchiveLimits::default());
    assert_eq!(error.reason(), "ArchiveRatioTooHigh", "{error}");
    let message = error.to_string();
    assert!(message.contains("zeros.csv") && message.contains("100:1"), "{message}");
}

#[test]
fn a_zip_bomb_is_stopped_by_the_total_bytes_too() {
    let scratch = Scratch::create();
    let bomb = scratch.path("bomb.zip");
    zip_file(&bomb, &[("a.csv", &vec![0_u8; 3 * MIB]), ("b.csv", &vec![0_u8; 3 * MIB])]);
    let limits = ArchiveLimits {
        max_total_bytes: 4 * MIB as u64,
        max_ratio: u64::MAX,
        ..Default::default()
    };
    let error = refused(&bomb, &limits);
    assert!(
        matches!(&error, ArchiveError::LimitExceeded { limit: Limit::TotalBytes(_), entry, .. } if entry == "b.csv"),
        "{error}"
    );
    assert_eq!(error.reason(), "ArchiveTooLarge");
}

#[test]
fn a_compressed_tar_bomb_is_stopped_by_the_stream_ratio() {
    let scratch = Scratch::create();
    let bomb = scratch.path("bomb.tar.gz");
    // Smaller than the zip bomb (compressing is slow in debug builds): a lower grace.
    let zeros = vec![0_u8; 2 * MIB];
    std::fs::write(&bomb, gzip(&tar_bytes(&[("zeros.csv", &zeros)]))).unwrap();
    let limits = ArchiveLimits { ratio_grace_bytes: MIB as u64, ..Default::default() };
    assert_eq!(refused(&bomb, &limits).reason(), "ArchiveRatioTooHigh");
}

#[test]
fn too_many_entries_are_refused() {
    let scratch = Scratch::create();
    let archive = scratch.path("many.zip");
    zip_file(&archive, &[("1", b"1"), ("2", b"2"), ("3", b"3"), ("4", b"4")]);
    let limits = ArchiveLimits { max_entries: 3, ..Default::default() };
    let error = refused(&archive, &limits);
    assert_eq!(error.reason(), "ArchiveTooManyEntries");
    // Refused from the count the zip declares, before its directory is read.
    assert!(error.to_string().contains("limit of 3 entries"), "{error}");
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let scratch = Scratch::create();
    let three = nested_zips(&scratch.0, 3);
    let unpacked = unpack(&three, &ArchiveLimits::default()).unwrap();
    assert!(unpacked.files.iter().all(|file| file.ends_with("data.csv")));
    assert_eq!(unpacked.files.len(), 1);

    let deeper = Scratch::create();
    let four = nested_zips(&deeper.0, 4);
    let error = refused(&four, &ArchiveLimits::default());
    assert_eq!(error.reason(), "ArchiveTooDeep");
    assert!(error.to_string().contains("level1.zip"), "{error}");
}

#[test]
fn paths_leaving_the_destination_are_refused_and_nothing_escapes() {
    let scratch = Scratch::create();
    let outside = scratch.path("escape");
    for (file, name) in [("dots.tar", "../escape"), ("deep.tar", "a/../../escape")] {
        let archive = scratch.path(file);
        std::fs::write(&archive, tar_with_raw_name(name, EntryType::Regular, None)).unwrap();
        assert_eq!(refused(&archive, &ArchiveLimits::default()).reason(), "ArchiveUnsafePath");
        assert!(!outside.exists(), "{name} was written outside");
    }
    let absolute_target = scratch.path("absolute");
    let archive = scratch.path("absolute.tar");
    let raw = tar_with_raw_name(absolute_target.to_str().unwrap(), EntryType::Regular, None);
    std::fs::write(&archive, raw).unwrap();
    assert_eq!(refused(&archive, &ArchiveLimits::default()).reason(), "ArchiveUnsafePath");
    assert!(!absolute_target.exists());
}

#[test]
fn links_and_devices_are_refused() {
    let scratch = Scratch::create();
    let cases = [
        ("symlink.tar", EntryType::Symlink, Some("/etc/passwd"), "ArchiveLinkEntry"),
        ("hardlink.tar", EntryType::Link, Some("/etc/passwd"), "ArchiveLinkEntry"),
        ("device.tar", EntryType::Char, None, "ArchiveSpecialEntry"),
        ("fifo.tar", EntryType::Fifo, None, "ArchiveSpecialEntry"),
    ];
    for (file, kind, link, reason) in cases {
        let archive = scratch.path(file);
        std::fs::write(&archive, tar_with_raw_name("entry", kind, link)).unwrap();
        assert_eq!(refused(&archive, &ArchiveLimits::default()).reason(), reason, "{file}");
    }
    let archive = scratch.path("symlink.zip");
    zip_with_symlink(&archive, "link", "/etc/passwd");
    assert_eq!(refused(&archive, &ArchiveLimits::default()).reason(), "ArchiveLinkEntry");
}

#[test]
fn a_file_given_twice_is_refused() {
    let scratch = Scratch::create();
    let archive = scratch.path("twice.tar");
    std::fs::write(&archive, tar_bytes(&[("a.csv", b"first"), ("a.csv", b"second")])).unwrap();
    assert_eq!(refused(&archive, &ArchiveLimits::default()).reason(), "ArchiveDuplicateEntry");
}

#[test]
fn corrupt_archives_give_a_clean_error() {
    let scratch = Scratch::create();
    let valid_tar = tar_bytes(&[("a.csv", &vec![b'x'; 10_000])]);
    let truncated_gz = gzip(&valid_tar)[..40].to_vec();
    let mut bad_zip = Vec::new();
    zip_file(&scratch.path("ok.zip"), &[("a.csv", &vec![b'y'; 10_000])]);
    bad_zip.extend_from_slice(&std::fs::read(scratch.path("ok.zip")).unwrap());
    bad_zip[40] ^= 0xff; // inside the deflated data: a bad stream or a CRC mismatch
    let cases: [(&str, Vec<u8>); 5] = [
        ("garbage.zip", b"this is not a zip at all".to_vec()),
        ("garbage.tar.gz", b"this is not gzip".to_vec()),
        ("garbage.tar.xz", b"this is not xz".to_vec()),
        ("truncated.tar.gz", truncated_gz),
        ("flipped.zip", bad_zip),
    ];
    for (name, bytes) in cases {
        let archive = scratch.path(name);
        std::fs::write(&archive, bytes).unwrap();
        let error = refused(&archive, &ArchiveLimits::default());
        assert_eq!(error.reason(), "ArchiveCorrupt", "{name}: {error}");
    }
}
