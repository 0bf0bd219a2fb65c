//! Unpacking archives: the SDK fixture, each format, and hostile archives.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use licenseware_worker::archive::{ArchiveLimits, extracted_dir, is_archive, unpack, unpack_into};

#[path = "archive/build.rs"]
mod build;
#[path = "archive/hostile.rs"]
mod hostile;

use build::{bzip2, gzip, tar_bytes, xz, zip_file};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A directory of its own per test, removed at the end.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn create() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name =
            format!("lw-archive-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn relative_names(root: &Path, files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|file| file.strip_prefix(root).expect("under the root").to_string_lossy().into_owned())
        .collect()
}

fn all_paths(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list the directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(all_paths(&path));
        }
        found.push(path);
    }
    found
}

// The SDK fixture ---------------------------------------------------------------------

#[test]
fn the_sdk_fixture_unpacks_recursively_with_no_archive_left() {
    let scratch = Scratch::create();
    let archive = scratch.path("zip.tar.xz");
    std::fs::copy(Path::new(FIXTURES).join("zip.tar.xz"), &archive).unwrap();

    let unpacked = unpack(&archive, &ArchiveLimits::default()).unwrap();

    assert_eq!(unpacked.dir, scratch.path("zip.tar.xz_extracted"));
    assert!(archive.exists(), "the uploaded archive itself stays");
    let leftovers: Vec<_> =
        all_paths(&unpacked.dir).into_iter().filter(|p| is_archive(p)).collect();
    assert!(leftovers.is_empty(), "archives left: {leftovers:?}");
    let names = relative_names(&unpacked.dir, &unpacked.files);
    for expected in [
        "RVTools.xlsx",
        "lms_detail.csv",
        "lms_detail_empty.csv",
        "sniff_delimiter_csv/comma.csv",
        "sniff_delimiter_csv/pipe.csv",
        "sniff_delimiter_csv/semicolon.csv",
    ] {
        assert!(names.iter().any(|name| name == expected), "{expected} missing from {names:?}");
    }
    for nested in ["sniff_delimiter_csv.zip_extracted", "sniff_delimiter_csv.tar.xz_extracted"] {
        let csvs = names.iter().filter(|name| name.starts_with(nested) && name.ends_with(".csv"));
        assert_eq!(csvs.count(), 3, "{nested} in {names:?}");
    }
    let original = std::fs::read(Path::new(FIXTURES).join("RVTools.xlsx")).unwrap();
    assert_eq!(std::fs::read(unpacked.dir.join("RVTools.xlsx")).unwrap(), original);
    let comma = std::fs::read(Path::new(FIXTURES).join("comma.csv")).unwrap();
    let nested_comma = unpacked
        .files
        .iter()
        .find(|f| {
            f.ends_with("comma.csv")
                && f.starts_with(unpacked.dir.join("sniff_delimiter_csv.zip_extracted"))
        })
        .unwrap();
    assert_eq!(std::fs::read(nested_comma).unwrap(), comma);
}

#[test]
fn unpacking_again_replaces_the_leftover_of_an_earlier_attempt() {
    let scratch = Scratch::create();
    let archive = scratch.path("a.zip");
    zip_file(&archive, &[("a.csv", b"x,y\n1,2\n")]);
    std::fs::create_dir_all(extracted_dir(&archive).join("stale")).unwrap();
    let unpacked = unpack(&archive, &ArchiveLimits::default()).unwrap();
    assert_eq!(relative_names(&unpacked.dir, &unpacked.files), ["a.csv"]);
    assert!(!unpacked.dir.join("stale").exists());
}

// Formats -------------------------------------------------------------------------------

#[test]
fn every_format_round_trips() {
    let entries: [(&str, &[u8]); 3] =
        [("top.csv", b"a,b\n1,2\n"), ("dir/inner.txt", b"hello"), ("dir/deeper/empty.csv", b"")];
    let tar = tar_bytes(&entries);
    let scratch = Scratch::create();
    zip_file(&scratch.path("r.ZIP"), &entries);
    std::fs::write(scratch.path("r.tar"), &tar).unwrap();
    std::fs::write(scratch.path("r.tar.gz"), gzip(&tar)).unwrap();
    std::fs::write(scratch.path("r.tgz"), gzip(&tar)).unwrap();
    std::fs::write(scratch.path("r.tar.bz2"), bzip2(&tar)).unwrap();
    std::fs::write(scratch.path("r.Tar.Xz"), xz(&tar)).unwrap();
    for name in ["r.ZIP", "r.tar", "r.tar.gz", "r.tgz", "r.tar.bz2", "r.Tar.Xz"] {
        let unpacked = unpack(&scratch.path(name), &ArchiveLimits::default())
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let names = relative_names(&unpacked.dir, &unpacked.files);
        assert_eq!(names, ["dir/deeper/empty.csv", "dir/inner.txt", "top.csv"], "{name}");
        for (entry, content) in entries {
            assert_eq!(
                std::fs::read(unpacked.dir.join(entry)).unwrap(),
                content,
                "{name}: {entry}"
            );
        }
    }
}

#[test]
fn a_file_that_is_not_an_archive_is_refused() {
    let scratch = Scratch::create();
    let path = scratch.path("data.csv");
    std::fs::write(&path, "a,b\n").unwrap();
    let error = unpack(&path, &ArchiveLimits::default()).unwrap_err();
    assert_eq!(error.reason(), "NotAnArchive");
}

#[test]
fn a_destination_with_content_is_refused() {
    let scratch = Scratch::create();
    let archive = scratch.path("a.zip");
    zip_file(&archive, &[("a.csv", b"1")]);
    let dest = scratch.path("out");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("mine.txt"), "keep").unwrap();
    let error = unpack_into(&archive, &dest, &ArchiveLimits::default()).unwrap_err();
    assert_eq!(error.reason(), "ArchiveDestinationNotEmpty");
    assert_eq!(std::fs::read_to_string(dest.join("mine.txt")).unwrap(), "keep");
}
