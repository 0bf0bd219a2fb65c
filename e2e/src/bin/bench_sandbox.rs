//! The cost of containment per file: 1,000 small CSVs validated and processed in this
//! process (the engine as it ran before the sandbox) and through the sandbox (a child
//! per file: spawn, request, frames, outcome), side by side in one run, alternating,
//! medians and ratios reported. Needs no stack.
//!
//! `cargo build --release -p licenseware-worker -p licenseware-e2e --bin licenseware-worker --bin bench_sandbox`
//! then `target/release/bench_sandbox --worker-bin target/release/licenseware-worker`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use licenseware_crds::UploaderSpec;
use licenseware_worker::processing::{FileContext, process_file};
use licenseware_worker::sandbox::{ProcessOutput, ProcessSink, Sandbox, SandboxLimits};
use licenseware_worker::validation::{FileToValidate, Validator};
use mongodb::bson::{DateTime, Document};

#[derive(Debug, Parser)]
struct Args {
    /// The worker binary whose children the sandbox starts (a release build).
    #[arg(long)]
    worker_bin: PathBuf,
    /// Files per round.
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// Rows per file.
    #[arg(long, default_value_t = 20)]
    rows: usize,
    /// Rounds of each contestant (alternating).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

#[derive(Debug, Default)]
struct Count(u64);

impl ProcessSink for Count {
    fn document(&mut self, _: &str, _: Document) -> Result<(), String> {
        self.0 += 1;
        Ok(())
    }

    fn output(&mut self, _: &[u8]) -> Result<(), String> {
        Err("documents expected".into())
    }
}

fn spec() -> anyhow::Result<UploaderSpec> {
    let yaml = "appId: bench\nname: Bench\n\
                validation: {filenameEndswith: [.csv], requiredColumns: [[device, os]], minRowsNumber: 1}\n\
                processing: {tables: [{collection: Data, columns: [{from: device, to: device}, {from: os, to: os}]}]}\n";
    serde_yaml::from_str(yaml).context("the benchmark's Uploader spec")
}

fn context(name: &str) -> FileContext {
    FileContext {
        tenant_id: "bench".into(),
        app_id: "bench".into(),
        uploader_id: "bench".into(),
        event_id: "6f68900f-3ac1-4837-a9b5-ebcd9c1686f2".into(),
        source_file: name.into(),
        updated_at: DateTime::now(),
    }
}

fn make_files(dir: &Path, files: usize, rows: usize) -> anyhow::Result<Vec<PathBuf>> {
    (0..files)
        .map(|index| {
            let path = dir.join(format!("devices-{index}.csv"));
            let mut text = String::from("device,os\n");
            for row in 0..rows {
                text.push_str(&format!("host-{index}-{row},linux\n"));
            }
            std::fs::write(&path, text)?;
            Ok(path)
        })
        .collect()
}

/// Validation then processing of every file in this process.
fn in_process(spec: &UploaderSpec, files: &[PathBuf], scratch: &Path) -> anyhow::Result<u64> {
    let validator = Validator::new(&spec.validation);
    let mut documents = 0;
    for path in files {
        let file = FileToValidate::from_path(path);
        anyhow::ensure!(validator.check_file(&file).message == "File is valid");
        let mut emit = |_row: licenseware_worker::processing::RowDocument<'_>| {
            documents += 1;
            Ok(())
        };
        process_file(spec, &context(&file.filename), path, scratch, &mut emit)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    Ok(documents)
}

/// The same through the sandbox: two children per file.
fn contained(
    sandbox: &Sandbox,
    spec: &UploaderSpec,
    files: &[PathBuf],
    scratch: &Path,
) -> anyhow::Result<u64> {
    let mut documents = Count::default();
    for path in files {
        let file = FileToValidate::from_path(path);
        let entry = sandbox.check_file(&spec.validation, &file);
        anyhow::ensure!(entry.message == "File is valid", "{entry:?}");
        sandbox.process_file(
            spec,
            &context(&file.filename),
            path,
            scratch,
            ProcessOutput::Documents,
            &mut documents,
        )?;
    }
    Ok(documents.0)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[allow(clippy::print_stdout)] // a benchmark: its figures are its output
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = spec()?;
    let dir = tempfile::tempdir()?;
    let files = make_files(dir.path(), args.files, args.rows)?;
    let scratch = tempfile::tempdir()?;
    let sandbox = Sandbox::with_program(&args.worker_bin, SandboxLimits::default());
    let (mut direct, mut sandboxed) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let started = Instant::now();
        let documents = in_process(&spec, &files, scratch.path())?;
        direct.push(started.elapsed());
        let started = Instant::now();
        let contained_documents = contained(&sandbox, &spec, &files, scratch.path())?;
        sandboxed.push(started.elapsed());
        anyhow::ensure!(documents == contained_documents, "{documents} != {contained_documents}");
    }
    let (direct, sandboxed) = (median(&mut direct), median(&mut sandboxed));
    let per_file = |total: Duration| total.as_secs_f64() * 1000.0 / args.files as f64;
    println!(
        "{} CSVs of {} rows, validate + process, medians of {} rounds:",
        args.files, args.rows, args.rounds
    );
    println!(
        "  in process (before the sandbox): {:.3} s, {:.3} ms/file",
        direct.as_secs_f64(),
        per_file(direct)
    );
    println!(
        "  sandboxed (2 children per file): {:.3} s, {:.3} ms/file",
        sandboxed.as_secs_f64(),
        per_file(sandboxed)
    );
    println!(
        "  overhead: {:.3} ms/file, ratio {:.1}x",
        per_file(sandboxed) - per_file(direct),
        sandboxed.as_secs_f64() / direct.as_secs_f64()
    );
    Ok(())
}
