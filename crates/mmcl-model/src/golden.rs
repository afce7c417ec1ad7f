//! Golden comparisons against the PyTorch reference (`tools/golden/model.py fixtures`):
//! run one fixture case through the network and compare every tensor with the reference.
//!
//! A case is two files in a fixtures folder: `<name>_weights.safetensors` (a PyTorch
//! state_dict) and `<name>_io.safetensors` (inputs `audio`, `video`, `labels`; outputs
//! `eval.*` / `train.*` logits, `train.loss`, `grad.<param>` after one loss step (sum of the
//! heads' cross-entropies; a unimodal network lacks one head and its encoder, whose fixture
//! tensors are not compared) and `after.<bn>.running_{mean,var}` /
//! `after.<bn>.num_batches_tracked` after it). The same function serves this crate's golden
//! tests and `mmcl gpu-check` (CUDA vs CPU vs PyTorch).
//!
//! Metric per tensor, [`rel_err`]: max |got - want| / max |want|, relative to the tensor's
//! largest magnitude because element-wise relative error is meaningless for gradients that
//! cancel to ~0.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::{AvNet, AvNetConfig, Fusion, Modality, ModelError, Result};

/// Bound of [`rel_err`] for every tensor: the fixtures are float64 rounded to f32, and f32
/// summation order (CPU vs GPU, ours vs PyTorch's) differs by far less.
pub const TOLERANCE: f64 = 1e-4;

/// The fixture inputs, which [`run_case`] drops from the reference it returns.
const INPUTS: [&str; 3] = ["audio", "video", "labels"];

/// The committed fixture cases (`crates/mmcl-model/tests/fixtures`): file stem and
/// architecture.
pub fn cases() -> Vec<(&'static str, AvNetConfig)> {
    let cfg = |width, classes, fusion, modality| AvNetConfig {
        width,
        classes,
        fusion,
        modality,
        frames: 2,
    };
    vec![
        ("film", cfg(4, 7, Fusion::Film, Modality::AudioVisual)),
        ("gated", cfg(2, 5, Fusion::Gated, Modality::AudioVisual)),
        ("sum", cfg(2, 5, Fusion::Sum, Modality::AudioVisual)),
        ("concat", cfg(2, 5, Fusion::Concat, Modality::AudioVisual)),
        ("audio_only", cfg(2, 5, Fusion::Film, Modality::Audio)),
    ]
}

/// max |got - want| / max |want| (the absolute error when `want` is all zero), computed in
/// f64 on the CPU. A shape mismatch is an error; a NaN gives NaN, which never passes.
pub fn rel_err(got: &Tensor, want: &Tensor) -> Result<f64> {
    if got.dims() != want.dims() {
        return Err(ModelError::BadInput {
            name: "compared tensor",
            reason: format!("shape {:?} vs reference {:?}", got.dims(), want.dims()),
        });
    }
    let flat = |t: &Tensor| -> Result<Vec<f64>> {
        Ok(t.to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?)
    };
    let (g, w) = (flat(got)?, flat(want)?);
    let (mut diff, mut scale, mut nan) = (0f64, 0f64, false);
    for (a, b) in g.iter().zip(&w) {
        let d = (a - b).abs();
        // f64::max drops NaN; remember it so a NaN output fails.
        nan |= d.is_nan();
        diff = diff.max(d);
        scale = scale.max(b.abs());
    }
    Ok(if nan {
        f64::NAN
    } else if scale == 0.0 {
        diff
    } else {
        diff / scale
    })
}

/// The outcome of comparing one named set of tensors with a reference set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Tensors compared (names of `got`).
    pub tensors: usize,
    /// The largest [`rel_err`] (infinity for a NaN).
    pub worst: f64,
    /// The tensor with the largest error.
    pub worst_name: String,
    pub tolerance: f64,
    /// One line per failed tensor: above tolerance, NaN, shape mismatch, missing on a side.
    pub failures: Vec<String>,
}

impl Comparison {
    /// No failure, and at least one tensor compared.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.tensors > 0
    }
}

/// Compare every tensor of `got` with the same-named tensor of `want`. A name on only one
/// side, a shape mismatch, a NaN or an error above `tol` is a failure.
pub fn compare(
    got: &BTreeMap<String, Tensor>,
    want: &BTreeMap<String, Tensor>,
    tol: f64,
) -> Comparison {
    let mut c = Comparison {
        tensors: 0,
        worst: 0.0,
        worst_name: String::new(),
        tolerance: tol,
        failures: vec![],
    };
    for (name, g) in got {
        c.tensors += 1;
        let Some(w) = want.get(name) else {
            c.failures
                .push(format!("{name}: missing from the reference"));
            continue;
        };
        match rel_err(g, w) {
            Ok(e) => {
                if e.is_nan() || e > c.worst {
                    c.worst = if e.is_nan() { f64::INFINITY } else { e };
                    c.worst_name = name.clone();
                }
                if e.is_nan() || e > tol {
                    c.failures
                        .push(format!("{name}: rel err {e:.3e} > {tol:.0e}"));
                }
            }
            Err(e) => c.failures.push(format!("{name}: {e}")),
        }
    }
    for name in want.keys().filter(|k| !got.contains_key(*k)) {
        c.failures.push(format!("{name}: not computed by mmcl"));
    }
    c
}

/// One fixture case run through the network: our tensors and the reference's, named alike,
/// both on the CPU.
#[derive(Debug, Clone)]
pub struct CaseRun {
    pub ours: BTreeMap<String, Tensor>,
    /// The fixture's outputs (its inputs removed).
    pub reference: BTreeMap<String, Tensor>,
}

/// Run the case `name` of `dir` on `device`: load the PyTorch checkpoint strictly, then eval
/// forward, train forward, loss, backward and the BatchNorm statistics after the step.
pub fn run_case(dir: &Path, name: &str, cfg: AvNetConfig, device: &Device) -> Result<CaseRun> {
    let weights = dir.join(format!("{name}_weights.safetensors"));
    let io_path = dir.join(format!("{name}_io.safetensors"));
    let net = AvNet::from_checkpoint_with(cfg, &weights, device)?;
    let fixture_err = |reason: String| ModelError::Checkpoint {
        path: io_path.clone(),
        reason,
    };
    let mut reference: BTreeMap<String, Tensor> =
        candle_core::safetensors::load(&io_path, &Device::Cpu)
            .map_err(|e| fixture_err(format!("cannot read the golden fixture: {e}")))?
            .into_iter()
            .collect();
    let mut input = |k: &str| -> Result<Tensor> {
        let t = reference
            .remove(k)
            .ok_or_else(|| fixture_err(format!("no input tensor {k:?}")))?;
        Ok(t.to_device(device)?)
    };
    let (audio, video) = (input("audio")?, input("video")?);
    let labels = input("labels")?.to_dtype(DType::U32)?;
    debug_assert!(INPUTS.iter().all(|k| !reference.contains_key(*k)));

    let mut ours = BTreeMap::new();
    let mut put = |k: String, t: &Tensor| -> Result<()> {
        ours.insert(k, t.to_device(&Device::Cpu)?);
        Ok(())
    };
    // A unimodal network holds one encoder: the fixture's tensors of the other (written by
    // the reference's two-encoder model) are not ours to compare.
    let absent = match cfg.modality {
        Modality::Audio => Some(("visual_net.", "fusion_module.y_out.", "v_logits")),
        Modality::Visual => Some(("audio_net.", "fusion_module.x_out.", "a_logits")),
        Modality::AudioVisual => None,
    };
    let mut absent_loss = 0f64;
    if let Some((encoder, head, logits)) = absent {
        // The reference loss sums all three heads; the absent head's term is the
        // reference's own, so the comparison checks the terms we compute.
        // (A fixture of a one-encoder reference has no such term.)
        if let Some(theirs) = reference.get(&format!("train.{logits}")) {
            let labels = labels.to_device(&Device::Cpu)?;
            absent_loss =
                candle_nn::loss::cross_entropy(theirs, &labels)?.to_scalar::<f32>()? as f64;
        }
        reference.retain(|k, _| {
            let k = k.split_once('.').map_or(k.as_str(), |(_, rest)| rest);
            !(k.starts_with(encoder) || k.starts_with(head) || k == logits)
        });
    }
    for (phase, train) in [("eval", false), ("train", true)] {
        let out = net.forward_t(&audio, &video, train)?;
        let heads = [
            ("a_logits", out.a_logits.as_ref()),
            ("v_logits", out.v_logits.as_ref()),
            ("av_logits", Some(&out.av_logits)),
        ];
        for (k, t) in heads {
            if let Some(t) = t {
                put(format!("{phase}.{k}"), t)?;
            }
        }
        if !train {
            continue;
        }
        let ce = |l: &Tensor| candle_nn::loss::cross_entropy(l, &labels);
        let mut loss = ce(&out.av_logits)?;
        for t in [&out.a_logits, &out.v_logits].into_iter().flatten() {
            loss = (loss + ce(t)?)?;
        }
        put("train.loss".into(), &(loss.reshape(1)? + absent_loss)?)?;
        let grads = loss.backward()?;
        for (k, var) in net.named_trainable_vars() {
            let g = grads
                .get(var.as_tensor())
                .ok_or_else(|| ModelError::Checkpoint {
                    path: weights.clone(),
                    reason: format!("no gradient for {k}"),
                })?;
            put(format!("grad.{k}"), g)?;
        }
    }
    for (prefix, s) in net.running_stats() {
        put(format!("after.{prefix}.running_mean"), &s.running_mean)?;
        put(format!("after.{prefix}.running_var"), &s.running_var)?;
        put(
            format!("after.{prefix}.num_batches_tracked"),
            &Tensor::new(s.num_batches_tracked, &Device::Cpu)?,
        )?;
    }
    Ok(CaseRun { ours, reference })
}

/// The committed fixtures folder of this crate (for its tests and `mmcl gpu-check` run from a
/// checkout).
pub fn repository_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
    }

    fn set(pairs: &[(&str, &[f32])]) -> BTreeMap<String, Tensor> {
        pairs.iter().map(|(k, v)| (k.to_string(), t(v))).collect()
    }

    #[test]
    fn rel_err_is_max_abs_over_max_abs_reference() {
        let e = rel_err(&t(&[1.0, 2.0, 4.0]), &t(&[1.0, 2.5, 4.0])).unwrap();
        assert!((e - 0.5 / 4.0).abs() < 1e-12, "{e}");
        // All-zero reference: absolute error.
        assert_eq!(rel_err(&t(&[0.5]), &t(&[0.0])).unwrap(), 0.5);
        assert!(rel_err(&t(&[f32::NAN]), &t(&[1.0])).unwrap().is_nan());
        assert!(rel_err(&t(&[1.0, 2.0]), &t(&[1.0])).is_err());
    }

    #[test]
    fn comparison_passes_within_tolerance() {
        let want = set(&[("a", &[1.0, -2.0]), ("b", &[0.0, 3.0])]);
        let got = set(&[("a", &[1.0, -2.0001]), ("b", &[1e-5, 3.0])]);
        let c = compare(&got, &want, TOLERANCE);
        assert!(c.passed(), "{c:?}");
        assert_eq!(c.tensors, 2);
        assert_eq!(c.worst_name, "a");
    }

    #[test]
    fn comparison_fails_beyond_tolerance_missing_names_and_nan() {
        let want = set(&[("a", &[1.0, -2.0]), ("b", &[0.0, 3.0])]);
        let got = set(&[("a", &[1.0, -2.01]), ("b", &[0.0, 3.0])]);
        let c = compare(&got, &want, TOLERANCE);
        assert!(!c.passed());
        assert_eq!(c.failures.len(), 1);
        assert!(c.failures[0].starts_with("a: rel err"), "{:?}", c.failures);

        let c = compare(&set(&[("zzz", &[1.0])]), &want, TOLERANCE);
        assert!(!c.passed() && c.failures[0].contains("missing"));
        // Reference tensors we did not compute are failures too.
        assert!(c.failures.iter().any(|f| f.starts_with("a: not computed")));

        let c = compare(&set(&[("b", &[f32::NAN, 3.0])]), &want, TOLERANCE);
        assert!(!c.passed() && c.worst.is_infinite());

        // Nothing compared is not a pass.
        assert!(!compare(&BTreeMap::new(), &BTreeMap::new(), TOLERANCE).passed());
    }

    #[test]
    fn a_missing_fixture_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (name, cfg) = cases().remove(0);
        let e = run_case(dir.path(), name, cfg, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("film_weights.safetensors"), "{e}");
    }
}
