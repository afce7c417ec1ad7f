//! The paper's analyses per scenario, from the derived metrics of finished runs: stability
//! and plasticity (table + bar plot), task-recency bias (plot), forward transfer and ECE
//! per inference mode (tables). Every figure and table comes with a one-line reading
//! computed from its numbers.
//!
//! Table cells follow the paper's layout: Multimodal = the fused head of the audio-visual
//! network; Audio / Visual = the audio-only / visual-only networks, except for SAMM, whose
//! Audio / Visual cells are the audio and visual heads of its audio-visual network; SAMM's
//! calibrated ensemble is the extra method "SAMM-ensemble".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use mmcl_methods::MethodKind;
use mmcl_scheduler::results::RunResults;

use crate::derive::{ModeMetrics, RunMetrics};
use crate::error::Result;
use crate::keys::{Method, Modality, Scenario};
use crate::plot::{write_bar_chart, write_line_chart, BarChart, BarSeries, LineChart, Series};
use crate::stats::MeanStd;
use crate::table::{buffer_label, CellKey};

/// One finished run and its derived metrics.
pub struct RunEntry<'a> {
    pub results: &'a RunResults,
    pub metrics: &'a RunMetrics,
}

/// The table cells one run fills, each with the inference mode whose numbers it shows.
pub fn table_cells(r: &RunResults) -> Vec<(CellKey, &'static str)> {
    let scenario = Scenario::parse(&r.run.scenario);
    let method = Method::from(r.run.method);
    let buffer = (r.run.buffer_size > 0 && !method.is_bound()).then_some(r.run.buffer_size as u32);
    let key = |method: Method, modality| CellKey {
        scenario: scenario.clone(),
        method,
        buffer,
        modality,
    };
    match r.run.modality {
        Modality::AudioVisual if method == Method::Samm => vec![
            (key(Method::Samm, Modality::AudioVisual), "av"),
            (key(Method::Samm, Modality::Audio), "audio"),
            (key(Method::Samm, Modality::Visual), "visual"),
            (
                key(Method::Other("SAMM-ensemble".into()), Modality::AudioVisual),
                "ensemble",
            ),
        ],
        modality => vec![(key(method, modality), "av")],
    }
}

/// Per table cell, one metric's mean ± std over the runs (seeds) that define it.
pub fn aggregate(
    runs: &[RunEntry],
    metric: impl Fn(&ModeMetrics, &Scenario) -> Option<f64>,
) -> BTreeMap<CellKey, MeanStd> {
    let mut values: BTreeMap<CellKey, Vec<f64>> = BTreeMap::new();
    for run in runs {
        for (key, mode) in table_cells(run.results) {
            if let Some(v) = run
                .metrics
                .mode(mode)
                .and_then(|m| metric(m, &key.scenario))
            {
                values.entry(key).or_default().push(v);
            }
        }
    }
    values
        .into_iter()
        .filter_map(|(k, v)| MeanStd::of(&v).map(|m| (k, m)))
        .collect()
}

/// Table rows in the paper's order: JOINT, SGD, then per buffer ER, SAMM, others.
fn row_order<'a>(keys: impl Iterator<Item = &'a CellKey>) -> Vec<(Method, Option<u32>)> {
    let set: BTreeSet<(bool, Option<u32>, Method)> = keys
        .map(|k| (!k.method.is_bound(), k.buffer, k.method.clone()))
        .collect();
    set.into_iter().map(|(_, b, m)| (m, b)).collect()
}

/// A per-task curve of one run (`None` where undefined).
pub type Curve = Vec<Option<f64>>;

/// Seed mean of per-task curves (`curves[seed][t]`), over the seeds defining each point,
/// as `(task number from 1, value)` points.
pub fn mean_curve(curves: &[Curve]) -> Vec<(f64, f64)> {
    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .filter_map(|t| {
            let v: Vec<f64> = curves.iter().filter_map(|c| c[t]).collect();
            MeanStd::of(&v).map(|m| ((t + 1) as f64, m.mean))
        })
        .collect()
}

/// A row label: `SAMM (500)`, `JOINT`.
pub fn row_label(method: &Method, buffer: Option<u32>) -> String {
    match buffer {
        Some(b) => format!("{method} ({b})"),
        None => method.to_string(),
    }
}

/// A table of several metrics per modality: rows methods, columns `<modality> <metric>`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricTable {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<(Method, Option<u32>, Vec<Option<MeanStd>>)>,
}

impl MetricTable {
    /// Rows of the cells of `scenario` that any metric defines; columns modality-major.
    pub fn build(
        title: impl Into<String>,
        scenario: &Scenario,
        metrics: &[(&str, &BTreeMap<CellKey, MeanStd>)],
    ) -> MetricTable {
        let keys = metrics
            .iter()
            .flat_map(|(_, m)| m.keys())
            .filter(|k| &k.scenario == scenario);
        let modalities: BTreeSet<Modality> = keys.clone().map(|k| k.modality).collect();
        let columns = modalities
            .iter()
            .flat_map(|x| {
                metrics
                    .iter()
                    .map(move |(name, _)| format!("{} {name}", x.label()))
            })
            .collect();
        let rows = row_order(keys)
            .into_iter()
            .map(|(method, buffer)| {
                let cells = modalities
                    .iter()
                    .flat_map(|&modality| {
                        let key = CellKey {
                            scenario: scenario.clone(),
                            method: method.clone(),
                            buffer,
                            modality,
                        };
                        metrics
                            .iter()
                            .map(move |(_, m)| m.get(&key).copied())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                (method, buffer, cells)
            })
            .collect();
        MetricTable {
            title: title.into(),
            columns,
            rows,
        }
    }

    /// Markdown; cells `mean ± std`, two decimals, "—" where undefined.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("**{}**\n\n| Method | Buffer |", self.title);
        for c in &self.columns {
            let _ = write!(out, " {c} |");
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|".repeat(self.columns.len()));
        out.push('\n');
        for (method, buffer, cells) in &self.rows {
            let _ = write!(out, "| {method} | {} |", buffer_label(*buffer));
            for c in cells {
                let _ = write!(out, " {} |", c.map_or("—".into(), |v| v.format(2)));
            }
            out.push('\n');
        }
        out
    }

    /// Long-form CSV: `method,buffer,column,seeds,mean,std`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("method,buffer,column,seeds,mean,std\n");
        for (method, buffer, cells) in &self.rows {
            for (column, cell) in self.columns.iter().zip(cells) {
                if let Some(v) = cell {
                    let _ = writeln!(
                        out,
                        "{},{},{column},{},{:.4},{:.4}",
                        method.slug(),
                        buffer.map(|b| b.to_string()).unwrap_or_default(),
                        v.n,
                        v.mean,
                        v.std
                    );
                }
            }
        }
        out
    }
}

/// `label modality` of a cell, for readings.
fn cell_name(k: &CellKey) -> String {
    format!("{} {}", row_label(&k.method, k.buffer), k.modality.label())
}

fn of_scenario<'a>(
    m: &'a BTreeMap<CellKey, MeanStd>,
    scenario: &'a Scenario,
) -> impl Iterator<Item = (&'a CellKey, f64)> + 'a {
    m.iter()
        .filter(move |(k, _)| &k.scenario == scenario)
        .map(|(k, v)| (k, v.mean))
}

fn extreme<'a>(
    it: impl Iterator<Item = (&'a CellKey, f64)>,
    max: bool,
) -> Option<(&'a CellKey, f64)> {
    it.fold(None, |best: Option<(&CellKey, f64)>, (k, v)| match best {
        Some((_, b)) if (max && b >= v) || (!max && b <= v) => best,
        _ => Some((k, v)),
    })
}

/// The analyses of every scenario the runs cover, as Markdown; figures and CSVs go to
/// `files`, linked as `<link>/<name>`.
pub fn write_analyses(runs: &[RunEntry], files: &Path, link: &str) -> Result<String> {
    let stability = aggregate(runs, |m, _| m.stability);
    let plasticity = aggregate(runs, |m, _| m.plasticity);
    let fwt = aggregate(runs, |m, _| m.forward_transfer);
    let random_init = aggregate(runs, |m, _| m.random_init_next);
    let ece = aggregate(runs, |m, _| m.ece);
    let recency_last = aggregate(runs, |m, _| m.recency.last().copied().flatten());
    let recency_base = aggregate(runs, |m, _| m.recency_baseline.last().copied().flatten());
    let scenarios: BTreeSet<Scenario> = runs
        .iter()
        .map(|r| Scenario::parse(&r.results.run.scenario))
        .collect();
    let mut md = String::from(
        "## The paper's analyses\n\nDefinitions (crate `mmcl-metrics`): plasticity P = mean \
         accuracy on each task right after learning it; stability S = the final model's mean \
         accuracy on the earlier tasks; task-recency bias = share of the predictions on the \
         latest task's classes; forward transfer FWT = accuracy on the next task before \
         training it minus a randomly initialised model's; ECE = expected calibration error \
         (15 bins) of the final model. Mean ± std over seeds.\n\n",
    );
    for scenario in &scenarios {
        let slug = scenario.slug();
        let _ = writeln!(md, "### {scenario}\n");

        // Stability and plasticity.
        let sp = MetricTable::build(
            format!("{scenario}: stability (S) and plasticity (P), %"),
            scenario,
            &[("S", &stability), ("P", &plasticity)],
        );
        if !sp.rows.is_empty() {
            let _ = writeln!(md, "{}", sp.to_markdown());
            let csv = format!("stability-plasticity-{slug}.csv");
            crate::io::write_atomic(&files.join(&csv), sp.to_csv().as_bytes())?;
            let chart = sp_chart(scenario, &stability, &plasticity);
            let name = format!("stability-plasticity-{slug}");
            write_bar_chart(&chart, &files.join(&name))?;
            let _ = writeln!(
                md,
                "![{scenario} stability and plasticity]({link}/{name}.svg)\n\nCSV: [{csv}]({link}/{csv})\n\n{}\n",
                sp_reading(scenario, &stability, &plasticity)
            );
        }

        // Task-recency bias after each task (multimodal cells).
        if let Some((chart, reading)) = recency_chart(runs, scenario, &recency_last, &recency_base)
        {
            let name = format!("recency-{slug}");
            write_line_chart(&chart, &files.join(&name))?;
            let _ = writeln!(
                md,
                "![{scenario} task-recency bias]({link}/{name}.svg)\n\n{reading}\n"
            );
        }

        // Forward transfer.
        let ft = MetricTable::build(
            format!(
                "{scenario}: forward transfer (FWT) and the random-init accuracy it subtracts, %"
            ),
            scenario,
            &[("FWT", &fwt), ("random-init", &random_init)],
        );
        if ft.rows.iter().any(|r| r.2.iter().any(Option::is_some))
            && of_scenario(&fwt, scenario).next().is_some()
        {
            let _ = writeln!(md, "{}", ft.to_markdown());
            let _ = writeln!(md, "{}\n", fwt_reading(scenario, &fwt, &random_init));
        }

        // ECE per inference mode.
        let et = MetricTable::build(
            format!("{scenario}: expected calibration error of the final model, % (SAMM's Audio/Visual: its heads; SAMM-ensemble: the calibrated ensemble)"),
            scenario,
            &[("ECE", &ece)],
        );
        if !et.rows.is_empty() {
            let _ = writeln!(md, "{}", et.to_markdown());
            let _ = writeln!(md, "{}\n", ece_reading(scenario, &ece));
        }
    }
    Ok(md)
}

fn sp_chart(
    scenario: &Scenario,
    stability: &BTreeMap<CellKey, MeanStd>,
    plasticity: &BTreeMap<CellKey, MeanStd>,
) -> BarChart {
    let keys: Vec<&CellKey> = {
        let mut k: Vec<&CellKey> = stability
            .keys()
            .chain(plasticity.keys())
            .filter(|k| &k.scenario == scenario)
            .collect();
        k.sort_by_key(|k| (!k.method.is_bound(), k.buffer, k.method.clone(), k.modality));
        k.dedup();
        k
    };
    let values =
        |m: &BTreeMap<CellKey, MeanStd>| keys.iter().map(|k| m.get(*k).map(|v| v.mean)).collect();
    BarChart {
        title: format!("{scenario}: stability and plasticity"),
        y_label: "accuracy (%)".into(),
        categories: keys.iter().map(|k| cell_name(k)).collect(),
        series: vec![
            BarSeries {
                label: "stability (final model, earlier tasks)".into(),
                values: values(stability),
            },
            BarSeries {
                label: "plasticity (task just learned)".into(),
                values: values(plasticity),
            },
        ],
    }
}

fn sp_reading(
    scenario: &Scenario,
    stability: &BTreeMap<CellKey, MeanStd>,
    plasticity: &BTreeMap<CellKey, MeanStd>,
) -> String {
    let (Some((ks, s)), Some((kp, p))) = (
        extreme(of_scenario(stability, scenario), true),
        extreme(of_scenario(plasticity, scenario), true),
    ) else {
        return format!("Reading: no {scenario} run has a sequence of tasks to measure.");
    };
    let gaps: Vec<f64> = of_scenario(stability, scenario)
        .filter_map(|(k, s)| plasticity.get(k).map(|p| p.mean - s))
        .collect();
    let (lo, hi) = gaps
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &g| {
            (a.min(g), b.max(g))
        });
    format!(
        "Reading: most stable {} (S {s:.1}), most plastic {} (P {p:.1}); plasticity minus stability ranges from {lo:.1} to {hi:.1} points across the {} cells.",
        cell_name(ks),
        cell_name(kp),
        gaps.len()
    )
}

fn recency_chart(
    runs: &[RunEntry],
    scenario: &Scenario,
    last: &BTreeMap<CellKey, MeanStd>,
    base: &BTreeMap<CellKey, MeanStd>,
) -> Option<(LineChart, String)> {
    // Per multimodal cell: the recency curves over seeds, and the baseline curves.
    let mut curves: BTreeMap<CellKey, (Vec<Curve>, Vec<Curve>)> = BTreeMap::new();
    for run in runs {
        for (key, mode) in table_cells(run.results) {
            if &key.scenario != scenario || key.modality != Modality::AudioVisual {
                continue;
            }
            if let Some(m) = run.metrics.mode(mode) {
                if m.recency.iter().any(Option::is_some) {
                    let e = curves.entry(key).or_default();
                    e.0.push(m.recency.clone());
                    e.1.push(m.recency_baseline.clone());
                }
            }
        }
    }
    if curves.is_empty() {
        return None;
    }
    let mut series: Vec<Series> = curves
        .iter()
        .map(|(k, (c, _))| Series {
            label: row_label(&k.method, k.buffer),
            points: mean_curve(c),
        })
        .collect();
    // One baseline: every cell of a scenario has the same test data.
    let baseline = curves
        .values()
        .next()
        .map(|(_, b)| mean_curve(b))
        .unwrap_or_default();
    series.push(Series {
        label: "no bias (latest task's share of the test data)".into(),
        points: baseline,
    });
    let chart = LineChart {
        title: format!("{scenario}: predictions on the latest task's classes (multimodal)"),
        x_label: "after task".into(),
        y_label: "share of predictions (%)".into(),
        series,
    };
    let multimodal = |m: &BTreeMap<CellKey, MeanStd>| -> BTreeMap<CellKey, MeanStd> {
        m.iter()
            .filter(|(k, _)| &k.scenario == scenario && k.modality == Modality::AudioVisual)
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let last = multimodal(last);
    let reading = match (
        extreme(of_scenario(&last, scenario), true),
        extreme(of_scenario(&last, scenario), false),
        extreme(of_scenario(&multimodal(base), scenario), true),
    ) {
        (Some((kmax, vmax)), Some((kmin, vmin)), Some((_, b))) if kmax != kmin => format!(
            "Reading: after the last task, {} puts {vmax:.1}% of its predictions on the newest task's classes and {} {vmin:.1}%, against {b:.1}% without bias.",
            row_label(&kmax.method, kmax.buffer),
            row_label(&kmin.method, kmin.buffer)
        ),
        (Some((k, v)), _, Some((_, b))) => format!(
            "Reading: after the last task, {} puts {v:.1}% of its predictions on the newest task's classes, against {b:.1}% without bias.",
            row_label(&k.method, k.buffer)
        ),
        _ => "Reading: no task-recency values.".into(),
    };
    Some((chart, reading))
}

fn fwt_reading(
    scenario: &Scenario,
    fwt: &BTreeMap<CellKey, MeanStd>,
    random_init: &BTreeMap<CellKey, MeanStd>,
) -> String {
    let (Some((kmax, max)), Some((kmin, min))) = (
        extreme(of_scenario(fwt, scenario), true),
        extreme(of_scenario(fwt, scenario), false),
    ) else {
        return "Reading: no forward-transfer values.".into();
    };
    let b: Vec<f64> = of_scenario(random_init, scenario).map(|(_, v)| v).collect();
    let b_mean = MeanStd::of(&b).map_or(f64::NAN, |m| m.mean);
    format!(
        "Reading: FWT ranges from {min:.2} ({}) to {max:.2} ({}); the random-init model scores {b_mean:.2}% on average on the next tasks.",
        cell_name(kmin),
        cell_name(kmax)
    )
}

fn ece_reading(scenario: &Scenario, ece: &BTreeMap<CellKey, MeanStd>) -> String {
    match (
        extreme(of_scenario(ece, scenario), false),
        extreme(of_scenario(ece, scenario), true),
    ) {
        (Some((kmin, min)), Some((kmax, max))) => format!(
            "Reading: best calibrated {} (ECE {min:.2}), worst {} (ECE {max:.2}).",
            cell_name(kmin),
            cell_name(kmax)
        ),
        _ => "Reading: no ECE values.".into(),
    }
}

/// A value of the run's echoed configuration, by path (`["train", "epochs"]`).
fn config_f64(r: &RunResults, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(&r.config, |v, k| v.get(*k))
        .and_then(|v| v.as_f64())
}

fn config_str<'a>(r: &'a RunResults, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(&r.config, |v, k| v.get(*k))
        .and_then(|v| v.as_str())
}

fn fmt_ms(values: &[f64], digits: usize) -> String {
    MeanStd::of(values).map_or("—".into(), |m| m.format(digits))
}

/// SAMM's calibration, `eval` (ours, the default) against `reference` (the reference's
/// train-mode LBFGS fit): per scenario and buffer, the ensemble's and the fused head's
/// headline accuracy and ECE, over seeds. `runs` holds both kinds (the headline grid's SAMM
/// runs and their reference-calibration twins); the others are ignored.
pub fn calibration_comparison(runs: &[RunEntry]) -> String {
    // (scenario, buffer, calibration) -> per seed [ensemble acc, ensemble ECE, av acc, av ECE]
    type PerSeed = [Option<f64>; 4];
    let mut rows: BTreeMap<(Scenario, usize, String), Vec<PerSeed>> = BTreeMap::new();
    for run in runs {
        let r = run.results;
        if r.run.method != MethodKind::Samm || r.run.modality != Modality::AudioVisual {
            continue;
        }
        let scenario = Scenario::parse(&r.run.scenario);
        let gcil = scenario.is_gcil();
        let calibration = config_str(r, &["method", "samm", "calibration"])
            .unwrap_or("eval")
            .to_string();
        let mode = |name: &str| run.metrics.mode(name);
        let ens = mode("ensemble");
        let av = mode("av");
        rows.entry((scenario, r.run.buffer_size, calibration))
            .or_default()
            .push([
                ens.and_then(|m| m.headline(gcil)),
                ens.and_then(|m| m.ece),
                av.and_then(|m| m.headline(gcil)),
                av.and_then(|m| m.ece),
            ]);
    }
    // Only scenarios and buffers that have both calibrations are compared.
    let pairs: BTreeSet<(Scenario, usize)> = rows
        .keys()
        .filter(|(s, b, c)| {
            c == "reference" && rows.contains_key(&(s.clone(), *b, "eval".to_string()))
        })
        .map(|(s, b, _)| (s.clone(), *b))
        .collect();
    if pairs.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "## SAMM's calibration: ours (eval mode, exact fit) vs the reference's (training mode, LBFGS)\n\n\
         | scenario | buffer | calibration | ensemble acc | ensemble ECE | fused acc | fused ECE | seeds |\n\
         |---|---:|---|---:|---:|---:|---:|---:|\n",
    );
    let col =
        |v: &[[Option<f64>; 4]], i: usize| -> Vec<f64> { v.iter().filter_map(|x| x[i]).collect() };
    let mut d_acc = Vec::new();
    let mut d_ece = Vec::new();
    for (scenario, buffer) in &pairs {
        let mut means = [[f64::NAN; 2]; 2];
        for (j, cal) in ["eval", "reference"].iter().enumerate() {
            let v = &rows[&(scenario.clone(), *buffer, cal.to_string())];
            let _ = writeln!(
                md,
                "| {scenario} | {buffer} | {cal} | {} | {} | {} | {} | {} |",
                fmt_ms(&col(v, 0), 2),
                fmt_ms(&col(v, 1), 2),
                fmt_ms(&col(v, 2), 2),
                fmt_ms(&col(v, 3), 2),
                v.len()
            );
            for (k, i) in [0, 1].into_iter().enumerate() {
                means[j][k] = MeanStd::of(&col(v, i)).map_or(f64::NAN, |m| m.mean);
            }
        }
        d_acc.push(means[1][0] - means[0][0]);
        d_ece.push(means[1][1] - means[0][1]);
    }
    let finite = |v: &[f64]| -> Vec<f64> { v.iter().copied().filter(|x| x.is_finite()).collect() };
    let (da, de) = (finite(&d_acc), finite(&d_ece));
    let _ = writeln!(
        md,
        "\nReading: the reference's calibration changes the ensemble's accuracy by {} points and its ECE by {} points (reference minus ours, mean over the {} scenario/buffer pairs).\n",
        MeanStd::of(&da).map_or("—".into(), |m| format!("{:+.2}", m.mean)),
        MeanStd::of(&de).map_or("—".into(), |m| format!("{:+.2}", m.mean)),
        pairs.len()
    );
    md
}

/// The training-budget study: per method and variant (epochs, SAMM's reg_weight), the
/// headline accuracy of every inference mode over seeds, as a table; and SAMM's modes
/// against epochs as a figure, each with a reading.
pub fn budget_study(runs: &[RunEntry], files: &Path, link: &str) -> Result<String> {
    // (method, epochs, reg_weight as text) -> mode -> values over seeds
    type Key = (Method, u64, String);
    let mut cells: BTreeMap<Key, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut scenario_names = BTreeSet::new();
    for run in runs {
        let r = run.results;
        let method = Method::from(r.run.method);
        let scenario = Scenario::parse(&r.run.scenario);
        let epochs = config_f64(r, &["train", "epochs"]).unwrap_or(0.0) as u64;
        let reg = if method == Method::Samm {
            config_f64(r, &["method", "samm", "reg_weight"])
                .map_or("—".into(), |v| format!("{v}"))
        } else {
            "—".into()
        };
        scenario_names.insert(scenario.to_string());
        let modes = cells.entry((method, epochs, reg)).or_default();
        for m in &run.metrics.modes {
            if let Some(v) = m.headline(scenario.is_gcil()) {
                modes.entry(m.mode.clone()).or_default().push(v);
            }
        }
    }
    if cells.is_empty() {
        return Ok(String::new());
    }
    let order = ["audio", "visual", "av", "ensemble"];
    let mut md = format!(
        "## Training-budget study ({})\n\n| method | epochs | reg_weight | audio head | visual head | fused (av) | ensemble | seeds |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        scenario_names.into_iter().collect::<Vec<_>>().join(", ")
    );
    for ((method, epochs, reg), modes) in &cells {
        let seeds = modes.values().map(Vec::len).max().unwrap_or(0);
        let _ = write!(md, "| {method} | {epochs} | {reg} |");
        for o in order {
            let _ = write!(
                md,
                " {} |",
                modes.get(o).map_or("—".into(), |v| fmt_ms(v, 2))
            );
        }
        let _ = writeln!(md, " {seeds} |");
    }
    // SAMM at the reference's reg_weight against epochs, one line per mode.
    let samm: Vec<(&Key, &BTreeMap<String, Vec<f64>>)> = cells
        .iter()
        .filter(|((m, _, reg), _)| *m == Method::Samm && reg == "0.01")
        .collect();
    if samm.len() > 1 {
        let series = order
            .iter()
            .map(|o| Series {
                label: format!("SAMM {o}"),
                points: samm
                    .iter()
                    .filter_map(|((_, e, _), modes)| {
                        Some((*e as f64, MeanStd::of(modes.get(*o)?)?.mean))
                    })
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        let chart = LineChart {
            title: "Training budget: SAMM's inference modes against epochs".into(),
            x_label: "epochs per task".into(),
            y_label: "accuracy (%)".into(),
            series,
        };
        write_line_chart(&chart, &files.join("budget-epochs"))?;
        let head = |o: &str, pick: usize| -> Option<f64> {
            samm.get(pick)
                .and_then(|(_, m)| MeanStd::of(m.get(o)?))
                .map(|m| m.mean)
        };
        let last = samm.len() - 1;
        let fmt = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.1}"));
        let _ = writeln!(
            md,
            "\n![training budget]({link}/budget-epochs.svg)\n\nReading: from {} to {} epochs SAMM's audio head goes {} -> {}, its visual head {} -> {}, the fused head {} -> {}.\n",
            samm[0].0 .1,
            samm[last].0 .1,
            fmt(head("audio", 0)),
            fmt(head("audio", last)),
            fmt(head("visual", 0)),
            fmt(head("visual", last)),
            fmt(head("av", 0)),
            fmt(head("av", last)),
        );
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::results;

    #[test]
    fn analyses_render_tables_figures_and_readings() {
        let a = results("seq");
        let mut b = results("seq");
        b.run.seed = 1;
        b.modes[0].correct[2][0] = Some(2); // seed 1 keeps less of task 0
        let metrics = [&a, &b].map(|r| RunMetrics::derive(r).unwrap());
        let runs: Vec<RunEntry> = [&a, &b]
            .into_iter()
            .zip(&metrics)
            .map(|(results, metrics)| RunEntry { results, metrics })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let md = write_analyses(&runs, dir.path(), "files").unwrap();
        // stability 40 and 20 -> 30 ± 10; plasticity 82.5 both
        assert!(
            md.contains("| ER | 20 | 30.00 ± 10.00 | 82.50 ± 0.00 |"),
            "{md}"
        );
        assert!(
            md.contains("most stable ER (20) Multimodal (S 30.0)"),
            "{md}"
        );
        assert!(
            md.contains("plasticity minus stability ranges from 52.5 to 52.5 points"),
            "{md}"
        );
        // recency after the last task: 25/30 vs a 20/30 baseline
        assert!(md.contains("puts 83.3% of its predictions"), "{md}");
        assert!(md.contains("against 66.7% without bias"), "{md}");
        // FWT -10, random-init 10 % on the next tasks (only task 2 has data)
        assert!(md.contains("FWT ranges from -10.00"), "{md}");
        // ECE (28.5 - 19) / 30
        assert!(md.contains("ECE 31.67"), "{md}");
        for f in [
            "stability-plasticity-seq.svg",
            "stability-plasticity-seq.png",
            "stability-plasticity-seq.csv",
            "recency-seq.svg",
        ] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
    }

    /// A SAMM run with every inference mode (copies of the av facts) and a config.
    fn samm(scenario: &str, seed: u64, config: serde_json::Value, last0: u64) -> RunResults {
        let mut r = results(scenario);
        r.run.method = MethodKind::Samm;
        r.run.seed = seed;
        r.config = config;
        r.modes[0].correct[2][0] = Some(last0);
        let av = r.modes[0].clone();
        for m in ["audio", "visual", "ensemble"] {
            let mut x = av.clone();
            x.mode = m.into();
            r.modes.push(x);
        }
        r
    }

    fn entries<'a>(runs: &'a [RunResults], metrics: &'a [RunMetrics]) -> Vec<RunEntry<'a>> {
        runs.iter()
            .zip(metrics)
            .map(|(results, metrics)| RunEntry { results, metrics })
            .collect()
    }

    #[test]
    fn calibration_comparison_pairs_eval_and_reference_runs() {
        let cal = |c: &str| serde_json::json!({"method": {"samm": {"calibration": c}}});
        // final row task 0: 4/10 (eval) vs 2/10 (reference) -> headline 57.5 vs 47.5
        let runs = [
            samm("seq", 0, cal("eval"), 4),
            samm("seq", 0, cal("reference"), 2),
        ];
        let metrics: Vec<RunMetrics> = runs
            .iter()
            .map(|r| RunMetrics::derive(r).unwrap())
            .collect();
        let md = calibration_comparison(&entries(&runs, &metrics));
        assert!(md.contains("| Seq | 20 | eval | 57.50 ± 0.00 |"), "{md}");
        assert!(
            md.contains("| Seq | 20 | reference | 47.50 ± 0.00 |"),
            "{md}"
        );
        assert!(
            md.contains("changes the ensemble's accuracy by -10.00 points and its ECE by +0.00"),
            "{md}"
        );
        // without the twins there is nothing to compare
        assert_eq!(
            calibration_comparison(&entries(&runs[..1], &metrics[..1])),
            ""
        );
    }

    #[test]
    fn budget_study_tabulates_modes_per_variant_and_plots_epochs() {
        let cfg = |e: u64, reg: f64| serde_json::json!({"train": {"epochs": e}, "method": {"samm": {"reg_weight": reg}}});
        let runs = [
            samm("seq", 0, cfg(2, 0.01), 2),
            samm("seq", 1, cfg(2, 0.01), 4),
            samm("seq", 0, cfg(6, 0.01), 8),
            samm("seq", 0, cfg(2, 1.0), 6),
        ];
        let metrics: Vec<RunMetrics> = runs
            .iter()
            .map(|r| RunMetrics::derive(r).unwrap())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let md = budget_study(&entries(&runs, &metrics), dir.path(), "f").unwrap();
        // 2 epochs: (20+75)/2 and (40+75)/2 -> 52.5 ± 5; 6 epochs: (80+75)/2
        assert!(md.contains("| SAMM | 2 | 0.01 | 52.50 ± 5.00 | 52.50 ± 5.00 | 52.50 ± 5.00 | 52.50 ± 5.00 | 2 |"), "{md}");
        assert!(md.contains("| SAMM | 2 | 1 | 67.50 ± 0.00 |"), "{md}");
        assert!(
            md.contains("from 2 to 6 epochs SAMM's audio head goes 52.5 -> 77.5"),
            "{md}"
        );
        assert!(dir.path().join("budget-epochs.svg").is_file());
    }

    #[test]
    fn samm_runs_fill_head_and_ensemble_cells() {
        let mut r = results("dom");
        r.run.method = MethodKind::Samm;
        let cells = table_cells(&r);
        assert_eq!(cells.len(), 4);
        assert_eq!(cells[1].0.modality, Modality::Audio);
        assert_eq!(cells[1].1, "audio");
        assert_eq!(cells[3].0.method, Method::Other("SAMM-ensemble".into()));
        r.run.modality = Modality::Visual;
        assert_eq!(table_cells(&r)[0].0.modality, Modality::Visual);
    }
}
