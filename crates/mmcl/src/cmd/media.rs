//! `mmcl media …`: inspection commands over the media crate.
use clap::Subcommand;

#[derive(Subcommand)]
pub enum MediaCommand {}

pub fn run(command: MediaCommand) -> anyhow::Result<()> {
    match command {}
}
