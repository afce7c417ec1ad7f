//! The `mmcl` binary: parse the command line, run it with the `mmcl` library, and exit 1
//! with the error chain on stderr when it fails.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match mmcl::cmd::run(mmcl::cmd::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
