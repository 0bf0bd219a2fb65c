//! Shared by the fuzz targets: the bytes become a file with the given extension, which
//! goes through the same calls as an upload.

use std::path::PathBuf;

use licenseware_crds::ValidationParameters;

/// Rules that make the validator read everything it can: sheets, columns, rows, text.
#[allow(dead_code)] // not every target validates
pub fn demanding_rules() -> ValidationParameters {
    serde_yaml::from_str(
        "requiredSheets: [[Sheet1], [Data]]\n\
         requiredColumns: [[a, b], [VM]]\n\
         minRowsNumber: 3\n\
         headerStartsAt: 1\n\
         textContainsAny: [a]\n\
         buffer: 4096\n",
    )
    .expect("static rules")
}

/// The worker catches calamine's panics and reports them as read errors; libFuzzer's
/// panic hook would abort on those too. The default hook is put back once, so that only
/// a panic that escapes the worker (which libfuzzer-sys still aborts on) is a crash.
#[allow(dead_code)] // not every target reads workbooks
pub fn allow_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| drop(std::panic::take_hook()));
}

pub fn write_input(data: &[u8], extension: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("input.{extension}"));
    std::fs::write(&path, data).expect("write input");
    (dir, path)
}
