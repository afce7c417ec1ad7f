//! `mmcl bench …`: speed benchmarks that print one JSON line each.
//!
//! `mmcl bench step --scale tiny|mini|paper` times exactly the training step of
//! `tools/bench/torch_step.py` (the PyTorch baseline): forward of the whole audio-visual
//! ResNet-18 model in training mode (FiLM fusion, three heads), loss = sum of the three
//! heads' cross-entropy, backward, plain SGD (lr 0.01), with the same shapes per scale.
//! Compare with `python3 torch_step.py <scale>` run back to back on the same machine.
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Device, Tensor, D};
use clap::{Args, Subcommand, ValueEnum};
use mmcl_model::{AvNet, AvNetConfig, Fusion, Modality};
use mmcl_ops::profile::{set_profiling, take_profile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time one training step (forward, 3-head cross-entropy, backward, SGD) like torch_step.py.
    Step(StepArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    Tiny,
    Mini,
    Paper,
}

/// (batch, base width, frames, frame side, spectrogram bins, spectrogram frames, classes),
/// the same table as torch_step.py's SCALES.
fn scale_shapes(s: Scale) -> (usize, usize, usize, usize, usize, usize, usize) {
    match s {
        Scale::Tiny => (32, 8, 2, 32, 65, 63, 100),
        Scale::Mini => (32, 16, 2, 64, 129, 126, 100),
        Scale::Paper => (8, 64, 4, 224, 129, 626, 100),
    }
}

#[derive(Args)]
pub struct StepArgs {
    /// Model and batch size (tiny and mini are quick; paper is the paper's shapes).
    #[arg(long, value_enum)]
    pub scale: Scale,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed steps first (thread pools, allocator and scratch buffers warm up).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Seed of the weights, inputs and labels.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also report the time per op class (conv forward, conv backward input/weight, BN,
    /// pool, fused elementwise, rest) in ms per step; adds a little overhead.
    #[arg(long)]
    pub profile: bool,
    /// `cpu`, `cuda` or `cuda:N`: where the model, inputs and step run.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Step(a) => {
            println!("{}", step_report(&a)?);
            Ok(())
        }
    }
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

/// Mean cross-entropy of `logits` [B, K] against `labels` [B] (u32), as F.cross_entropy.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> candle_core::Result<Tensor> {
    let lse = logits.log_sum_exp(D::Minus1)?;
    let picked = logits.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    (lse - picked)?.mean_all()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Run the step benchmark and return its JSON line (also used by `mmcl gpu-check`).
pub fn step_report(a: &StepArgs) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(a.steps >= 1, "--steps must be at least 1");
    // The same process settings as `mmcl train` (threads, allocator), so the figure holds
    // for real runs.
    let process = crate::process::tune_for_training();
    let dev: Device = mmcl_scheduler::device::open_device(&a.device)?;
    let (b, width, frames, side, fbins, tframes, classes) = scale_shapes(a.scale);
    let cfg = AvNetConfig {
        width,
        classes,
        fusion: Fusion::Film,
        modality: Modality::AudioVisual,
        frames,
    };
    let net = AvNet::seeded(cfg, &dev, a.seed).context("building the model")?;
    let vars = net.trainable_vars();
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ 0x5eed);
    let audio = Tensor::from_vec(
        normal_vec(&mut rng, b * fbins * tframes),
        (b, 1, fbins, tframes),
        &dev,
    )?;
    let video = Tensor::from_vec(
        normal_vec(&mut rng, b * 3 * frames * side * side),
        (b, 3, frames, side, side),
        &dev,
    )?;
    let labels: Vec<u32> = (0..b)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let labels = Tensor::from_vec(labels, b, &dev)?;
    let lr = 0.01;

    set_profiling(a.profile);
    let (mut total, mut fwd, mut bwd, mut opt) = (vec![], vec![], vec![], vec![]);
    let mut prof_fwd = std::collections::BTreeMap::<&'static str, f64>::new();
    let mut prof_bwd = std::collections::BTreeMap::<&'static str, f64>::new();
    for i in 0..a.warmup + a.steps {
        let timed = i >= a.warmup;
        take_profile();
        let t0 = Instant::now();
        let out = net.forward_t(&audio, &video, true)?;
        let loss = ((cross_entropy(&out.a_logits, &labels)?
            + cross_entropy(&out.v_logits, &labels)?)?
            + cross_entropy(&out.av_logits, &labels)?)?;
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
        anyhow::ensure!(
            loss_value.is_finite(),
            "loss is not finite at step {i}: {loss_value}"
        );
        let t3 = Instant::now();
        if timed {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            total.push(ms(t0, t3));
            fwd.push(ms(t0, t1));
            bwd.push(ms(t1, t2));
            opt.push(ms(t2, t3));
            for (phase, p) in [(&mut prof_fwd, pf), (&mut prof_bwd, pb)] {
                for (class, d, calls) in p {
                    if calls > 0 {
                        *phase.entry(class.name()).or_default() +=
                            d.as_secs_f64() * 1e3 / a.steps as f64;
                    }
                }
            }
        }
    }
    set_profiling(false);
    let mut j = serde_json::json!({
        "impl": "mmcl",
        "device": a.device.clone(),
        "threads": rayon_threads(),
        "candle_elementwise_threads": process.candle_threads,
        // MMCL_KERNELS: `fast` (mmcl-ops CPU kernels) or `composed` (candle compositions).
        "kernels": mmcl_ops::kernels()?.name(),
        "allocator_keeps_freed_memory": process.keeps_freed_memory,
        "scale": format!("{:?}", a.scale).to_lowercase(),
        "steps": a.steps,
        "ms_per_step_median": round2(median(&mut total.clone())),
        "forward_ms_median": round2(median(&mut fwd.clone())),
        "backward_ms_median": round2(median(&mut bwd.clone())),
        "optimizer_ms_median": round2(median(&mut opt.clone())),
    });
    if a.profile {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let mut section =
            |name: &str, phase: &std::collections::BTreeMap<&'static str, f64>, phase_mean: f64| {
                let mut m = serde_json::Map::new();
                let mut kernels = 0.0;
                for (k, v) in phase {
                    kernels += v;
                    m.insert((*k).into(), round2(*v).into());
                }
                m.insert(
                    "other_candle_ops".into(),
                    round2(phase_mean - kernels).into(),
                );
                m.insert("total".into(), round2(phase_mean).into());
                j[name] = serde_json::Value::Object(m);
            };
        section("profile_forward_ms_mean", &prof_fwd, mean(&fwd));
        section("profile_backward_ms_mean", &prof_bwd, mean(&bwd));
        j["profile_optimizer_ms_mean"] = round2(mean(&opt)).into();
    }
    Ok(j)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
