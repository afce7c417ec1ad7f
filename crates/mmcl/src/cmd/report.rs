//! `mmcl report --runs DIR --out REPORT.md`: the paper's tables, analyses and plots,
//! regenerated purely from the run folders' `results.json` files (nothing is typed in by
//! hand). Every number is derived by `mmcl-metrics` (definitions in its crate docs).
//!
//! Table cells are mean ± std (ddof 0, numpy's default) over seeds of the headline: the
//! final mean accuracy (Seq: class-IL, Dom: domain-IL), and for GCIL the reference's
//! headline (the final model's mean accuracy over the cumulative test sets), with the
//! final all-seen accuracy in a second table. Multimodal = the fused head of the
//! audio-visual network; Audio / Visual = the audio-only / visual-only networks, except for
//! SAMM, whose Audio / Visual columns are the audio and visual heads of its audio-visual
//! network (SAMM trains them jointly). SAMM's calibrated ensemble is listed as the extra
//! method "SAMM-ensemble".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mmcl_metrics::analysis::{
    aggregate, budget_study, calibration_comparison, mean_curve, row_label, write_analyses, Curve,
    RunEntry,
};
use mmcl_metrics::keys::{Method, Modality, Scenario};
use mmcl_metrics::plot::{write_heatmap, write_line_chart, LineChart, Series};
use mmcl_metrics::stats::MeanStd;
use mmcl_metrics::table::PaperLayoutTable;
use mmcl_metrics::{ModeMetrics, RunMetrics};
use mmcl_scheduler::results::{RunResults, RESULTS_FILE};

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
}

/// The optional study folders a report includes.
#[derive(Default)]
pub struct Studies<'a> {
    pub calibration: Option<&'a Path>,
    pub lambda: Option<&'a Path>,
    pub budget: Option<&'a Path>,
}

/// One finished run, as the report needs it.
struct Run {
    dir: PathBuf,
    results: RunResults,
    metrics: RunMetrics,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let studies = Studies {
        calibration: args.calibration_runs.as_deref(),
        lambda: args.lambda_runs.as_deref(),
        budget: args.budget_runs.as_deref(),
    };
    let summary = write_report(&args.runs, &args.out, &studies)?;
    eprintln!("{summary}");
    Ok(())
}

/// Reads every finished run under `runs` (and the study folders), writes the report;
/// returns a one-line summary.
pub fn write_report(runs: &Path, out: &Path, studies: &Studies) -> Result<String> {
    let all = read_runs(runs)?;
    if all.is_empty() {
        bail!(
            "no finished runs (folders with a finished results.json) under {}",
            runs.display()
        );
    }
    let stem = out
        .file_stem()
        .map_or("REPORT".into(), |s| s.to_string_lossy().into_owned());
    let files = out.with_file_name(format!("{stem}-files"));
    std::fs::create_dir_all(&files).with_context(|| format!("creating {}", files.display()))?;
    let entries: Vec<RunEntry> = all
        .iter()
        .map(|r| RunEntry {
            results: &r.results,
            metrics: &r.metrics,
        })
        .collect();

    let mut headline = aggregate(&entries, |m, s| m.headline(s.is_gcil()));
    let mut all_seen = aggregate(&entries, |m, s| {
        s.is_gcil().then_some(m.gcil.final_all_seen)
    });
    // SAMM twins at another λ join the tables as rows of their own.
    let lambda_twins = match studies.lambda {
        Some(dir) => read_runs(dir)?,
        None => Vec::new(),
    };
    if !lambda_twins.is_empty() {
        // One folder holds one setting (the twins differ from the headline in λ only).
        let reg = |r: &Run| {
            r.results
                .config
                .pointer("/method/samm/reg_weight")
                .and_then(|v| v.as_f64())
        };
        let first = reg(&lambda_twins[0]);
        if let Some(other) = lambda_twins.iter().find(|r| reg(r) != first) {
            bail!(
                "{} and {} have different method.samm.reg_weight; one --lambda-runs folder holds one setting",
                lambda_twins[0].dir.display(),
                other.dir.display()
            );
        }
        let label = first.map_or("?".to_string(), |v| v.to_string());
        let twins: Vec<RunEntry> = lambda_twins
            .iter()
            .map(|r| RunEntry {
                results: &r.results,
                metrics: &r.metrics,
            })
            .collect();
        for (target, cells) in [
            (
                &mut headline,
                aggregate(&twins, |m, s| m.headline(s.is_gcil())),
            ),
            (
                &mut all_seen,
                aggregate(&twins, |m, s| s.is_gcil().then_some(m.gcil.final_all_seen)),
            ),
        ] {
            for (mut key, v) in cells {
                key.method = Method::Other(format!("{} λ={label}", key.method));
                target.insert(key, v);
            }
        }
    }

    let mut md = String::new();
    writeln!(md, "# mmcl benchmark report\n")?;
    writeln!(
        md,
        "Generated by `mmcl report --runs {} --out {}` from {} finished runs; every number \
         below is derived by `mmcl-metrics` from their `results.json` files. Cells: mean ± \
         std over seeds, with the paper's value in parentheses; Seq/Dom: final mean \
         accuracy (%); GCIL: the final model's mean accuracy over the cumulative test sets \
         (the reference's headline). Multimodal = fused head; Audio/Visual = unimodal \
         networks (SAMM: its audio/visual heads).\n",
        runs.display(),
        out.display(),
        all.len()
    )?;
    let scenarios: Vec<Scenario> = {
        let mut s: Vec<Scenario> = headline.keys().map(|k| k.scenario.clone()).collect();
        s.sort();
        s.dedup();
        s
    };
    let seq_dom: Vec<Scenario> = scenarios.iter().filter(|s| !s.is_gcil()).cloned().collect();
    let gcil: Vec<Scenario> = scenarios.iter().filter(|s| s.is_gcil()).cloned().collect();
    let tables = [
        (
            "Class- and domain-incremental (Seq, Dom): final mean accuracy",
            &seq_dom,
            "table-seq-dom",
            PaperLayoutTable::build as fn(_, _, _) -> _,
            &headline,
        ),
        (
            "Generalised class-incremental (GCIL): final model, mean over the cumulative test sets (the reference's headline)",
            &gcil,
            "table-gcil",
            PaperLayoutTable::build,
            &headline,
        ),
        (
            "GCIL: final model on every seen class (final all-seen accuracy; the paper does not report it)",
            &gcil,
            "table-gcil-all-seen",
            PaperLayoutTable::build_without_paper,
            &all_seen,
        ),
    ];
    for (title, group, slug, build, cells) in tables {
        if group.is_empty() {
            continue;
        }
        let table: PaperLayoutTable = build(title, group, cells);
        writeln!(md, "{}", table.to_markdown())?;
        let csv = files.join(format!("{slug}.csv"));
        crate::atomic::write_atomic(&csv, table.to_csv().as_bytes())?;
        writeln!(md, "CSV: [{slug}.csv]({stem}-files/{slug}.csv)\n")?;
    }

    // Continual-learning diagnostics of the multimodal runs (fused head), mean over seeds.
    writeln!(
        md,
        "## Forgetting and calibration (multimodal, fused head, mean over seeds)\n"
    )?;
    writeln!(
        md,
        "| scenario | method | buffer | headline | task-IL | BWT | forgetting | FWT | stability | plasticity | recency (last task) | ECE | seeds |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    // The headline column is the tables' number: GCIL's reference headline, else final
    // mean accuracy.
    type Column = fn(&ModeMetrics, bool) -> Option<f64>;
    let columns: [Column; 9] = [
        |m, gcil| m.headline(gcil),
        |m, _| m.task_il_accuracy,
        |m, _| m.backward_transfer,
        |m, _| m.forgetting,
        |m, _| m.forward_transfer,
        |m, _| m.stability,
        |m, _| m.plasticity,
        |m, _| m.recency.last().copied().flatten(),
        |m, _| m.ece,
    ];
    let mut diag: BTreeMap<(Scenario, bool, usize, Method), Vec<&ModeMetrics>> = BTreeMap::new();
    for run in &all {
        let r = &run.results;
        if Modality::parse(&r.run.modality) != Some(Modality::Multimodal) {
            continue;
        }
        let Some(av) = run.metrics.mode("av") else {
            continue;
        };
        let method = Method::parse(&r.run.method);
        diag.entry((
            Scenario::parse(&r.run.scenario),
            !method.is_bound(),
            r.run.buffer_size,
            method,
        ))
        .or_default()
        .push(av);
    }
    for ((scenario, _, buffer, method), modes) in &diag {
        let buffer = if *buffer == 0 {
            "—".to_string()
        } else {
            buffer.to_string()
        };
        write!(md, "| {scenario} | {method} | {buffer} |")?;
        for col in &columns {
            let v: Vec<f64> = modes
                .iter()
                .filter_map(|m| col(m, scenario.is_gcil()))
                .collect();
            let cell = MeanStd::of(&v).map_or("—".to_string(), |m| format!("{:.2}", m.mean));
            write!(md, " {cell} |")?;
        }
        writeln!(md, " {} |", modes.len())?;
    }
    writeln!(md)?;

    let link = format!("{stem}-files");
    writeln!(md, "{}", write_analyses(&entries, &files, &link)?)?;
    if let Some(dir) = studies.calibration {
        let twins = read_runs(dir)?;
        let both: Vec<RunEntry> = entries
            .iter()
            .map(|e| RunEntry {
                results: e.results,
                metrics: e.metrics,
            })
            .chain(twins.iter().map(|r| RunEntry {
                results: &r.results,
                metrics: &r.metrics,
            }))
            .collect();
        writeln!(md, "{}", calibration_comparison(&both))?;
    }
    if let Some(dir) = studies.budget {
        let study = read_runs(dir)?;
        let study: Vec<RunEntry> = study
            .iter()
            .map(|r| RunEntry {
                results: &r.results,
                metrics: &r.metrics,
            })
            .collect();
        writeln!(md, "{}", budget_study(&study, &files, &link)?)?;
    }

    // Plots: accuracy on the seen tasks after each task (multimodal, seed mean) per
    // scenario, and the accuracy-matrix heatmap of each multimodal run of seed 0.
    writeln!(md, "## Plots\n")?;
    for scenario in &scenarios {
        let mut series: BTreeMap<(bool, usize, Method), Vec<Curve>> = BTreeMap::new();
        for run in &all {
            let r = &run.results;
            let method = Method::parse(&r.run.method);
            if Scenario::parse(&r.run.scenario) != *scenario
                || Modality::parse(&r.run.modality) != Some(Modality::Multimodal)
                || method == Method::Joint
            {
                continue;
            }
            if let Some(av) = run.metrics.mode("av") {
                series
                    .entry((!method.is_bound(), r.run.buffer_size, method))
                    .or_default()
                    .push(av.seen_accuracy.clone());
            }
        }
        if series.is_empty() {
            continue;
        }
        let chart = LineChart {
            title: format!("{scenario}: accuracy on all seen tasks (multimodal)"),
            x_label: "after task".into(),
            y_label: "accuracy (%)".into(),
            series: series
                .into_iter()
                .map(|((_, buffer, method), curves)| Series {
                    label: row_label(&method, (buffer > 0).then_some(buffer as u32)),
                    points: mean_curve(&curves),
                })
                .collect(),
        };
        let name = format!("curve-{}", scenario.slug());
        write_line_chart(&chart, &files.join(&name))?;
        writeln!(md, "![{scenario} curves]({stem}-files/{name}.svg)\n")?;
    }
    for run in all.iter().filter(|r| r.results.run.seed == 0) {
        let r = &run.results;
        if Modality::parse(&r.run.modality) != Some(Modality::Multimodal) {
            continue;
        }
        let Some(m) = run.metrics.mode("av").and_then(|m| m.matrix.as_ref()) else {
            continue;
        };
        let name = format!(
            "heatmap-{}",
            run.dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let method = Method::parse(&r.run.method);
        let buffer =
            (r.run.buffer_size > 0 && !method.is_bound()).then_some(r.run.buffer_size as u32);
        let title = format!(
            "{} {}, multimodal (seed 0)",
            Scenario::parse(&r.run.scenario),
            row_label(&method, buffer),
        );
        write_heatmap(m, &title, &files.join(&name))?;
        writeln!(md, "![{title}]({stem}-files/{name}.svg)")?;
    }
    writeln!(md, "\n## Runs\n")?;
    for run in &all {
        writeln!(
            md,
            "- `{}` ({:.0} s)",
            run.dir.display(),
            run.results.elapsed_s
        )?;
    }
    crate::atomic::write_atomic(out, md.as_bytes())?;
    Ok(format!(
        "wrote {} from {} runs ({} table cells)",
        out.display(),
        all.len(),
        headline.len()
    ))
}

fn read_runs(runs: &Path) -> Result<Vec<Run>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .with_context(|| format!("reading {}", runs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(RESULTS_FILE).is_file())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let path = dir.join(RESULTS_FILE);
        let results = RunResults::read(&path)?;
        if results.finished {
            let metrics = RunMetrics::derive(&results)
                .with_context(|| format!("{}: inconsistent results", path.display()))?;
            out.push(Run {
                dir,
                results,
                metrics,
            });
        } else {
            eprintln!("report: skipping unfinished run {}", dir.display());
        }
    }
    Ok(out)
}
