//! The report's Robustness section: how the final models hold up when one modality is
//! corrupted or missing at test time (the runs' `robustness.json`, see
//! [`mmcl_scheduler::robustness`]), and how training with a missing modality compares
//! with its clean twin.
//!
//! Definitions (all accuracies in percent, means over seeds):
//! - the **accuracy** of a cell is the final model's mean accuracy over the scenario's
//!   test sets (unweighted over tasks, as the Seq/Dom headline) under that corruption;
//!   severity 0 is the clean evaluation;
//! - **mCA** (mean corruption accuracy, ImageNet-C's averaging without its AlexNet
//!   normalisation) of a modality: the mean accuracy over that modality's corruption
//!   families and severities 1-5 (`missing` is reported on its own, not averaged in);
//! - the **relative drop** of a network: `(clean - mCA) / clean`;
//! - the ensemble's **weight** of a head: the mean over test clips of `max softmax(l / T)`
//!   of that head, the weight it gets in SAMM's calibrated dynamic ensemble.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use mmcl_methods::MethodKind;
use mmcl_model::Modality;
use mmcl_scheduler::results::RunResults;
use mmcl_scheduler::robustness::{CorruptionCell, Robustness};

use crate::analysis::RunEntry;
use crate::error::Result;
use crate::matrix::{accuracy_percent, ece_from_bins, final_row_accuracy};
use crate::plot::{write_line_chart, LineChart, Series};
use crate::stats::MeanStd;

/// One finished run with its robustness cells.
pub struct RobustRun<'a> {
    pub results: &'a RunResults,
    pub robustness: &'a Robustness,
    /// Appended to the run's curve labels, e.g. `λ=1` for the SAMM twins at another
    /// reg_weight; empty for the headline runs.
    pub variant: &'a str,
}

/// A curve's label with its variant (`SAMM ensemble (buffer 500) λ=1`).
fn curve_label(label: &str, variant: &str) -> String {
    if variant.is_empty() {
        label.to_string()
    } else {
        format!("{label} {variant}")
    }
}

/// The variant a run's curves carry: its buffer (runs of different buffer sizes are never
/// averaged together) and the caller's tag.
fn run_variant(run: &RobustRun) -> String {
    let b = run.results.run.buffer_size;
    let buffer = if b > 0 {
        format!("(buffer {b})")
    } else {
        String::new()
    };
    [buffer.as_str(), run.variant]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The curves of the section: (label, method, modality of the network, inference mode).
const CURVES: [(&str, MethodKind, Modality, &str); 7] = [
    ("audio-only ER", MethodKind::Er, Modality::Audio, "av"),
    ("visual-only ER", MethodKind::Er, Modality::Visual, "av"),
    ("ER multimodal", MethodKind::Er, Modality::AudioVisual, "av"),
    (
        "SAMM fused head",
        MethodKind::Samm,
        Modality::AudioVisual,
        "av",
    ),
    (
        "SAMM audio head",
        MethodKind::Samm,
        Modality::AudioVisual,
        "audio",
    ),
    (
        "SAMM visual head",
        MethodKind::Samm,
        Modality::AudioVisual,
        "visual",
    ),
    (
        "SAMM ensemble",
        MethodKind::Samm,
        Modality::AudioVisual,
        "ensemble",
    ),
];

/// A cell name split into its single-modality family and severity: `audio:white:3` ->
/// (`audio:white`, 3); `visual:missing` -> (`visual:missing`, 0); `clean` and bimodal
/// cells -> `None`.
fn family(cell: &str) -> Option<(&str, u32)> {
    if cell == "clean" || cell.contains('+') {
        return None;
    }
    match cell.rsplit_once(':') {
        Some((fam, sev)) if fam.contains(':') => Some((fam, sev.parse().ok()?)),
        _ => Some((cell, 0)),
    }
}

/// The accuracy of one mode in one cell (mean over test sets) and its ECE.
fn cell_accuracy(cell: &CorruptionCell, mode: &str) -> Result<Option<(f64, Option<f64>)>> {
    let Some(m) = cell.mode(mode) else {
        return Ok(None);
    };
    let accs: Vec<Option<f64>> = m
        .correct
        .iter()
        .zip(&m.n_test)
        .map(|(&c, &n)| accuracy_percent(c, n))
        .collect();
    let ece = ece_from_bins(
        &m.calibration.count,
        &m.calibration.confidence_sum,
        &m.calibration.correct,
    )?;
    Ok(final_row_accuracy(&accs).map(|a| (a, ece)))
}

/// Per scenario and curve: cell name -> accuracies (and ECEs) over seeds.
type CurveCells = BTreeMap<String, (Vec<f64>, Vec<f64>)>;

/// Cell name -> the ensemble's [audio, visual, fused] weights over seeds.
type WeightCells = BTreeMap<String, Vec<[f64; 3]>>;

struct Collected {
    /// (scenario, curve label) -> cells.
    curves: BTreeMap<(String, String), CurveCells>,
    /// (scenario, variant) -> cell -> ensemble weights over seeds, [audio, visual, fused].
    weights: BTreeMap<(String, String), WeightCells>,
    scenarios: BTreeSet<String>,
    /// The curve labels with data, headline runs' first, in [`CURVES`] order.
    labels: Vec<String>,
    /// The variants seen (`""` for the headline runs first).
    variants: Vec<String>,
    /// The corruption families seen, in name order.
    families: BTreeSet<String>,
}

fn collect(runs: &[RobustRun]) -> Result<Collected> {
    let mut c = Collected {
        curves: BTreeMap::new(),
        weights: BTreeMap::new(),
        scenarios: BTreeSet::new(),
        labels: Vec::new(),
        variants: Vec::new(),
        families: BTreeSet::new(),
    };
    // Untagged (headline) variants first, then by name.
    let mut variants: Vec<(bool, String)> = runs
        .iter()
        .map(|r| (!r.variant.is_empty(), run_variant(r)))
        .collect();
    variants.sort();
    variants.dedup();
    let variants: Vec<String> = variants.into_iter().map(|(_, v)| v).collect();
    c.variants = variants.clone();
    for run in runs {
        let info = &run.results.run;
        let variant = run_variant(run);
        c.scenarios.insert(info.scenario.clone());
        for (name, cell) in &run.robustness.cells {
            if let Some((fam, _)) = family(name) {
                c.families.insert(fam.to_string());
            }
            if info.method == MethodKind::Samm {
                if let Some(w) = cell.ensemble_weights {
                    c.weights
                        .entry((info.scenario.clone(), variant.clone()))
                        .or_default()
                        .entry(name.clone())
                        .or_default()
                        .push([w.audio, w.visual, w.fused]);
                }
            }
            for (label, method, modality, mode) in CURVES {
                if info.method != method || info.modality != modality {
                    continue;
                }
                if let Some((acc, ece)) = cell_accuracy(cell, mode)? {
                    let e = c
                        .curves
                        .entry((info.scenario.clone(), curve_label(label, &variant)))
                        .or_default()
                        .entry(name.clone())
                        .or_default();
                    e.0.push(acc);
                    e.1.extend(ece);
                }
            }
        }
    }
    for v in &variants {
        for (label, ..) in CURVES {
            let l = curve_label(label, v);
            if c.curves.keys().any(|(_, x)| *x == l) {
                c.labels.push(l);
            }
        }
    }
    Ok(c)
}

fn mean(v: &[f64]) -> Option<f64> {
    MeanStd::of(v).map(|m| m.mean)
}

/// The mean over seeds of a curve's cell, `None` when not evaluated.
fn at(cells: &CurveCells, cell: &str) -> Option<f64> {
    cells.get(cell).and_then(|(a, _)| mean(a))
}

/// mCA of `modality` (`audio` or `visual`) and its mean ECE, over the families of that
/// modality and severities 1-5 that were evaluated.
fn mca(cells: &CurveCells, modality: &str) -> (Option<f64>, Option<f64>) {
    let (mut accs, mut eces) = (Vec::new(), Vec::new());
    for (name, (a, e)) in cells {
        match family(name) {
            Some((fam, sev)) if sev > 0 && fam.starts_with(modality) => {
                accs.extend(mean(a));
                eces.extend(mean(e));
            }
            _ => {}
        }
    }
    (mean(&accs), mean(&eces))
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2}"))
}

/// Writes the section's plots into `files` (linked as `link/...`) and returns its Markdown;
/// empty when no run has robustness cells. `missing` holds the missing-modality training
/// runs and `clean` the headline runs their twins are looked up in.
pub fn robustness_section(
    runs: &[RobustRun],
    missing: &[RunEntry],
    clean: &[RunEntry],
    files: &Path,
    link: &str,
) -> Result<String> {
    let c = collect(runs)?;
    if c.curves.is_empty() && missing.is_empty() {
        return Ok(String::new());
    }
    let mut md = String::from(
        "## Robustness: corrupted and missing modalities\n\n\
         The final models re-evaluated with one modality corrupted at test time (severities \
         1-5; 0 = clean) or missing (silence, black frames): the corruption is applied to \
         each test clip's signal before feature extraction, drawn from (seed, clip), so every \
         network of a seed sees the same corrupted clips (`mmcl eval --corrupt`, cells in each \
         run's `robustness.json`). Accuracy = the final model's mean over the test sets, mean \
         over seeds. mCA = mean accuracy over a modality's corruption families and severities \
         1-5.\n\n",
    );
    if !c.curves.is_empty() {
        mca_table(&c, &mut md);
        curves(&c, files, link, &mut md)?;
        weights(&c, files, link, &mut md)?;
    }
    if !missing.is_empty() {
        missing_training(missing, clean, &mut md);
    }
    Ok(md)
}

fn mca_table(c: &Collected, md: &mut String) {
    md.push_str(
        "### Mean corruption accuracy\n\n| scenario | network / head | clean | audio mCA | visual mCA | audio missing | visual missing | ECE clean | ECE under corruption |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut readings = Vec::new();
    for scenario in &c.scenarios {
        for label in &c.labels {
            let Some(cells) = c.curves.get(&(scenario.clone(), label.clone())) else {
                continue;
            };
            let (a_mca, a_ece) = mca(cells, "audio");
            let (v_mca, v_ece) = mca(cells, "visual");
            let ece_clean = cells.get("clean").and_then(|(_, e)| mean(e));
            let ece_corrupt = mean(&[a_ece, v_ece].into_iter().flatten().collect::<Vec<_>>());
            let _ = writeln!(
                md,
                "| {scenario} | {label} | {} | {} | {} | {} | {} | {} | {} |",
                fmt(at(cells, "clean")),
                fmt(a_mca),
                fmt(v_mca),
                fmt(at(cells, "audio:missing")),
                fmt(at(cells, "visual:missing")),
                fmt(ece_clean),
                fmt(ece_corrupt),
            );
        }
        for variant in &c.variants {
            readings.extend(ensemble_reading(c, scenario, variant));
        }
    }
    md.push('\n');
    for r in readings {
        let _ = writeln!(md, "{r}\n");
    }
}

/// One line on the paper's claim for one scenario: does the calibrated ensemble beat the
/// fused head and each single head when one modality is corrupted or missing, and which
/// single-modality network loses more to its own modality's corruptions.
fn ensemble_reading(c: &Collected, scenario: &str, variant: &str) -> Option<String> {
    let get = |label: &str| {
        c.curves
            .get(&(scenario.to_string(), curve_label(label, variant)))
    };
    let (ens, fused, a_head, v_head) = (
        get("SAMM ensemble")?,
        get("SAMM fused head")?,
        get("SAMM audio head")?,
        get("SAMM visual head")?,
    );
    let mut parts = Vec::new();
    // A modality's mCA, or one cell's accuracy (the missing ones).
    let pick = |cells: &CurveCells, key: &str| match key {
        "audio" | "visual" => mca(cells, key).0,
        cell => at(cells, cell),
    };
    for (what, key) in [
        ("audio corrupted (mCA)", "audio"),
        ("visual corrupted (mCA)", "visual"),
        ("audio missing", "audio:missing"),
        ("visual missing", "visual:missing"),
    ] {
        let (e, f, a, v) = (
            pick(ens, key)?,
            pick(fused, key)?,
            pick(a_head, key)?,
            pick(v_head, key)?,
        );
        let verdict = |other: f64| {
            if e > other + 0.5 {
                "beats"
            } else if e >= other - 0.5 {
                "ties (within 0.5 points)"
            } else {
                "is below"
            }
        };
        let (head, best_head) = if a >= v { ("audio", a) } else { ("visual", v) };
        parts.push(format!(
            "{what}: ensemble {e:.1} {} the fused head {f:.1} and {} the better single head ({head} {best_head:.1})",
            verdict(f),
            verdict(best_head)
        ));
    }
    let drop = |label: &str, modality: &str| -> Option<f64> {
        let cells = get(label)?;
        let clean = at(cells, "clean")?;
        Some(100.0 * (clean - mca(cells, modality).0?) / clean.max(1e-9))
    };
    let robust = match (drop("audio-only ER", "audio"), drop("visual-only ER", "visual")) {
        (Some(a), Some(v)) => format!(
            " The audio-only network loses {a:.0}% of its clean accuracy to audio corruptions, the visual-only one {v:.0}% to visual corruptions: {} is the more robust modality to these shifts.",
            if a < v { "audio" } else { "vision" }
        ),
        _ => String::new(),
    };
    let who = if variant.is_empty() {
        scenario.to_string()
    } else {
        format!("{scenario}, {variant}")
    };
    Some(format!("**{who}:** {}.{robust}", parts.join("; ")))
}

fn curves(c: &Collected, files: &Path, link: &str, md: &mut String) -> Result<()> {
    md.push_str("### Accuracy against severity\n\n");
    for scenario in &c.scenarios {
        let mut images = Vec::new();
        for fam in c.families.iter().filter(|f| !f.ends_with(":missing")) {
            let series: Vec<Series> = c
                .labels
                .iter()
                .filter_map(|label| {
                    let cells = c.curves.get(&(scenario.clone(), label.clone()))?;
                    let points: Vec<(f64, f64)> = (0..=5)
                        .filter_map(|s| {
                            let name = if s == 0 {
                                "clean".to_string()
                            } else {
                                format!("{fam}:{s}")
                            };
                            Some((s as f64, at(cells, &name)?))
                        })
                        .collect();
                    (points.len() > 1).then(|| Series {
                        label: label.to_string(),
                        points,
                    })
                })
                .collect();
            if series.is_empty() {
                continue;
            }
            let stem = format!("robustness-{}-{}", scenario, fam.replace(':', "-"));
            write_line_chart(
                &LineChart {
                    title: format!("{scenario}: {fam}"),
                    x_label: "severity (0 = clean)".into(),
                    y_label: "accuracy (%)".into(),
                    series,
                },
                &files.join(&stem),
            )?;
            images.push(format!(
                "<img src=\"{link}/{stem}.svg\" alt=\"{scenario} {fam}\" width=\"32%\">"
            ));
        }
        if !images.is_empty() {
            let _ = writeln!(md, "**{scenario}**\n\n{}\n", images.join("\n"));
        }
    }
    Ok(())
}

/// The ensemble's mean head weights at each severity, averaged over the families of the
/// corrupted modality.
fn weights(c: &Collected, files: &Path, link: &str, md: &mut String) -> Result<()> {
    let mut lines = Vec::new();
    for ((scenario, variant), cells) in &c.weights {
        let at_severity = |modality: &str, sev: u32| -> Option<[f64; 3]> {
            let picked: Vec<[f64; 3]> = cells
                .iter()
                .filter(|(name, _)| match family(name) {
                    _ if sev == 0 => name.as_str() == "clean",
                    Some((fam, s)) => {
                        s == sev && fam.starts_with(modality) && !fam.ends_with(":missing")
                    }
                    None => false,
                })
                .flat_map(|(_, w)| w.iter().copied())
                .collect();
            (!picked.is_empty()).then(|| {
                let n = picked.len() as f64;
                let mut m = [0.0; 3];
                for w in &picked {
                    for k in 0..3 {
                        m[k] += w[k] / n;
                    }
                }
                m
            })
        };
        let mut series = Vec::new();
        for corrupted in ["audio", "visual"] {
            for (k, head) in ["audio", "visual"].iter().enumerate() {
                let points: Vec<(f64, f64)> = (0..=5)
                    .filter_map(|s| Some((s as f64, 100.0 * at_severity(corrupted, s)?[k])))
                    .collect();
                if points.len() > 1 {
                    series.push(Series {
                        label: format!("{head} head weight, {corrupted} corrupted"),
                        points,
                    });
                }
            }
        }
        if series.is_empty() {
            continue;
        }
        let slug = if variant.is_empty() {
            String::new()
        } else {
            let slug: String = variant
                .replace('λ', "lambda")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
                .collect();
            format!("-{}", slug.split_whitespace().collect::<Vec<_>>().join("-"))
        };
        let stem = format!("robustness-{scenario}-ensemble-weights{slug}");
        let who = curve_label(&format!("{scenario}: SAMM"), variant);
        write_line_chart(
            &LineChart {
                title: format!("{who} ensemble weights"),
                x_label: "severity (0 = clean)".into(),
                y_label: "mean weight max softmax(l/T) (%)".into(),
                series,
            },
            &files.join(&stem),
        )?;
        let missing = |cell: &str, k: usize| -> String {
            cells
                .get(cell)
                .and_then(|w| mean(&w.iter().map(|x| x[k]).collect::<Vec<_>>()))
                .map_or(String::new(), |w| format!(", {w:.2} with it missing"))
        };
        let reading = match (at_severity("audio", 0), at_severity("audio", 5), at_severity("visual", 5)) {
            (Some(clean), Some(a5), Some(v5)) => format!(
                "audio head weight {:.2} clean -> {:.2} at audio severity 5{}; visual head weight {:.2} clean -> {:.2} at visual severity 5{}{}",
                clean[0],
                a5[0],
                missing("audio:missing", 0),
                clean[1],
                v5[1],
                missing("visual:missing", 1),
                if a5[0] < clean[0] && v5[1] < clean[1] {
                    ": the ensemble leans away from the corrupted modality"
                } else {
                    ": the ensemble does not lean away from every corrupted modality"
                }
            ),
            _ => "too few cells for a reading".into(),
        };
        lines.push(format!(
            "![{who} ensemble weights]({link}/{stem}.svg)\n\n**{who}:** {reading}.\n"
        ));
    }
    if !lines.is_empty() {
        md.push_str("### How the calibrated ensemble leans\n\nSAMM's mean per-head ensemble weight as one modality's corruption grows (mean over that modality's corruption families).\n\n");
        md.push_str(&lines.join("\n"));
        md.push('\n');
    }
    Ok(())
}

/// Missing-modality training runs against their clean twins (same scenario, method,
/// buffer, network and seed in the headline grid).
fn missing_training(missing: &[RunEntry], clean: &[RunEntry], md: &mut String) {
    md.push_str("### Training with a missing modality\n\nEach run trained with a share of every task's training clips missing one modality (zero-filled; `data.missing`), against its clean twin from the headline grid; final mean accuracy per inference mode.\n\n| scenario | run | missing in training | mode | clean twin | with missing | change |\n|---|---|---|---|---:|---:|---:|\n");
    let key = |r: &RunResults| {
        (
            r.run.scenario.clone(),
            r.run.method,
            r.run.buffer_size,
            r.run.modality,
            r.run.seed,
        )
    };
    for m in missing {
        let twin = clean.iter().find(|c| key(c.results) == key(m.results));
        let missing = m.results.config.get("data").and_then(|d| d.get("missing"));
        let share = ["audio", "visual"]
            .iter()
            .filter_map(|k| {
                let p = missing?.get(*k)?.as_f64()?;
                (p > 0.0).then(|| format!("{k} {:.0}%", 100.0 * p))
            })
            .collect::<Vec<_>>()
            .join(", ");
        for mode in &m.metrics.modes {
            let with = mode.headline(false);
            let base = twin.and_then(|t| {
                t.metrics
                    .modes
                    .iter()
                    .find(|x| x.mode == mode.mode)
                    .and_then(|x| x.headline(false))
            });
            let change = match (with, base) {
                (Some(w), Some(b)) => format!("{:+.2}", w - b),
                _ => "—".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {}-{} s{} | {share} | {} | {} | {} | {change} |",
                m.results.run.scenario,
                m.results.run.method,
                m.results.run.modality,
                m.results.run.seed,
                mode.mode,
                fmt(base),
                fmt(with),
            );
        }
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::results;
    use crate::RunMetrics;
    use mmcl_scheduler::results::CalibrationBins;
    use mmcl_scheduler::robustness::{CorruptedMode, HeadWeights, ROBUSTNESS_SCHEMA_VERSION};

    /// A cell where every listed mode gets `correct` of 10 on each of two test sets.
    fn cell(modes: &[(&str, u64)], weights: Option<[f64; 3]>) -> CorruptionCell {
        CorruptionCell {
            modes: modes
                .iter()
                .map(|&(mode, correct)| CorruptedMode {
                    mode: mode.into(),
                    correct: vec![correct, correct],
                    n_test: vec![10, 10],
                    calibration: CalibrationBins::new(15),
                })
                .collect(),
            ensemble_weights: weights.map(|[audio, visual, fused]| HeadWeights {
                audio,
                visual,
                fused,
            }),
            eval_s: 0.0,
        }
    }

    fn robustness(cells: Vec<(&str, CorruptionCell)>) -> Robustness {
        Robustness {
            schema_version: ROBUSTNESS_SCHEMA_VERSION,
            seed: 0,
            checkpoint: "task-2".into(),
            cells: cells.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    #[test]
    fn section_tabulates_mca_plots_curves_and_reads_the_ensemble() {
        let mut samm = results("seq");
        samm.run.method = MethodKind::Samm;
        let mut audio_net = results("seq");
        audio_net.run.modality = Modality::Audio;
        // SAMM: audio noise hurts the audio head, the ensemble follows the visual head.
        let samm_modes = |a: u64, v: u64, f: u64, e: u64| {
            [("av", f), ("audio", a), ("visual", v), ("ensemble", e)]
        };
        let samm_cells = robustness(vec![
            (
                "clean",
                cell(&samm_modes(8, 6, 8, 9), Some([0.8, 0.6, 0.7])),
            ),
            (
                "audio:white:1",
                cell(&samm_modes(6, 6, 7, 8), Some([0.6, 0.6, 0.6])),
            ),
            (
                "audio:white:5",
                cell(&samm_modes(1, 6, 4, 6), Some([0.2, 0.6, 0.4])),
            ),
            (
                "visual:blur:5",
                cell(&samm_modes(8, 2, 6, 8), Some([0.8, 0.3, 0.5])),
            ),
            (
                "audio:missing",
                cell(&samm_modes(1, 6, 3, 6), Some([0.1, 0.6, 0.3])),
            ),
            (
                "visual:missing",
                cell(&samm_modes(8, 1, 5, 7), Some([0.8, 0.1, 0.4])),
            ),
        ]);
        let audio_cells = robustness(vec![
            ("clean", cell(&[("av", 8)], None)),
            ("audio:white:1", cell(&[("av", 6)], None)),
            ("audio:white:5", cell(&[("av", 2)], None)),
        ]);
        let runs = [
            RobustRun {
                results: &samm,
                robustness: &samm_cells,
                variant: "",
            },
            RobustRun {
                results: &audio_net,
                robustness: &audio_cells,
                variant: "",
            },
            RobustRun {
                results: &samm,
                robustness: &samm_cells,
                variant: "λ=1",
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let md = robustness_section(&runs, &[], &[], dir.path(), "f").unwrap();
        // ensemble: clean 90, audio mCA (80 + 60) / 2 = 70, visual mCA 80, missing 60 / 70
        assert!(
            md.contains(
                "| seq | SAMM ensemble (buffer 20) | 90.00 | 70.00 | 80.00 | 60.00 | 70.00 |"
            ),
            "{md}"
        );
        // the audio-only network has no visual cells: its visual mCA is not made up
        assert!(
            md.contains("| seq | audio-only ER (buffer 20) | 80.00 | 40.00 | — | — | — |"),
            "{md}"
        );
        assert!(
            md.contains("audio corrupted (mCA): ensemble 70.0 beats the fused head 55.0 and beats the better single head (visual 60.0)"),
            "{md}"
        );
        assert!(
            md.contains("visual missing: ensemble 70.0 beats the fused head 50.0 and is below the better single head (audio 80.0)"),
            "{md}"
        );
        assert!(
            md.contains(
                "audio head weight 0.80 clean -> 0.20 at audio severity 5, 0.10 with it missing"
            ),
            "{md}"
        );
        assert!(
            md.contains("the ensemble leans away from the corrupted modality"),
            "{md}"
        );
        // The λ=1 twins get rows, readings and a weight plot of their own.
        assert!(
            md.contains("| seq | SAMM ensemble (buffer 20) λ=1 | 90.00 | 70.00 |"),
            "{md}"
        );
        assert!(
            md.contains("**seq, (buffer 20) λ=1:** audio corrupted (mCA)"),
            "{md}"
        );
        for f in [
            "robustness-seq-ensemble-weights-buffer-20-lambda1.svg",
            "robustness-seq-audio-white.svg",
            "robustness-seq-visual-blur.png",
            "robustness-seq-ensemble-weights-buffer-20.svg",
        ] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        // no cells, no section
        assert_eq!(
            robustness_section(&[], &[], &[], dir.path(), "f").unwrap(),
            ""
        );
    }

    #[test]
    fn missing_modality_runs_are_set_against_their_clean_twins() {
        let clean = results("seq");
        let mut missing = results("seq");
        missing.config = serde_json::json!({"data": {"missing": {"audio": 0.3}}});
        missing.modes[0].correct[2][0] = Some(2); // keeps less of task 0: 2/10 instead of 4/10
        let other = {
            let mut r = results("seq");
            r.run.seed = 1;
            r
        };
        let metrics: Vec<RunMetrics> = [&clean, &missing, &other]
            .iter()
            .map(|r| RunMetrics::derive(r).unwrap())
            .collect();
        let entry = |r, m| RunEntry {
            results: r,
            metrics: m,
        };
        let dir = tempfile::tempdir().unwrap();
        let md = robustness_section(
            &[],
            &[entry(&missing, &metrics[1])],
            &[entry(&other, &metrics[2]), entry(&clean, &metrics[0])],
            dir.path(),
            "f",
        )
        .unwrap();
        // final row: (4/10, -, 15/20) -> 57.5 clean, (2/10, -, 15/20) -> 47.5 with missing
        assert!(
            md.contains("| seq | er-audio-visual s0 | audio 30% | av | 57.50 | 47.50 | -10.00 |"),
            "{md}"
        );
    }

    #[test]
    fn families_and_severities_come_from_the_cell_names() {
        assert_eq!(family("audio:white:3"), Some(("audio:white", 3)));
        assert_eq!(family("visual:missing"), Some(("visual:missing", 0)));
        assert_eq!(family("clean"), None);
        assert_eq!(family("audio:pink:2+visual:blur:4"), None);
    }
}
