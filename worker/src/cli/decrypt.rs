//! `licenseware-worker decrypt`. Placeholder: built in issue 4.

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct DecryptArgs {}

pub fn run(_args: DecryptArgs) -> Result<(), CliError> {
    Err(CliError::Failed("decrypt is not built yet".into()))
}
