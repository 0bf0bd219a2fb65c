use clap::Parser;
use licenseware_worker::Cli;

fn main() {
    let Cli {} = Cli::parse();
}
