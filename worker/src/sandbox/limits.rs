//! The limits of one contained run, and the flags (with environment twins) that set
//! them. The defaults hold a file that a worker pod of the operator's default size can
//! afford; a larger file needs larger limits, set on purpose.

use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

/// What one child may use before it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxLimits {
    /// Address space (RLIMIT_AS), in MiB: a bound on memory that holds whatever a
    /// parser tries to allocate, unlike a guess of what it will.
    pub memory_mib: u64,
    /// CPU time (RLIMIT_CPU), in seconds.
    pub cpu_seconds: u64,
    /// Time the child may take, in seconds, not counting the time the caller spends
    /// taking its output (a slow database must not fail a good file).
    pub wall_seconds: u64,
    /// Bytes the child may hand back, and the largest file it may write, in MiB: a
    /// small file that expands into gigabytes of documents stops here.
    pub output_mib: u64,
}

impl SandboxLimits {
    pub const DEFAULT_MEMORY_MIB: u64 = 1024;
    pub const DEFAULT_CPU_SECONDS: u64 = 300;
    pub const DEFAULT_WALL_SECONDS: u64 = 600;
    pub const DEFAULT_OUTPUT_MIB: u64 = 4096;

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(1 << 20)
    }

    pub fn output_bytes(&self) -> u64 {
        self.output_mib.saturating_mul(1 << 20)
    }

    pub fn wall(&self) -> Duration {
        Duration::from_secs(self.wall_seconds)
    }
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_mib: Self::DEFAULT_MEMORY_MIB,
            cpu_seconds: Self::DEFAULT_CPU_SECONDS,
            wall_seconds: Self::DEFAULT_WALL_SECONDS,
            output_mib: Self::DEFAULT_OUTPUT_MIB,
        }
    }
}

/// The limits as flags, for every command that reads untrusted files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct SandboxArgs {
    /// Memory (address space) a file's reader may use, in MiB; a file that needs more
    /// fails with "needs more than N MiB".
    #[arg(long, env = "LW_FILE_MEMORY_MIB", default_value_t = SandboxLimits::DEFAULT_MEMORY_MIB,
          value_parser = clap::value_parser!(u64).range(128..))]
    pub file_memory_mib: u64,
    /// CPU time a file's reader may use, in seconds.
    #[arg(long, env = "LW_FILE_CPU_SECONDS", default_value_t = SandboxLimits::DEFAULT_CPU_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub file_cpu_seconds: u64,
    /// Time a file's reader may take, in seconds (time spent waiting for the database
    /// to take its documents not counted).
    #[arg(long, env = "LW_FILE_WALL_SECONDS", default_value_t = SandboxLimits::DEFAULT_WALL_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub file_wall_seconds: u64,
    /// Output (documents, lines, written files) a file's reader may produce, in MiB.
    #[arg(long, env = "LW_FILE_OUTPUT_MIB", default_value_t = SandboxLimits::DEFAULT_OUTPUT_MIB,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub file_output_mib: u64,
}

impl From<SandboxArgs> for SandboxLimits {
    fn from(args: SandboxArgs) -> Self {
        Self {
            memory_mib: args.file_memory_mib,
            cpu_seconds: args.file_cpu_seconds,
            wall_seconds: args.file_wall_seconds,
            output_mib: args.file_output_mib,
        }
    }
}
