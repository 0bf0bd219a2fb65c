//! An OLE compound file (an xls, or a password-protected xlsx) walked the way calamine's
//! `Cfb` walks it, with the checks calamine lacks: a sector chain that loops or points
//! past the FAT makes calamine index out of bounds (a panic) or grow a buffer up to the
//! length a directory entry claims (gigabytes: an abort). Such a file is refused here,
//! before calamine sees it; the workbook stream of one that passes is handed back for
//! the BIFF checks of `xls_guard`.

use super::ReadError;

const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
const FIRST_SPECIAL: u32 = 0xFFFF_FFFA;
const DIFAT_SECTOR: u32 = 0xFFFF_FFFC;
const MINI_SECTOR: usize = 64;
const MINI_STREAM_CUTOFF: usize = 4096;

fn refused(detail: impl Into<String>) -> ReadError {
    ReadError::NotAWorkbook { format: "xls", detail: detail.into() }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes.get(at..at + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Sectors of `size` bytes in `data` starting at `base`, at most `max_id + 1` of them.
struct Sectors<'a> {
    data: &'a [u8],
    base: usize,
    size: usize,
    max_id: usize,
    /// Mini sectors must lie wholly in the mini stream: calamine reads a missing one
    /// from wherever the file reader stands and can slice backwards (a panic).
    whole: bool,
}

impl Sectors<'_> {
    /// Sector `id`; the last one may be cut by the end of the file, as calamine reads it.
    fn get(&self, id: u32) -> Result<&[u8], ReadError> {
        let id = id as usize;
        if id > self.max_id {
            return Err(refused(format!("sector {id} is past the end of the file")));
        }
        let start = self.base + id * self.size;
        let end = start + self.size;
        // A sector that starts past the end of the file makes calamine slice backwards.
        if start > self.data.len() || (self.whole && end > self.data.len()) {
            return Err(refused(format!("sector {id} is past the end of its stream")));
        }
        Ok(&self.data[start..end.min(self.data.len())])
    }

    /// The chain from `id` through `fat`, at most `len` bytes. A chain longer than the
    /// file has sectors loops.
    fn chain(&self, mut id: u32, fat: &[u32], len: usize) -> Result<Vec<u8>, ReadError> {
        let mut chain = Vec::new();
        let mut steps = 0usize;
        while id != END_OF_CHAIN {
            steps += 1;
            if steps > self.max_id + 1 {
                return Err(refused("a sector chain loops"));
            }
            let sector = self.get(id)?;
            let take = sector.len().min(len - chain.len());
            chain.extend_from_slice(&sector[..take]);
            if chain.len() >= len {
                break;
            }
            id = *fat
                .get(id as usize)
                .ok_or_else(|| refused(format!("sector {id} is not in the allocation table")))?;
        }
        Ok(chain)
    }
}

/// The `Workbook` (or `Book`) stream of the compound file `data`; `None` without one.
/// Fails where calamine's `Cfb::new` or `get_stream` would panic or run away.
pub(crate) fn workbook_stream(data: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
    let header = data.get(..512).ok_or_else(|| refused("shorter than an OLE header"))?;
    let size = match u16::from_le_bytes([header[30], header[31]]) {
        9 => 512,
        12 => 4096,
        _ => return Ok(None), // calamine refuses it with a typed error
    };
    if size == 4096 && data.len() < 4096 {
        return Ok(None);
    }
    let max_id = data.len() / size;
    let sectors = Sectors { data, base: size, size, max_id, whole: false };
    let mut difat: Vec<u32> = u32s(&header[76..512]).collect();
    let mut next = u32_at(header, 68);
    let mut visited = 0usize;
    while next < FIRST_SPECIAL {
        visited += 1;
        if visited > max_id + 1 {
            return Err(refused("the DIFAT chain loops"));
        }
        let sector = sectors.get(next)?;
        if sector.len() % 4 != 0 {
            return Err(refused("a DIFAT sector is cut"));
        }
        difat.extend(u32s(sector));
        next = difat.pop().ok_or_else(|| refused("an empty DIFAT sector"))?;
    }
    let mut fat = Vec::new();
    for id in difat.into_iter().filter(|id| *id < DIFAT_SECTOR) {
        let sector = sectors.get(id)?;
        if sector.len() % 4 != 0 {
            return Err(refused("a FAT sector is cut"));
        }
        fat.extend(u32s(sector));
    }
    let directory = sectors.chain(u32_at(header, 48), &fat, usize::MAX)?;
    // (name, start sector, length) of each 128-byte entry.
    let entries: Vec<(String, u32, usize)> = directory
        .chunks_exact(128)
        .map(|entry| {
            let units = entry[..64].chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]));
            let name: String = char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .take_while(|c| *c != '\0')
                .collect();
            let len = if size == 512 {
                u64::from(u32_at(entry, 120))
            } else {
                u64::from(u32_at(entry, 120)) | (u64::from(u32_at(entry, 124)) << 32)
            };
            (name, u32_at(entry, 116), usize::try_from(len).unwrap_or(usize::MAX))
        })
        .collect();
    let Some(root) = entries.first() else {
        return Ok(None);
    };
    let mini_fat_len = u32_at(header, 64) as usize;
    let (mini_fat, mini_stream) = if mini_fat_len > 0 {
        let stream = sectors.chain(root.1, &fat, root.2)?;
        let table = sectors.chain(u32_at(header, 60), &fat, mini_fat_len.saturating_mul(size))?;
        if table.len() % 4 != 0 {
            return Err(refused("the mini FAT is cut"));
        }
        (u32s(&table).collect(), stream)
    } else {
        (Vec::new(), Vec::new())
    };
    let find = |name: &str| entries.iter().find(|e| e.0.eq_ignore_ascii_case(name));
    let Some((_, start, len)) = find("Workbook").or_else(|| find("Book")) else {
        return Ok(None);
    };
    let stream = if *len < MINI_STREAM_CUTOFF {
        let minis = Sectors {
            data: &mini_stream,
            base: 0,
            size: MINI_SECTOR,
            max_id: max_id * 8,
            whole: true,
        };
        minis.chain(*start, &mini_fat, *len)?
    } else {
        sectors.chain(*start, &fat, *len)?
    };
    Ok(Some(stream))
}
