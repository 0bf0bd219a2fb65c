//! `licenseware-worker decrypt --key-file <file> <TOKEN>...`: prints each token's plain
//! value on its own line, in order, as the bytes that were encrypted. Tokens of this
//! tool and SDK v2 tokens are read; the `#sc#`/`#ec#` tags may be left out.
//!
//! A token that does not decrypt is named on stderr and leaves an empty line in its
//! place on stdout, so that line N still answers token N for scripts; the others are
//! printed and the exit code is 1. A value holding a line break spans several lines.
//! Exit 2 on a bad key file.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::anonymize::{Keys, Tokenizer};

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The file holding the passphrase the tokens were made with.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// Tokens such as `#sc#...#ec#`; quote them in a shell, where `#` starts a comment.
    #[arg(required = true, value_name = "TOKEN")]
    pub tokens: Vec<String>,
}

pub fn run(args: DecryptArgs) -> Result<(), CliError> {
    let keys = Keys::load(&args.key_file).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(&keys).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    let mut failed = 0;
    for token in &args.tokens {
        let line = match tokenizer.reveal(token) {
            Ok(plain) => plain,
            Err(error) => {
                failed += 1;
                report_failure(&error);
                Vec::new()
            }
        };
        stdout
            .write_all(&line)
            .and_then(|()| stdout.write_all(b"\n"))
            .map_err(|error| CliError::Failed(format!("cannot write to stdout: {error}")))?;
    }
    stdout.flush().map_err(|error| CliError::Failed(format!("cannot write to stdout: {error}")))?;
    if failed > 0 {
        return Err(CliError::Failed(format!("{failed} token(s) could not be decrypted")));
    }
    Ok(())
}

#[allow(clippy::print_stderr)] // a CLI: which token failed is for the terminal
fn report_failure(error: &crate::anonymize::TokenError) {
    eprintln!("error: {error} ({})", error.reason());
}
