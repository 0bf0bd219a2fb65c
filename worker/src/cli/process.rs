//! `licenseware-worker process`. Placeholder: built in issue 4.

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct ProcessArgs {}

pub fn run(_args: ProcessArgs) -> Result<(), CliError> {
    Err(CliError::Failed("process is not built yet".into()))
}
