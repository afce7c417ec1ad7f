//! The GPU build check behind `mmcl gpu-check`: runnable from a prebuilt binary and a small
//! folder (`cargo xtask gpu-pack`), with no network and no Rust toolchain.
//!
//! Steps, each [`GpuCheckStatus::Passed`], `Failed` or `Skipped` in a one-screen summary
//! ([`render`]) and SUMMARY.json ([`Summary`]):
//! 1. `golden cpu vs pytorch`: the model golden fixtures ([`mmcl_model::golden`], the files of
//!    its golden tests): eval and train logits, the loss, every parameter gradient after one
//!    step and the BatchNorm statistics, on the CPU;
//! 2. `golden cuda vs cpu`: the same quantities on the GPU against the CPU;
//! 3. `bench step paper`: the paper-scale step benchmark ([`mmcl_scheduler::bench`]) on the
//!    GPU, and next to it `python3 torch_step.py paper --device cuda` when PyTorch is
//!    importable; the ratio;
//! 4. `samm tiny run`: a tiny-profile SAMM run ([`crate::pipeline::tiny_run`]) on the GPU.
//!
//! Both golden comparisons use [`mmcl_model::golden::TOLERANCE`] (GPU and CPU differ only in
//! f32 summation order). Without a GPU (or a `cuda` build) the GPU steps are skipped and the
//! check passes; any failed step fails it.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;
use mmcl_model::golden::{self, Comparison, TOLERANCE};
use mmcl_model::Modality;
use mmcl_scheduler::bench::{StepBench, StepReport, StepScale};
use mmcl_scheduler::device::{cuda_compiled, DeviceSpec};
use serde::Serialize;

use crate::pipeline::{tiny_run, TinyRun};

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum GpuCheckStatus {
    Passed,
    Failed { reason: String },
    Skipped { reason: String },
}

impl std::fmt::Display for GpuCheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuCheckStatus::Passed => f.write_str("pass"),
            GpuCheckStatus::Failed { reason } if reason.is_empty() => f.write_str("fail"),
            GpuCheckStatus::Failed { reason } => write!(f, "fail: {reason}"),
            GpuCheckStatus::Skipped { reason } => write!(f, "skipped: {reason}"),
        }
    }
}

/// One golden case: its comparison, or why it could not run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CaseOutcome {
    Compared(Comparison),
    Error { error: String },
}

impl CaseOutcome {
    fn passed(&self) -> bool {
        matches!(self, CaseOutcome::Compared(c) if c.passed())
    }
}

/// The PyTorch side of the benchmark step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TorchSide {
    /// torch_step.py's JSON line.
    Measured(serde_json::Value),
    /// Why there is no figure (not found, not importable, failed).
    Missing(String),
}

/// The benchmark step's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchDetail {
    pub mmcl: StepReport,
    pub pytorch: TorchSide,
    /// mmcl's median over PyTorch's, when both exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_mmcl_over_pytorch: Option<f64>,
}

/// What a step found, by step kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StepDetail {
    /// Per golden case.
    Golden(BTreeMap<String, CaseOutcome>),
    Bench(Box<BenchDetail>),
    Train(TinyRun),
    None,
}

/// One step as it appears in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub name: &'static str,
    #[serde(flatten)]
    pub status: GpuCheckStatus,
    pub detail: StepDetail,
}

impl StepResult {
    fn skipped(name: &'static str, reason: &str) -> Self {
        Self {
            name,
            status: GpuCheckStatus::Skipped {
                reason: reason.into(),
            },
            detail: StepDetail::None,
        }
    }
    fn failed(name: &'static str, reason: String) -> Self {
        Self {
            name,
            status: GpuCheckStatus::Failed { reason },
            detail: StepDetail::None,
        }
    }
    pub fn is_failed(&self) -> bool {
        matches!(self.status, GpuCheckStatus::Failed { .. })
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct GpuCheckOptions {
    /// Golden fixtures folder; None: `fixtures` next to the binary, else the repository's.
    pub fixtures: Option<PathBuf>,
    /// torch_step.py; None: next to the binary, else the repository's.
    pub torch_step: Option<PathBuf>,
    /// The GPU to check (`cuda` or `cuda:N`).
    pub device: String,
    /// Timed steps of the paper-scale benchmark (each side).
    pub bench_steps: usize,
    pub bench: bool,
    pub train: bool,
    /// Scratch folder of the tiny run.
    pub work: PathBuf,
}

/// SUMMARY.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub mmcl_version: &'static str,
    pub cuda_compiled: bool,
    /// The GPU checked (None without one).
    pub device: Option<String>,
    pub fixtures: PathBuf,
    pub tolerance_rel_max_abs: f64,
    pub ok: bool,
    pub seconds: f64,
    pub steps: Vec<StepResult>,
}

/// Both golden comparisons over every case. `gpu` is Err(reason) when there is no GPU.
pub fn golden_steps(dir: &Path, gpu: Result<&Device, &str>) -> Vec<StepResult> {
    let mut vs_torch = BTreeMap::new();
    let mut vs_cpu = BTreeMap::new();
    for (name, cfg) in golden::cases() {
        let cpu = match golden::run_case(dir, name, cfg, &Device::Cpu) {
            Ok(r) => r,
            Err(e) => {
                let error = e.to_string();
                vs_torch.insert(name.to_string(), CaseOutcome::Error { error });
                continue;
            }
        };
        let c = golden::compare(&cpu.ours, &cpu.reference, TOLERANCE);
        vs_torch.insert(name.to_string(), CaseOutcome::Compared(c));
        if let Ok(dev) = gpu {
            let outcome = match golden::run_case(dir, name, cfg, dev) {
                Ok(g) => CaseOutcome::Compared(golden::compare(&g.ours, &cpu.ours, TOLERANCE)),
                Err(e) => CaseOutcome::Error {
                    error: e.to_string(),
                },
            };
            vs_cpu.insert(name.to_string(), outcome);
        }
    }
    let step = |name, cases: BTreeMap<String, CaseOutcome>| {
        let failing = cases.values().filter(|c| !c.passed()).count();
        StepResult {
            name,
            status: if failing == 0 {
                GpuCheckStatus::Passed
            } else {
                GpuCheckStatus::Failed {
                    reason: format!("{failing} of {} cases", cases.len()),
                }
            },
            detail: StepDetail::Golden(cases),
        }
    };
    vec![
        step("golden cpu vs pytorch", vs_torch),
        match gpu {
            Ok(_) => step("golden cuda vs cpu", vs_cpu),
            Err(reason) => StepResult::skipped("golden cuda vs cpu", reason),
        },
    ]
}

/// The first path that exists among `explicit`, `name` next to the binary, `fallback`.
fn locate(explicit: Option<&Path>, name: &str, fallback: PathBuf) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)));
    beside.into_iter().chain([fallback]).find(|p| p.exists())
}

/// `python3 torch_step.py paper --device cuda --steps N`, or why not.
fn torch_step(script: Option<PathBuf>, steps: usize) -> TorchSide {
    let Some(script) = script else {
        return TorchSide::Missing("skipped: torch_step.py not found".into());
    };
    let importable = Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        return TorchSide::Missing("skipped: python3 cannot import torch".into());
    }
    let run = Command::new("python3")
        .arg(&script)
        .args(["paper", "--device", "cuda", "--steps"])
        .arg(steps.to_string())
        .output();
    match run {
        Ok(o) if o.status.success() => {
            match serde_json::from_slice::<serde_json::Value>(o.stdout.trim_ascii()) {
                Ok(t) => TorchSide::Measured(t),
                Err(e) => TorchSide::Missing(format!("unreadable output: {e}")),
            }
        }
        Ok(o) => TorchSide::Missing(format!(
            "failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => TorchSide::Missing(format!("could not run python3: {e}")),
    }
}

fn bench_step(opts: &GpuCheckOptions) -> StepResult {
    const NAME: &str = "bench step paper";
    let ours = mmcl_scheduler::bench::step(&StepBench {
        scale: StepScale::Paper,
        steps: opts.bench_steps,
        warmup: 2,
        seed: 0,
        profile: false,
        device: opts.device.clone(),
        modality: Modality::AudioVisual,
    });
    let mmcl = match ours {
        Ok(r) => r,
        Err(e) => return StepResult::failed(NAME, format!("mmcl: {e}")),
    };
    let script = locate(
        opts.torch_step.as_deref(),
        "torch_step.py",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/bench/torch_step.py"),
    );
    let pytorch = torch_step(script, opts.bench_steps);
    let ratio = match &pytorch {
        TorchSide::Measured(t) => t["ms_per_step_median"]
            .as_f64()
            .map(|p| (mmcl.ms_per_step_median / p * 100.0).round() / 100.0),
        TorchSide::Missing(_) => None,
    };
    StepResult {
        name: NAME,
        status: GpuCheckStatus::Passed,
        detail: StepDetail::Bench(Box::new(BenchDetail {
            mmcl,
            pytorch,
            ratio_mmcl_over_pytorch: ratio,
        })),
    }
}

fn samm_tiny(opts: &GpuCheckOptions) -> StepResult {
    const NAME: &str = "samm tiny run";
    match tiny_run(&opts.work, &opts.device) {
        Ok(d) => StepResult {
            name: NAME,
            status: GpuCheckStatus::Passed,
            detail: StepDetail::Train(d),
        },
        Err(e) => StepResult::failed(NAME, format!("{e:#}")),
    }
}

/// Open the GPU, or the reason the GPU steps are skipped.
fn open_gpu(name: &str) -> anyhow::Result<Result<Device, String>> {
    let spec: DeviceSpec = name.parse()?;
    if spec == DeviceSpec::Cpu {
        bail!("--device must name a GPU (cuda or cuda:N); the CPU side always runs");
    }
    if !cuda_compiled() {
        return Ok(Err(
            "no CUDA device (binary built without the cuda feature)".into(),
        ));
    }
    Ok(spec.open().map_err(|e| format!("no CUDA device ({e:#})")))
}

/// Run every step; the summary says whether all passed (`ok`).
pub fn run(opts: &GpuCheckOptions) -> anyhow::Result<Summary> {
    mmcl_ops::process::tune_for_training();
    let start = Instant::now();
    let gpu = open_gpu(&opts.device)?;
    let fixtures = locate(
        opts.fixtures.as_deref(),
        "fixtures",
        golden::repository_fixtures(),
    )
    .context("no fixtures folder: pass --fixtures DIR")?;
    anyhow::ensure!(
        fixtures.is_dir(),
        "fixtures folder {} does not exist",
        fixtures.display()
    );
    let gpu_ref = gpu.as_ref().map_err(String::as_str);
    let mut steps = golden_steps(&fixtures, gpu_ref);
    let gated = |name, on: bool, flag: &str, f: &dyn Fn() -> StepResult| match (on, gpu_ref) {
        (false, _) => StepResult::skipped(name, flag),
        (true, Err(reason)) => StepResult::skipped(name, reason),
        (true, Ok(_)) => f(),
    };
    steps.push(gated("bench step paper", opts.bench, "--no-bench", &|| {
        bench_step(opts)
    }));
    steps.push(gated("samm tiny run", opts.train, "--no-train", &|| {
        samm_tiny(opts)
    }));
    Ok(Summary {
        mmcl_version: env!("CARGO_PKG_VERSION"),
        cuda_compiled: cuda_compiled(),
        device: gpu.is_ok().then(|| opts.device.clone()),
        fixtures,
        tolerance_rel_max_abs: TOLERANCE,
        ok: !steps.iter().any(StepResult::is_failed),
        seconds: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        steps,
    })
}

/// The one-screen summary: one line per step, worst errors and timings inline.
pub fn render(steps: &[StepResult]) -> String {
    let mut s = String::new();
    for st in steps {
        let _ = write!(s, "{:<24} {}", st.name, st.status);
        match &st.detail {
            StepDetail::Golden(cases) => render_golden(&mut s, cases),
            StepDetail::Bench(b) => {
                let _ = write!(s, " (mmcl {} ms/step", b.mmcl.ms_per_step_median);
                let _ = match (&b.pytorch, b.ratio_mmcl_over_pytorch) {
                    (TorchSide::Measured(t), Some(r)) => write!(
                        s,
                        ", pytorch {} ms/step, ratio {r})",
                        t["ms_per_step_median"]
                    ),
                    (TorchSide::Measured(t), None) => write!(s, ", pytorch {t})"),
                    (TorchSide::Missing(why), _) => write!(s, ", pytorch {why})"),
                };
            }
            StepDetail::Train(t) => {
                let _ = write!(
                    s,
                    " ({} tasks, final seen accuracy {:?}, {} s)",
                    t.tasks, t.final_seen_accuracy_percent, t.seconds
                );
            }
            StepDetail::None => {}
        }
        s.push('\n');
    }
    s
}

fn render_golden(s: &mut String, cases: &BTreeMap<String, CaseOutcome>) {
    let (mut worst, mut at, mut n) = (0.0f64, String::new(), 0);
    let mut notes = String::new();
    for (case, outcome) in cases {
        match outcome {
            CaseOutcome::Compared(c) => {
                n += c.tensors;
                if c.worst >= worst {
                    (worst, at) = (c.worst, format!("{case}/{}", c.worst_name));
                }
                if let Some(first) = c.failures.first() {
                    let _ = write!(
                        notes,
                        "\n    {case}: {} failures, first {first}",
                        c.failures.len()
                    );
                }
            }
            CaseOutcome::Error { error } => {
                let _ = write!(notes, "\n    {case}: error: {error}");
            }
        }
    }
    let _ = write!(
        s,
        " ({n} tensors, worst rel err {worst:.2e} at {at}){notes}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_gpu_the_check_runs_the_cpu_side_and_skips_the_rest() {
        let steps = golden_steps(&golden::repository_fixtures(), Err("no CUDA device"));
        assert_eq!(steps[0].status, GpuCheckStatus::Passed, "{:?}", steps[0]);
        assert_eq!(
            steps[1].status,
            GpuCheckStatus::Skipped {
                reason: "no CUDA device".into()
            }
        );
        let text = render(&steps);
        assert!(
            text.contains("golden cpu vs pytorch") && text.contains("worst rel err"),
            "{text}"
        );
        assert!(text.contains("skipped: no CUDA device"), "{text}");
        // Missing fixtures are a failure with the file named, not a panic.
        let dir = tempfile::tempdir().unwrap();
        let steps = golden_steps(dir.path(), Err("skipped"));
        assert!(steps[0].is_failed());
        let StepDetail::Golden(cases) = &steps[0].detail else {
            panic!("{:?}", steps[0])
        };
        let CaseOutcome::Error { error } = &cases["film"] else {
            panic!("{:?}", cases["film"])
        };
        assert!(error.contains("film_weights.safetensors"), "{error}");
        assert!(render(&steps).contains("film: error"));
    }

    #[test]
    fn a_perturbed_gpu_side_fails() {
        let (name, cfg) = golden::cases()
            .into_iter()
            .find(|(n, _)| *n == "sum")
            .unwrap();
        let cpu =
            golden::run_case(&golden::repository_fixtures(), name, cfg, &Device::Cpu).unwrap();
        // A "GPU" result that is off by 1e-3 in one gradient is caught.
        let mut off = cpu.ours.clone();
        let k = off.keys().find(|k| k.starts_with("grad.")).unwrap().clone();
        let g = off[&k].clone();
        let scale = g
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        off.insert(k.clone(), (g + (1e-3 * scale) as f64).unwrap());
        let c = golden::compare(&off, &cpu.ours, TOLERANCE);
        assert!(!c.passed() && c.failures[0].starts_with(&k), "{c:?}");
    }

    #[test]
    fn the_check_writes_a_summary_and_passes_without_a_gpu() {
        if cuda_compiled() && Device::new_cuda(0).is_ok() {
            return; // On a GPU machine this would run the whole check.
        }
        let dir = tempfile::tempdir().unwrap();
        let summary = run(&GpuCheckOptions {
            fixtures: None,
            torch_step: None,
            device: "cuda:0".into(),
            bench_steps: 1,
            bench: true,
            train: true,
            work: dir.path().join("work"),
        })
        .unwrap();
        assert!(summary.ok);
        let j = serde_json::to_value(&summary).unwrap();
        let steps = j["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0]["status"], "passed");
        for s in &steps[1..] {
            assert_eq!(s["status"], "skipped", "{s}");
            assert!(
                s["reason"].as_str().unwrap().starts_with("no CUDA device"),
                "{s}"
            );
        }
        assert!(!dir.path().join("work").exists(), "no GPU: no tiny run");
        assert!(run(&GpuCheckOptions {
            device: "cpu".into(),
            ..GpuCheckOptions {
                fixtures: None,
                torch_step: None,
                device: String::new(),
                bench_steps: 1,
                bench: false,
                train: false,
                work: dir.path().join("w"),
            }
        })
        .is_err());
    }
}
