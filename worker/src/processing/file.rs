//! The default processing step for one uploaded file: unpack it when it is an archive,
//! check each file's content against the Uploader's validation rules, read the tables
//! that `processing.tables` name and hand every mapped document to the caller.
//!
//! Synchronous (the readers are), so the consumer runs it on a blocking thread and the
//! `process` command calls it directly.

use std::path::Path;

use licenseware_crds::UploaderSpec;
use serde::Serialize;

use super::{
    FileContext, MappedRow, RowDocument, SelectionError, TableMapper, TableOutcome, TableSource,
};
use crate::{
    archive::{self, ArchiveError, ArchiveLimits},
    read::{FileKind, ReadError, Table, Workbook, open_csv},
    validation::{FileToValidate, Status, ValidationResponse, Validator},
};

/// Why a file could not be processed to the end. The documents already handed out
/// belong to a failed step; the consumer removes them with the rest of the event's.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot unpack {file}: {source}")]
    Archive { file: String, source: ArchiveError },
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: ReadError },
    #[error("cannot create a scratch directory: {0}")]
    Scratch(std::io::Error),
    #[error("the document sink is closed: {0}")]
    Sink(String),
}

impl ProcessError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Archive { source, .. } => source.reason(),
            Self::Read { source, .. } => source.reason(),
            Self::Scratch(_) => "ScratchUnavailable",
            Self::Sink(_) => "SinkClosed",
        }
    }

    /// The file was refused before any of it was read: no document came of it.
    pub fn before_reading(&self) -> bool {
        matches!(self, Self::Archive { .. } | Self::Scratch(_))
    }
}

/// A table the file did not have, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedTable {
    pub table_index: usize,
    pub reason: &'static str,
    pub message: String,
}

/// What processing did with one file (or one member of an archive).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The name documents carry in `source_file`: the uploaded name, or
    /// `{archive}/{member path}` for a member of an archive.
    pub source_file: String,
    /// The content validation of this file; a failed one produced no documents.
    pub validation: ValidationResponse,
    pub tables: Vec<TableOutcome>,
    pub skipped_tables: Vec<SkippedTable>,
}

impl FileReport {
    pub fn valid(&self) -> bool {
        self.validation.status == Status::Success
    }

    pub fn documents(&self) -> u64 {
        self.tables.iter().map(|t| t.documents).sum()
    }

    /// The line the `process` command prints about this file.
    pub fn summary(&self) -> String {
        if !self.valid() {
            return format!("{}: not processed: {}", self.source_file, self.validation.message);
        }
        let failures: u64 = self.tables.iter().map(|t| t.total_conversion_failures()).sum();
        let mut line = format!(
            "{}: {} documents, {} values kept raw",
            self.source_file,
            self.documents(),
            failures
        );
        for skipped in &self.skipped_tables {
            line.push_str(&format!("; table {} skipped: {}", skipped.table_index, skipped.message));
        }
        line
    }
}

/// One line of the `process` command's output: `{"collection": ..., "document": {...}}`.
#[derive(Debug, Serialize)]
pub struct OutputLine<'a> {
    pub collection: &'a str,
    pub document: &'a RowDocument<'a>,
}

/// Where mapped documents go (with their collection). An error stops the file.
pub type Emit<'a> = dyn FnMut(RowDocument<'_>) -> Result<(), String> + 'a;

/// Processes `path`, uploaded as `context.source_file`. Archives are unpacked into a
/// scratch directory under `scratch_root` (removed afterwards), and each member is
/// content-checked and processed as a file of its own. Returns one report per file.
pub fn process_file(
    spec: &UploaderSpec,
    context: &FileContext,
    path: &Path,
    scratch_root: &Path,
    emit: &mut Emit<'_>,
) -> Result<Vec<FileReport>, ProcessError> {
    let validator = Validator::new(&spec.validation);
    let source = context.source_file.clone();
    if !archive::is_archive(Path::new(&source)) {
        let file = FileToValidate::new(path, source.clone());
        let validation = validator.check_member(&file);
        return Ok(vec![process_checked(spec, context, path, validation, emit)?]);
    }
    let scratch = tempfile::Builder::new()
        .prefix("unpack-")
        .tempdir_in(scratch_root)
        .map_err(ProcessError::Scratch)?;
    let unpacked =
        archive::unpack_into(path, &scratch.path().join("files"), &ArchiveLimits::default())
            .map_err(|source_error| ProcessError::Archive {
                file: source.clone(),
                source: source_error,
            })?;
    let mut reports = Vec::with_capacity(unpacked.files.len());
    for member in &unpacked.files {
        let relative = member.strip_prefix(&unpacked.dir).unwrap_or(member);
        let member_name =
            member.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let member_context = FileContext {
            source_file: format!("{source}/{}", relative.to_string_lossy()),
            ..context.clone()
        };
        let validation = validator.check_member(&FileToValidate::new(member, member_name));
        reports.push(process_checked(spec, &member_context, member, validation, emit)?);
    }
    Ok(reports)
}

fn process_checked(
    spec: &UploaderSpec,
    context: &FileContext,
    path: &Path,
    validation: ValidationResponse,
    emit: &mut Emit<'_>,
) -> Result<FileReport, ProcessError> {
    let mut report = FileReport {
        source_file: context.source_file.clone(),
        validation,
        tables: Vec::new(),
        skipped_tables: Vec::new(),
    };
    if !report.valid() || spec.processing.tables.is_empty() {
        return Ok(report);
    }
    let read_error = |source| ProcessError::Read { file: context.source_file.clone(), source };
    let kind = FileKind::from_path(path);
    let mut workbook = match kind {
        FileKind::Excel => Some(Workbook::open(path).map_err(read_error)?),
        _ => None,
    };
    let sheet_names = workbook.as_ref().map(Workbook::sheet_names);
    for (index, table) in spec.processing.tables.iter().enumerate() {
        let header_starts_at = u64::try_from(table.header_starts_at).unwrap_or(0);
        let source = match super::select_table(table, sheet_names.as_deref()) {
            Ok(source) => source,
            Err(error) => {
                report.skipped_tables.push(skipped(index, &error));
                continue;
            }
        };
        let rows = match (&source, workbook.as_mut()) {
            (TableSource::Sheet(sheet), Some(workbook)) => workbook.table(sheet, header_starts_at),
            _ if kind == FileKind::Csv || kind == FileKind::Text => {
                open_csv(path, header_starts_at)
            }
            _ => {
                report.skipped_tables.push(SkippedTable {
                    table_index: index,
                    reason: "NotTabular",
                    message: format!("{} is not a workbook or a csv file", context.source_file),
                });
                continue;
            }
        }
        .map_err(read_error)?;
        // A mapping the CRD let through but that cannot work (a reserved target field)
        // is a skipped table, reported, not a failed event: retrying cannot fix a spec.
        let mapper = match TableMapper::new(index, table, rows.header()) {
            Ok(mapper) => mapper,
            Err(error) => {
                report.skipped_tables.push(SkippedTable {
                    table_index: index,
                    reason: error.reason(),
                    message: error.to_string(),
                });
                continue;
            }
        };
        report.tables.push(map_rows(&mapper, rows, context, emit)?);
    }
    Ok(report)
}

fn skipped(table_index: usize, error: &SelectionError) -> SkippedTable {
    SkippedTable { table_index, reason: error.reason(), message: error.to_string() }
}

/// Rows read on a second thread, in batches, while this one maps and emits them: on
/// a multi-core machine reading (XML or CSV parsing) and mapping overlap.
const ROWS_PER_BATCH: usize = 256;
const BATCHES_IN_FLIGHT: usize = 4;

type RowBatch = Vec<Result<Vec<crate::read::Cell>, crate::read::ReadError>>;

fn map_rows(
    mapper: &TableMapper,
    rows: Table<'_>,
    context: &FileContext,
    emit: &mut Emit<'_>,
) -> Result<TableOutcome, ProcessError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<RowBatch>(BATCHES_IN_FLIGHT);
    std::thread::scope(|scope| {
        scope.spawn(move || read_batches(rows, &sender));
        // The receiver is dropped when this returns early, which stops the reader.
        map_batches(mapper, &receiver, context, emit)
    })
}

fn read_batches(mut rows: Table<'_>, sender: &std::sync::mpsc::SyncSender<RowBatch>) {
    loop {
        let batch: RowBatch = rows.by_ref().take(ROWS_PER_BATCH).collect();
        let last = batch.len() < ROWS_PER_BATCH || batch.iter().any(Result::is_err);
        if batch.is_empty() || sender.send(batch).is_err() || last {
            return;
        }
    }
}

fn map_batches(
    mapper: &TableMapper,
    batches: &std::sync::mpsc::Receiver<RowBatch>,
    context: &FileContext,
    emit: &mut Emit<'_>,
) -> Result<TableOutcome, ProcessError> {
    let mut outcome = TableOutcome::new(mapper);
    let mut row_number = 0_u64;
    for batch in batches {
        for row in batch {
            let row = row.map_err(|source| ProcessError::Read {
                file: context.source_file.clone(),
                source,
            })?;
            let mapped = mapper.map_cells(context, row_number, row);
            row_number += 1;
            outcome.record(&mapped);
            if let MappedRow::Document(document) = mapped {
                emit(document.document).map_err(ProcessError::Sink)?;
            }
        }
    }
    Ok(outcome)
}
