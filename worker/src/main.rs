use std::process::ExitCode;

use clap::Parser;
use licenseware_worker::cli::{self, Cli};
use mimalloc::MiMalloc;

#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
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
