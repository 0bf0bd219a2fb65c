//! What mapping one table of one file did, for the processing history.

use std::collections::BTreeMap;

use serde::Serialize;

use super::mapper::{ConversionFailure, MappedRow, TableMapper};

/// Failures kept verbatim per table: enough to show what went wrong, bounded so that a
/// column of a million bad dates does not bloat the history document.
pub const FAILURE_SAMPLES: usize = 20;

/// Counters of one table of one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TableOutcome {
    pub table_index: usize,
    pub collection: String,
    /// Data rows seen, empty ones included.
    pub rows_read: u64,
    pub documents: u64,
    pub skipped_empty_rows: u64,
    /// Values kept raw because they did not convert, per field.
    pub conversion_failures: BTreeMap<String, u64>,
    /// The first [`FAILURE_SAMPLES`] of them.
    pub failure_samples: Vec<ConversionFailure>,
    /// Mapped columns the file's header lacks (their fields are absent).
    pub missing_columns: Vec<String>,
}

impl TableOutcome {
    pub fn new(mapper: &TableMapper) -> Self {
        Self {
            table_index: mapper.table_index(),
            collection: mapper.collection().to_owned(),
            missing_columns: mapper.missing_columns().to_vec(),
            ..Self::default()
        }
    }

    pub fn record<D>(&mut self, row: &MappedRow<D>) {
        self.rows_read += 1;
        match row {
            MappedRow::Empty => self.skipped_empty_rows += 1,
            MappedRow::Document(mapped) => {
                self.documents += 1;
                for failure in &mapped.failures {
                    *self.conversion_failures.entry(failure.field.clone()).or_default() += 1;
                    if self.failure_samples.len() < FAILURE_SAMPLES {
                        self.failure_samples.push(failure.clone());
                    }
                }
            }
        }
    }

    /// All values kept raw in this table.
    pub fn total_conversion_failures(&self) -> u64 {
        self.conversion_failures.values().sum()
    }
}
