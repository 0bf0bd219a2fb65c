//! `licenseware-worker consume`. Placeholder: built in issue 4.

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct ConsumeArgs {}

pub async fn run(_args: ConsumeArgs) -> Result<(), CliError> {
    Err(CliError::Failed("consume is not built yet".into()))
}
