//! The shared-string table (`xl/sharedStrings.xml`) read only as far as needed, keeping
//! the text of the strings asked for and whether each string passed is empty. Writers put
//! strings in order of first use, so the header's strings and those of the first rows
//! come first: the cost follows the rows validation reads, not the size of the file.
//!
//! Rows only need to know whether their strings are empty, and that is recorded for
//! every string read: a string is never read again for it. A pass that must go further
//! than the last one goes at least twice as far, so that rows asking for one more string
//! each (a sheet of rows of empty strings) cost a few passes over the table, not one per
//! row. Only the header's texts may need a pass of their own.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use quick_xml::events::Event;
use zip::ZipArchive;

use super::super::ReadError;
use super::super::limits::{MAX_SHARED_STRINGS, MAX_SHARED_STRINGS_BYTES};
use super::parts::open_package;
use super::xml::{FileReader, read_string, xml_error, xml_reader};

/// The first pass reads at least this many strings.
const FIRST_PASS: usize = 1024;

pub(super) struct SharedStrings {
    file: PathBuf,
    /// The table's entry name; `None` when the workbook has none.
    entry: Option<String>,
    /// A second handle on the file: the sheet being read holds the first one.
    zip: Option<ZipArchive<FileReader>>,
    /// Texts kept, by index.
    known: HashMap<usize, String>,
    /// Whether each string read so far is empty, by index.
    empty: Vec<bool>,
    /// How many strings the table holds, once a pass reached its end.
    count: Option<usize>,
}

impl SharedStrings {
    pub(super) fn new(file: PathBuf, entry: Option<String>) -> Self {
        let count = if entry.is_none() { Some(0) } else { None };
        Self { file, entry, zip: None, known: HashMap::new(), empty: Vec::new(), count }
    }

    /// The text of string `index`, if it was kept.
    pub(super) fn text(&self, index: usize) -> Option<&str> {
        self.known.get(&index).map(String::as_str)
    }

    /// Whether string `index` is empty, if a pass has read it.
    pub(super) fn is_empty(&self, index: usize) -> Option<bool> {
        self.empty.get(index).copied()
    }

    /// Makes the emptiness of every index in `wanted` known.
    pub(super) fn look_up(&mut self, wanted: &BTreeSet<usize>) -> Result<(), ReadError> {
        let Some(&last) = wanted.last() else {
            return Ok(());
        };
        if last < self.empty.len() {
            return Ok(());
        }
        self.check_count(last)?;
        let target = last.max(self.empty.len().saturating_mul(2)).max(FIRST_PASS);
        self.pass(target, last, &BTreeSet::new())?;
        self.check_count(last)
    }

    /// Keeps the text of every index in `wanted` (for a header).
    pub(super) fn keep_texts(&mut self, wanted: &BTreeSet<usize>) -> Result<(), ReadError> {
        let missing: BTreeSet<usize> =
            wanted.iter().copied().filter(|index| !self.known.contains_key(index)).collect();
        let Some(&last) = missing.last() else {
            return Ok(());
        };
        self.check_count(last)?;
        self.pass(last, last, &missing)?;
        self.check_count(last)
    }

    /// An index past the end of the table is an error, as in calamine.
    fn check_count(&self, index: usize) -> Result<(), ReadError> {
        match self.count {
            Some(count) if index >= count => Err(ReadError::workbook(format!(
                "a cell refers to shared string {index} but the shared-string table holds {count}"
            ))),
            _ => Ok(()),
        }
    }

    /// Reads the table from its start up to string `target` (or its end), recording
    /// emptiness and keeping the texts of `keep`. Past `needed` the reading is ahead of
    /// need: an error there stops the pass without failing it (a later pass that needs
    /// those strings meets it again), so that reading ahead refuses nothing.
    fn pass(
        &mut self,
        target: usize,
        needed: usize,
        keep: &BTreeSet<usize>,
    ) -> Result<(), ReadError> {
        let mut index = 0;
        match self.pass_from_start(target, keep, &mut index) {
            Err(error) if index > needed && !matches!(error, ReadError::TooLarge { .. }) => Ok(()),
            other => other,
        }
    }

    fn pass_from_start(
        &mut self,
        target: usize,
        keep: &BTreeSet<usize>,
        index: &mut usize,
    ) -> Result<(), ReadError> {
        let Some(entry) = &self.entry else {
            return Ok(());
        };
        let zip = match &mut self.zip {
            Some(zip) => zip,
            None => self.zip.insert(open_package(&self.file)?),
        };
        let fail = |detail: String| xml_error(entry, detail);
        let part = zip.by_name(entry).map_err(|e| fail(e.to_string()))?;
        let mut xml = xml_reader(part, entry, MAX_SHARED_STRINGS_BYTES);
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
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
                Event::Start(e) if e.local_name().as_ref() == "si" => {
                    if *index as u64 >= MAX_SHARED_STRINGS {
                        return Err(ReadError::too_large(format!(
                            "{entry}: more than {MAX_SHARED_STRINGS} shared strings"
                        )));
                    }
                    let text = read_string(&mut xml, e.name(), &mut inner).map_err(fail)?;
                    if *index == self.empty.len() {
                        self.empty.push(text.is_empty());
                    }
                    if keep.contains(index) {
                        self.known.insert(*index, text);
                    }
                    if *index == target {
                        return Ok(());
                    }
                    *index += 1;
                }
                Event::End(e) if e.local_name().as_ref() == "sst" => {
                    self.count = Some(*index);
                    return Ok(());
                }
                Event::Eof => return Err(fail("the table ends before </sst>".into())),
                _ => {}
            }
        }
    }
}
