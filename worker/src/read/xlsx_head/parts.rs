//! The package around the sheets: which part is the workbook (`_rels/.rels`), its
//! sheets' names (`workbook.xml`) and where each sheet's XML is (`workbook.xml.rels`).
//! The same parts, in the same order and with the same refusals, as calamine reads when
//! it opens an xlsx; unlike calamine, neither the shared strings nor the styles.

use std::collections::HashMap;

use quick_xml::events::Event;
use zip::ZipArchive;
use zip::result::ZipError;

use super::super::ReadError;
use super::super::limits::{MAX_PACKAGE_ENTRIES, MAX_PACKAGE_PART_BYTES, MAX_PART_BYTES};
use super::xml::{FileReader, XmlReader, attr, local_name_is, raw_attrs, xml_reader};
use crate::archive::{ZipOpenError, open_zip};

/// The sheets of a workbook and the folder of its parts.
#[derive(Debug)]
pub(crate) struct Package {
    /// The workbook part's folder, `xl/` as Excel writes it.
    pub(crate) xl_path: String,
    /// `(name, part path)` in workbook order.
    pub(crate) sheets: Vec<(String, String)>,
    /// Entry names by their lowercase, `/`-separated form: parts are found whatever
    /// case or separator the writer used, as calamine finds them.
    pub(crate) entries: HashMap<String, String>,
}

fn broken(detail: impl std::fmt::Display) -> ReadError {
    ReadError::not_a_workbook("xlsx", detail)
}

/// Opens a workbook's zip: entries counted before the directory is read, and names
/// that calamine's case-insensitive lookup would confuse refused.
pub(crate) fn open_package(path: &std::path::Path) -> Result<ZipArchive<FileReader>, ReadError> {
    let reader = std::io::BufReader::new(std::fs::File::open(path)?);
    open_zip(reader, MAX_PACKAGE_ENTRIES, true).map_err(|error| match error {
        ZipOpenError::Io(error) => ReadError::Io(error),
        ZipOpenError::TooManyEntries { .. } => ReadError::too_large(error),
        other => broken(other),
    })
}

impl Package {
    pub(crate) fn read(zip: &mut ZipArchive<FileReader>) -> Result<Self, ReadError> {
        let mut entries = HashMap::with_capacity(zip.len());
        for name in zip.file_names() {
            let name = name.map_err(broken)?;
            entries.insert(name.replace('\\', "/").to_ascii_lowercase(), name.into_owned());
        }
        let mut package = Self { xl_path: "xl/".into(), sheets: Vec::new(), entries };
        let document = package
            .document_target(zip)?
            .ok_or_else(|| broken("no officeDocument relationship"))?;
        let (dir, name) = document.split_at(document.rfind('/').map_or(0, |i| i + 1));
        package.xl_path = dir.strip_prefix('/').unwrap_or(dir).to_owned();
        let workbook_name = if name.is_empty() { "workbook.xml" } else { name };
        let rels_path = format!("{}_rels/{workbook_name}.rels", package.xl_path);
        let relationships = package.relationships(zip, &rels_path)?;
        let workbook_path = format!("{}{workbook_name}", package.xl_path);
        package.read_sheets(zip, &workbook_path, &relationships)?;
        Ok(package)
    }

    /// The entry name of part `path`, by calamine's lookup.
    pub(crate) fn entry<'a>(&'a self, path: &'a str) -> &'a str {
        self.entries.get(&path.to_ascii_lowercase()).map_or(path, String::as_str)
    }

    /// Part `path` as XML; `None` when the archive has no such entry.
    pub(crate) fn open<'z>(
        &self,
        zip: &'z mut ZipArchive<FileReader>,
        path: &str,
    ) -> Result<Option<XmlReader<'z>>, ReadError> {
        self.open_bounded(zip, path, MAX_PART_BYTES)
    }

    /// Part `path` as XML of at most `max_bytes`; `None` when there is no such entry.
    pub(crate) fn open_bounded<'z>(
        &self,
        zip: &'z mut ZipArchive<FileReader>,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<XmlReader<'z>>, ReadError> {
        match zip.by_name(self.entry(path)) {
            Ok(entry) => Ok(Some(xml_reader(entry, path, max_bytes))),
            Err(ZipError::FileNotFound) => Ok(None),
            Err(error) => Err(broken(format!("{path}: {error}"))),
        }
    }

    /// The target of `_rels/.rels`'s officeDocument relationship (entities decoded).
    fn document_target(
        &self,
        zip: &mut ZipArchive<FileReader>,
    ) -> Result<Option<String>, ReadError> {
        let part = "_rels/.rels";
        let mut xml = self
            .open_bounded(zip, part, MAX_PACKAGE_PART_BYTES)?
            .ok_or_else(|| broken(format!("no {part}")))?;
        let fail = |detail: String| broken(format!("{part}: {detail}"));
        let mut buf = Vec::new();
        let mut started = false;
        let mut target = None;
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
                Event::Start(e) if !started => started = e.local_name().as_ref() == "Relationships",
                Event::Start(e) if e.local_name().as_ref() == "Relationship" => {
                    let kind = attr(&e, "Type").map_err(fail)?;
                    if kind.is_some_and(|kind| kind.ends_with("/relationships/officeDocument"))
                        && let Some(value) = attr(&e, "Target").map_err(fail)?
                    {
                        target = Some(decode(value).map_err(fail)?);
                    }
                }
                Event::End(e) if started && e.local_name().as_ref() == "Relationships" => {
                    return Ok(target);
                }
                Event::Eof => return Err(fail("no </Relationships>".into())),
                _ => {}
            }
        }
    }

    /// The workbook's relationships: id → (target, type).
    fn relationships(
        &self,
        zip: &mut ZipArchive<FileReader>,
        part: &str,
    ) -> Result<HashMap<String, (String, String)>, ReadError> {
        let mut xml = self
            .open_bounded(zip, part, MAX_PACKAGE_PART_BYTES)?
            .ok_or_else(|| broken(format!("no {part}")))?;
        let fail = |detail: String| broken(format!("{part}: {detail}"));
        let mut relationships = HashMap::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
                Event::Start(e) if e.local_name().as_ref() == "Relationship" => {
                    let (id, kind, target) = (
                        attr(&e, "Id").map_err(fail)?,
                        attr(&e, "Type").map_err(fail)?,
                        attr(&e, "Target").map_err(fail)?,
                    );
                    if let Some(id) = id {
                        let target = target.unwrap_or_default().to_owned();
                        relationships
                            .insert(id.to_owned(), (target, kind.unwrap_or_default().to_owned()));
                    }
                }
                Event::End(e) if e.local_name().as_ref() == "Relationships" => {
                    return Ok(relationships);
                }
                Event::Eof => return Err(fail("no </Relationships>".into())),
                _ => {}
            }
        }
    }

    /// The `<sheet>` elements of the workbook part; a workbook without that part has no
    /// sheets, as in calamine.
    fn read_sheets(
        &mut self,
        zip: &mut ZipArchive<FileReader>,
        part: &str,
        relationships: &HashMap<String, (String, String)>,
    ) -> Result<(), ReadError> {
        let Some(mut xml) = self.open_bounded(zip, part, MAX_PACKAGE_PART_BYTES)? else {
            return Ok(());
        };
        let fail = |detail: String| broken(format!("{part}: {detail}"));
        // Sheets pointing at one part would have it read once per sheet: a few
        // kilobytes naming one large part a thousand times cost a thousand reads. Excel
        // never writes that, so it is refused; with it, a workbook has no more sheets
        // than its package has entries.
        let mut parts: HashMap<String, usize> = HashMap::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
                Event::Start(e) if e.local_name().as_ref() == "sheet" => {
                    let (mut name, mut id) = (String::new(), "");
                    for item in raw_attrs(e.attributes_raw()) {
                        match item.map_err(fail)? {
                            ("name", value) => name = decode(value).map_err(fail)?,
                            ("state", "visible" | "hidden" | "veryHidden") => {}
                            ("state", other) => return Err(fail(format!("sheet state {other:?}"))),
                            (key, value) if local_name_is(key, "id") => id = value,
                            _ => {}
                        }
                    }
                    let (target, kind) = relationships
                        .get(id)
                        .ok_or_else(|| fail(format!("sheet {name:?} has no relationship")))?;
                    let path = match target.strip_prefix('/') {
                        Some(absolute) => absolute.to_owned(),
                        None => format!("{}{target}", self.xl_path),
                    };
                    if !matches!(
                        kind.rsplit('/').next(),
                        Some("worksheet" | "chartsheet" | "dialogsheet")
                    ) {
                        return Err(fail(format!("sheet {name:?} is of unknown type {kind:?}")));
                    }
                    let entry = self.entry(&path).replace('\\', "/").to_ascii_lowercase();
                    if let Some(&first) = parts.get(&entry) {
                        let first = &self.sheets[first].0;
                        return Err(fail(format!(
                            "sheets {first:?} and {name:?} are the same part {path}"
                        )));
                    }
                    parts.insert(entry, self.sheets.len());
                    self.sheets.push((name, path));
                }
                Event::End(e) if e.local_name().as_ref() == "workbook" => return Ok(()),
                Event::Eof => return Err(fail("no </workbook>".into())),
                _ => {}
            }
        }
    }
}

/// An attribute value with its entities decoded (`&amp;` → `&`).
fn decode(value: &str) -> Result<String, String> {
    quick_xml::escape::unescape(value).map(|text| text.into_owned()).map_err(|e| e.to_string())
}
