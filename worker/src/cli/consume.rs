//! `licenseware-worker consume`: one uploader's consumer, configured by flags or their
//! environment variables (the operator's Deployment sets LW_* and mounts worker.yaml).

use clap::Args;

use super::CliError;
use crate::{
    consume::{self, ConsumeConfig, Settings},
    sandbox::{Sandbox, SandboxArgs},
};

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    // Boxed: the flags are many, and clippy wants the Command variants of similar sizes.
    #[command(flatten)]
    pub config: Box<ConsumeConfig>,
    /// The limits of each file's sandboxed reader.
    #[command(flatten)]
    pub limits: SandboxArgs,
}

pub async fn run(args: ConsumeArgs) -> Result<(), CliError> {
    let config = *args.config;
    if let Err(error) = consume::logging::init(config.log_format) {
        return Err(CliError::Failed(format!("cannot set up logging: {error}")));
    }
    let settings = Settings::load(&config).map_err(|error| CliError::Usage(error.to_string()))?;
    let sandbox =
        Sandbox::new(args.limits.into()).map_err(|error| CliError::Failed(error.to_string()))?;
    // A worker whose readers cannot start (no process may be spawned, limits refused)
    // must not take events it would only fail: it stops here, and says why.
    tokio::task::spawn_blocking({
        let sandbox = sandbox.clone();
        move || sandbox.self_test(1)
    })
    .await
    .map_err(|error| CliError::Failed(format!("the sandbox self-test: {error}")))?
    .map_err(|error| CliError::Failed(format!("file readers cannot start: {error}")))?;
    let processor = crate::processing::default_processor_with(&settings.manifest.spec, sandbox);
    consume::run(settings, processor, consume::shutdown::signal()).await.map(|_| ()).map_err(
        |error| {
            tracing::error!(%error, reason = error.reason(), "consumer stopped");
            CliError::Failed(error.to_string())
        },
    )
}
