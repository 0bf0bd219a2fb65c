//! The sandbox with real children: this crate's binary for the jobs, and small shell
//! scripts standing in for a reader that spins, hangs or crashes (whatever a crafted
//! file makes a reader do, the child's death looks like one of these).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use licenseware_worker::processing::FileContext;
use licenseware_worker::sandbox::{
    ProcessOutput, ProcessSink, Sandbox, SandboxError, SandboxLimits,
};
use licenseware_worker::validation::{FileToValidate, Status};
use mongodb::bson::{DateTime, Document};

const WORKER: &str = env!("CARGO_BIN_EXE_licenseware-worker");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn rv_tools() -> licenseware_crds::Uploader {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples/rv-tools.uploader.yaml");
    let manifest = licenseware_worker::manifest::load_uploader(&path).expect("sample manifest");
    licenseware_crds::Uploader::new(&manifest.uploader_id, manifest.spec)
}

fn limits() -> SandboxLimits {
    SandboxLimits { memory_mib: 1024, cpu_seconds: 60, wall_seconds: 120, output_mib: 256 }
}

/// Rules that read the file, so that checking it starts a child.
fn reading_rules() -> licenseware_crds::ValidationParameters {
    licenseware_crds::ValidationParameters { min_rows_number: 1, ..Default::default() }
}

fn context() -> FileContext {
    FileContext {
        tenant_id: "t1".into(),
        app_id: "ifmp-service".into(),
        uploader_id: "rv_tools".into(),
        event_id: "6f68900f-3ac1-4837-a9b5-ebcd9c1686f2".into(),
        source_file: "RVTools.xlsx".into(),
        updated_at: DateTime::from_millis(1_700_000_000_000),
    }
}

#[derive(Default)]
struct Collect {
    documents: Vec<(String, Document)>,
    output: Vec<u8>,
}

impl ProcessSink for Collect {
    fn document(&mut self, collection: &str, document: Document) -> Result<(), String> {
        self.documents.push((collection.to_owned(), document));
        Ok(())
    }

    fn output(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.output.extend_from_slice(bytes);
        Ok(())
    }
}

/// A stand-in reader: `program` runs as the child whatever it is asked.
fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("reader.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("executable");
    path
}

fn csv_file(dir: &Path) -> FileToValidate {
    let path = dir.join("lms.csv");
    std::fs::write(&path, "a,b\n1,2\n").expect("csv written");
    FileToValidate::new(path, "lms.csv")
}

#[test]
fn contained_processing_gives_the_documents_of_in_process_processing() {
    let uploader = rv_tools();
    let sandbox = Sandbox::with_program(WORKER, limits());
    let scratch = tempfile::tempdir().unwrap();
    let mut contained = Collect::default();
    let outcome = sandbox
        .process_file(
            &uploader.spec,
            &context(),
            &fixture("RVTools.xlsx"),
            scratch.path(),
            ProcessOutput::Documents,
            &mut contained,
        )
        .unwrap();
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.summaries, ["RVTools.xlsx: 430 documents, 0 values kept raw"]);
    let report = outcome.report.unwrap();
    assert_eq!(report.rejected, None);

    let mut direct = Vec::new();
    licenseware_worker::processing::process_file(
        &uploader.spec,
        &context(),
        &fixture("RVTools.xlsx"),
        scratch.path(),
        &mut |row| {
            direct.push((row.collection().to_owned(), row.into_document()));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(contained.documents.len(), 430);
    assert_eq!(contained.documents, direct);
    // The per-run scratch directory is gone.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[test]
fn json_lines_come_back_as_printed() {
    let uploader = rv_tools();
    let sandbox = Sandbox::with_program(WORKER, limits());
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = Collect::default();
    sandbox
        .process_file(
            &uploader.spec,
            &context(),
            &fixture("RVTools.xlsx"),
            scratch.path(),
            ProcessOutput::JsonLines,
            &mut sink,
        )
        .unwrap();
    let text = String::from_utf8(sink.output).unwrap();
    assert_eq!(text.lines().count(), 430);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["collection"], "Data");
    assert_eq!(first["document"]["tenant_id"], "t1");
}

#[test]
fn a_reader_that_needs_more_memory_than_the_limit_is_stopped_saying_so() {
    let limits = SandboxLimits { memory_mib: 256, ..limits() };
    let sandbox = Sandbox::with_program(WORKER, limits);
    sandbox.self_test(16).unwrap();
    let error = sandbox.self_test(512).unwrap_err();
    assert!(matches!(error, SandboxError::MemoryLimit { mib: 256 }), "{error:?}");
    assert_eq!(error.to_string(), "File needs more than 256 MiB of memory to read");
    assert!(error.is_the_files());
}

#[test]
fn a_reader_that_spins_is_stopped_at_its_cpu_limit() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "while :; do :; done");
    let limits = SandboxLimits { cpu_seconds: 1, ..limits() };
    let entry =
        Sandbox::with_program(program, limits).check_file(&reading_rules(), &csv_file(dir.path()));
    assert_eq!(entry.status, Status::Failed);
    assert_eq!(entry.message, "File needs more than 1 s of CPU time to read");
}

#[test]
fn a_reader_that_hangs_is_stopped_at_its_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "exec sleep 600");
    let limits = SandboxLimits { wall_seconds: 1, ..limits() };
    let entry =
        Sandbox::with_program(program, limits).check_file(&reading_rules(), &csv_file(dir.path()));
    assert_eq!(entry.status, Status::Failed);
    assert_eq!(entry.message, "File takes longer than 1 s to read");
}

#[test]
fn a_reader_that_crashes_is_a_failed_entry_with_its_last_words() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "echo 'reader: bad things' >&2; kill -SEGV $$");
    let entry = Sandbox::with_program(program, limits())
        .check_file(&reading_rules(), &csv_file(dir.path()));
    assert_eq!(entry.status, Status::Failed);
    assert_eq!(entry.message, "File reader crashed (signal SIGSEGV): reader: bad things");
}

#[test]
fn output_past_the_limit_stops_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut rows = String::from("VM,Host,OS\n");
    for index in 0..40_000 {
        rows.push_str(&format!("vm-{index},host-{index},{}\n", "x".repeat(40)));
    }
    std::fs::write(&path, rows).unwrap();
    let mut uploader = rv_tools();
    uploader.spec.validation = Default::default();
    uploader.spec.processing.tables[0].sheets = None;
    let limits = SandboxLimits { output_mib: 1, ..limits() };
    let mut sink = Collect::default();
    let error = Sandbox::with_program(WORKER, limits)
        .process_file(
            &uploader.spec,
            &context(),
            &path,
            dir.path(),
            ProcessOutput::JsonLines,
            &mut sink,
        )
        .unwrap_err();
    assert!(matches!(error, SandboxError::OutputLimit { mib: 1 }), "{error:?}");
    assert!(sink.output.len() <= 1 << 20);
}

#[test]
fn the_child_gets_none_of_the_parents_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("env");
    let program = script(dir.path(), &format!("env > {}; exit 1", seen.display()));
    let entry = Sandbox::with_program(program, limits())
        .check_file(&reading_rules(), &csv_file(dir.path()));
    assert_eq!(entry.status, Status::Failed);
    let env = std::fs::read_to_string(seen).unwrap();
    assert!(!env.contains("CARGO_MANIFEST_DIR"), "{env}");
    assert!(!env.contains("LW_"), "{env}");
}

/// Rules that read nothing of the file are checked without a child (a program that
/// cannot start would fail the file otherwise); rules that read it still go to one.
#[test]
fn only_checks_that_read_the_file_start_a_child() {
    let sandbox = Sandbox::with_program("/nonexistent/licenseware-worker", limits());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("devices.csv");
    std::fs::write(&path, "device,os\nh1,linux\n").unwrap();
    let file = FileToValidate::new(&path, "devices.csv");
    let names_only = licenseware_crds::ValidationParameters {
        filename_endswith: Some(vec![".csv".into()]),
        ..Default::default()
    };
    let entry = sandbox.check_file(&names_only, &file);
    assert_eq!(entry.status, Status::Success, "{entry:?}");

    let gone = FileToValidate::new(dir.path().join("gone.csv"), "gone.csv");
    let entry = sandbox.check_file(&names_only, &gone);
    assert_eq!(entry.status, Status::Failed, "a missing file still fails: {entry:?}");

    let columns = licenseware_crds::ValidationParameters {
        required_columns: Some(vec![vec!["device".into()]]),
        ..names_only
    };
    let entry = sandbox.check_file(&columns, &file);
    assert_eq!(entry.status, Status::Failed, "the child could not start: {entry:?}");
}
