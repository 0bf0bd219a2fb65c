//! The child's side: the one job, its output as frames on stdout. The parent set this
//! process's limits before it sent the job, so whatever the file makes the readers do,
//! they hold: an allocation past the address-space limit fails (Rust aborts), CPU past
//! its limit ends in SIGXCPU, a file written past the output limit in SIGXFSZ.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use super::frame;
use super::request::{
    AnonymizeOutcome, Job, ProcessFailure, ProcessOutcome, ProcessOutput, Request, StepReport,
    WireFileKind, WireTreatment,
};
use crate::anonymize::{self, Anonymizer, Keys, Tokenizer, Treatment, plan::PlannedFile};
use crate::processing::{self, FileContext, RowDocument};
use crate::validation::{FileToValidate, Validator};

/// Exit status of a child that could not set itself up (the parent reports its stderr).
const SETUP_FAILED: u8 = 3;
/// The request is the parent's, not the file's: small.
const MAX_REQUEST_BYTES: u64 = 16 << 20;
/// `process` output is handed over in chunks of about this size.
const OUTPUT_CHUNK_BYTES: usize = 64 << 10;

#[allow(clippy::print_stderr)] // the parent keeps the child's stderr for its error message
pub fn run() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("licenseware-worker sandbox: {error}");
            ExitCode::from(SETUP_FAILED)
        }
    }
}

fn serve() -> Result<(), String> {
    grow_stack();
    // The parent gone, the child has no one to report to.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    let mut raw = Vec::new();
    std::io::stdin()
        .take(MAX_REQUEST_BYTES)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the request: {e}"))?;
    let request: Request =
        serde_json::from_slice(&raw).map_err(|e| format!("not a request: {e}"))?;
    drop(raw);
    let mut out = BufWriter::with_capacity(OUTPUT_CHUNK_BYTES, std::io::stdout().lock());
    let outcome = match request.job {
        Job::Validate { validation, path, filename, member } => {
            let validator = Validator::new(&validation);
            let file = FileToValidate::new(path, filename);
            let entry =
                if member { validator.check_member(&file) } else { validator.check_file(&file) };
            to_json(&entry)?
        }
        Job::Process { spec, context, path, scratch, output } => {
            let outcome = process(&spec, &context.into(), &path, &scratch, output, &mut out)?;
            to_json(&outcome)?
        }
        Job::SelfTest { allocate_mib } => {
            let bytes = usize::try_from(allocate_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
            // Allocated as a reader would: past the limit, the allocation aborts.
            let touched = vec![1_u8; bytes];
            to_json(&std::hint::black_box(touched).len())?
        }
        Job::Anonymize { encryption, key_file, input, output, kind } => {
            to_json(&anonymize_one(&encryption, &key_file, input, output, kind))?
        }
    };
    frame::write(&mut out, frame::OUTCOME, &outcome)
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the outcome: {e}"))
}

/// The main thread's stack grows on demand, which counts against the address-space
/// limit like any mapping: grown near the limit, it fails with SIGSEGV instead of an
/// allocation failure. Grown now, while the address space is nearly empty, the
/// readers' stack is already mapped.
#[inline(never)]
fn grow_stack() {
    let touched = [1_u8; STACK_GROWN_BYTES];
    std::hint::black_box(&touched);
}

/// Enough for the readers' deepest calls (the default main stack is 8 MiB).
const STACK_GROWN_BYTES: usize = 2 << 20;

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot encode the outcome: {e}"))
}

fn process(
    spec: &licenseware_crds::UploaderSpec,
    context: &FileContext,
    path: &Path,
    scratch: &Path,
    output: ProcessOutput,
    out: &mut impl Write,
) -> Result<ProcessOutcome, String> {
    let mut chunk = Vec::with_capacity(OUTPUT_CHUNK_BYTES * 2);
    let mut bson = Vec::new();
    let mut emit = |row: RowDocument<'_>| -> Result<(), String> {
        match output {
            ProcessOutput::JsonLines => {
                let line = processing::OutputLine { collection: row.collection(), document: &row };
                serde_json::to_writer(&mut chunk, &line).map_err(|e| e.to_string())?;
                chunk.push(b'\n');
                if chunk.len() >= OUTPUT_CHUNK_BYTES {
                    frame::write(out, frame::OUTPUT, &chunk).map_err(|e| e.to_string())?;
                    chunk.clear();
                }
            }
            ProcessOutput::Documents => {
                let collection = row.collection();
                bson.clear();
                row.into_document().to_writer(&mut bson).map_err(|e| e.to_string())?;
                frame::document_payload(collection, &bson, &mut chunk)
                    .and_then(|()| frame::write(out, frame::DOCUMENT, &chunk))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    };
    let processed = processing::process_file(spec, context, path, scratch, &mut emit);
    if output == ProcessOutput::JsonLines && !chunk.is_empty() {
        frame::write(out, frame::OUTPUT, &chunk).map_err(|e| format!("cannot write: {e}"))?;
    }
    Ok(match processed {
        Ok(files) => {
            let report = processing::step_report(&files);
            ProcessOutcome {
                summaries: files.iter().map(processing::FileReport::summary).collect(),
                report: Some(StepReport {
                    rejected: report.rejected,
                    message: report.message,
                    warnings: report.warnings,
                }),
                error: None,
            }
        }
        // The parent stopped taking output: it reports why, not this.
        Err(processing::ProcessError::Sink(message)) => return Err(message),
        Err(error) => ProcessOutcome {
            summaries: Vec::new(),
            report: None,
            error: Some(ProcessFailure {
                reason: error.reason().to_owned(),
                message: error.to_string(),
                before_reading: error.before_reading(),
            }),
        },
    })
}

fn anonymize_one(
    encryption: &licenseware_crds::EncryptionParameters,
    key_file: &Path,
    input: std::path::PathBuf,
    output: std::path::PathBuf,
    kind: WireFileKind,
) -> AnonymizeOutcome {
    let failed = |reason: &str, message: String| AnonymizeOutcome::Failed {
        reason: reason.to_owned(),
        message,
    };
    let keys = match Keys::load(key_file) {
        Ok(keys) => keys,
        Err(error) => return failed(error.reason(), error.to_string()),
    };
    let tokenizer = match Tokenizer::new(&keys) {
        Ok(tokenizer) => tokenizer,
        Err(error) => return failed(error.reason(), error.to_string()),
    };
    let mut anonymizer = match Anonymizer::new(encryption, tokenizer) {
        Ok(anonymizer) => anonymizer,
        Err(error) => return failed(error.reason(), error.to_string()),
    };
    let kind = match kind {
        WireFileKind::Text => anonymize::FileKind::Text,
        WireFileKind::Csv => anonymize::FileKind::Csv,
        WireFileKind::Workbook => anonymize::FileKind::Workbook,
        WireFileKind::Other => anonymize::FileKind::Other,
    };
    match anonymizer.anonymize_file(&PlannedFile { input, output, kind }) {
        Ok(treatment) => AnonymizeOutcome::Written(match treatment {
            Treatment::Columns => WireTreatment::Columns,
            Treatment::Text => WireTreatment::Text,
            Treatment::Unchanged => WireTreatment::Unchanged,
            Treatment::NotRead => WireTreatment::NotRead,
        }),
        Err(error) => failed(error.reason(), error.to_string()),
    }
}
