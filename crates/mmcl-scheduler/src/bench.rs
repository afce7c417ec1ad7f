//! The training-step benchmark (`mmcl bench step`, `cargo bench -p mmcl-scheduler`): times
//! exactly the step of `tools/bench/torch_step.py` (the PyTorch baseline): forward of the
//! whole audio-visual ResNet-18 model in training mode (FiLM fusion, three heads), loss =
//! sum of the three heads' cross-entropy (mmcl-losses, as training), backward, plain SGD
//! (lr 0.01), with the same shapes per scale. Compare with `python3 torch_step.py <scale>`
//! run back to back on the same machine.
use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Tensor};
use mmcl_model::{AvNet, AvNetConfig, Fusion, Modality};
use mmcl_ops::profile::{set_profiling, take_profile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::SchedulerError;

/// The model and batch shapes of one benchmark scale (those of torch_step.py's SCALES).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepScale {
    Tiny,
    Mini,
    /// The paper's shapes.
    Paper,
}

/// Batch and network shapes of a scale.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Shapes {
    batch: usize,
    width: usize,
    frames: usize,
    side: usize,
    freq_bins: usize,
    time_frames: usize,
    classes: usize,
}

impl StepScale {
    fn shapes(self) -> Shapes {
        let s = |batch, width, frames, side, freq_bins, time_frames| Shapes {
            batch,
            width,
            frames,
            side,
            freq_bins,
            time_frames,
            classes: 100,
        };
        match self {
            StepScale::Tiny => s(32, 8, 2, 32, 65, 63),
            StepScale::Mini => s(32, 16, 2, 64, 129, 126),
            StepScale::Paper => s(8, 64, 4, 224, 129, 626),
        }
    }
}

/// What to time.
#[derive(Clone, Debug)]
pub struct StepBench {
    pub scale: StepScale,
    /// Timed steps (the median is reported); at least 1.
    pub steps: usize,
    /// Untimed steps first (thread pools, allocator and scratch buffers warm up).
    pub warmup: usize,
    /// Seed of the weights, inputs and labels.
    pub seed: u64,
    /// Also account time per op class (adds a little overhead).
    pub profile: bool,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// The network: audio-visual (torch_step.py's), or a one-encoder unimodal network,
    /// whose loss sums the heads it has (its own and the fused one).
    pub modality: Modality,
}

/// Time per op class within a phase, ms per step (mean over the timed steps).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseProfile {
    /// Per op class (`conv_fwd`, `bn_bwd`, ...): the mmcl-ops kernels.
    #[serde(flatten)]
    pub kernels: BTreeMap<&'static str, f64>,
    /// The phase's time outside those kernels.
    pub other_candle_ops: f64,
    pub total: f64,
}

/// One benchmark result: the JSON line `mmcl bench step` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepReport {
    /// Always `mmcl` (torch_step.py writes `pytorch`).
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub device: String,
    /// Cores available to rayon.
    pub threads: usize,
    pub candle_elementwise_threads: String,
    /// MMCL_KERNELS: `fast` (mmcl-ops CPU kernels) or `composed` (candle compositions).
    pub kernels: &'static str,
    pub allocator_keeps_freed_memory: bool,
    pub scale: StepScale,
    pub modality: Modality,
    pub steps: usize,
    pub ms_per_step_median: f64,
    pub forward_ms_median: f64,
    pub backward_ms_median: f64,
    pub optimizer_ms_median: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_forward_ms_mean: Option<PhaseProfile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_backward_ms_mean: Option<PhaseProfile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_optimizer_ms_mean: Option<f64>,
}

fn normal_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    // Box-Muller: inputs only need to look like activations, not be a specific law.
    (0..n)
        .map(|_| {
            let u1: f32 = rng.random::<f32>().max(1e-7);
            let u2: f32 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Per-step timings of the timed steps, ms.
#[derive(Default)]
struct Timings {
    total: Vec<f64>,
    forward: Vec<f64>,
    backward: Vec<f64>,
    optimizer: Vec<f64>,
    profile_forward: BTreeMap<&'static str, f64>,
    profile_backward: BTreeMap<&'static str, f64>,
}

/// Run the benchmark. Applies the training process settings first
/// ([`mmcl_ops::process::tune_for_training`]), so the figure holds for real runs.
pub fn step(b: &StepBench) -> Result<StepReport, SchedulerError> {
    if b.steps == 0 {
        return Err(SchedulerError::Config("--steps must be at least 1".into()));
    }
    let process = mmcl_ops::process::tune_for_training();
    let dev = crate::device::open_device(&b.device)?;
    let s = b.scale.shapes();
    let cfg = AvNetConfig {
        width: s.width,
        classes: s.classes,
        fusion: Fusion::Film,
        modality: b.modality,
        frames: s.frames,
    };
    let net = AvNet::seeded(cfg, &dev, b.seed)?;
    let vars = net.trainable_vars();
    let mut rng = ChaCha8Rng::seed_from_u64(b.seed ^ 0x5eed);
    let audio_len = s.batch * s.freq_bins * s.time_frames;
    let audio = Tensor::from_vec(
        normal_vec(&mut rng, audio_len),
        (s.batch, 1, s.freq_bins, s.time_frames),
        &dev,
    )?;
    let video_len = s.batch * 3 * s.frames * s.side * s.side;
    let video = Tensor::from_vec(
        normal_vec(&mut rng, video_len),
        (s.batch, 3, s.frames, s.side, s.side),
        &dev,
    )?;
    let labels: Vec<u32> = (0..s.batch)
        .map(|_| rng.random_range(0..s.classes as u32))
        .collect();
    let labels = Tensor::from_vec(labels, s.batch, &dev)?;
    let lr = 0.01;
    let ce = |l: &Tensor| mmcl_losses::cross_entropy(l, &labels);

    set_profiling(b.profile);
    let mut t = Timings::default();
    for i in 0..b.warmup + b.steps {
        take_profile();
        let t0 = Instant::now();
        let out = net.forward_t(&audio, &video, true)?;
        let mut loss = ce(&out.av_logits)?;
        // Summed as torch_step.py: (audio + visual) + fused.
        if let (Some(a), Some(v)) = (&out.a_logits, &out.v_logits) {
            loss = ((ce(a)? + ce(v)?)? + loss)?;
        } else if let Some(own) = out.a_logits.as_ref().or(out.v_logits.as_ref()) {
            loss = (ce(own)? + loss)?;
        }
        // On a GPU the ops above are only queued: wait so the phase split is honest
        // (a no-op on the CPU). The step total is synchronised by reading the loss.
        dev.synchronize()?;
        let t1 = Instant::now();
        let pf = take_profile();
        let grads = loss.backward()?;
        dev.synchronize()?;
        let t2 = Instant::now();
        let pb = take_profile();
        for v in &vars {
            if let Some(g) = grads.get(v) {
                v.set(&(v.as_tensor() - (g * lr)?)?)?;
            }
        }
        drop(grads);
        let loss_value = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if !loss_value.is_finite() {
            return Err(SchedulerError::Diverged {
                task: 0,
                epoch: 0,
                step: i,
                value: loss_value,
            });
        }
        let t3 = Instant::now();
        if i < b.warmup {
            continue;
        }
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        t.total.push(ms(t0, t3));
        t.forward.push(ms(t0, t1));
        t.backward.push(ms(t1, t2));
        t.optimizer.push(ms(t2, t3));
        for (phase, p) in [(&mut t.profile_forward, pf), (&mut t.profile_backward, pb)] {
            for (class, d, calls) in p {
                if calls > 0 {
                    *phase.entry(class.name()).or_default() +=
                        d.as_secs_f64() * 1e3 / b.steps as f64;
                }
            }
        }
    }
    set_profiling(false);
    let phase = |kernels: &BTreeMap<&'static str, f64>, phase_mean: f64| PhaseProfile {
        kernels: kernels.iter().map(|(k, v)| (*k, round2(*v))).collect(),
        other_candle_ops: round2(phase_mean - kernels.values().sum::<f64>()),
        total: round2(phase_mean),
    };
    Ok(StepReport {
        implementation: "mmcl",
        device: b.device.clone(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        candle_elementwise_threads: process.candle_threads,
        kernels: mmcl_ops::kernels()?.name(),
        allocator_keeps_freed_memory: process.keeps_freed_memory,
        scale: b.scale,
        modality: b.modality,
        steps: b.steps,
        ms_per_step_median: round2(median(&t.total)),
        forward_ms_median: round2(median(&t.forward)),
        backward_ms_median: round2(median(&t.backward)),
        optimizer_ms_median: round2(median(&t.optimizer)),
        profile_forward_ms_mean: b
            .profile
            .then(|| phase(&t.profile_forward, mean(&t.forward))),
        profile_backward_ms_mean: b
            .profile
            .then(|| phase(&t.profile_backward, mean(&t.backward))),
        profile_optimizer_ms_mean: b.profile.then(|| round2(mean(&t.optimizer))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_step_reports_finite_phase_times_and_a_profile() {
        let r = step(&StepBench {
            scale: StepScale::Tiny,
            steps: 1,
            warmup: 0,
            seed: 0,
            profile: true,
            device: "cpu".into(),
            modality: Modality::AudioVisual,
        })
        .unwrap();
        assert!(r.ms_per_step_median > 0.0 && r.forward_ms_median > 0.0);
        let p = r.profile_forward_ms_mean.as_ref().unwrap();
        assert!(p.total >= p.other_candle_ops, "{p:?}");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (j["impl"].as_str(), j["scale"].as_str()),
            (Some("mmcl"), Some("tiny"))
        );
        assert!(j["profile_forward_ms_mean"]["total"].is_number(), "{j}");
    }

    #[test]
    fn unimodal_steps_run_one_encoder() {
        for (m, name) in [(Modality::Audio, "audio"), (Modality::Visual, "visual")] {
            let r = step(&StepBench {
                scale: StepScale::Tiny,
                steps: 1,
                warmup: 0,
                seed: 0,
                profile: false,
                device: "cpu".into(),
                modality: m,
            })
            .unwrap();
            assert!(r.ms_per_step_median > 0.0);
            assert_eq!(serde_json::to_value(&r).unwrap()["modality"], name);
        }
    }

    #[test]
    fn zero_steps_is_an_error() {
        let b = StepBench {
            scale: StepScale::Tiny,
            steps: 0,
            warmup: 0,
            seed: 0,
            profile: false,
            device: "cpu".into(),
            modality: Modality::AudioVisual,
        };
        assert!(step(&b).unwrap_err().to_string().contains("--steps"));
    }
}
