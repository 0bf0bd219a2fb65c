//! The command line: one module per subcommand, each a thin layer over the library.
//! Exit codes: 0 when the command ran (whatever the files' outcome), 2 on bad usage or
//! a bad manifest (the reason on stderr), 1 when the command failed while running.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod anonymize;
pub mod consume;
pub mod decrypt;
pub mod process;
pub mod serve;
pub mod token;
pub mod validate;

/// `licenseware-worker`: validates, anonymizes and processes uploaded files.
#[derive(Debug, Parser)]
#[command(name = "licenseware-worker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate files against an Uploader's rules; prints the SDK's FileValidationResponse.
    Validate(validate::ValidateArgs),
    /// Print the documents processing would store, one JSON object per line.
    Process(process::ProcessArgs),
    /// Apply an Uploader's encryption rules to files, writing the results to --out.
    Anonymize(anonymize::AnonymizeArgs),
    /// Print the plain values of anonymization tokens, one a line.
    Decrypt(decrypt::DecryptArgs),
    /// Consume one uploader's processing events (the worker Deployment's command).
    Consume(consume::ConsumeArgs),
    /// Serve the apps' HTTP API (uploads, status, history, registry).
    Serve(serve::ServeCommand),
    /// Print an HS256 JWT for `serve --jwt-secret-file` (development and tests).
    Token(token::TokenArgs),
}

/// Why a command did not run to the end. `Usage` exits 2, `Failed` exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Failed(_) => ExitCode::FAILURE,
        }
    }
}

impl From<crate::manifest::ManifestError> for CliError {
    fn from(error: crate::manifest::ManifestError) -> Self {
        Self::Usage(error.to_string())
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Process(args) => process::run(args),
        Command::Anonymize(args) => anonymize::run(args),
        Command::Decrypt(args) => decrypt::run(args),
        Command::Consume(args) => consume::run(args).await,
        Command::Serve(command) => serve::run(command).await,
        Command::Token(args) => token::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_flag_is_understood() {
        let error =
            Cli::try_parse_from(["licenseware-worker", "--version"]).expect_err("prints version");
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
