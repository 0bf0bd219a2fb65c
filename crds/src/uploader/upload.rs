//! `spec.upload`: what the API accepts in one upload request, enforced while the body
//! streams (413 mid-stream, nothing left on disk).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// 1 GiB: an RVTools export of a large estate is tens of MB; a 1 GB file is the
/// guidance of importer services (Flatfile) for one upload.
const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;
const DEFAULT_MAX_FILES: u32 = 100;
/// 4 GiB: a worker's scratch volume holds 4 GiB; one request never outgrows it.
const DEFAULT_MAX_TOTAL_BYTES: u64 = 4 << 30;

/// Limits on one upload request (`POST .../files`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadLimits {
    /// Largest file accepted, in bytes. Default 1 GiB.
    #[serde(default = "default_max_file_bytes")]
    #[schemars(range(min = 1))]
    pub max_file_bytes: u64,
    /// Most files in one request. Default 100.
    #[serde(default = "default_max_files")]
    #[schemars(range(min = 1))]
    pub max_files: u32,
    /// Most bytes of all files of one request together. Default 4 GiB.
    #[serde(default = "default_max_total_bytes")]
    #[schemars(range(min = 1))]
    pub max_total_bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: DEFAULT_MAX_FILES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

fn default_max_files() -> u32 {
    DEFAULT_MAX_FILES
}

fn default_max_total_bytes() -> u64 {
    DEFAULT_MAX_TOTAL_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_take_the_defaults() {
        let limits: UploadLimits = serde_json::from_str(r#"{"maxFiles": 3}"#).unwrap();
        assert_eq!(limits.max_files, 3);
        assert_eq!(limits.max_file_bytes, 1 << 30);
        assert_eq!(limits.max_total_bytes, 4 << 30);
    }
}
