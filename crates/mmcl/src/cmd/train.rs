//! `mmcl train`: one continual-learning run from a preset, a TOML config and overrides;
//! `--resume RUN_DIR` continues an interrupted run from its last finished task; `--lr` and
//! `--epochs` are its resumable overrides (applied to the tasks still to train and recorded
//! in the run's `config-history.json`); any other setting is refused by name.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use mmcl_scheduler::{resume_with, train, ResumeOverrides, RunOptions};

use crate::config::{resolve, ConfigSources, Shorthands};

#[derive(Args)]
pub struct TrainArgs {
    /// Experiment config (TOML); missing keys come from the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Base settings: paper, tiny, mini (default), small.
    #[arg(long)]
    pub preset: Option<String>,
    /// seq, dom, gcil-uniform or gcil-longtail.
    #[arg(long)]
    pub scenario: Option<String>,
    /// sgd, joint, er or samm.
    #[arg(long)]
    pub method: Option<String>,
    /// Replay buffer size (er, samm).
    #[arg(long)]
    pub buffer: Option<usize>,
    /// audio-visual, audio or visual.
    #[arg(long)]
    pub modality: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Prepared cache folder (`mmcl prep` output).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Epochs per task, for every method, JOINT included (with --resume: for the tasks
    /// still to train).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate (with --resume: from the next step on, e.g. after a divergence).
    #[arg(long)]
    pub lr: Option<f64>,
    /// `cpu` or `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
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
        refuse_non_resumable(&args)?;
        let overrides = ResumeOverrides {
            lr: args.lr,
            epochs: args.epochs,
        };
        resume_with(dir, &overrides, &opts)?
    } else {
        let cfg = resolve(&ConfigSources {
            preset: args.preset.clone(),
            file: args.config.clone(),
            shorthands: shorthands(&args).to_pairs(),
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

fn shorthands(a: &TrainArgs) -> Shorthands {
    Shorthands {
        scenario: a.scenario.clone(),
        method: a.method.clone(),
        buffer: a.buffer,
        modality: a.modality.clone(),
        seed: a.seed,
        cache: a.cache.clone(),
        epochs: a.epochs,
        lr: a.lr,
        device: a.device.clone(),
    }
}

/// A resumed run keeps its experiment: only the documented resumable overrides may come with
/// `--resume`; any other flag is an error naming it (it would otherwise be silently ignored).
fn refuse_non_resumable(a: &TrainArgs) -> Result<()> {
    let given = [
        ("--scenario", a.scenario.is_some()),
        ("--method", a.method.is_some()),
        ("--buffer", a.buffer.is_some()),
        ("--modality", a.modality.is_some()),
        ("--seed", a.seed.is_some()),
        ("--cache", a.cache.is_some()),
        ("--device", a.device.is_some()),
        ("--set", !a.sets.is_empty()),
        ("--dry-run", a.dry_run),
    ];
    let refused: Vec<&str> = given.iter().filter(|g| g.1).map(|g| g.0).collect();
    if !refused.is_empty() {
        bail!(
            "{} cannot be changed when resuming (only --lr and --epochs can: they apply to the tasks still to train); start a new run with --out to change {}",
            refused.join(", "),
            if refused.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(())
}
