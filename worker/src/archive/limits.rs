use super::error::{ArchiveError, Limit};
use std::path::Path;

/// Bounds on one unpack, nested archives included. The defaults fit real uploads (an
/// RVTools export is a few MB, compressed 5-20:1) and stop decompression bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Bytes written in total, over all levels.
    pub max_total_bytes: u64,
    /// Entries (files and directories) in total, over all levels.
    pub max_entries: u64,
    /// Levels of archives: 1 = the archive itself, 2 = archives inside it...
    pub max_depth: u32,
    /// Largest ratio of bytes written to compressed bytes read, per zip entry and per
    /// archive, e.g. 100 for 100:1.
    pub max_ratio: u64,
    /// Output below which the ratio is not checked: small files of zeros or repeated
    /// lines compress far better than 100:1 and are harmless.
    pub ratio_grace_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: 2 << 30,
            max_entries: 10_000,
            max_depth: 3,
            max_ratio: 100,
            ratio_grace_bytes: 4 << 20,
        }
    }
}

impl ArchiveLimits {
    /// Whether `output` bytes from `input` compressed bytes is too much.
    pub(super) fn ratio_exceeded(&self, output: u64, input: u64) -> bool {
        output > self.ratio_grace_bytes && output > input.saturating_mul(self.max_ratio)
    }
}

/// What the whole unpack (all levels) has used of its limits so far.
#[derive(Debug)]
pub(super) struct Budget {
    pub limits: ArchiveLimits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    pub fn new(limits: ArchiveLimits) -> Self {
        Self { limits, bytes: 0, entries: 0 }
    }

    pub fn add_entry(&mut self, archive: &Path, entry: &str) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(exceeded(archive, entry, Limit::Entries(self.limits.max_entries)));
        }
        Ok(())
    }

    /// Entries the unpack may still add.
    pub fn entries_left(&self) -> u64 {
        self.limits.max_entries.saturating_sub(self.entries)
    }

    /// Called before writing: the limit is never overshot on disk.
    pub fn add_bytes(
        &mut self,
        archive: &Path,
        entry: &str,
        bytes: u64,
    ) -> Result<(), ArchiveError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_total_bytes {
            return Err(exceeded(archive, entry, Limit::TotalBytes(self.limits.max_total_bytes)));
        }
        Ok(())
    }
}

/// A limit hit while reading a stream, carried through `io::Error` to where the entry
/// is known.
#[derive(Debug)]
pub(super) struct StreamLimit(pub(super) Limit);

impl std::fmt::Display for StreamLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the decompressed stream goes over the limit of {}", self.0)
    }
}

impl std::error::Error for StreamLimit {}

/// A read error of an archive stream: the limit it hit, or a corrupt archive.
pub(super) fn stream_error(archive: &Path, entry: &str, error: std::io::Error) -> ArchiveError {
    let limit = error.get_ref().and_then(|inner| inner.downcast_ref::<StreamLimit>());
    match limit {
        Some(StreamLimit(limit)) => exceeded(archive, entry, *limit),
        None => ArchiveError::corrupt(archive, format!("{entry}: {error}")),
    }
}

pub(super) fn exceeded(archive: &Path, entry: &str, limit: Limit) -> ArchiveError {
    ArchiveError::LimitExceeded { archive: archive.to_owned(), entry: entry.to_owned(), limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_checked_only_past_the_grace() {
        let limits = ArchiveLimits { max_ratio: 10, ratio_grace_bytes: 1000, ..Default::default() };
        assert!(!limits.ratio_exceeded(1000, 1), "within the grace");
        assert!(limits.ratio_exceeded(1001, 100));
        assert!(!limits.ratio_exceeded(1001, 101));
        assert!(!ArchiveLimits { max_ratio: u64::MAX, ..limits }.ratio_exceeded(u64::MAX, 1));
    }

    #[test]
    fn the_budget_counts_over_all_calls() {
        let limits = ArchiveLimits { max_total_bytes: 10, max_entries: 2, ..Default::default() };
        let mut budget = Budget::new(limits);
        let archive = Path::new("a.zip");
        budget.add_bytes(archive, "x", 6).unwrap();
        let error = budget.add_bytes(archive, "y", 5).unwrap_err();
        assert_eq!(error.reason(), "ArchiveTooLarge");
        assert!(error.to_string().contains("\"y\""), "{error}");
        budget.add_entry(archive, "x").unwrap();
        budget.add_entry(archive, "y").unwrap();
        assert_eq!(budget.add_entry(archive, "z").unwrap_err().reason(), "ArchiveTooManyEntries");
    }
}
