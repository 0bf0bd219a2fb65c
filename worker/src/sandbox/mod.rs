//! Containment of untrusted files: every file is read, validated, processed and
//! anonymized in a child process of this executable, under limits on address space, CPU
//! time, wall time and output. A file that would exhaust one (or crash a reader) costs
//! that child, and becomes a failed entry with the reason; the worker, the API and the
//! CLI go on. Guards in the readers make the common attacks fail early and clearly;
//! this makes the ones no guard foresaw fail safely.
//!
//! A binary that uses these functions must call [`run_child_if_requested`] first thing
//! in `main`, before it starts a runtime: children are started as
//! `{current executable} __sandbox-child`.

mod child;
mod frame;
mod jobs;
mod limits;
mod parent;
pub mod request;

use std::process::ExitCode;

pub use jobs::{AnonymizeFailure, ProcessSink};
pub use limits::{SandboxArgs, SandboxLimits};
pub use parent::Sandbox;
pub use request::{ProcessOutcome, ProcessOutput, StepReport};

/// The first argument that makes this executable a sandbox child.
pub const CHILD_ARG: &str = "__sandbox-child";

/// Runs the sandbox child when this process was started as one, returning its exit
/// code; `None` in every other process.
pub fn run_child_if_requested() -> Option<ExitCode> {
    let first = std::env::args_os().nth(1)?;
    (first == CHILD_ARG).then(child::run)
}

/// Why a contained run did not give an outcome. The messages are written for the user
/// who uploaded the file: they become its failed entry.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("File needs more than {mib} MiB of memory to read")]
    MemoryLimit { mib: u64 },
    #[error("File needs more than {seconds} s of CPU time to read")]
    CpuLimit { seconds: u64 },
    #[error("File takes longer than {seconds} s to read")]
    WallLimit { seconds: u64 },
    #[error("File produces more than {mib} MiB of output")]
    OutputLimit { mib: u64 },
    #[error(
        "File reader was killed: it needed more than {cpu_seconds} s of CPU time or more memory than this worker has"
    )]
    Killed { cpu_seconds: u64 },
    #[error("File reader crashed ({status}): {stderr}")]
    Crashed { status: String, stderr: String },
    /// The caller stopped taking output (its own error, e.g. a closed document sink).
    #[error("{0}")]
    Caller(String),
    #[error("cannot start the file reader: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot create a scratch directory: {0}")]
    Scratch(#[source] std::io::Error),
    #[error("the file reader answered out of protocol: {0}")]
    Protocol(String),
}

impl SandboxError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MemoryLimit { .. } => "FileMemoryLimit",
            Self::CpuLimit { .. } => "FileCpuLimit",
            Self::WallLimit { .. } => "FileTimeLimit",
            Self::OutputLimit { .. } => "FileOutputLimit",
            Self::Killed { .. } => "FileReaderKilled",
            Self::Crashed { .. } => "FileReaderCrashed",
            Self::Caller(_) => "OutputRefused",
            Self::Spawn(_) => "SandboxUnavailable",
            Self::Scratch(_) => "ScratchUnavailable",
            Self::Protocol(_) => "SandboxProtocol",
        }
    }

    /// The file itself is the cause: another attempt with the same limits fails the
    /// same way. Otherwise the worker is (no reader could start, say).
    pub fn is_the_files(&self) -> bool {
        matches!(
            self,
            Self::MemoryLimit { .. }
                | Self::CpuLimit { .. }
                | Self::WallLimit { .. }
                | Self::OutputLimit { .. }
                | Self::Killed { .. }
                | Self::Crashed { .. }
        )
    }
}
