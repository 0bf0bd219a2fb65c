use std::fmt;
use std::path::PathBuf;

/// A limit of [`super::ArchiveLimits`] that an archive went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    TotalBytes(u64),
    Entries(u64),
    Depth(u32),
    Ratio(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TotalBytes(bytes) => write!(f, "{bytes} uncompressed bytes in total"),
            Self::Entries(entries) => write!(f, "{entries} entries in total"),
            Self::Depth(levels) => write!(f, "{levels} levels of nested archives"),
            Self::Ratio(ratio) => write!(f, "a compression ratio of {ratio}:1"),
        }
    }
}

/// Why an archive was not unpacked. Whatever the error, nothing of it stays on disk.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "{path} is not an archive the worker unpacks (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz)"
    )]
    NotAnArchive { path: PathBuf },
    #[error("cannot unpack into {path}: it exists and is not an empty directory")]
    DestinationNotEmpty { path: PathBuf },
    #[error("{archive}: entry {entry:?} goes over the limit of {limit}")]
    LimitExceeded { archive: PathBuf, entry: String, limit: Limit },
    #[error(
        "{archive}: entry {entry:?} has a path outside the destination (absolute or with '..')"
    )]
    UnsafePath { archive: PathBuf, entry: String },
    #[error("{archive}: entry {entry:?} is a {kind}; links are refused")]
    Link { archive: PathBuf, entry: String, kind: &'static str },
    #[error("{archive}: entry {entry:?} is a {kind}; only files and directories are unpacked")]
    SpecialEntry { archive: PathBuf, entry: String, kind: String },
    #[error("{archive}: entry {entry:?} appears more than once")]
    DuplicateEntry { archive: PathBuf, entry: String },
    #[error("{archive}: entry {entry:?} cannot be unpacked: {what}")]
    Unsupported { archive: PathBuf, entry: String, what: String },
    #[error("{archive} is corrupt or unreadable: {message}")]
    Corrupt { archive: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl ArchiveError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAnArchive { .. } => "NotAnArchive",
            Self::DestinationNotEmpty { .. } => "ArchiveDestinationNotEmpty",
            Self::LimitExceeded { limit, .. } => match limit {
                Limit::TotalBytes(_) => "ArchiveTooLarge",
                Limit::Entries(_) => "ArchiveTooManyEntries",
                Limit::Depth(_) => "ArchiveTooDeep",
                Limit::Ratio(_) => "ArchiveRatioTooHigh",
            },
            Self::UnsafePath { .. } => "ArchiveUnsafePath",
            Self::Link { .. } => "ArchiveLinkEntry",
            Self::SpecialEntry { .. } => "ArchiveSpecialEntry",
            Self::DuplicateEntry { .. } => "ArchiveDuplicateEntry",
            Self::Unsupported { .. } => "ArchiveUnsupportedEntry",
            Self::Corrupt { .. } => "ArchiveCorrupt",
            Self::Io { .. } => "ArchiveIo",
        }
    }

    pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(super) fn corrupt(archive: &std::path::Path, message: impl fmt::Display) -> Self {
        Self::Corrupt { archive: archive.to_owned(), message: message.to_string() }
    }
}
