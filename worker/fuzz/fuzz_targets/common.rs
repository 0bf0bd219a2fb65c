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

pub fn write_input(data: &[u8], extension: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("input.{extension}"));
    std::fs::write(&path, data).expect("write input");
    (dir, path)
}
