//! SDK `UploaderValidationParameters`: the checks run on file names and contents
//! before a file is accepted.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// `requiredInputType`: a named type or a file extension.
const INPUT_TYPE_PATTERN: &str = r"^(excel|csv|xml|text|txt|\.[A-Za-z0-9][A-Za-z0-9.]*)$";

/// Checks run on uploaded files. Every field is optional; an absent list means that
/// check is skipped.
// Options whose SDK default is None stay Options: for some of them "absent" and "empty"
// differ (an empty filenameEndswith rejects every file).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationParameters {
    /// Type the file content must have: excel (.xlsx, .xls), csv, xml, text or txt (.txt),
    /// or an extension such as ".csv". Content checks on files other than csv and excel
    /// need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(INPUT_TYPE_PATTERN))]
    pub required_input_type: Option<String>,
    /// The file name must contain at least one of these terms (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename_contains: Option<Vec<String>>,
    /// The file name must end with one of these suffixes (case-sensitive), e.g.
    /// [".xls", ".xlsx"]. An empty list rejects every file; leave it out to accept any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename_endswith: Option<Vec<String>>,
    /// Sheets an Excel file must have, as alternatives: the file passes when it has every
    /// sheet of at least one inner list, e.g. [[tabvInfo, tabvHost], [vInfo, vHost]].
    /// Sheet names are case-sensitive. A single set of sheets is one inner list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.all(alternative, size(alternative) > 0)")
        .message("each alternative in requiredSheets must name at least one sheet"))]
    pub required_sheets: Option<Vec<Vec<String>>>,
    /// Columns the file must have, as alternatives like requiredSheets: the file passes
    /// when it has every column of at least one inner list. Column names are
    /// case-sensitive. For Excel, the headers of the required sheets count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self.all(alternative, size(alternative) > 0)")
        .message("each alternative in requiredColumns must name at least one column"))]
    pub required_columns: Option<Vec<Vec<String>>>,
    /// Fewest data rows (after the header) a csv file, or each checked sheet, must have.
    /// 0 disables the check.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub min_rows_number: i64,
    /// Number of lines or rows before the header.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub header_starts_at: i64,
    /// The first `buffer` bytes of the file must contain all of these terms
    /// (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_contains_all: Option<Vec<String>>,
    /// The first `buffer` bytes of the file must contain at least one of these terms
    /// (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_contains_any: Option<Vec<String>>,
    /// File names (exact match) that are skipped: reported as "skipped" and not processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_filenames: Option<Vec<String>>,
    /// Number of bytes read from the start of a file for textContainsAll and
    /// textContainsAny.
    #[serde(default = "default_buffer")]
    #[schemars(range(min = 1))]
    pub buffer: i64,
    /// Message of a file that passed validation.
    #[serde(default = "default_valid_message")]
    pub filename_valid_message: String,
    /// Message of a file skipped because of ignoreFilenames.
    #[serde(default = "default_ignored_message")]
    pub filename_ignored_message: String,
    /// Treat the search terms as plain text (true) or as regular expressions (false).
    #[serde(default = "crate::defaults::yes")]
    pub regex_escape: bool,
    /// Flag for the universal uploader app: true means that app ignores this uploader.
    #[serde(default)]
    pub ignored_by_uup: bool,
}

fn default_buffer() -> i64 {
    15000
}

fn default_valid_message() -> String {
    "File is valid".to_owned()
}

fn default_ignored_message() -> String {
    "File is ignored".to_owned()
}

impl Default for ValidationParameters {
    fn default() -> Self {
        Self {
            required_input_type: None,
            filename_contains: None,
            filename_endswith: None,
            required_sheets: None,
            required_columns: None,
            min_rows_number: 0,
            header_starts_at: 0,
            text_contains_all: None,
            text_contains_any: None,
            ignore_filenames: None,
            buffer: default_buffer(),
            filename_valid_message: default_valid_message(),
            filename_ignored_message: default_ignored_message(),
            regex_escape: true,
            ignored_by_uup: false,
        }
    }
}
