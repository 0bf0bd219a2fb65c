use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::rc::Rc;

use tar::EntryType;

use super::error::{ArchiveError, Limit};
use super::format::ArchiveFormat;
use super::limits::{ArchiveLimits, Budget, StreamLimit, stream_error};
use super::write::ArchiveRun;

/// An xz header chooses the decoder's dictionary size (up to 4 GiB); real files use
/// 8 MiB (`xz -6`) to 64 MiB (`xz -9`). Larger ones are refused, not allocated.
const XZ_MEMORY_LIMIT_KIB: u32 = 256 * 1024;
/// The data of a GNU long name or link, or of a pax header: a few paths and numbers.
/// The tar reader would read them whole, whatever size the header claims (a 3 GiB
/// long name was read into memory before any limit applied).
const MAX_EXTENSION_BYTES: u64 = 64 * 1024;
/// Tar framing per entry beyond its content: its header, an extension header with its
/// data, padding to 512 bytes.
const FRAMING_PER_ENTRY: u64 = 4 * 512 + MAX_EXTENSION_BYTES;

/// Bounds what the decompressor hands the tar reader, whatever the tar reader does with
/// it (writes it, skips it, reads it as a header): the archive's byte limit plus the
/// framing its entries may need, and the archive's compression ratio. Without it the
/// content of skipped entries (directories with a size, pax headers) was decompressed
/// without bound: 8 GiB from a 6 KB .tar.bz2.
struct LimitedStream<R> {
    inner: R,
    read: u64,
    max: u64,
    limits: ArchiveLimits,
    compressed: Rc<Cell<u64>>,
}

impl<R: Read> Read for LimitedStream<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.read += read as u64;
        let over = if self.read > self.max {
            Some(Limit::TotalBytes(self.limits.max_total_bytes))
        } else if self.limits.ratio_exceeded(self.read, self.compressed.get()) {
            Some(Limit::Ratio(self.limits.max_ratio))
        } else {
            None
        };
        match over {
            Some(limit) => Err(std::io::Error::other(StreamLimit(limit))),
            None => Ok(read),
        }
    }
}

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
    let limits = budget.limits;
    let framing = limits.max_entries.saturating_add(1).saturating_mul(FRAMING_PER_ENTRY);
    let stream = LimitedStream {
        inner: stream,
        read: 0,
        max: limits.max_total_bytes.saturating_add(framing),
        limits,
        compressed: Rc::clone(&count),
    };
    let mut tar = tar::Archive::new(stream);
    // Raw: the tar reader reads extension entries (long names, pax headers) whole
    // whatever their size; here they are read bounded and applied by `Extensions`.
    let entries = tar.entries().map_err(|error| stream_error(archive, "", error))?.raw(true);
    let mut extensions = Extensions::default();
    for entry in entries {
        let mut entry = entry.map_err(|error| stream_error(archive, "", error))?;
        let kind = entry.header().entry_type();
        if extensions.take_extension(archive, kind, &mut entry)? {
            continue;
        }
        let name = extensions
            .path
            .take()
            .unwrap_or_else(|| String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        // Raw reading takes sizes from the headers: a pax size that differs (only for
        // files of 8 GiB and more, beyond the limits anyway) is refused, not misread.
        if extensions.size.take().is_some_and(|size| size != entry.size()) {
            return Err(ArchiveError::Unsupported {
                archive: archive.to_owned(),
                entry: name,
                what: "a pax size override".into(),
            });
        }
        budget.add_entry(archive, &name)?;
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

/// What extension entries say about the next entry.
#[derive(Default)]
struct Extensions {
    path: Option<String>,
    size: Option<u64>,
}

impl Extensions {
    /// Reads `entry` if it is an extension entry (returns true); its data is read up to
    /// `MAX_EXTENSION_BYTES`, a larger one is refused.
    fn take_extension<R: Read>(
        &mut self,
        archive: &std::path::Path,
        kind: EntryType,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<bool, ArchiveError> {
        if !matches!(
            kind,
            EntryType::GNULongName
                | EntryType::GNULongLink
                | EntryType::XHeader
                | EntryType::XGlobalHeader
        ) {
            return Ok(false);
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if entry.size() > MAX_EXTENSION_BYTES {
            return Err(ArchiveError::Unsupported {
                archive: archive.to_owned(),
                entry: name,
                what: format!(
                    "a {kind:?} of {} bytes (at most {MAX_EXTENSION_BYTES})",
                    entry.size()
                ),
            });
        }
        let mut data = Vec::new();
        entry
            .take(MAX_EXTENSION_BYTES)
            .read_to_end(&mut data)
            .map_err(|error| stream_error(archive, &name, error))?;
        match kind {
            EntryType::GNULongName => {
                let end = data.iter().position(|&byte| byte == 0).unwrap_or(data.len());
                self.path = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            EntryType::XHeader => {
                for extension in tar::PaxExtensions::new(&data) {
                    let extension =
                        extension.map_err(|error| ArchiveError::corrupt(archive, error))?;
                    match extension.key() {
                        Ok("path") => {
                            self.path =
                                Some(String::from_utf8_lossy(extension.value_bytes()).into_owned());
                        }
                        Ok("size") => {
                            let size = std::str::from_utf8(extension.value_bytes())
                                .ok()
                                .and_then(|size| size.parse().ok())
                                .unwrap_or(u64::MAX);
                            self.size = Some(size);
                        }
                        _ => {}
                    }
                }
            }
            // A link's target (links are refused) and global headers apply no path.
            _ => {}
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{ArchiveLimits, unpack_into};

    fn unpack(
        tar: &[u8],
    ) -> (tempfile::TempDir, Result<super::super::Unpacked, super::ArchiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        std::fs::write(&archive, tar).unwrap();
        let result = unpack_into(&archive, &dir.path().join("out"), &ArchiveLimits::default());
        (dir, result)
    }

    #[test]
    fn gnu_long_names_and_pax_paths_still_name_their_entries() {
        let long = format!("{}/file.csv", "d".repeat(150));
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        builder.append_data(&mut header, &long, &b"ab"[..]).unwrap();
        let mut pax = tar::Header::new_ustar();
        pax.set_size(1);
        pax.set_mode(0o644);
        let paxed = format!("{}/pax.csv", "p".repeat(120));
        builder.append_pax_extensions([("path", paxed.as_bytes())]).unwrap();
        builder.append_data(&mut pax, "short.csv", &b"c"[..]).unwrap();
        let (dir, result) = unpack(&builder.into_inner().unwrap());
        let unpacked = result.unwrap();
        let out = dir.path().join("out");
        assert_eq!(std::fs::read(out.join(&long)).unwrap(), b"ab");
        assert_eq!(std::fs::read(out.join(&paxed)).unwrap(), b"c");
        assert_eq!(unpacked.files.len(), 2);
        assert!(!Path::new(&out.join("short.csv")).exists());
    }

    #[test]
    fn an_oversized_long_name_is_refused_before_it_is_read() {
        let mut header = tar::Header::new_gnu();
        header.set_path("././@LongLink").unwrap();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(1 << 30);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(&[b'a'; 4096]);
        let (_dir, result) = unpack(&tar);
        let error = result.unwrap_err();
        assert_eq!(error.reason(), "ArchiveUnsupportedEntry", "{error}");
    }
}
