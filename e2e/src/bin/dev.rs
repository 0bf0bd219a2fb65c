//! `dev`: the whole system on this machine (the operator, the API, a worker per
//! Uploader, then a demo upload), as `make dev` runs it; see [`licenseware_e2e::dev`].

use std::process::ExitCode;

use clap::Parser;
use licenseware_e2e::dev::{self, DevArgs};

#[tokio::main]
async fn main() -> ExitCode {
    match dev::run(DevArgs::parse(), dev::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)] // a CLI: its errors are for the terminal
            {
                eprintln!("dev: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}
