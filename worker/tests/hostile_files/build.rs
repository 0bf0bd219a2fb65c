//! Builders of crafted files. The bombs stay small on disk without compressing gigabytes
//! in the test: a deflate, gzip or bzip2 piece compressed once is repeated, which the
//! formats allow (a fully flushed deflate piece is byte-aligned and refers to nothing
//! before it; gzip and bzip2 streams concatenate). Zips are written by hand so that
//! they can hold what zip writers refuse: duplicate names, a size they do not check.

use std::io::Write;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

pub const MIB: usize = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Raw deflate of `data` from a fresh compressor: byte-aligned and self-contained
/// (fully flushed) unless `last`, which ends the stream.
pub fn deflate_piece(data: &[u8], last: bool) -> Vec<u8> {
    let mut compress = Compress::new(Compression::best(), false);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Full };
    let mut out = Vec::with_capacity(data.len() / 4 + 1024);
    loop {
        out.reserve(out.len().max(64 * 1024));
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut out, flush)
            .expect("crafting the test file");
        let done = compress.total_in() as usize == data.len();
        match (status, last) {
            (Status::StreamEnd, true) => return out,
            (_, false) if done && out.len() < out.capacity() => return out,
            _ => {}
        }
    }
}

/// One zip entry, already compressed.
pub struct Part {
    pub name: String,
    /// 0 stored, 8 deflated.
    method: u16,
    data: Vec<u8>,
    crc: u32,
    size: u64,
}

impl Part {
    pub fn new(name: &str, content: &[u8]) -> Self {
        let mut crc = Crc::new();
        crc.update(content);
        Self {
            name: name.to_owned(),
            method: 8,
            data: deflate_piece(content, true),
            crc: crc.sum(),
            size: content.len() as u64,
        }
    }

    /// `prefix`, `chunk` repeated `times`, `suffix`: a part of any size from a few
    /// compressed kilobytes. Its checksum is not computed (zero): readers check it at
    /// the end of the part, which a bounded reader never reaches.
    pub fn repeated(name: &str, prefix: &[u8], chunk: &[u8], times: u64, suffix: &[u8]) -> Self {
        let mut data = deflate_piece(prefix, false);
        let piece = deflate_piece(chunk, false);
        for _ in 0..times {
            data.extend_from_slice(&piece);
        }
        data.extend_from_slice(&deflate_piece(suffix, true));
        let size = prefix.len() as u64 + chunk.len() as u64 * times + suffix.len() as u64;
        Self { name: name.to_owned(), method: 8, data, crc: 0, size }
    }

    pub fn stored(name: &str, content: &[u8]) -> Self {
        let mut part = Self::new(name, content);
        part.method = 0;
        part.data = content.to_vec();
        part
    }
}

/// A zip of `parts` in order, names as given (duplicates included).
pub fn zip_of(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for part in parts {
        let offset = out.len() as u32;
        let size = u32::try_from(part.size).expect("sizes below 4 GiB");
        let header = |signature: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&signature.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&part.method.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&0x21u16.to_le_bytes());
            h.extend_from_slice(&part.crc.to_le_bytes());
            h.extend_from_slice(&(part.data.len() as u32).to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&(part.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                // Comment length, disk, internal and external attributes.
                h.extend_from_slice(&[0; 10]);
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(part.name.as_bytes());
            h
        };
        out.extend_from_slice(&header(0x0403_4b50, false));
        out.extend_from_slice(&part.data);
        central.extend_from_slice(&header(0x0201_4b50, true));
    }
    let (start, length) = (out.len() as u32, central.len() as u32);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
    out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

pub const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const RELS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const DOC_RELS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

/// The header row every crafted sheet starts with: one cell, `h`.
pub const HEADER_ROW: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>h</t></is></c></row>"#;

/// The package around sheets: `_rels/.rels`, the workbook with one `<sheet>` per name,
/// all pointing at the parts `targets` gives (by relationship).
pub fn package_parts(sheets: &[(&str, &str)]) -> Vec<Part> {
    let rels = format!(
        r#"<?xml version="1.0"?><Relationships xmlns="{RELS}"><Relationship Id="rId1" Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
    );
    let mut workbook = format!(r#"<workbook xmlns="{MAIN}" xmlns:r="{DOC_RELS}"><sheets>"#);
    let mut workbook_rels = format!(r#"<Relationships xmlns="{RELS}">"#);
    let mut targets: Vec<&str> = Vec::new();
    for (index, (name, target)) in sheets.iter().enumerate() {
        let id = match targets.iter().position(|known| known == target) {
            Some(known) => known + 1,
            None => {
                targets.push(target);
                workbook_rels.push_str(&format!(
                    r#"<Relationship Id="rId{}" Type="{DOC_RELS}/worksheet" Target="{target}"/>"#,
                    targets.len()
                ));
                targets.len()
            }
        };
        workbook
            .push_str(&format!(r#"<sheet name="{name}" sheetId="{}" r:id="rId{id}"/>"#, index + 1));
    }
    workbook.push_str("</sheets></workbook>");
    workbook_rels.push_str("</Relationships>");
    vec![
        Part::new("_rels/.rels", rels.as_bytes()),
        Part::new("xl/workbook.xml", workbook.as_bytes()),
        Part::new("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes()),
    ]
}

/// A worksheet part holding `rows` (XML).
pub fn sheet(rows: &str) -> Vec<u8> {
    format!(r#"<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData></worksheet>"#).into_bytes()
}

/// An xlsx of one sheet `S` at `xl/worksheets/sheet1.xml` plus `extra` parts.
pub fn xlsx(sheet_part: Part, extra: Vec<Part>) -> Vec<u8> {
    let mut parts = package_parts(&[("S", "worksheets/sheet1.xml")]);
    parts.push(sheet_part);
    parts.extend(extra);
    zip_of(&parts)
}

/// A shared-string table whose `<sst>` tag is `sst_tag` and items `items`.
pub fn shared_strings(sst_tag: &str, items: &str) -> Part {
    Part::new("xl/sharedStrings.xml", format!("{sst_tag}{items}</sst>").as_bytes())
}

/// An ods whose only table `S` holds `rows` (XML).
pub fn ods(content: Part) -> Vec<u8> {
    zip_of(&[
        Part::stored("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
        Part::new(
            "META-INF/manifest.xml",
            br#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"></manifest:manifest>"#,
        ),
        content,
    ])
}

pub const ODS_HEAD: &str = r#"<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet><table:table table:name="S">"#;
pub const ODS_TAIL: &str =
    "</table:table></office:spreadsheet></office:body></office:document-content>";
pub const ODS_HEADER_ROW: &str = r#"<table:table-row><table:table-cell office:value-type="string"><text:p>h</text:p></table:table-cell></table:table-row>"#;

/// A 512-byte ustar header of an entry of `kind` (`b'0'` file, `b'5'` directory,
/// `b'L'` GNU long name...) named `name` with `size` bytes of content.
pub fn tar_header(name: &str, kind: u8, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).expect("crafting the test file");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::new(kind));
    header.set_cksum();
    header.as_bytes().to_vec()
}

/// Gzip members concatenated: `head`, `chunk` compressed once and repeated `times`,
/// `tail`.
pub fn gzip_repeated(head: &[u8], chunk: &[u8], times: u64, tail: &[u8]) -> Vec<u8> {
    let gz = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).expect("crafting the test file");
        encoder.finish().expect("crafting the test file")
    };
    let piece = gz(chunk);
    let mut out = gz(head);
    for _ in 0..times {
        out.extend_from_slice(&piece);
    }
    out.extend_from_slice(&gz(tail));
    out
}

/// The same with bzip2 streams.
pub fn bzip2_repeated(head: &[u8], chunk: &[u8], times: u64, tail: &[u8]) -> Vec<u8> {
    let bz = |bytes: &[u8]| {
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        encoder.write_all(bytes).expect("crafting the test file");
        encoder.finish().expect("crafting the test file")
    };
    let piece = bz(chunk);
    let mut out = bz(head);
    for _ in 0..times {
        out.extend_from_slice(&piece);
    }
    out.extend_from_slice(&bz(tail));
    out
}
