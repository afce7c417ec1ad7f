//! `mmcl model …`: write a freshly initialised checkpoint, run an eval-mode forward pass.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use clap::{Args, Subcommand};
use mmcl_model::{infer_config_with, AvNet, AvNetConfig, Fusion, Modality};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Write a freshly initialised checkpoint (reference init drawn from a seeded RNG), with
    /// the reference PyTorch state_dict names: loads in PyTorch with strict=True.
    Init {
        /// Seed of the initialisation RNG (ChaCha8).
        #[arg(long)]
        seed: u64,
        /// Output checkpoint (.safetensors), written atomically.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        arch: ArchArgs,
    },
    /// Eval-mode forward pass: tensors `audio` f32 [B,1,F,T] and `video` f32 [B,3,T,H,W]
    /// in, `a_logits`, `v_logits`, `av_logits` f32 [B,C] out.
    Forward {
        /// Checkpoint written by `mmcl model init`, training, or PyTorch (state_dict saved
        /// with safetensors). The architecture is read from it.
        #[arg(long)]
        checkpoint: PathBuf,
        /// safetensors file holding `audio` and `video`.
        #[arg(long)]
        input: PathBuf,
        /// Output safetensors file, written atomically.
        #[arg(long)]
        out: PathBuf,
        /// Samples per forward pass (eval mode is per-sample, so this only bounds memory).
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// Optional checks of the checkpoint's architecture (an error if it differs).
        #[arg(long)]
        width: Option<usize>,
        #[arg(long)]
        classes: Option<usize>,
        #[arg(long)]
        fusion: Option<Fusion>,
        /// Needed only for a unimodal checkpoint without mmcl metadata (audio or visual).
        #[arg(long)]
        modality: Option<Modality>,
    },
}

/// Architecture options of `model init`.
#[derive(Args)]
pub struct ArchArgs {
    /// Base width of both ResNet-18s (64 in the paper).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Number of classes (100 for Seq/GCIL, 5 for Dom).
    #[arg(long, default_value_t = 100)]
    classes: usize,
    /// Fusion module: film, sum, concat, gated.
    #[arg(long, default_value = "film")]
    fusion: Fusion,
    /// audio-visual, or a unimodal baseline (audio, visual).
    #[arg(long, default_value = "audio-visual")]
    modality: Modality,
    /// Frames per clip (recorded in the checkpoint metadata).
    #[arg(long, default_value_t = 4)]
    frames: usize,
}

pub fn run(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Init { seed, out, arch } => {
            let cfg = AvNetConfig {
                width: arch.width,
                classes: arch.classes,
                fusion: arch.fusion,
                modality: arch.modality,
                frames: arch.frames,
            };
            let net = AvNet::seeded(cfg, &Device::Cpu, seed)?;
            net.save(&out)?;
            println!(
                "wrote {}: width {}, {} classes, {} / {}, {} parameters, seed {seed}",
                out.display(),
                cfg.width,
                cfg.classes,
                cfg.fusion,
                cfg.modality,
                net.num_parameters()
            );
            Ok(())
        }
        ModelCommand::Forward {
            checkpoint,
            input,
            out,
            batch_size,
            width,
            classes,
            fusion,
            modality,
        } => {
            let cfg = infer_config_with(&checkpoint, modality)?;
            check_arg(&checkpoint, "width", width, cfg.width)?;
            check_arg(&checkpoint, "classes", classes, cfg.classes)?;
            if cfg.modality == Modality::AudioVisual {
                check_arg(&checkpoint, "fusion", fusion, cfg.fusion)?;
            }
            if let Some(m) = modality {
                check_arg(&checkpoint, "modality", Some(m), cfg.modality)?;
            }
            let device = Device::Cpu;
            let net = AvNet::from_checkpoint_with(cfg, &checkpoint, &device)?;
            let (audio, video) = read_inputs(&input, &device)?;
            let logits = forward_batched(&net, &audio, &video, batch_size.max(1))?;
            write_logits(&out, &logits)?;
            let b = audio.dim(0)?;
            println!(
                "wrote {}: a_logits, v_logits, av_logits [{b}, {}] (eval mode, {} / {})",
                out.display(),
                cfg.classes,
                cfg.fusion,
                cfg.modality
            );
            Ok(())
        }
    }
}

fn check_arg<T: PartialEq + std::fmt::Display>(
    ckpt: &Path,
    what: &str,
    given: Option<T>,
    found: T,
) -> anyhow::Result<()> {
    match given {
        Some(g) if g != found => bail!(
            "{}: checkpoint has {what} {found}, but --{what} {g} was given",
            ckpt.display()
        ),
        _ => Ok(()),
    }
}

fn read_inputs(path: &Path, device: &Device) -> anyhow::Result<(Tensor, Tensor)> {
    let tensors = candle_core::safetensors::load(path, device)
        .with_context(|| format!("{}: cannot read as safetensors", path.display()))?;
    let get = |name: &str, rank: usize| -> anyhow::Result<Tensor> {
        let t = tensors.get(name).with_context(|| {
            let mut found: Vec<&String> = tensors.keys().collect();
            found.sort();
            found.truncate(8);
            format!(
                "{}: no tensor `{name}` (expected `audio` and `video`; found {found:?}...)",
                path.display()
            )
        })?;
        if t.rank() != rank {
            bail!(
                "{}: tensor `{name}` has shape {:?}, expected rank {rank}",
                path.display(),
                t.dims()
            );
        }
        if t.dtype() != DType::F32 {
            bail!(
                "{}: tensor `{name}` is {:?}, expected F32",
                path.display(),
                t.dtype()
            );
        }
        Ok(t.clone())
    };
    Ok((get("audio", 4)?, get("video", 5)?))
}

fn forward_batched(
    net: &AvNet,
    audio: &Tensor,
    video: &Tensor,
    batch_size: usize,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let b = audio.dim(0)?;
    let chunks = b.div_ceil(batch_size);
    let bar = indicatif::ProgressBar::new(chunks as u64);
    if chunks <= 1 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let (mut a, mut v, mut av) = (vec![], vec![], vec![]);
    for start in (0..b).step_by(batch_size) {
        let n = batch_size.min(b - start);
        let out = net.predict(&audio.narrow(0, start, n)?, &video.narrow(0, start, n)?)?;
        a.push(out.a_logits);
        v.push(out.v_logits);
        av.push(out.av_logits);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(HashMap::from([
        ("a_logits".to_string(), Tensor::cat(&a, 0)?),
        ("v_logits".to_string(), Tensor::cat(&v, 0)?),
        ("av_logits".to_string(), Tensor::cat(&av, 0)?),
    ]))
}

/// Writes the logits as safetensors, atomically.
fn write_logits(path: &Path, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
    let bytes = mmcl_io::safetensors_bytes(tensors, None)?;
    crate::atomic::write_atomic(path, &bytes)
}
