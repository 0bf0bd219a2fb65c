//! A custom worker image on the Licenseware runtime: its own processing step, the same
//! consumer (Kafka, status, history, retries, compensation, dead letters, commits).
//!
//! This one stores every line of a text or CSV file as a document
//! `{"line": n, "text": "..."}` in the collection `Data`. A file that is not UTF-8
//! fails (its event is retried, then dead-lettered); an empty file is rejected.
//!
//! Run it like `licenseware-worker consume` (same flags and LW_* variables):
//! `cargo run -p licenseware-worker --example custom_worker -- --config worker.yaml ...`

use std::{
    io::{BufRead, BufReader},
    process::ExitCode,
    sync::Arc,
};

use clap::Parser;
use licenseware_worker::consume::{
    self, ConsumeConfig, DocumentSink, FileJob, FileProcessor, FileReport, ProcessError, Settings,
    bson::doc,
};

/// The collection the lines go to.
const COLLECTION: &str = "Data";

struct Lines;

impl FileProcessor for Lines {
    fn process_file(
        &self,
        job: &FileJob,
        sink: &mut dyn DocumentSink,
    ) -> Result<FileReport, ProcessError> {
        let file = std::fs::File::open(&job.path).map_err(|error| {
            ProcessError::caused_by(format!("cannot open {}", job.filename), error)
        })?;
        let mut reader = BufReader::new(file);
        let mut bytes = Vec::new();
        let mut line = 0_i64;
        loop {
            bytes.clear();
            let read = reader.read_until(b'\n', &mut bytes).map_err(|error| {
                ProcessError::caused_by(format!("cannot read {}", job.filename), error)
            })?;
            if read == 0 {
                break;
            }
            line += 1;
            let text = std::str::from_utf8(&bytes).map_err(|error| {
                ProcessError::caused_by(
                    format!("line {line} of {} is not UTF-8", job.filename),
                    error,
                )
            })?;
            let text = text.trim_end_matches(['\n', '\r']);
            // Deterministic: the same event gives the same ids, so a redelivery
            // replaces instead of duplicating.
            let id = format!("{}/{}/{line}", job.event_id, job.file_index);
            sink.emit(COLLECTION, doc! { "_id": id, "line": line, "text": text })?;
        }
        if line == 0 {
            return Ok(FileReport::rejected(format!("{} is empty", job.filename)));
        }
        Ok(FileReport::processed(format!("{line} lines stored")))
    }

    fn step(&self) -> &str {
        "store_lines"
    }

    fn collections(&self) -> Vec<String> {
        vec![COLLECTION.to_owned()]
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = ConsumeConfig::parse();
    if let Err(error) = consume::logging::init(config.log_format) {
        report(&format!("cannot set up logging: {error}"));
        return ExitCode::FAILURE;
    }
    let settings = match Settings::load(&config) {
        Ok(settings) => settings,
        Err(error) => {
            report(&error.to_string());
            return ExitCode::from(2);
        }
    };
    match consume::run(settings, Arc::new(Lines), consume::shutdown::signal()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error.to_string());
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stderr)] // a command line program: its fatal errors go to the terminal
fn report(error: &str) {
    eprintln!("custom_worker: {error}");
}
