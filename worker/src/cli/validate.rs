//! `licenseware-worker validate`. Placeholder: built in issue 4.

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct ValidateArgs {}

pub fn run(_args: ValidateArgs) -> Result<(), CliError> {
    Err(CliError::Failed("validate is not built yet".into()))
}
