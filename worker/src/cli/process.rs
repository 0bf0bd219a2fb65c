//! `licenseware-worker process`: the documents the default worker would store for local
//! files, one `{"collection": ..., "document": {...}}` JSON object per line, with no
//! cluster and no services. A summary per file goes to stderr; a progress line too when
//! stderr is a terminal.

use std::{
    io::{BufWriter, IsTerminal, Write},
    path::PathBuf,
    time::Duration,
};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mongodb::bson::DateTime;

use super::CliError;
use crate::{
    manifest::load_uploader,
    processing::{FileContext, FileReport, RowDocument, process_file},
};

/// One line of output: `{"collection": ..., "document": {...}}`.
#[derive(Debug, serde::Serialize)]
struct OutputLine<'a> {
    collection: &'a str,
    document: &'a RowDocument<'a>,
}

#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// The Uploader manifest (YAML, as applied to the cluster) whose processing applies.
    #[arg(long, value_name = "MANIFEST")]
    pub uploader: PathBuf,
    /// The tenant the documents belong to.
    #[arg(long)]
    pub tenant: String,
    /// The event id the documents carry (a UUID); a new one when absent.
    #[arg(long, value_name = "UUID")]
    pub event_id: Option<String>,
    /// The files (archives are unpacked); each is named by its base name.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: ProcessArgs) -> Result<(), CliError> {
    let event_id = match &args.event_id {
        Some(id) => uuid::Uuid::parse_str(id)
            .map_err(|error| CliError::Usage(format!("--event-id {id:?} is not a UUID: {error}")))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let manifest = load_uploader(&args.uploader)?;
    let progress = progress_bar();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut printed = 0_u64;
    let mut emit = |document: RowDocument<'_>| {
        let line = OutputLine { collection: document.collection(), document: &document };
        // The bar reads the clock on each update: once per thousand documents is plenty.
        printed += 1;
        if printed.is_multiple_of(1024) {
            progress.inc(1024);
        }
        serde_json::to_writer(&mut out, &line)
            .map_err(|error| error.to_string())
            .and_then(|()| out.write_all(b"\n").map_err(|error| error.to_string()))
    };
    let scratch = std::env::temp_dir();
    let mut failed = Vec::new();
    for path in &args.files {
        let source_file =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let context = FileContext {
            tenant_id: args.tenant.clone(),
            app_id: manifest.spec.app_id.clone(),
            uploader_id: manifest.uploader_id.clone(),
            event_id: event_id.clone(),
            source_file: source_file.clone(),
            updated_at: DateTime::now(),
        };
        match process_file(&manifest.spec, &context, path, &scratch, &mut emit) {
            Ok(reports) => reports.iter().for_each(|report| summarize(&progress, report)),
            Err(error) => {
                progress.suspend(|| report_line(&format!("{source_file}: failed: {error}")));
                failed.push(source_file);
            }
        }
    }
    out.flush().map_err(|error| CliError::Failed(format!("cannot write documents: {error}")))?;
    progress.finish_and_clear();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!("could not process {}", failed.join(", "))))
    }
}

/// A spinner with the document count and rate, drawn only on a terminal.
fn progress_bar() -> ProgressBar {
    let progress = ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        progress.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {human_pos} documents ({per_sec}) {elapsed}")
        {
            progress.set_style(style);
        }
        progress.enable_steady_tick(Duration::from_millis(200));
    } else {
        progress.set_draw_target(ProgressDrawTarget::hidden());
    }
    progress
}

fn summarize(progress: &ProgressBar, report: &FileReport) {
    let line = if report.valid() {
        let failures: u64 = report.tables.iter().map(|t| t.total_conversion_failures()).sum();
        let mut line = format!(
            "{}: {} documents, {} values kept raw",
            report.source_file,
            report.documents(),
            failures
        );
        for skipped in &report.skipped_tables {
            line.push_str(&format!("; table {} skipped: {}", skipped.table_index, skipped.message));
        }
        line
    } else {
        format!("{}: not processed: {}", report.source_file, report.validation.message)
    };
    progress.suspend(|| report_line(&line));
}

#[allow(clippy::print_stderr)] // a CLI: the summary is for the person running it
fn report_line(line: &str) {
    eprintln!("{line}");
}
