//! Text files (.txt, .xml, and .csv without a named column): every match of the
//! `filecontent` rules replaced, the rest kept byte for byte. The file is read whole:
//! a pattern may span lines, and such files are small next to the workbooks.

use std::path::Path;

use super::error::FileError;
use super::rules::Rules;
use super::token::Tokenizer;

pub fn anonymize(
    input: &Path,
    output: &Path,
    rules: &Rules,
    tokenizer: &mut Tokenizer,
) -> Result<(), FileError> {
    let content = std::fs::read(input)
        .map_err(|source| FileError::Read { path: input.to_owned(), source })?;
    let replaced = rules
        .apply(&content, tokenizer)
        .map_err(|source| FileError::Token { path: input.to_owned(), source })?;
    std::fs::write(output, replaced)
        .map_err(|source| FileError::Write { path: output.to_owned(), source })
}

/// Copies a file no rule applies to.
pub fn copy(input: &Path, output: &Path) -> Result<(), FileError> {
    // `fs::copy` reports a missing input and an unwritable output alike; tell them apart.
    std::fs::File::open(input)
        .map_err(|source| FileError::Read { path: input.to_owned(), source })?;
    std::fs::copy(input, output)
        .map(drop)
        .map_err(|source| FileError::Write { path: output.to_owned(), source })
}
