//! calamine's failures made into `ReadError`s: its password errors (one per reader)
//! told from the others, and its panics caught.

use calamine::{OdsError, XlsError, XlsbError, XlsxError};

use super::ReadError;

/// Runs a calamine call, turning a panic into a read error. calamine's parsers index
/// into the file's bytes and do arithmetic on its numbers unchecked in places (an xls
/// record shorter than it should be, a cell reference past u32): a crafted upload must
/// give a failed entry, not take the worker down. Allocation failures are not panics:
/// the guards (`xlsx_guard`, `xls_guard`, `ods_guard`) refuse those files before.
pub(crate) fn unpanicked<T>(call: impl FnOnce() -> Result<T, ReadError>) -> Result<T, ReadError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the reader failed".to_owned());
        Err(ReadError::Workbook { detail: format!("the workbook is malformed ({detail})") })
    })
}

/// Each calamine reader has its own error type, each with a `Password` variant.
pub(crate) trait PasswordError: std::fmt::Display {
    fn is_password(&self) -> bool;
}

impl PasswordError for XlsxError {
    fn is_password(&self) -> bool {
        matches!(self, Self::Password)
    }
}

impl PasswordError for XlsbError {
    fn is_password(&self) -> bool {
        matches!(self, Self::Password)
    }
}

impl PasswordError for XlsError {
    fn is_password(&self) -> bool {
        matches!(self, Self::Password)
    }
}

impl PasswordError for OdsError {
    fn is_password(&self) -> bool {
        matches!(self, Self::Password)
    }
}
