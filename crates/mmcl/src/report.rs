//! The benchmark report (`mmcl report`): the paper's tables, analyses and plots, regenerated
//! purely from the run folders' `results.json` files (nothing is typed in by hand). Every
//! number is derived by `mmcl-metrics` (definitions in its crate docs).
//!
//! Table cells are mean ± std (ddof 0, numpy's default) over seeds of the headline: the
//! final mean accuracy (Seq: class-IL, Dom: domain-IL), and for GCIL the reference's
//! headline (the final model's mean accuracy over the cumulative test sets), with the
//! final all-seen accuracy in a second table. Multimodal = the fused head of the
//! audio-visual network; Audio / Visual = the audio-only / visual-only networks, except for
//! SAMM, whose Audio / Visual columns are the audio and visual heads of its audio-visual
//! network (SAMM trains them jointly). SAMM's calibrated ensemble is listed as the extra
//! method "SAMM-ensemble".
//!
//! [`write_report`] runs the steps in the report's order: read the runs, build the cells
//! (with the λ twins as extra rows), then the sections: introduction, paper tables,
//! diagnostics, analyses, studies, plots, the list of runs (with each run's provenance).
//! The seeds of one table cell must come from one code version and one cache (checked on
//! the runs' provenance, see [`mmcl_metrics::provenance`]; `--allow-mixed` overrides).
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
use mmcl_metrics::table::{CellKey, PaperLayoutTable};
use mmcl_metrics::{ModeMetrics, RunMetrics};
use mmcl_scheduler::results::{RunResults, RESULTS_FILE};

/// The optional study folders a report includes.
#[derive(Default)]
pub struct Studies<'a> {
    /// SAMM with the reference's calibration, compared with the headline SAMM runs.
    pub calibration: Option<&'a Path>,
    /// SAMM twins at another reg_weight (λ): extra rows "SAMM λ=<value>".
    pub lambda: Option<&'a Path>,
    /// The training-budget study.
    pub budget: Option<&'a Path>,
    /// Runs trained with a modality missing (`data.missing`), against their headline twins.
    pub missing: Option<&'a Path>,
    /// SAMM's ablations, against the headline SAMM runs.
    pub ablation: Option<&'a Path>,
    /// Put runs of different code versions or caches into one table cell (by default the
    /// report refuses, see [`mmcl_metrics::provenance::check_cells`]).
    pub allow_mixed: bool,
}

/// One finished run, as the report needs it.
pub struct Run {
    pub dir: PathBuf,
    pub results: RunResults,
    pub metrics: RunMetrics,
}

impl Run {
    fn entry(&self) -> RunEntry<'_> {
        RunEntry {
            results: &self.results,
            metrics: &self.metrics,
        }
    }

    fn is_multimodal(&self) -> bool {
        self.results.run.modality == Modality::AudioVisual
    }

    fn method(&self) -> Method {
        Method::from(self.results.run.method)
    }

    fn scenario(&self) -> Scenario {
        Scenario::parse(&self.results.run.scenario)
    }
}

/// Table cells: mean ± std over seeds per key.
type Cells = BTreeMap<CellKey, MeanStd>;

/// Where the report's side files go: `<stem>-files/` beside the Markdown file.
struct Files {
    stem: String,
    dir: PathBuf,
}

impl Files {
    fn beside(out: &Path) -> Result<Files> {
        let stem = out
            .file_stem()
            .map_or("REPORT".into(), |s| s.to_string_lossy().into_owned());
        let dir = out.with_file_name(format!("{stem}-files"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Files { stem, dir })
    }

    /// The Markdown link of the side-file folder.
    fn dir_link(&self) -> String {
        format!("{}-files", self.stem)
    }

    /// The Markdown link target of a side file.
    fn link(&self, name: &str) -> String {
        format!("{}-files/{name}", self.stem)
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    mmcl_io::write_atomic(path, bytes).with_context(|| format!("cannot write {}", path.display()))
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
    check_provenance(&all, studies)?;
    let files = Files::beside(out)?;
    let entries: Vec<RunEntry> = all.iter().map(Run::entry).collect();
    let (mut headline, mut all_seen) = table_cells(&entries);
    if let Some(dir) = studies.lambda {
        let twins = read_runs(dir)?;
        check_provenance(&twins, studies)?;
        add_lambda_rows(&twins, &mut headline, &mut all_seen)?;
    }
    let scenarios: Vec<Scenario> = {
        let mut s: Vec<Scenario> = headline.keys().map(|k| k.scenario.clone()).collect();
        s.sort();
        s.dedup();
        s
    };

    let mut md = introduction(runs, out, all.len());
    md += &paper_tables(&scenarios, &headline, &all_seen, &files)?;
    md += &diagnostics(&all);
    md += &write_analyses(&entries, &files.dir, &files.dir_link())?;
    md.push('\n');
    md += &study_sections(&entries, studies, &files)?;
    md += &robustness(&all, &entries, studies, &files)?;
    md += &plots(&all, &scenarios, &files)?;
    md += &run_list(&all);
    write(out, md.as_bytes())?;
    Ok(format!(
        "wrote {} from {} runs ({} table cells)",
        out.display(),
        all.len(),
        headline.len()
    ))
}

/// Refuses runs of different code or caches in one table cell, unless `allow_mixed`.
fn check_provenance(runs: &[Run], studies: &Studies) -> Result<()> {
    if studies.allow_mixed {
        return Ok(());
    }
    let pairs: Vec<(&Path, &RunResults)> =
        runs.iter().map(|r| (r.dir.as_path(), &r.results)).collect();
    Ok(mmcl_metrics::provenance::check_cells(&pairs)?)
}

/// The headline cells and (GCIL) the final all-seen cells.
fn table_cells(entries: &[RunEntry]) -> (Cells, Cells) {
    (
        aggregate(entries, |m, s| m.headline(s.is_gcil())),
        aggregate(entries, |m, s| s.is_gcil().then_some(m.gcil.final_all_seen)),
    )
}

/// SAMM twins at another λ join the tables as rows of their own; one folder holds one
/// setting (the twins differ from the headline in λ only).
fn add_lambda_rows(twins: &[Run], headline: &mut Cells, all_seen: &mut Cells) -> Result<()> {
    let Some(first) = twins.first() else {
        return Ok(());
    };
    let reg = |r: &Run| {
        r.results
            .config
            .pointer("/method/samm/reg_weight")
            .and_then(|v| v.as_f64())
    };
    if let Some(other) = twins.iter().find(|r| reg(r) != reg(first)) {
        bail!(
            "{} and {} have different method.samm.reg_weight; one --lambda-runs folder holds one setting",
            first.dir.display(),
            other.dir.display()
        );
    }
    let label = reg(first).map_or("?".to_string(), |v| v.to_string());
    let entries: Vec<RunEntry> = twins.iter().map(Run::entry).collect();
    let (h, s) = table_cells(&entries);
    for (target, cells) in [(headline, h), (all_seen, s)] {
        for (mut key, v) in cells {
            key.method = Method::Other(format!("{} λ={label}", key.method));
            target.insert(key, v);
        }
    }
    Ok(())
}

fn introduction(runs: &Path, out: &Path, n_runs: usize) -> String {
    format!(
        "# mmcl benchmark report\n\n\
         Generated by `mmcl report --runs {} --out {}` from {n_runs} finished runs; every number \
         below is derived by `mmcl-metrics` from their `results.json` files. Cells: mean ± \
         std over seeds, with the paper's value in parentheses; Seq/Dom: final mean \
         accuracy (%); GCIL: the final model's mean accuracy over the cumulative test sets \
         (the reference's headline). Multimodal = fused head; Audio/Visual = unimodal \
         networks (SAMM: its audio/visual heads).\n\n",
        runs.display(),
        out.display(),
    )
}

/// The paper-layout tables (Markdown, and CSV side files).
fn paper_tables(
    scenarios: &[Scenario],
    headline: &Cells,
    all_seen: &Cells,
    files: &Files,
) -> Result<String> {
    let seq_dom: Vec<Scenario> = scenarios.iter().filter(|s| !s.is_gcil()).cloned().collect();
    let gcil: Vec<Scenario> = scenarios.iter().filter(|s| s.is_gcil()).cloned().collect();
    type Build = fn(&'static str, &[Scenario], &Cells) -> PaperLayoutTable;
    let tables: [(&'static str, &[Scenario], &str, Build, &Cells); 3] = [
        (
            "Class- and domain-incremental (Seq, Dom): final mean accuracy",
            &seq_dom,
            "table-seq-dom",
            PaperLayoutTable::build,
            headline,
        ),
        (
            "Generalised class-incremental (GCIL): final model, mean over the cumulative test sets (the reference's headline)",
            &gcil,
            "table-gcil",
            PaperLayoutTable::build,
            headline,
        ),
        (
            "GCIL: final model on every seen class (final all-seen accuracy; the paper does not report it)",
            &gcil,
            "table-gcil-all-seen",
            PaperLayoutTable::build_without_paper,
            all_seen,
        ),
    ];
    let mut md = String::new();
    for (title, group, slug, build, cells) in tables {
        if group.is_empty() {
            continue;
        }
        let table = build(title, group, cells);
        writeln!(md, "{}", table.to_markdown())?;
        write(
            &files.dir.join(format!("{slug}.csv")),
            table.to_csv().as_bytes(),
        )?;
        let link = files.link(&format!("{slug}.csv"));
        writeln!(md, "CSV: [{slug}.csv]({link})\n")?;
    }
    Ok(md)
}

/// Continual-learning diagnostics of the multimodal runs (fused head), mean over seeds.
fn diagnostics(all: &[Run]) -> String {
    let mut md = String::from(
        "## Forgetting and calibration (multimodal, fused head, mean over seeds)\n\n\
         | scenario | method | buffer | headline | task-IL | BWT | forgetting | FWT | stability | plasticity | recency (last task) | ECE | seeds |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
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
    let mut rows: BTreeMap<(Scenario, bool, usize, Method), Vec<&ModeMetrics>> = BTreeMap::new();
    for run in all.iter().filter(|r| r.is_multimodal()) {
        let Some(av) = run.metrics.mode("av") else {
            continue;
        };
        let method = run.method();
        let key = (
            run.scenario(),
            !method.is_bound(),
            run.results.run.buffer_size,
            method,
        );
        rows.entry(key).or_default().push(av);
    }
    for ((scenario, _, buffer, method), modes) in &rows {
        let buffer = if *buffer == 0 {
            "—".to_string()
        } else {
            buffer.to_string()
        };
        let _ = write!(md, "| {scenario} | {method} | {buffer} |");
        for col in &columns {
            let v: Vec<f64> = modes
                .iter()
                .filter_map(|m| col(m, scenario.is_gcil()))
                .collect();
            let cell = MeanStd::of(&v).map_or("—".to_string(), |m| format!("{:.2}", m.mean));
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md, " {} |", modes.len());
    }
    md.push('\n');
    md
}

/// The calibration comparison and the training-budget study, when their folders are given.
fn study_sections(entries: &[RunEntry], studies: &Studies, files: &Files) -> Result<String> {
    let mut md = String::new();
    if let Some(dir) = studies.calibration {
        let twins = read_runs(dir)?;
        let both: Vec<RunEntry> = entries
            .iter()
            .map(|e| RunEntry {
                results: e.results,
                metrics: e.metrics,
            })
            .chain(twins.iter().map(Run::entry))
            .collect();
        writeln!(md, "{}", calibration_comparison(&both))?;
    }
    if let Some(dir) = studies.ablation {
        let study = read_runs(dir)?;
        let study: Vec<RunEntry> = study.iter().map(Run::entry).collect();
        writeln!(
            md,
            "{}",
            mmcl_metrics::ablation::ablation_study(&study, entries)
        )?;
    }
    if let Some(dir) = studies.budget {
        let study = read_runs(dir)?;
        let study: Vec<RunEntry> = study.iter().map(Run::entry).collect();
        writeln!(
            md,
            "{}",
            budget_study(&study, &files.dir, &files.dir_link())?
        )?;
    }
    Ok(md)
}

/// The Robustness section: the headline runs' `robustness.json` cells (`mmcl eval
/// --corrupt`) and the missing-modality training runs against their twins.
fn robustness(
    all: &[Run],
    entries: &[RunEntry],
    studies: &Studies,
    files: &Files,
) -> Result<String> {
    use mmcl_scheduler::robustness::{Robustness, ROBUSTNESS_FILE};
    // The SAMM twins at another reg_weight get curves of their own ("SAMM ensemble λ=1").
    let twins = match studies.lambda {
        Some(dir) => read_runs(dir)?,
        None => Vec::new(),
    };
    let mut cells = Vec::new();
    for (run, variant) in all
        .iter()
        .map(|r| (r, String::new()))
        .chain(twins.iter().map(|r| {
            let reg = r
                .results
                .config
                .pointer("/method/samm/reg_weight")
                .and_then(|v| v.as_f64())
                .map_or("?".to_string(), |v| v.to_string());
            (r, format!("λ={reg}"))
        }))
    {
        let path = run.dir.join(ROBUSTNESS_FILE);
        if path.is_file() {
            cells.push((&run.results, Robustness::read(&path)?, variant));
        }
    }
    let robust: Vec<mmcl_metrics::robustness::RobustRun> = cells
        .iter()
        .map(
            |(results, robustness, variant)| mmcl_metrics::robustness::RobustRun {
                results,
                robustness,
                variant,
            },
        )
        .collect();
    let missing = match studies.missing {
        Some(dir) => read_runs(dir)?,
        None => Vec::new(),
    };
    let missing: Vec<RunEntry> = missing.iter().map(Run::entry).collect();
    let md = mmcl_metrics::robustness::robustness_section(
        &robust,
        &missing,
        entries,
        &files.dir,
        &files.dir_link(),
    )?;
    Ok(md)
}

/// Accuracy on the seen tasks after each task (multimodal, seed mean) per scenario, and the
/// accuracy-matrix heatmap of each multimodal run of seed 0.
fn plots(all: &[Run], scenarios: &[Scenario], files: &Files) -> Result<String> {
    let mut md = String::from("## Plots\n\n");
    for scenario in scenarios {
        let mut series: BTreeMap<(bool, usize, Method), Vec<Curve>> = BTreeMap::new();
        for run in all {
            let method = run.method();
            if run.scenario() != *scenario || !run.is_multimodal() || method == Method::Joint {
                continue;
            }
            if let Some(av) = run.metrics.mode("av") {
                series
                    .entry((!method.is_bound(), run.results.run.buffer_size, method))
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
        write_line_chart(&chart, &files.dir.join(&name))?;
        writeln!(
            md,
            "![{scenario} curves]({})\n",
            files.link(&format!("{name}.svg"))
        )?;
    }
    for run in all
        .iter()
        .filter(|r| r.results.run.seed == 0 && r.is_multimodal())
    {
        let Some(m) = run.metrics.mode("av").and_then(|m| m.matrix.as_ref()) else {
            continue;
        };
        let name = format!(
            "heatmap-{}",
            run.dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let method = run.method();
        let size = run.results.run.buffer_size;
        let buffer = (size > 0 && !method.is_bound()).then_some(size as u32);
        let title = format!(
            "{} {}, multimodal (seed 0)",
            run.scenario(),
            row_label(&method, buffer),
        );
        write_heatmap(m, &title, &files.dir.join(&name))?;
        writeln!(md, "![{title}]({})", files.link(&format!("{name}.svg")))?;
    }
    Ok(md)
}

fn run_list(all: &[Run]) -> String {
    let mut md = String::from("\n## Runs\n\n");
    for run in all {
        // Runs from before provenance was recorded show their wall time only.
        let provenance = run
            .results
            .provenance
            .as_ref()
            .map_or(String::new(), |p| format!(", {}", p.summary()));
        let _ = writeln!(
            md,
            "- `{}` ({:.0} s{provenance})",
            run.dir.display(),
            run.results.elapsed_s
        );
    }
    md
}

/// The finished runs among the sub-folders of `runs` (unfinished ones are skipped with a
/// note), in folder-name order.
pub fn read_runs(runs: &Path) -> Result<Vec<Run>> {
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
