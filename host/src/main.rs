//! The `autoscaler` binary: parses the command line, sets up logging, runs one command, and is
//! the one place that prints an error.
//!
//! Exit codes: 0 success, 1 the command failed, 2 bad usage or configuration.

use std::process::ExitCode;

use clap::Parser;

use autoscaler::cli::{Cli, CliError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    autoscaler::cli::init_logging(&cli);
    match autoscaler::cli::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
