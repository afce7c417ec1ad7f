//! The `mmcl` binary: parse the command line, run it with the `mmcl` library, and exit 2
//! with the error chain on stderr when it fails (the status clap gives a usage error, so
//! scripts see one status for "mmcl refused or could not do what it was asked").
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match mmcl::cmd::run(mmcl::cmd::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::from(2)
        }
    }
}
