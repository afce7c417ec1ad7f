//! `mmcl model …`: write a freshly initialised checkpoint, run an eval-mode forward pass.
use std::path::PathBuf;

use clap::{Args, Subcommand};
use mmcl_model::{AvNetConfig, Fusion, Modality};

use crate::model_files::{forward_file, init_checkpoint, Expected};

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
    /// in, `a_logits`, `v_logits`, `av_logits` f32 [B,C] out (a unimodal network: its own
    /// head and `av_logits`).
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
            let parameters = init_checkpoint(cfg, seed, &out)?;
            println!(
                "wrote {}: width {}, {} classes, {} / {}, {parameters} parameters, seed {seed}",
                out.display(),
                cfg.width,
                cfg.classes,
                cfg.fusion,
                cfg.modality,
            );
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
            let expected = Expected {
                width,
                classes,
                fusion,
                modality,
            };
            let s = forward_file(&checkpoint, &input, &out, batch_size, expected)?;
            let heads = match s.config.modality {
                Modality::Audio => "a_logits, av_logits",
                Modality::Visual => "v_logits, av_logits",
                Modality::AudioVisual => "a_logits, v_logits, av_logits",
            };
            println!(
                "wrote {}: {heads} [{}, {}] (eval mode, {} / {})",
                out.display(),
                s.samples,
                s.config.classes,
                s.config.fusion,
                s.config.modality
            );
        }
    }
    Ok(())
}
