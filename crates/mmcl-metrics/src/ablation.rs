//! The report's SAMM ablation table: each component switched off (or replaced) against the
//! full method at the same scenario, buffer and seeds (`cargo xtask reproduce --study
//! ablation`). A run's variant is read from its config, so the table needs no run names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use mmcl_methods::MethodKind;
use mmcl_scheduler::results::RunResults;

use crate::analysis::RunEntry;
use crate::stats::MeanStd;

/// The variants in table order: the full method, then each single ablation in the order
/// of [`variant_of`]'s switches.
const VARIANTS: [&str; 6] = [
    "full SAMM",
    "no consistency term",
    "consistency on stored fused logits",
    "no relational alignment",
    "alignment on encoder features",
    "uncalibrated ensemble",
];

/// A config's row in [`VARIANTS`]; `None` for a config that switches several at once.
fn row_of(config: &serde_json::Value) -> Option<usize> {
    match variant_of(config) {
        None => Some(0),
        Some(i) if i < VARIANTS.len() - 1 => Some(i + 1),
        Some(_) => None,
    }
}

/// Which single ablation a SAMM config is (index into the ablations after "full"), `None`
/// for the full method. A config that switches off several components is not one of them
/// and is left out (`Some(usize::MAX)`).
fn variant_of(config: &serde_json::Value) -> Option<usize> {
    let samm = config.pointer("/method/samm");
    let get = |k: &str| samm.and_then(|s| s.get(k));
    let num = |k: &str| get(k).and_then(|v| v.as_f64());
    let text = |k: &str| get(k).and_then(|v| v.as_str());
    let switched = [
        num("consistency_weight") == Some(0.0),
        text("consistency_target") == Some("fused"),
        num("align_weight") == Some(0.0),
        text("align_on") == Some("features"),
        text("calibration") == Some("none"),
    ];
    let on: Vec<usize> = (0..switched.len()).filter(|&i| switched[i]).collect();
    match on.as_slice() {
        [] => None,
        [i] => Some(*i),
        _ => Some(usize::MAX),
    }
}

/// The modes shown, as (results.json mode, column label).
const MODES: [(&str, &str); 4] = [
    ("av", "fused"),
    ("ensemble", "ensemble"),
    ("audio", "audio head"),
    ("visual", "visual head"),
];

/// The ablation section: `study` holds the ablation runs, `headline` the grid whose SAMM
/// runs at the same scenario, buffer and seeds are the "full SAMM" rows. Empty when there
/// are no ablation runs. Final mean accuracy (the Seq/Dom headline), mean ± std over seeds.
pub fn ablation_study(study: &[RunEntry], headline: &[RunEntry]) -> String {
    let is_samm = |r: &RunResults| r.run.method == MethodKind::Samm;
    let study: Vec<&RunEntry> = study.iter().filter(|e| is_samm(e.results)).collect();
    if study.is_empty() {
        return String::new();
    }
    // The scenario, buffer and seeds the study covers pick its full-SAMM rows.
    let covered: BTreeSet<(String, usize, u64)> = study
        .iter()
        .map(|e| {
            let r = &e.results.run;
            (r.scenario.clone(), r.buffer_size, r.seed)
        })
        .collect();
    let full = headline.iter().filter(|e| {
        let r = &e.results.run;
        is_samm(e.results)
            && variant_of(&e.results.config).is_none()
            && covered.contains(&(r.scenario.clone(), r.buffer_size, r.seed))
    });
    // (variant, scenario) -> mode -> values over seeds.
    let mut cells: BTreeMap<(usize, String), BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut scenarios = BTreeSet::new();
    let mut buffers = BTreeSet::new();
    for e in study.iter().copied().chain(full) {
        let Some(v) = row_of(&e.results.config) else {
            continue;
        };
        let r = &e.results.run;
        scenarios.insert(r.scenario.clone());
        buffers.insert(r.buffer_size);
        let modes = cells.entry((v, r.scenario.clone())).or_default();
        for m in &e.metrics.modes {
            if let (Some((mode, _)), Some(acc)) =
                (MODES.iter().find(|(k, _)| *k == m.mode), m.final_accuracy)
            {
                modes.entry(mode).or_default().push(acc);
            }
        }
    }
    let mean = |v: Option<&Vec<f64>>| v.and_then(|v| MeanStd::of(v));
    let mut md = format!(
        "## SAMM ablations (buffer {})\n\nEach row switches one component of SAMM off or replaces it (`cargo xtask reproduce --study ablation`); final mean accuracy, mean ± std over seeds; in brackets the change of the mean against full SAMM.\n\n| variant |",
        buffers.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
    );
    for s in &scenarios {
        for (_, label) in MODES {
            let _ = write!(md, " {s} {label} |");
        }
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(scenarios.len() * MODES.len()));
    md.push('\n');
    for (v, name) in VARIANTS.iter().enumerate() {
        if !scenarios
            .iter()
            .any(|s| cells.contains_key(&(v, s.clone())))
        {
            continue;
        }
        let _ = write!(md, "| {name} |");
        for s in &scenarios {
            for (mode, _) in MODES {
                let here = mean(cells.get(&(v, s.clone())).and_then(|m| m.get(mode)));
                let base = mean(cells.get(&(0, s.clone())).and_then(|m| m.get(mode)));
                let text = match (here, base) {
                    (Some(h), Some(b)) if v > 0 => {
                        format!("{} ({:+.2})", h.format(2), h.mean - b.mean)
                    }
                    (Some(h), _) => h.format(2),
                    _ => "—".into(),
                };
                let _ = write!(md, " {text} |");
            }
        }
        md.push('\n');
    }
    md.push('\n');
    for s in &scenarios {
        if let Some(reading) = reading(&cells, s) {
            let _ = writeln!(md, "{reading}\n");
        }
    }
    md
}

/// Which component costs the fused head most when it goes, and what the ensemble loses
/// without calibration, for one scenario.
fn reading(cells: &BTreeMap<(usize, String), BTreeMap<&str, Vec<f64>>>, s: &str) -> Option<String> {
    let mean = |v: usize, mode: &str| {
        cells
            .get(&(v, s.to_string()))
            .and_then(|m| m.get(mode))
            .and_then(|x| MeanStd::of(x))
            .map(|m| m.mean)
    };
    let full = mean(0, "av")?;
    let mut drops: Vec<(f64, &str)> = (1..VARIANTS.len())
        .filter_map(|v| Some((full - mean(v, "av")?, VARIANTS[v])))
        .collect();
    drops.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (worst, name) = drops.first()?;
    let mut text = format!(
        "**{s}:** the ablation that costs the fused head most is \"{name}\" ({:+.2} points; full SAMM {full:.2})",
        -worst
    );
    if let (Some(e), Some(u)) = (mean(0, "ensemble"), mean(5, "ensemble")) {
        let _ = write!(
            text,
            "; the uncalibrated ensemble scores {u:.2} against the calibrated {e:.2}"
        );
    }
    text.push('.');
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::results;
    use crate::RunMetrics;

    fn samm(config: serde_json::Value, last0: u64) -> RunResults {
        let mut r = results("seq");
        r.run.method = MethodKind::Samm;
        r.config = config;
        r.modes[0].correct[2][0] = Some(last0);
        let mut ens = r.modes[0].clone();
        ens.mode = "ensemble".into();
        r.modes.push(ens);
        r
    }

    #[test]
    fn variants_are_read_from_the_config_and_set_against_full_samm() {
        let cfg = |k: &str, v: serde_json::Value| serde_json::json!({"method": {"samm": {k: v}}});
        let runs = [
            samm(
                serde_json::json!({"method": {"samm": {"reg_weight": 0.01}}}),
                4,
            ),
            samm(cfg("consistency_weight", 0.0.into()), 2),
            samm(cfg("calibration", "none".into()), 4),
            samm(
                serde_json::json!({"method": {"samm": {"align_weight": 0.0, "align_on": "features"}}}),
                0,
            ),
        ];
        let metrics: Vec<RunMetrics> = runs
            .iter()
            .map(|r| RunMetrics::derive(r).unwrap())
            .collect();
        let entries: Vec<RunEntry> = runs
            .iter()
            .zip(&metrics)
            .map(|(results, metrics)| RunEntry { results, metrics })
            .collect();
        let md = ablation_study(&entries[1..], &entries[..1]);
        // final rows (4/10, -, 15/20) -> 57.5; (2/10, -, 15/20) -> 47.5
        assert!(
            md.contains("| full SAMM | 57.50 ± 0.00 | 57.50 ± 0.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| no consistency term | 47.50 ± 0.00 (-10.00) |"),
            "{md}"
        );
        assert!(
            md.contains("| uncalibrated ensemble | 57.50 ± 0.00 (+0.00) |"),
            "{md}"
        );
        // two switches at once is no single ablation
        assert!(!md.contains("alignment on encoder features"), "{md}");
        assert!(
            md.contains("costs the fused head most is \"no consistency term\" (-10.00 points; full SAMM 57.50)"),
            "{md}"
        );
        assert_eq!(ablation_study(&[], &entries), "");
    }
}
