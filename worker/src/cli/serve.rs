//! `licenseware-worker serve`: the apps' HTTP API.

use clap::Args;

use super::CliError;
use crate::serve::{self, ServeArgs, ServeSettings};

#[derive(Debug, Args)]
pub struct ServeCommand {
    // Boxed: the flags are many, and clippy wants the Command variants of similar sizes.
    #[command(flatten)]
    pub args: Box<ServeArgs>,
}

pub async fn run(command: ServeCommand) -> Result<(), CliError> {
    let args = *command.args;
    if let Err(error) = crate::consume::logging::init(args.log_format) {
        return Err(CliError::Failed(format!("cannot set up logging: {error}")));
    }
    let settings =
        ServeSettings::from_args(args).map_err(|error| CliError::Usage(error.to_string()))?;
    serve::run(settings, crate::consume::shutdown::signal()).await.map_err(|error| {
        tracing::error!(%error, reason = error.reason(), "the API stopped");
        CliError::Failed(error.to_string())
    })
}
