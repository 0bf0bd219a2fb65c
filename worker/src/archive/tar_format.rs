use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::rc::Rc;

use tar::EntryType;

use super::error::ArchiveError;
use super::format::ArchiveFormat;
use super::limits::Budget;
use super::write::ArchiveRun;

/// An xz header chooses the decoder's dictionary size (up to 4 GiB); real files use
/// 8 MiB (`xz -6`) to 64 MiB (`xz -9`). Larger ones are refused, not allocated.
const XZ_MEMORY_LIMIT_KIB: u32 = 256 * 1024;

/// Counts the compressed bytes the decompressor pulls from the file: a tar stream has
/// no per-entry compressed size, so the ratio is checked over the whole stream.
struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count.set(self.count.get() + read as u64);
        Ok(read)
    }
}

pub(super) fn unpack_tar(
    run: &mut ArchiveRun<'_>,
    format: ArchiveFormat,
    budget: &mut Budget,
) -> Result<(), ArchiveError> {
    let archive = run.archive;
    let file = File::open(archive).map_err(ArchiveError::io(archive))?;
    let count = Rc::new(Cell::new(0));
    let counted = CountingReader { inner: BufReader::new(file), count: Rc::clone(&count) };
    let stream: Box<dyn Read> = match format {
        ArchiveFormat::TarGz => Box::new(flate2::read::MultiGzDecoder::new(counted)),
        ArchiveFormat::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(counted)),
        ArchiveFormat::TarXz => {
            Box::new(lzma_rust2::XzReader::new_mem_limit(counted, true, XZ_MEMORY_LIMIT_KIB))
        }
        ArchiveFormat::Tar | ArchiveFormat::Zip => Box::new(counted),
    };
    let mut tar = tar::Archive::new(stream);
    let entries = tar.entries().map_err(|error| ArchiveError::corrupt(archive, error))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| ArchiveError::corrupt(archive, error))?;
        // The full name: the tar reader has applied GNU long names and PAX paths.
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            // Metadata for other entries, which the tar reader applies itself.
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => continue,
            _ => budget.add_entry(archive, &name)?,
        }
        match kind {
            EntryType::Directory => run.create_dir(&name)?,
            // Old (v7) tars mark directories only by a trailing slash.
            EntryType::Regular if name.ends_with('/') => run.create_dir(&name)?,
            EntryType::Regular | EntryType::Continuous => {
                run.write_file(budget, &name, &mut entry, None, &|| count.get())?;
            }
            EntryType::Symlink | EntryType::Link => {
                return Err(ArchiveError::Link {
                    archive: archive.to_owned(),
                    entry: name,
                    kind: if kind == EntryType::Link { "hard link" } else { "symbolic link" },
                });
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let kind = match kind {
                    EntryType::Char => "character device",
                    EntryType::Block => "block device",
                    _ => "named pipe",
                };
                return Err(ArchiveError::SpecialEntry {
                    archive: archive.to_owned(),
                    entry: name,
                    kind: kind.to_owned(),
                });
            }
            other => {
                return Err(ArchiveError::Unsupported {
                    archive: archive.to_owned(),
                    entry: name,
                    what: format!("tar entry type {other:?}"),
                });
            }
        }
    }
    Ok(())
}
