//! `mmcl report --runs DIR --out REPORT.md`: the paper's tables, analyses and plots from
//! the run folders' `results.json` files (see [`crate::report`]).
use std::path::PathBuf;

use crate::report::{write_report, Studies};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Folder whose sub-folders are run folders (each with a results.json).
    #[arg(long)]
    pub runs: PathBuf,
    /// The Markdown report to write; tables (CSV) and plots go to `<stem>-files/` beside it.
    #[arg(long, default_value = "REPORT.md")]
    pub out: PathBuf,
    /// Run folders of SAMM with the reference's calibration, compared with the headline
    /// grid's SAMM runs.
    #[arg(long)]
    pub calibration_runs: Option<PathBuf>,
    /// Run folders of SAMM twins at another reg_weight (λ): shown beside the headline SAMM
    /// rows as "SAMM λ=<value>".
    #[arg(long)]
    pub lambda_runs: Option<PathBuf>,
    /// Run folders of the training-budget study.
    #[arg(long)]
    pub budget_runs: Option<PathBuf>,
    /// Run folders trained with a modality missing (`data.missing`), compared with their
    /// twins in `--runs` in the Robustness section (which also shows every run's
    /// `robustness.json` from `mmcl eval --corrupt`).
    #[arg(long)]
    pub missing_runs: Option<PathBuf>,
    /// Run folders of SAMM's ablations (`cargo xtask reproduce --study ablation`), set
    /// against the headline SAMM runs.
    #[arg(long)]
    pub ablation_runs: Option<PathBuf>,
    /// Put runs made by different code versions or from different caches into one table
    /// cell (refused by default; runs without provenance are never compared).
    #[arg(long)]
    pub allow_mixed: bool,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let studies = Studies {
        calibration: a.calibration_runs.as_deref(),
        lambda: a.lambda_runs.as_deref(),
        budget: a.budget_runs.as_deref(),
        missing: a.missing_runs.as_deref(),
        ablation: a.ablation_runs.as_deref(),
        allow_mixed: a.allow_mixed,
    };
    eprintln!("{}", write_report(&a.runs, &a.out, &studies)?);
    Ok(())
}
