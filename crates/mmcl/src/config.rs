//! Experiment configs for `mmcl train`: named presets, TOML files and `--set key=value`
//! overrides, merged in that order into one [`ExperimentConfig`].
//!
//! Presets (`--preset NAME`) fix everything that depends on the data scale; the scenario,
//! method, buffer, modality, seed and cache come from flags or the config file:
//! - `paper`: the reference's network and inputs (width 64, 4 frames of 224 px, 5 s crops
//!   of 10 s clips), batch 32, 50 epochs per task (the reference's default; the paper does
//!   not publish its epochs or learning rate), lr 0.01;
//! - `tiny`, `mini`, `small`: the synthetic profiles of `mmcl synth`, with small widths and
//!   epochs measured to fit the CPU budgets of `cargo xtask reproduce` (see its docs).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use mmcl_methods::{MethodConfig, MethodKind, OptimConfig};
use mmcl_model::{Fusion, Modality};
use mmcl_scheduler::gcil::{GcilConfig, GcilWeights};
use mmcl_scheduler::scenario::ScenarioConfig;
use mmcl_scheduler::{DataSection, ExperimentConfig, ModelSection, TrainSection};

/// Names accepted by `--preset`.
pub const PRESETS: &[&str] = &["paper", "tiny", "mini", "small"];

/// The scenario named `name` at paper structure (`seq`, `dom`, `gcil-uniform`, `gcil-longtail`).
pub fn scenario(name: &str) -> Result<ScenarioConfig> {
    Ok(match name {
        "seq" => ScenarioConfig::seq_paper(),
        "dom" => ScenarioConfig::dom_paper(),
        "gcil-uniform" => ScenarioConfig::Gcil(GcilConfig::paper(GcilWeights::Uniform)),
        "gcil-longtail" => ScenarioConfig::Gcil(GcilConfig::paper(GcilWeights::Longtail)),
        s => bail!("unknown scenario {s:?} (seq, dom, gcil-uniform, gcil-longtail)"),
    })
}

/// The preset `name` with the Seq scenario and SGD (override with flags).
pub fn preset(name: &str) -> Result<ExperimentConfig> {
    // (width, frames, frame_size, crop_seconds, epochs, joint_epochs, lr). mini's JOINT
    // trains 3x the epochs: at 6 its final accuracy spread 46 / 22 % over two seeds, at 18
    // it is 86 / 83 % (`cargo xtask reproduce --study budget`), so only then is it the upper
    // bound the tables need; the sequential methods keep 6 (the grid's time budget). On
    // GCIL, which draws ~41 % of the clips, the same steps are ~44 epochs (18 gave 15 / 46 %
    // on GCIL-uniform, 44 gives 63 / 60 %).
    let (width, frames, frame_size, crop, epochs, joint_epochs, lr) = match name {
        "paper" => (64, 4, 224, None, 50, None, 0.01),
        "tiny" => (4, 2, 16, None, 1, None, 0.05),
        "mini" => (4, 2, 32, Some(1.0), 6, Some(18), 0.05),
        "small" => (16, 4, 64, None, 10, None, 0.03),
        s => bail!("unknown preset {s:?} (known: {})", PRESETS.join(", ")),
    };
    Ok(ExperimentConfig {
        seed: 0,
        dataset: if name == "paper" {
            "vggsound".into()
        } else {
            name.into()
        },
        cache: PathBuf::from(format!("data/{name}/cache")),
        device: "cpu".into(),
        model: ModelSection {
            width,
            fusion: Fusion::Film,
            modality: Modality::AudioVisual,
        },
        data: DataSection {
            frames,
            frame_size,
            crop_seconds: crop,
            missing: Default::default(),
        },
        scenario: ScenarioConfig::seq_paper(),
        method: MethodConfig::new(MethodKind::Sgd, 0),
        optim: OptimConfig {
            lr,
            ..OptimConfig::default()
        },
        train: TrainSection {
            epochs,
            joint_epochs,
            batch_size: 32,
            eval_batch_size: 64,
            eval_random_init: true,
            eval_future: true,
        },
    })
}

/// Deep-merge `over` into `base` (tables merge key by key; other values replace).
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Set a dotted key (`train.epochs`) to a TOML literal (`3`, `0.1`, `true`, `"x"`); a value
/// that is not a TOML literal is taken as a string.
fn set_key(root: &mut toml::Value, key: &str, value: &str) -> Result<()> {
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .map(|mut t| t.remove("v").expect("key v"))
        .unwrap_or_else(|_| toml::Value::String(value.to_string()));
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let table = node
            .as_table_mut()
            .with_context(|| format!("--set {key}: `{}` is not a table", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            table.insert(part.to_string(), parsed);
            return Ok(());
        }
        node = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    unreachable!("split yields at least one part")
}

/// The shorthand flags of `mmcl train` (`--scenario`, `--method`, ...), each an override of
/// one config key.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Shorthands {
    /// seq, dom, gcil-uniform or gcil-longtail.
    #[arg(long)]
    pub scenario: Option<String>,
    /// sgd, joint, er or samm.
    #[arg(long)]
    pub method: Option<String>,
    /// Replay buffer size (er, samm).
    #[arg(long)]
    pub buffer: Option<usize>,
    /// audio-visual, audio or visual.
    #[arg(long)]
    pub modality: Option<Modality>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Prepared cache folder (`mmcl prep` output).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Epochs per task, for every method, JOINT included (with --resume: for the tasks
    /// still to train).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate (with --resume: from the next step on, e.g. after a divergence).
    #[arg(long)]
    pub lr: Option<f64>,
    /// `cpu` or `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
}

/// A resumed run keeps its experiment: only `--lr` and `--epochs` (the resumable overrides)
/// may come with `--resume`; any other flag given is an error naming it (it would otherwise
/// be silently ignored).
pub fn refuse_on_resume(flags: &Shorthands, sets: &[String], dry_run: bool) -> Result<()> {
    let given = [
        ("--scenario", flags.scenario.is_some()),
        ("--method", flags.method.is_some()),
        ("--buffer", flags.buffer.is_some()),
        ("--modality", flags.modality.is_some()),
        ("--seed", flags.seed.is_some()),
        ("--cache", flags.cache.is_some()),
        ("--device", flags.device.is_some()),
        ("--set", !sets.is_empty()),
        ("--dry-run", dry_run),
    ];
    let refused: Vec<&str> = given.iter().filter(|g| g.1).map(|g| g.0).collect();
    if !refused.is_empty() {
        bail!(
            "{} cannot be changed when resuming (only --lr and --epochs can: they apply to the tasks still to train); start a new run with --out to change {}",
            refused.join(", "),
            if refused.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(())
}

impl Shorthands {
    /// The flags given, as (dotted key, TOML literal) pairs for [`ConfigSources::shorthands`].
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let quoted = |v: &Option<String>| v.as_ref().map(|v| format!("{v:?}"));
        [
            ("scenario", self.scenario.clone()),
            ("method.kind", quoted(&self.method)),
            ("method.buffer_size", self.buffer.map(|b| b.to_string())),
            (
                "model.modality",
                self.modality.map(|m| format!("{:?}", m.as_str())),
            ),
            ("seed", self.seed.map(|s| s.to_string())),
            (
                "cache",
                self.cache
                    .as_ref()
                    .map(|c| format!("{:?}", c.display().to_string())),
            ),
            ("train.epochs", self.epochs.map(|e| e.to_string())),
            ("train.joint_epochs", self.epochs.map(|e| e.to_string())),
            ("optim.lr", self.lr.map(|l| l.to_string())),
            ("device", quoted(&self.device)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
    }
}

/// Everything that shapes a config, lowest precedence first.
#[derive(Debug, Default, Clone)]
pub struct ConfigSources {
    pub preset: Option<String>,
    pub file: Option<PathBuf>,
    /// Shorthand flags, applied as `--set`s before the explicit ones.
    pub shorthands: Vec<(String, String)>,
    pub sets: Vec<String>,
}

/// Resolve the sources into a validated config.
pub fn resolve(src: &ConfigSources) -> Result<ExperimentConfig> {
    let base = preset(src.preset.as_deref().unwrap_or("mini"))?;
    let mut value = toml::Value::try_from(&base).context("preset does not serialise")?;
    if let Some(f) = &src.file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading config {}", f.display()))?;
        let over: toml::Value =
            toml::from_str(&text).with_context(|| format!("parsing config {}", f.display()))?;
        // A `scenario = "seq"` shorthand in files, too; a file's `kind` change replaces the
        // preset's scenario table instead of merging into it.
        let over = expand_scenario(over)?;
        if let Some(sc) = over.get("scenario") {
            if sc.get("kind") != value.get("scenario").and_then(|b| b.get("kind")) {
                value.as_table_mut().expect("table").remove("scenario");
            }
        }
        merge(&mut value, over);
    }
    for (k, v) in &src.shorthands {
        if k == "scenario" {
            let sc = toml::Value::try_from(scenario(v)?)?;
            value
                .as_table_mut()
                .expect("table")
                .insert("scenario".into(), sc);
        } else {
            set_key(&mut value, k, v)?;
        }
    }
    for s in &src.sets {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected key=value"))?;
        if k.trim() == "scenario" {
            let sc = toml::Value::try_from(scenario(v.trim())?)?;
            value
                .as_table_mut()
                .expect("table")
                .insert("scenario".into(), sc);
        } else {
            set_key(&mut value, k.trim(), v.trim())?;
        }
    }
    let mut cfg: ExperimentConfig = value.try_into().context("invalid experiment config")?;
    // One form per budget: JOINT epochs equal to the others' are not recorded separately,
    // so configs that train the same compare equal.
    if cfg.train.joint_epochs == Some(cfg.train.epochs) {
        cfg.train.joint_epochs = None;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn expand_scenario(mut v: toml::Value) -> Result<toml::Value> {
    if let Some(t) = v.as_table_mut() {
        if let Some(toml::Value::String(name)) = t.get("scenario").cloned() {
            t.insert("scenario".into(), toml::Value::try_from(scenario(&name)?)?);
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mini_joint_trains_longer_unless_epochs_are_given() {
        use mmcl_methods::MethodKind::{Joint, Samm};
        let base = resolve(&ConfigSources::default()).unwrap();
        assert_eq!(base.train.epochs_for(Joint, 4000, 4000), 18);
        assert_eq!(base.train.epochs_for(Samm, 400, 4000), 6);
        // A stream of 1,640 of the 4,000 clips (GCIL) gets as many JOINT steps.
        assert_eq!(base.train.epochs_for(Joint, 1640, 4000), 44);
        // `--epochs 4` sets the whole budget; the equal JOINT value is not recorded.
        let src = ConfigSources {
            shorthands: vec![
                ("train.epochs".into(), "4".into()),
                ("train.joint_epochs".into(), "4".into()),
            ],
            ..ConfigSources::default()
        };
        let cfg = resolve(&src).unwrap();
        assert_eq!(
            (
                cfg.train.epochs_for(Joint, 1640, 4000),
                cfg.train.joint_epochs
            ),
            (4, None)
        );
        assert!(!toml::to_string(&cfg).unwrap().contains("joint_epochs"));
    }

    #[test]
    fn every_preset_validates_and_round_trips() {
        for p in PRESETS {
            let cfg = preset(p).unwrap();
            cfg.validate().unwrap();
            let text = toml::to_string_pretty(&cfg).unwrap();
            assert_eq!(toml::from_str::<ExperimentConfig>(&text).unwrap(), cfg);
        }
    }

    #[test]
    fn sources_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "seed = 5\nscenario = \"dom\"\n[train]\nepochs = 7\n[method]\nkind = \"er\"\nbuffer_size = 100\n").unwrap();
        let cfg = resolve(&ConfigSources {
            preset: Some("tiny".into()),
            file: Some(f),
            shorthands: vec![("method.buffer_size".into(), "200".into())],
            sets: vec![
                "train.epochs=2".into(),
                "optim.lr=0.5".into(),
                "model.modality=audio".into(),
            ],
        })
        .unwrap();
        assert_eq!(cfg.seed, 5);
        assert_eq!(cfg.scenario, ScenarioConfig::dom_paper());
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(cfg.method.kind, MethodKind::Er);
        assert_eq!(cfg.method.buffer_size, 200);
        assert_eq!(cfg.optim.lr, 0.5);
        assert_eq!(cfg.model.modality, Modality::Audio);
        assert_eq!(cfg.model.width, preset("tiny").unwrap().model.width);
    }

    #[test]
    fn bad_keys_and_values_are_errors() {
        let src = |s: &str| ConfigSources {
            sets: vec![s.into()],
            ..Default::default()
        };
        assert!(resolve(&src("train.epochz=2")).is_err());
        assert!(resolve(&src("train.epochs=0")).is_err());
        assert!(resolve(&src("scenario=nope")).is_err());
        assert!(resolve(&src("noequals")).is_err());
    }
}
