//! The Licenseware worker as a library: the consumer, the HTTP API and the
//! local tools (validate, process, anonymize, decrypt) live here so that a
//! custom worker image can reuse them; the binary only parses its command line.
//!
//! The engine itself is built on top of this crate's skeleton (issue 4).

use clap::Parser;

/// `licenseware-worker`: validates, anonymizes and processes uploaded files.
#[derive(Debug, Parser)]
#[command(name = "licenseware-worker", version, about)]
pub struct Cli {}

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
