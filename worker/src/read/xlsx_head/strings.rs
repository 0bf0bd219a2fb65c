//! The shared-string table (`xl/sharedStrings.xml`) read only as far as the largest
//! index asked for, keeping only the strings asked for. Writers put strings in order of
//! first use, so the header's strings and those of the first rows come first: the cost
//! of a lookup follows the rows validation reads, not the size of the file.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use quick_xml::events::Event;
use zip::ZipArchive;

use super::super::ReadError;
use super::xml::{FileReader, read_string, xml_error, xml_reader};

pub(super) struct SharedStrings {
    file: PathBuf,
    /// The table's entry name; `None` when the workbook has none.
    entry: Option<String>,
    /// A second handle on the file: the sheet being read holds the first one.
    zip: Option<ZipArchive<FileReader>>,
    known: HashMap<usize, String>,
}

impl SharedStrings {
    pub(super) fn new(file: PathBuf, entry: Option<String>) -> Self {
        Self { file, entry, zip: None, known: HashMap::new() }
    }

    /// String `index`, if it was looked up.
    pub(super) fn get(&self, index: usize) -> Option<&str> {
        self.known.get(&index).map(String::as_str)
    }

    /// Looks up `wanted`: one pass from the start of the table that stops after the
    /// largest index. An index past the end of the table is an error, as in calamine.
    pub(super) fn look_up(&mut self, wanted: &BTreeSet<usize>) -> Result<(), ReadError> {
        let Some(&last) = wanted.last() else {
            return Ok(());
        };
        let past_end = |count: usize| {
            ReadError::workbook(format!(
                "a cell refers to shared string {last} but the shared-string table holds {count}"
            ))
        };
        let Some(entry) = &self.entry else {
            return Err(past_end(0));
        };
        let zip = match &mut self.zip {
            Some(zip) => zip,
            None => {
                let reader = BufReader::new(File::open(&self.file)?);
                let zip = ZipArchive::new(reader).map_err(|e| xml_error(entry, e))?;
                self.zip.insert(zip)
            }
        };
        let fail = |detail: String| xml_error(entry, detail);
        let mut xml = xml_reader(zip.by_name(entry).map_err(|e| fail(e.to_string()))?);
        let mut buf = Vec::new();
        let mut inner = Vec::new();
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
                Event::Start(e) if e.local_name().as_ref() == "sst" => break,
                Event::Eof => return Err(fail("no <sst>".into())),
                _ => {}
            }
        }
        let mut index = 0;
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
                Event::Start(e) if e.local_name().as_ref() == "si" => {
                    if wanted.contains(&index) {
                        let text = read_string(&mut xml, e.name(), &mut inner).map_err(fail)?;
                        self.known.insert(index, text);
                    } else {
                        // Not needed: skipped without building its text.
                        inner.clear();
                        xml.read_to_end_into(e.name(), &mut inner)
                            .map_err(|e| fail(e.to_string()))?;
                    }
                    if index == last {
                        return Ok(());
                    }
                    index += 1;
                }
                Event::End(e) if e.local_name().as_ref() == "sst" => return Err(past_end(index)),
                Event::Eof => return Err(fail("the table ends before </sst>".into())),
                _ => {}
            }
        }
    }
}
