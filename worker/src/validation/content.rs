//! Content checks that need no table: requiredInputType on the name, and keywords in
//! the first `buffer` bytes (decoded as UTF-8, lossy: SDK divergence 6).

use std::path::Path;

use super::input_type::{ends_with_any, required_suffixes};
use super::validator::Validator;
use crate::read::text_prefix;

impl Validator<'_> {
    /// requiredInputType: the SDK printed the value as written (`excel`).
    pub(super) fn input_type_failure(&self, filename: &str) -> Option<String> {
        let required = self.params.required_input_type.as_deref()?;
        (!ends_with_any(filename, &required_suffixes(required)))
            .then(|| format!("File is not of required input type: {required}"))
    }

    /// textContainsAll then textContainsAny; the file is read only when one is set.
    pub(super) fn text_failures(&self, path: &Path) -> Vec<String> {
        if self.text_contains_all.is_none() && self.text_contains_any.is_none() {
            return Vec::new();
        }
        let buffer = usize::try_from(self.params.buffer).unwrap_or(0);
        let text = match text_prefix(path, buffer) {
            Ok(text) => text,
            Err(error) => return vec![error.to_string()],
        };
        let mut failures = Vec::new();
        match self.text_contains_all.as_deref() {
            Some(Ok(keywords)) if !keywords.all_in(&text) => failures.push(format!(
                "File must contain the all following keywords: {}",
                keywords.listed()
            )),
            Some(Err(invalid)) => failures.push(invalid.to_string()),
            _ => {}
        }
        match self.text_contains_any.as_deref() {
            Some(Ok(keywords)) if !keywords.any_in(&text) => failures.push(format!(
                "File must contain at least one of the following keywords: {}",
                keywords.listed()
            )),
            Some(Err(invalid)) => failures.push(invalid.to_string()),
            _ => {}
        }
        failures
    }
}
