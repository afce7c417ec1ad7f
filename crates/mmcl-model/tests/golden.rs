//! Golden tests against PyTorch (fixtures from `tools/golden/model.py fixtures`, computed
//! in float64 and stored as f32): PyTorch-written checkpoints load strictly; eval- and
//! train-mode logits, the gradient of every parameter after a loss step (sum of the three
//! heads' cross-entropies) and the BatchNorm running statistics after the step all match.
//!
//! Metric per tensor: max |mmcl - torch| / max |torch| <= 1e-4 (relative to the tensor's
//! largest magnitude, since element-wise relative error is meaningless for gradients that
//! cancel to ~0). Observed worst: 6.4e-5 (a BatchNorm weight gradient at width 2, a sum over
//! thousands of f32 products; the reference is float64). Set MMCL_GOLDEN_VERBOSE=1 to print
//! every tensor's error.
use std::path::{Path, PathBuf};

use candle_core::Device;
use mmcl_model::golden::{self, compare, run_case, TOLERANCE};
use mmcl_model::{infer_config, AvNetConfig, Fusion, Modality};

fn fixture(name: &str) -> PathBuf {
    golden::repository_fixtures().join(name)
}

fn run_golden(name: &str) {
    let (_, cfg) = golden::cases()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("a committed case");
    run_golden_in(&golden::repository_fixtures(), name, cfg)
}

/// Every output, gradient and BatchNorm statistic of the fixture is computed and matches.
fn run_golden_in(dir: &Path, name: &str, cfg: AvNetConfig) {
    let run =
        run_case(dir, name, cfg, &Device::Cpu).expect("PyTorch-written checkpoint loads strictly");
    let c = compare(&run.ours, &run.reference, TOLERANCE);
    if std::env::var_os("MMCL_GOLDEN_VERBOSE").is_some() {
        for (k, t) in &run.ours {
            if let Some(e) = run
                .reference
                .get(k)
                .and_then(|w| golden::rel_err(t, w).ok())
            {
                eprintln!("  {k}: {e:.3e}");
            }
        }
    }
    eprintln!(
        "{name}: {} tensors, worst rel err {:.3e} ({})",
        c.tensors, c.worst, c.worst_name
    );
    assert!(
        c.passed(),
        "{name}: {} mismatches:\n{}",
        c.failures.len(),
        c.failures.join("\n")
    );
    assert!(
        run.ours.keys().any(|k| k.starts_with("grad."))
            && run.ours.keys().any(|k| k.ends_with("num_batches_tracked")),
        "gradients and BatchNorm statistics are among the compared tensors"
    );
}

#[test]
fn golden_film() {
    run_golden("film");
}

#[test]
fn golden_gated() {
    run_golden("gated");
}

#[test]
fn golden_sum() {
    run_golden("sum");
}

#[test]
fn golden_concat() {
    run_golden("concat");
}

#[test]
fn golden_audio_only() {
    run_golden("audio_only");
}

#[test]
fn infers_architecture_from_pytorch_checkpoints() {
    for (name, width, classes, fusion) in [
        ("film", 4, 7, Fusion::Film),
        ("gated", 2, 5, Fusion::Gated),
        ("sum", 2, 5, Fusion::Sum),
        ("concat", 2, 5, Fusion::Concat),
    ] {
        let c = infer_config(fixture(&format!("{name}_weights.safetensors"))).unwrap();
        assert_eq!(
            (c.width, c.classes, c.fusion, c.modality),
            (width, classes, fusion, Modality::AudioVisual),
            "{name}"
        );
    }
    // The unimodal layout is ambiguous without mmcl metadata: a clear error, not a guess.
    let err = infer_config(fixture("audio_only_weights.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("audio_only_weights.safetensors") && err.contains("modality"),
        "{err}"
    );
}

/// A larger one-off case: `python3 tools/golden/model.py step-fixture --out-dir DIR` then
/// `MMCL_GOLDEN_DIR=DIR MMCL_GOLDEN_NAME=case cargo test -p mmcl-model --test golden -- --ignored`.
#[test]
#[ignore = "needs a fixture written by tools/golden/model.py step-fixture"]
fn golden_external() {
    let dir = PathBuf::from(std::env::var("MMCL_GOLDEN_DIR").expect("set MMCL_GOLDEN_DIR"));
    let name = std::env::var("MMCL_GOLDEN_NAME").unwrap_or_else(|_| "case".into());
    let cfg = infer_config(dir.join(format!("{name}_weights.safetensors"))).unwrap();
    run_golden_in(&dir, &name, cfg);
}
