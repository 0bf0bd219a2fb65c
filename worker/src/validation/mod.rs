//! The validation engine: the SDK's filename and file-content checks (§1.6, §1.7),
//! with its bugs fixed (§12 rows 1-6) and its wire shapes and messages kept. Pure
//! library code: the HTTP endpoints, the consumer and `licenseware-worker validate`
//! call it.
//!
//! - [`validate_filenames`] / [`validate_files`]: a batch, as the SDK's handlers.
//! - [`Validator`]: the rules compiled once, for one file at a time
//!   ([`Validator::check_filename`], [`Validator::check_file`]), e.g. archive members.

mod content;
mod input_type;
mod keywords;
mod pyrepr;
mod required_items;
mod response;
mod tabular;
mod validator;

pub use input_type::required_suffixes;
pub use keywords::{InvalidKeyword, Keywords};
pub use pyrepr::{py_list, py_nested, py_str};
pub use required_items::missing_items;
pub use response::{
    CONTENTS_ANALYSED, FILENAMES_ANALYSED, FileValidationResponse, Status, ValidationResponse,
};
pub use tabular::{NOT_TABULAR, select_sheets};
pub use validator::{CompiledRules, FileToValidate, Validator, validate_filenames, validate_files};

#[cfg(test)]
mod tests;
