//! A test double of a worker killed by its input: the lines worker of
//! `custom_worker.rs` (each line of a file becomes a document `{"line": n, "text": ...}`
//! in `Data`), except that a line `#abort` aborts the whole process, as a reader that
//! runs out of memory or hits a bug in native code would. The e2e suite runs it to show
//! that such an event is dead-lettered after maxAttempts deliveries instead of
//! crash-looping its partition. A line `#hang` blocks the processor for an hour
//! instead, as a reader stuck in native code would: `/healthz` must say so.

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

/// The line that kills the worker.
const POISON: &str = "#abort";
/// The line that blocks the processor.
const HANG: &str = "#hang";

struct Aborting;

impl FileProcessor for Aborting {
    fn process_file(
        &self,
        job: &FileJob,
        sink: &mut dyn DocumentSink,
    ) -> Result<FileReport, ProcessError> {
        let file = std::fs::File::open(&job.path).map_err(|error| {
            ProcessError::caused_by(format!("cannot open {}", job.filename), error)
        })?;
        let mut line = 0_i64;
        for text in BufReader::new(file).lines() {
            let text = text.map_err(|error| {
                ProcessError::caused_by(format!("cannot read {}", job.filename), error)
            })?;
            if text == POISON {
                std::process::abort();
            }
            if text == HANG {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            line += 1;
            let id = format!("{}/{}/{line}", job.event_id, job.file_index);
            sink.emit("Data", doc! { "_id": id, "line": line, "text": text })?;
        }
        Ok(FileReport::processed(format!("{line} lines stored")))
    }

    fn step(&self) -> &str {
        "store_lines"
    }

    fn collections(&self) -> Vec<String> {
        vec!["Data".to_owned()]
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = ConsumeConfig::parse();
    let settings = match consume::logging::init(config.log_format)
        .map_err(|error| error.to_string())
        .and_then(|()| Settings::load(&config).map_err(|error| error.to_string()))
    {
        Ok(settings) => settings,
        Err(error) => {
            report(&error);
            return ExitCode::from(2);
        }
    };
    match consume::run(settings, Arc::new(Aborting), consume::shutdown::signal()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error.to_string());
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stderr)] // a command line program: its fatal errors go to the terminal
fn report(error: &str) {
    eprintln!("abort_worker: {error}");
}
