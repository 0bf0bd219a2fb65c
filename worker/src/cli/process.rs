//! `licenseware-worker process`: the documents the default worker would store for local
//! files, one `{"collection": ..., "document": {...}}` JSON object per line, with no
//! cluster and no services. Each file is read in a sandbox child (see
//! [`crate::sandbox`]). A summary per file goes to stderr; a progress line too when
//! stderr is a terminal.

use std::{
    io::{BufWriter, IsTerminal, Write},
    path::PathBuf,
    time::Duration,
};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mongodb::bson::{DateTime, Document};

use super::CliError;
use crate::{
    manifest::load_uploader,
    processing::FileContext,
    sandbox::{ProcessOutput, ProcessSink, Sandbox, SandboxArgs},
};

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
    #[command(flatten)]
    pub limits: SandboxArgs,
    /// The files (archives are unpacked); each is named by its base name.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The child's JSON lines, copied to stdout; the bar counts them.
struct Printer<W: Write> {
    out: W,
    progress: ProgressBar,
}

impl<W: Write> ProcessSink for Printer<W> {
    fn document(&mut self, _: &str, _: Document) -> Result<(), String> {
        Err("the process command prints lines".to_owned())
    }

    fn output(&mut self, bytes: &[u8]) -> Result<(), String> {
        let lines = bytes.iter().filter(|byte| **byte == b'\n').count();
        self.progress.inc(lines as u64);
        self.out.write_all(bytes).map_err(|error| format!("cannot write documents: {error}"))
    }
}

pub fn run(args: ProcessArgs) -> Result<(), CliError> {
    let event_id = match &args.event_id {
        Some(id) => uuid::Uuid::parse_str(id)
            .map_err(|error| CliError::Usage(format!("--event-id {id:?} is not a UUID: {error}")))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let manifest = load_uploader(&args.uploader)?;
    let sandbox =
        Sandbox::new(args.limits.into()).map_err(|error| CliError::Failed(error.to_string()))?;
    let progress = progress_bar();
    let out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut printer = Printer { out, progress: progress.clone() };
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
        let outcome = sandbox.process_file(
            &manifest.spec,
            &context,
            path,
            &scratch,
            ProcessOutput::JsonLines,
            &mut printer,
        );
        let failure = match outcome {
            Ok(outcome) => {
                outcome.summaries.iter().for_each(|line| progress.suspend(|| report_line(line)));
                outcome.error.map(|failure| failure.message)
            }
            Err(error) => Some(error.to_string()),
        };
        if let Some(message) = failure {
            progress.suspend(|| report_line(&format!("{source_file}: failed: {message}")));
            failed.push(source_file);
        }
    }
    printer
        .out
        .flush()
        .map_err(|error| CliError::Failed(format!("cannot write documents: {error}")))?;
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

#[allow(clippy::print_stderr)] // a CLI: the summary is for the person running it
fn report_line(line: &str) {
    eprintln!("{line}");
}
