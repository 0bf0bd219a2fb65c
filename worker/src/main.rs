use std::process::ExitCode;

use clap::Parser;
use licenseware_worker::cli::{self, Cli};
use mimalloc::MiMalloc;

#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

fn main() -> ExitCode {
    // A sandbox child reads one untrusted file under limits; it needs no runtime.
    if let Some(code) = licenseware_worker::sandbox::run_child_if_requested() {
        return code;
    }
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)] // a CLI: its errors are for the terminal
            {
                eprintln!("licenseware-worker: {error}");
            }
            error.exit_code()
        }
    }
}
