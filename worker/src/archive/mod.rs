//! Unpacking uploaded archives for processing, recursively, like the SDK's
//! `recursive_unzip`: `{archive}_extracted` receives the content, each archive found
//! inside is unpacked next to itself and then deleted, until none remain.
//!
//! Uploads are untrusted, so unpacking is bounded ([`ArchiveLimits`]: bytes, entries,
//! nesting, compression ratio, all counted on what is actually written) and confined:
//! only regular files and directories are created, never through or as links, never
//! outside the destination, and a failed unpack leaves nothing behind.
//!
//! (Validation never unpacks: it sees an archive as an opaque file, like the SDK.)

mod entry_path;
mod error;
mod format;
mod limits;
mod recursive;
mod tar_format;
mod write;
mod zip_format;
mod zip_open;

pub use error::{ArchiveError, Limit};
pub use format::{ArchiveFormat, archive_format, is_archive};
pub use limits::ArchiveLimits;
pub use recursive::{Unpacked, extracted_dir, unpack, unpack_into};
pub(crate) use zip_open::{ZipOpenError, open_zip};
