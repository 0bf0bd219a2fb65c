//! `licenseware-worker anonymize`. Placeholder: built in issue 4.

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct AnonymizeArgs {}

pub fn run(_args: AnonymizeArgs) -> Result<(), CliError> {
    Err(CliError::Failed("anonymize is not built yet".into()))
}
