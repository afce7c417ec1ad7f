//! `cargo xtask reproduce`: the paper's tables end to end, from data to `REPORT.md`.
//!
//! 1. Data: `--data synth` (default) generates the synthetic profile with `mmcl synth`;
//!    `--data vggsound=MANIFEST` uses a manifest built by `mmcl manifest vggsound`.
//! 2. `mmcl prep` builds the cache (it resumes and skips finished shards).
//! 3. The grid: per scenario and seed, JOINT, SGD and ER (each with the audio-only,
//!    visual-only and audio-visual network) and SAMM (audio-visual; its audio and visual
//!    heads give its unimodal columns) at every buffer size. Each run is one
//!    `mmcl train` into `runs/<profile>/<run name>`; finished runs are skipped and
//!    unfinished ones resumed, so an interrupted reproduction continues where it stopped.
//!    `--jobs N` runs N trainings at once, each on `cores / N` threads.
//!    Beside the headline grid, SAMM at the largest buffer is trained once more per
//!    scenario and seed with the reference's calibration (`calibration = "reference"`),
//!    into `runs/<profile>-calibration/`, for the report's calibration comparison.
//!    Also beside it: one missing-modality training run per robustness scenario (Seq, Dom;
//!    SAMM at the largest buffer, seed 0, `data.missing.audio = 0.3`) into
//!    `runs/<profile>-missing/`, the twin of its headline run.
//! 4. The robustness suite (`mmcl eval --corrupt`) on the headline grid's final models of
//!    Seq and Dom at the largest buffer, every seed: the audio-only and visual-only ER
//!    networks under their own modality's corruptions, ER multimodal, SAMM and its λ = 1
//!    twin under all (cells into each run's `robustness.json`, reused when present).
//! 5. `mmcl report` writes `REPORT.md` (tables, plots, the paper's numbers, robustness)
//!    from the runs.
//!
//! `--study ablation` trains SAMM's ablations (no consistency, fused-logit consistency, no
//! alignment, alignment on features, uncalibrated ensemble; Seq and Dom, largest buffer)
//! into `runs/<profile>-ablation/`; the report sets them against the headline SAMM runs.
//! `--study budget` runs the training-budget study instead of the grid (Seq: SAMM and
//! JOINT at the preset's epochs, 3x and 10x; SAMM at reg_weight 0.01, 0.1 and 1) into
//! `runs/<profile>-budget/`; the next `cargo xtask reproduce` puts it in the report.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Data scale: tiny (CI smoke run), mini (default), small, or paper (VGGSound).
    #[arg(long, default_value = "mini")]
    pub profile: String,
    /// `synth` (generated) or `vggsound=MANIFEST` (from `mmcl manifest vggsound`).
    #[arg(long, default_value = "synth")]
    pub data: String,
    /// Seeds per configuration (seeds 0..N).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Comma-separated scenarios: seq, dom, gcil-uniform, gcil-longtail.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Option<Vec<String>>,
    /// Comma-separated buffer sizes for ER and SAMM.
    #[arg(long, value_delimiter = ',')]
    pub buffers: Option<Vec<usize>>,
    /// Trainings run at once (default: 2 where there are at least 2 cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Epochs per task (default: the preset's).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Where data, caches and runs go (default: the workspace root).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// The report to write (default: REPORT.md in the work dir, or REPORT-<profile>.md for
    /// profiles other than mini).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Extra `--set key=value` for every run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Device for training (`cpu` or `cuda:N`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Use this mmcl binary instead of building `target/debug/mmcl` (e.g. the CUDA build
    /// of `cargo xtask build-cuda`, or a copy that later builds cannot change mid-grid).
    #[arg(long, value_name = "PATH")]
    pub mmcl: Option<PathBuf>,
    /// Run a study instead of the headline grid: `budget` (training budget and SAMM's
    /// reg_weight, Seq) or `ablation` (SAMM's components, Seq and Dom). Its runs go to
    /// `runs/<profile>-<study>/` and into the report.
    #[arg(long)]
    pub study: Option<Study>,
}

/// The studies beside the headline grid.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Study {
    Budget,
    Ablation,
}

/// Grid defaults per profile: (seeds, scenarios, buffers).
fn defaults(profile: &str) -> (u64, Vec<&'static str>, Vec<usize>) {
    match profile {
        "tiny" => (
            1,
            vec!["seq", "dom", "gcil-uniform", "gcil-longtail"],
            vec![50],
        ),
        "mini" => (
            2,
            vec!["seq", "dom", "gcil-uniform", "gcil-longtail"],
            vec![200, 500],
        ),
        "small" => (
            3,
            vec!["seq", "dom", "gcil-uniform", "gcil-longtail"],
            vec![200, 500],
        ),
        _ => (
            3,
            vec!["seq", "dom", "gcil-uniform", "gcil-longtail"],
            vec![500, 1000, 2000],
        ),
    }
}

/// One `mmcl train` of the grid.
#[derive(Debug, Clone)]
struct RunSpec {
    scenario: String,
    method: &'static str,
    buffer: usize,
    modality: &'static str,
    seed: u64,
    variant: Variant,
}

/// Settings a study changes for one run, on top of the preset and the command line.
#[derive(Debug, Clone, Default, PartialEq)]
struct Variant {
    /// Appended to the run name (empty for the headline runs).
    tag: String,
    /// Epochs per task instead of the preset's.
    epochs: Option<usize>,
    /// Extra `--set key=value`s.
    sets: Vec<String>,
}

impl RunSpec {
    /// Same naming as `ExperimentConfig::run_name`, plus the variant's tag.
    fn name(&self) -> String {
        let buf = if self.buffer > 0 {
            format!("-{}", self.buffer)
        } else {
            String::new()
        };
        let tag = if self.variant.tag.is_empty() {
            String::new()
        } else {
            format!("-{}", self.variant.tag)
        };
        format!(
            "{}-{}{}-{}-s{}{tag}",
            self.scenario, self.method, buf, self.modality, self.seed
        )
    }
}

fn grid(scenarios: &[String], buffers: &[usize], seeds: u64) -> Vec<RunSpec> {
    let mut v = Vec::new();
    for seed in 0..seeds {
        for sc in scenarios {
            for modality in ["audio-visual", "audio", "visual"] {
                for method in ["joint", "sgd"] {
                    v.push(RunSpec {
                        scenario: sc.clone(),
                        method,
                        buffer: 0,
                        modality,
                        seed,
                        variant: Variant::default(),
                    });
                }
                for &b in buffers {
                    v.push(RunSpec {
                        scenario: sc.clone(),
                        method: "er",
                        buffer: b,
                        modality,
                        seed,
                        variant: Variant::default(),
                    });
                }
            }
            for &b in buffers {
                v.push(RunSpec {
                    scenario: sc.clone(),
                    method: "samm",
                    buffer: b,
                    modality: "audio-visual",
                    seed,
                    variant: Variant::default(),
                });
            }
        }
    }
    v
}

/// The scenarios the robustness suite and the missing-modality runs cover.
const ROBUSTNESS_SCENARIOS: [&str; 2] = ["seq", "dom"];

/// The share of every task's training clips that arrive without their audio in the
/// missing-modality runs.
const MISSING_AUDIO_SET: &str = "data.missing.audio=0.3";

/// One missing-modality training run per robustness scenario (SAMM at the largest buffer,
/// seed 0), the twin of its headline run.
fn missing_twins(scenarios: &[String], buffers: &[usize]) -> Vec<RunSpec> {
    let wanted: Vec<String> = scenarios
        .iter()
        .filter(|s| ROBUSTNESS_SCENARIOS.contains(&s.as_str()))
        .cloned()
        .collect();
    samm_twins(&wanted, buffers, 1, "missing-audio30", MISSING_AUDIO_SET)
}

/// The robustness suite on the final models of the headline grid: per robustness scenario
/// and seed, at the largest buffer, the audio-only and visual-only ER networks (their own
/// modality's corruptions), ER multimodal and SAMM (every corruption). `mmcl eval
/// --corrupt` keeps finished cells in each run's robustness.json, so this resumes too.
fn robustness_evals(
    ctx: &GridContext,
    plan: &GridPlan,
    runs_dir: &Path,
    lambda_dir: &Path,
) -> Result<(usize, Vec<String>)> {
    let Some(&buffer) = plan.buffers.iter().max() else {
        return Ok((0, Vec::new()));
    };
    let mut jobs = Vec::new();
    for seed in 0..plan.seeds {
        for scenario in plan
            .scenarios
            .iter()
            .filter(|s| ROBUSTNESS_SCENARIOS.contains(&s.as_str()))
        {
            for (method, modality, suite, variant, folder) in [
                ("er", "audio", "suite:audio", "", runs_dir),
                ("er", "visual", "suite:visual", "", runs_dir),
                ("er", "audio-visual", "suite:default", "", runs_dir),
                ("samm", "audio-visual", "suite:default", "", runs_dir),
                // SAMM at λ = 1, whose single-modality heads train.
                (
                    "samm",
                    "audio-visual",
                    "suite:default",
                    "lambda1",
                    lambda_dir,
                ),
            ] {
                let spec = RunSpec {
                    scenario: scenario.clone(),
                    method,
                    buffer,
                    modality,
                    seed,
                    variant: Variant {
                        tag: variant.into(),
                        ..Variant::default()
                    },
                };
                let dir = folder.join(spec.name());
                if !is_finished(&dir) {
                    continue;
                }
                let mut c = ctx.mmcl();
                c.args(["eval", "--quiet", "--run"])
                    .arg(&dir)
                    .args(["--corrupt", suite]);
                jobs.push((format!("robustness of {}", spec.name()), c));
            }
        }
    }
    eprintln!(
        "== robustness suite: {} final models ({} at a time)",
        jobs.len(),
        ctx.jobs
    );
    run_pool(
        ctx,
        jobs,
        "run its `mmcl eval --corrupt` by hand to see why",
    )
}

/// The setting of the calibration twins: the reference's training-mode LBFGS fit.
const CALIBRATION_SET: &str = "method.samm.calibration=\"reference\"";
/// The setting of the heads-trained twins: reg_weight 1 instead of the reference's 0.01.
const LAMBDA1_SET: &str = "method.samm.reg_weight=1";

/// Twins of the headline SAMM runs at the largest buffer, per scenario and seed, with one
/// setting changed (`tag` names it, `sets` applies it): the report compares them.
fn samm_twins(
    scenarios: &[String],
    buffers: &[usize],
    seeds: u64,
    tag: &str,
    set: &str,
) -> Vec<RunSpec> {
    let Some(&buffer) = buffers.iter().max() else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for seed in 0..seeds {
        for sc in scenarios {
            v.push(RunSpec {
                scenario: sc.clone(),
                method: "samm",
                buffer,
                modality: "audio-visual",
                seed,
                variant: Variant {
                    tag: tag.into(),
                    epochs: None,
                    sets: vec![set.into()],
                },
            });
        }
    }
    v
}

/// SAMM's ablations (the paper's "next checks"), each against the headline SAMM run: no
/// consistency term, consistency on the stored fused logits instead of dynamic selection,
/// no relational alignment, alignment on encoder features, the uncalibrated ensemble.
const ABLATIONS: [(&str, &str); 5] = [
    ("no-consistency", "method.samm.consistency_weight=0"),
    (
        "fused-consistency",
        "method.samm.consistency_target=\"fused\"",
    ),
    ("no-alignment", "method.samm.align_weight=0"),
    ("align-features", "method.samm.align_on=\"features\""),
    ("uncalibrated", "method.samm.calibration=\"none\""),
];

/// The ablation study: every [`ABLATIONS`] variant of SAMM at the largest buffer on the
/// robustness scenarios (Seq, Dom) and every seed.
fn ablation_grid(scenarios: &[String], buffers: &[usize], seeds: u64) -> Vec<RunSpec> {
    let wanted: Vec<String> = scenarios
        .iter()
        .filter(|s| ROBUSTNESS_SCENARIOS.contains(&s.as_str()))
        .cloned()
        .collect();
    ABLATIONS
        .iter()
        .flat_map(|(tag, set)| samm_twins(&wanted, buffers, seeds, tag, set))
        .collect()
}

/// The training-budget study on Seq: SAMM (largest buffer) and the audio-visual JOINT at
/// `epochs`, 3x and 10x, and SAMM at reg_weight 0.01 (the reference's), 0.1 and 1 at
/// `epochs`.
fn budget_grid(buffers: &[usize], seeds: u64, epochs: usize) -> Vec<RunSpec> {
    let buffer = buffers.iter().copied().max().unwrap_or(500);
    let mut v = Vec::new();
    let spec = |method, buffer, seed, variant| RunSpec {
        scenario: "seq".into(),
        method,
        buffer,
        modality: "audio-visual",
        seed,
        variant,
    };
    for seed in 0..seeds {
        for factor in [1, 3, 10] {
            let e = epochs * factor;
            let variant = Variant {
                tag: format!("epochs{e}"),
                epochs: Some(e),
                sets: Vec::new(),
            };
            v.push(spec("samm", buffer, seed, variant.clone()));
            v.push(spec("joint", 0, seed, variant));
        }
        for reg in ["0.1", "1"] {
            let variant = Variant {
                tag: format!("reg{reg}"),
                epochs: Some(epochs),
                sets: vec![format!("method.samm.reg_weight={reg}")],
            };
            v.push(spec("samm", buffer, seed, variant));
        }
    }
    v
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn is_finished(run_dir: &Path) -> bool {
    results_json(run_dir)
        .and_then(|v| v.get("finished").and_then(|f| f.as_bool()))
        .unwrap_or(false)
}

fn results_json(run_dir: &Path) -> Option<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
}

/// Whether the run's results.json was written under another results schema (an older
/// mmcl): the report refuses such files, so the run is trained again.
fn has_other_schema(run_dir: &Path) -> bool {
    results_json(run_dir).is_some_and(|v| {
        v.get("schema_version").and_then(|s| s.as_u64())
            != Some(u64::from(mmcl_scheduler::results::RESULTS_SCHEMA_VERSION))
    })
}

/// Moves the folder `from` to `to` (replacing an older `to`), keeping what it holds out of
/// the way of a reproduction without deleting it.
fn move_aside(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::rename(from, to).with_context(|| format!("moving {} aside", from.display()))
}

/// The `design_version` of a generated synthetic dataset (0 if `dataset.json` predates it).
fn synth_design_version(synth: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(synth.join("dataset.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(
        v.get("design_version")
            .and_then(|d| d.as_u64())
            .unwrap_or(0),
    )
}

/// Synthetic data made by an older design of mmcl-synth has the same file names and
/// manifest as current data, so nothing downstream would notice it: remove it and its cache
/// (both regenerable) and move the runs trained on it aside, so the report never mixes
/// designs.
fn discard_outdated_synth(data_dir: &Path, runs_dirs: &[PathBuf]) -> Result<()> {
    let synth = data_dir.join("synth");
    let Some(found) = synth_design_version(&synth) else {
        return Ok(());
    };
    let current = u64::from(mmcl_synth::DESIGN_VERSION);
    if found == current {
        return Ok(());
    }
    eprintln!(
        "== {} was generated by synthetic design {found}, this mmcl has design {current}: \
         regenerating it and its cache",
        synth.display()
    );
    for dir in [synth, data_dir.join("cache")] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    for runs_dir in runs_dirs.iter().filter(|d| d.exists()) {
        let aside = runs_dir.with_file_name(format!(
            "{}-design{found}",
            runs_dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        eprintln!(
            "== runs trained on the old data moved to {}",
            aside.display()
        );
        move_aside(runs_dir, &aside)?;
    }
    Ok(())
}

/// The `mmcl train` arguments that start `spec` from scratch (all but `--out`).
fn fresh_args(
    spec: &RunSpec,
    preset: &str,
    args: &ReproduceArgs,
    cache: &Path,
) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = [
        "--preset",
        preset,
        "--scenario",
        &spec.scenario,
        "--method",
        spec.method,
        "--modality",
        spec.modality,
        "--seed",
        &spec.seed.to_string(),
        "--device",
        &args.device,
        "--cache",
    ]
    .iter()
    .map(Into::into)
    .collect();
    a.push(cache.into());
    if spec.buffer > 0 {
        a.extend(["--buffer".into(), spec.buffer.to_string().into()]);
    }
    if let Some(e) = spec.variant.epochs.or(args.epochs) {
        a.extend(["--epochs".into(), e.to_string().into()]);
    }
    for s in args.sets.iter().chain(&spec.variant.sets) {
        a.extend(["--set".into(), s.into()]);
    }
    a
}

/// The config an `mmcl train ... --dry-run` command prints.
fn dry_run_config(cmd: &mut Command) -> Result<toml::Value> {
    let out = cmd.output().context("running mmcl train --dry-run")?;
    anyhow::ensure!(
        out.status.success(),
        "mmcl train --dry-run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    toml::from_str(&String::from_utf8_lossy(&out.stdout)).context("parsing mmcl train --dry-run")
}

/// Whether the run folder's config is the one this reproduction would train now. A run
/// trained under other settings (an older preset, other `--set`s) must not be reused.
fn config_is_current(mmcl: &mut Command, dir: &Path) -> Result<bool> {
    let wanted = dry_run_config(mmcl.arg("--dry-run"))?;
    let path = dir.join("config.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(toml::from_str::<toml::Value>(&text).ok() == Some(wanted))
}

/// The runs folders of a profile: the headline grid, the calibration twins, the λ = 1
/// twins, the budget study.
fn runs_dirs(work: &Path, profile: &str) -> [PathBuf; 6] {
    let runs = work.join("runs");
    [
        runs.join(profile),
        runs.join(format!("{profile}-calibration")),
        runs.join(format!("{profile}-lambda1")),
        runs.join(format!("{profile}-budget")),
        runs.join(format!("{profile}-missing")),
        runs.join(format!("{profile}-ablation")),
    ]
}

/// What every run of a reproduction shares.
struct GridContext<'a> {
    mmcl: &'a Path,
    work: &'a Path,
    preset: &'a str,
    args: &'a ReproduceArgs,
    cache: &'a Path,
    jobs: usize,
    threads: usize,
    start: Instant,
}

impl GridContext<'_> {
    fn mmcl(&self) -> Command {
        let mut c = Command::new(self.mmcl);
        c.current_dir(self.work);
        c
    }
}

/// The epochs per task of the preset (what `mmcl train` resolves, so no preset knowledge
/// is repeated here).
fn preset_epochs(ctx: &GridContext) -> Result<usize> {
    let cfg = dry_run_config(
        ctx.mmcl()
            .args(["train", "--preset", ctx.preset, "--dry-run", "--out"])
            .arg(ctx.work.join("runs").join("dry-run")),
    )?;
    cfg.get("train")
        .and_then(|t| t.get("epochs"))
        .and_then(|e| e.as_integer())
        .map(|e| e as usize)
        .context("mmcl train --dry-run printed no train.epochs")
}

/// Trains every run of `specs` into `runs_dir` (finished runs are kept, unfinished ones
/// resumed, runs trained under other settings moved aside and trained again), `ctx.jobs`
/// at a time. Returns how many ran now and the names of those that failed.
fn run_grid(ctx: &GridContext, runs_dir: &Path, specs: &[RunSpec]) -> Result<(usize, Vec<String>)> {
    let args = ctx.args;
    std::fs::create_dir_all(runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;
    for spec in specs {
        let dir = runs_dir.join(spec.name());
        if !dir.join("config.toml").exists() {
            continue;
        }
        let mut dry = ctx.mmcl();
        dry.arg("train")
            .args(fresh_args(spec, ctx.preset, args, ctx.cache))
            .arg("--out")
            .arg(&dir);
        if has_other_schema(&dir) || !config_is_current(&mut dry, &dir)? {
            let aside = runs_dir
                .with_file_name(format!(
                    "{}-outdated",
                    runs_dir.file_name().unwrap_or_default().to_string_lossy()
                ))
                .join(spec.name());
            eprintln!(
                "== {} was trained with other settings or an older mmcl; moved to {} and trained again",
                dir.display(),
                aside.display()
            );
            move_aside(&dir, &aside)?;
        }
    }
    let todo: Vec<&RunSpec> = specs
        .iter()
        .filter(|s| !is_finished(&runs_dir.join(s.name())))
        .collect();
    eprintln!(
        "== {}: {} runs, {} to do ({} at a time, {} threads each)",
        runs_dir.display(),
        specs.len(),
        todo.len(),
        ctx.jobs,
        ctx.threads
    );
    let jobs = todo.into_iter().map(|spec| {
        let dir = runs_dir.join(spec.name());
        let mut c = ctx.mmcl();
        c.arg("train");
        if dir.join("config.toml").exists() {
            c.arg("--resume").arg(&dir).arg("--quiet");
        } else {
            c.args(fresh_args(spec, ctx.preset, args, ctx.cache))
                .arg("--out")
                .arg(&dir)
                .arg("--quiet");
        }
        (spec.name(), c)
    });
    run_pool(ctx, jobs, "see its log.txt")
}

/// Runs the commands `ctx.jobs` at a time, each on `ctx.threads` threads, printing each
/// finish; returns how many ran and the names of those that failed (`on_failure` says
/// where to look).
fn run_pool(
    ctx: &GridContext,
    jobs: impl IntoIterator<Item = (String, Command)>,
    on_failure: &str,
) -> Result<(usize, Vec<String>)> {
    let start = ctx.start;
    let mut pending = jobs.into_iter();
    let mut running: Vec<(String, std::process::Child)> = Vec::new();
    let mut failures = Vec::new();
    let mut done = 0usize;
    loop {
        while running.len() < ctx.jobs {
            let Some((name, mut c)) = pending.next() else {
                break;
            };
            let child = c
                .env("RAYON_NUM_THREADS", ctx.threads.to_string())
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {name}"))?;
            running.push((name, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                let (name, _) = running.remove(i);
                done += 1;
                if status.success() {
                    eprintln!(
                        "   [{:>6.0} s] finished {name}",
                        start.elapsed().as_secs_f64()
                    );
                } else {
                    eprintln!(
                        "   [{:>6.0} s] FAILED {name} ({status}); {on_failure}",
                        start.elapsed().as_secs_f64()
                    );
                    failures.push(name);
                }
            } else {
                i += 1;
            }
        }
    }
    Ok((done, failures))
}

pub fn reproduce(root: &Path, args: &ReproduceArgs) -> Result<()> {
    let start = Instant::now();
    let plan = GridPlan::from_args(args);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(if cores >= 2 { 2 } else { 1 }).max(1);
    let threads = (cores / jobs).max(1);
    let work = work_dir(root, args)?;
    let report = report_path(&work, args)?;
    let mmcl = mmcl_binary(root, args)?;

    // 1-2. Data and cache.
    let (cache, preset) = prepare_data(&mmcl, &work, args)?;
    let data_s = start.elapsed().as_secs_f64();

    // 3. The grid (or the study), each in its own runs folder.
    let ctx = GridContext {
        mmcl: &mmcl,
        work: &work,
        preset: &preset,
        args,
        cache: &cache,
        jobs,
        threads,
        start,
    };
    let dirs = runs_dirs(&work, &args.profile);
    let mut specs = Vec::new();
    let mut failures = Vec::new();
    let mut done = 0usize;
    for (dir, batch) in plan.batches(&ctx, &dirs)? {
        let (n_done, failed) = run_grid(&ctx, dir, &batch)?;
        done += n_done;
        failures.extend(failed);
        specs.extend(batch);
    }
    let grid_s = start.elapsed().as_secs_f64() - data_s;

    // 4. The robustness suite on the headline grid's final models.
    if args.study.is_none() {
        let (_, failed) = robustness_evals(&ctx, &plan, &dirs[0], &dirs[2])?;
        failures.extend(failed);
    }
    let robustness_s = start.elapsed().as_secs_f64() - data_s - grid_s;

    // 5. The report.
    write_report(&ctx, &dirs, &report)?;
    let total = start.elapsed().as_secs_f64();
    let timings = serde_json::json!({
        "profile": args.profile, "runs": specs.len(), "runs_trained_now": done, "jobs": jobs,
        "threads_per_job": threads, "data_and_cache_s": data_s, "grid_s": grid_s,
        "robustness_s": robustness_s, "total_s": total,
    });
    let [runs_dir, _, _, budget_dir, _, ablation_dir] = &dirs;
    let timings_dir = match args.study {
        None => runs_dir,
        Some(Study::Budget) => budget_dir,
        Some(Study::Ablation) => ablation_dir,
    };
    mmcl_io::write_atomic(
        &timings_dir.join("reproduce-timings.json"),
        serde_json::to_string_pretty(&timings)?.as_bytes(),
    )?;
    eprintln!(
        "== done in {total:.0} s (data+cache {data_s:.0} s, grid {grid_s:.0} s, robustness {robustness_s:.0} s): {}",
        report.display()
    );
    if !failures.is_empty() {
        bail!("{} runs failed: {}", failures.len(), failures.join(", "));
    }
    Ok(())
}

/// The grid's axes: the profile's defaults, narrowed by the command line.
struct GridPlan {
    seeds: u64,
    scenarios: Vec<String>,
    buffers: Vec<usize>,
}

impl GridPlan {
    fn from_args(args: &ReproduceArgs) -> Self {
        let (def_seeds, def_scenarios, def_buffers) = defaults(&args.profile);
        GridPlan {
            seeds: args.seeds.unwrap_or(def_seeds),
            scenarios: args
                .scenarios
                .clone()
                .unwrap_or_else(|| def_scenarios.iter().map(|s| s.to_string()).collect()),
            buffers: args.buffers.clone().unwrap_or(def_buffers),
        }
    }

    /// The run folders and the runs to train into each: the headline grid with its
    /// calibration and λ twins, or the one study asked for.
    fn batches<'d>(
        &self,
        ctx: &GridContext,
        dirs: &'d [PathBuf; 6],
    ) -> Result<Vec<(&'d Path, Vec<RunSpec>)>> {
        let [runs_dir, calibration_dir, lambda_dir, budget_dir, missing_dir, ablation_dir] = dirs;
        let (scenarios, buffers, seeds) = (&self.scenarios, &self.buffers, self.seeds);
        Ok(match ctx.args.study {
            None => vec![
                (runs_dir.as_path(), grid(scenarios, buffers, seeds)),
                (
                    calibration_dir.as_path(),
                    samm_twins(
                        scenarios,
                        buffers,
                        seeds,
                        "calibration-reference",
                        CALIBRATION_SET,
                    ),
                ),
                (
                    lambda_dir.as_path(),
                    samm_twins(scenarios, buffers, seeds, "lambda1", LAMBDA1_SET),
                ),
                (missing_dir.as_path(), missing_twins(scenarios, buffers)),
            ],
            Some(Study::Budget) => {
                let epochs = ctx.args.epochs.unwrap_or(preset_epochs(ctx)?);
                vec![(budget_dir.as_path(), budget_grid(buffers, seeds, epochs))]
            }
            Some(Study::Ablation) => {
                vec![(
                    ablation_dir.as_path(),
                    ablation_grid(scenarios, buffers, seeds),
                )]
            }
        })
    }
}

/// The work folder, created and made absolute: the mmcl commands run inside it, so a
/// relative `--work-dir` would otherwise be resolved twice (runs nested in
/// work/<work-dir>/...).
fn work_dir(root: &Path, args: &ReproduceArgs) -> Result<PathBuf> {
    let work = args.work_dir.clone().unwrap_or_else(|| root.to_path_buf());
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    work.canonicalize()
        .with_context(|| format!("resolving {}", work.display()))
}

/// The report to write: `--report` (relative to where it was typed), else REPORT.md in the
/// work folder (REPORT-<profile>.md for profiles other than mini).
fn report_path(work: &Path, args: &ReproduceArgs) -> Result<PathBuf> {
    Ok(match &args.report {
        Some(r) => std::path::absolute(r).with_context(|| format!("resolving {}", r.display()))?,
        None => work.join(if args.profile == "mini" {
            "REPORT.md".to_string()
        } else {
            format!("REPORT-{}.md", args.profile)
        }),
    })
}

/// The binary: the one given, or built once (same profile as tests, so artifacts are
/// shared).
fn mmcl_binary(root: &Path, args: &ReproduceArgs) -> Result<PathBuf> {
    if let Some(p) = &args.mmcl {
        return std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_checked(
        Command::new(&cargo)
            .current_dir(root)
            .args(["build", "-p", "mmcl", "--bin", "mmcl"]),
        "building mmcl",
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug").join("mmcl"))
}

/// Steps 1-2: the data (generated for `--data synth`, else the user's manifest) and its
/// cache. Returns the cache folder and the preset the runs use.
fn prepare_data(mmcl: &Path, work: &Path, args: &ReproduceArgs) -> Result<(PathBuf, String)> {
    let mmcl_cmd = || {
        let mut c = Command::new(mmcl);
        c.current_dir(work);
        c
    };
    let data_dir = work.join("data").join(&args.profile);
    let (manifest, preset) = if args.data == "synth" {
        let synth = data_dir.join("synth");
        let manifest = synth.join("manifest.csv");
        discard_outdated_synth(&data_dir, &runs_dirs(work, &args.profile))?;
        if !manifest.exists() {
            eprintln!(
                "== generating the synthetic {} profile into {}",
                args.profile,
                synth.display()
            );
            run_checked(
                mmcl_cmd()
                    .args(["synth", "--profile", &args.profile, "--out"])
                    .arg(&synth),
                "mmcl synth",
            )?;
        }
        (manifest, args.profile.clone())
    } else if let Some(m) = args.data.strip_prefix("vggsound=") {
        (PathBuf::from(m), "paper".to_string())
    } else {
        bail!(
            "--data must be `synth` or `vggsound=MANIFEST`, got {:?}",
            args.data
        );
    };
    let cache = data_dir.join("cache");
    eprintln!("== preparing the cache {}", cache.display());
    let mut prep = mmcl_cmd();
    prep.args(["prep", "--manifest"])
        .arg(&manifest)
        .arg("--out")
        .arg(&cache);
    // The synthetic profiles' native rate, clip length and frame size (mmcl-synth's Profile).
    let native = match args.profile.as_str() {
        "tiny" | "mini" => Some(("8000", "4", "32")),
        "small" => Some(("16000", "6", "64")),
        _ => None,
    };
    if let (true, Some((sr, clip, frame))) = (preset != "paper", native) {
        prep.args([
            "--sample-rate",
            sr,
            "--clip-seconds",
            clip,
            "--frame-size",
            frame,
        ]);
    }
    run_checked(&mut prep, "mmcl prep")?;
    Ok((cache, preset))
}

/// Step 4: `mmcl report` over the headline runs and every study folder that holds runs,
/// with paths relative to the work folder so the report names no machine-specific place.
fn write_report(ctx: &GridContext, dirs: &[PathBuf; 6], report: &Path) -> Result<()> {
    eprintln!("== writing {}", report.display());
    let rel = |p: &Path| {
        p.strip_prefix(ctx.work)
            .map(Path::to_path_buf)
            .unwrap_or(p.to_path_buf())
    };
    let [runs_dir, calibration_dir, lambda_dir, budget_dir, missing_dir, ablation_dir] = dirs;
    let mut report_cmd = ctx.mmcl();
    report_cmd
        .args(["report", "--runs"])
        .arg(rel(runs_dir))
        .arg("--out")
        .arg(rel(report));
    for (flag, dir) in [
        ("--calibration-runs", calibration_dir),
        ("--lambda-runs", lambda_dir),
        ("--budget-runs", budget_dir),
        ("--missing-runs", missing_dir),
        ("--ablation-runs", ablation_dir),
    ] {
        if dir.exists() {
            report_cmd.arg(flag).arg(rel(dir));
        }
    }
    run_checked(&mut report_cmd, "mmcl report")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_trained_with_other_settings_is_not_current() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = "seed = 0\n[train]\nepochs = 6\nbatch_size = 32\n";
        std::fs::write(dir.path().join("config.toml"), cfg).unwrap();
        // Stand-in for `mmcl train ... --dry-run`: prints the file named by $1.
        let dry_run = |printed: &str| {
            let f = dir.path().join("printed.toml");
            std::fs::write(&f, printed).unwrap();
            let mut c = Command::new("sh");
            c.args(["-c", "cat \"$1\"", "sh"]).arg(f);
            c
        };
        // Same values, other formatting: current.
        let reordered = "seed = 0\n\n[train]\nbatch_size = 32\nepochs = 6\n";
        assert!(config_is_current(&mut dry_run(reordered), dir.path()).unwrap());
        // An older preset (fewer epochs): not current.
        let older = "seed = 0\n[train]\nepochs = 4\nbatch_size = 32\n";
        assert!(!config_is_current(&mut dry_run(older), dir.path()).unwrap());
    }

    #[test]
    fn data_of_an_older_synth_design_is_discarded_and_its_runs_moved_aside() {
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data/mini");
        let runs = work.path().join("runs/mini");
        let write = |design: Option<u32>| {
            std::fs::create_dir_all(data.join("synth")).unwrap();
            std::fs::create_dir_all(data.join("cache")).unwrap();
            std::fs::create_dir_all(runs.join("seq-sgd-audio-s0")).unwrap();
            let json = match design {
                Some(d) => serde_json::json!({ "design_version": d }),
                None => serde_json::json!({ "identity": {} }),
            };
            std::fs::write(data.join("synth/dataset.json"), json.to_string()).unwrap();
        };
        // Current design: everything is kept.
        write(Some(mmcl_synth::DESIGN_VERSION));
        let dirs = [runs.clone()];
        discard_outdated_synth(&data, &dirs).unwrap();
        assert!(data.join("synth").exists() && data.join("cache").exists() && runs.exists());
        // Before design versions existed: data and cache go, runs are kept aside.
        write(None);
        discard_outdated_synth(&data, &dirs).unwrap();
        assert!(!data.join("synth").exists() && !data.join("cache").exists());
        assert!(!runs.exists());
        assert!(work
            .path()
            .join("runs/mini-design0/seq-sgd-audio-s0")
            .exists());
        // No data yet: nothing to do.
        discard_outdated_synth(&data, &dirs).unwrap();
    }

    #[test]
    fn results_of_another_schema_are_outdated() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_other_schema(dir.path()), "no results yet");
        let write = |v: u64| {
            let json = serde_json::json!({ "schema_version": v, "finished": true });
            std::fs::write(dir.path().join("results.json"), json.to_string()).unwrap();
        };
        write(1);
        assert!(has_other_schema(dir.path()) && is_finished(dir.path()));
        write(u64::from(mmcl_scheduler::results::RESULTS_SCHEMA_VERSION));
        assert!(!has_other_schema(dir.path()));
    }

    #[test]
    fn grid_has_every_table_cell() {
        let g = grid(&["seq".into(), "dom".into()], &[200], 2);
        // Per scenario and seed: (joint, sgd, er) x 3 modalities + samm.
        assert_eq!(g.len(), 2 * 2 * 10);
        let names: std::collections::HashSet<String> = g.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), g.len());
        assert!(names.contains("seq-samm-200-audio-visual-s1"));
        assert!(names.contains("dom-joint-visual-s0"));
    }

    #[test]
    fn study_grids_have_their_variants() {
        let cal = samm_twins(
            &["seq".into(), "gcil-uniform".into()],
            &[200, 500],
            2,
            "calibration-reference",
            CALIBRATION_SET,
        );
        assert_eq!(cal.len(), 4);
        assert!(cal.iter().all(|s| s.method == "samm" && s.buffer == 500));
        assert_eq!(
            cal[0].name(),
            "seq-samm-500-audio-visual-s0-calibration-reference"
        );
        assert_eq!(
            cal[0].variant.sets,
            ["method.samm.calibration=\"reference\""]
        );
        let budget = budget_grid(&[200, 500], 2, 6);
        // Per seed: (SAMM, JOINT) x 3 budgets + SAMM x 2 reg weights.
        assert_eq!(budget.len(), 2 * 8);
        let names: std::collections::HashSet<String> = budget.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), budget.len());
        assert!(names.contains("seq-samm-500-audio-visual-s1-epochs60"));
        assert!(names.contains("seq-joint-audio-visual-s0-epochs18"));
        assert!(names.contains("seq-samm-500-audio-visual-s0-reg0.1"));
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ReproduceArgs,
        }
        let args = <Cli as clap::Parser>::parse_from(["reproduce", "--epochs", "2"]).args;
        let a = fresh_args(&budget[1], "mini", &args, Path::new("cache"));
        let a: Vec<String> = a.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        // A study's epochs win over --epochs.
        let at = a.iter().position(|x| x == "--epochs").unwrap();
        assert_eq!(a[at + 1], "6");
    }
}
