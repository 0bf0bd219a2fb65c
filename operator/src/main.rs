use std::process::ExitCode;

use clap::Parser;
use licenseware_operator::{
    config::{Cli, Command},
    run, telemetry,
};
use std::path::Path;

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    match command {
        Command::Crdgen { out_dir } => crdgen(out_dir.as_deref()),
        Command::Run(config) => {
            if let Err(error) = telemetry::init(config.log_format) {
                #[allow(clippy::print_stderr)] // no logger to report through
                {
                    eprintln!("cannot start logging: {error}");
                }
                return ExitCode::FAILURE;
            }
            match run(config, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(reason = error.reason(), %error, "operator failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[allow(clippy::print_stderr)] // a CLI command: its errors are for the terminal
fn crdgen(out_dir: Option<&Path>) -> ExitCode {
    let outcome = match out_dir {
        Some(dir) => licenseware_operator::crdgen::write_files(dir).map(|files| {
            for file in files {
                eprintln!("wrote {}", dir.join(file).display());
            }
        }),
        None => licenseware_operator::crdgen::print(&mut std::io::stdout().lock()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crdgen: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
