//! `mmcl train`: one continual-learning run from a preset, a TOML config and overrides;
//! `--resume RUN_DIR` continues an interrupted run from its last finished task; `--lr` and
//! `--epochs` are its resumable overrides (applied to the tasks still to train and recorded
//! in the run's `config-history.json`); any other setting is refused by name.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use mmcl_scheduler::{resume_with, train, ResumeOverrides, RunOptions};

use crate::config::{refuse_on_resume, resolve, ConfigSources, Shorthands};

#[derive(Args)]
pub struct TrainArgs {
    /// Experiment config (TOML); missing keys come from the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Base settings: paper, tiny, mini (default), small.
    #[arg(long)]
    pub preset: Option<String>,
    #[command(flatten)]
    pub flags: Shorthands,
    /// Any config key, e.g. `--set train.batch_size=16 --set method.samm.align_on=features`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// The run folder to create.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint (only --lr, --epochs and
    /// --quiet may be given with it).
    #[arg(long, conflicts_with_all = ["config", "preset", "out"])]
    pub resume: Option<PathBuf>,
    /// Print the resolved config and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    mmcl_ops::process::tune_for_training();
    let opts = RunOptions {
        progress: !args.quiet,
        ..RunOptions::default()
    };
    let results = if let Some(dir) = &args.resume {
        refuse_on_resume(&args.flags, &args.sets, args.dry_run)?;
        let overrides = ResumeOverrides {
            lr: args.flags.lr,
            epochs: args.flags.epochs,
        };
        resume_with(dir, &overrides, &opts)?
    } else {
        let cfg = resolve(&ConfigSources {
            preset: args.preset.clone(),
            file: args.config.clone(),
            shorthands: args.flags.to_pairs(),
            sets: args.sets.clone(),
        })?;
        if args.dry_run {
            print!("{}", toml::to_string_pretty(&cfg)?);
            return Ok(());
        }
        let Some(out) = &args.out else {
            bail!("--out RUN_DIR is required")
        };
        train(&cfg, out, &opts)?
    };
    print!("{}", crate::runs::summary(&results)?);
    Ok(())
}
