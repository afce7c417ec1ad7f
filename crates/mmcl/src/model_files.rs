//! Checkpoint files from the command line (`mmcl model`): write a freshly initialised
//! checkpoint, and run an eval-mode forward pass from a safetensors input file to a
//! safetensors output file.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use mmcl_model::{infer_config_with, AvNet, AvNetConfig, Fusion, Modality};

/// Write the reference initialisation of `cfg` drawn from `seed` to `out`; returns the
/// parameter count.
pub fn init_checkpoint(cfg: AvNetConfig, seed: u64, out: &Path) -> anyhow::Result<usize> {
    let net = AvNet::seeded(cfg, &Device::Cpu, seed)?;
    net.save(out)?;
    Ok(net.num_parameters())
}

/// Architecture facts the caller expects of a checkpoint (an error if it differs).
#[derive(Debug, Default, Clone, Copy)]
pub struct Expected {
    pub width: Option<usize>,
    pub classes: Option<usize>,
    pub fusion: Option<Fusion>,
    /// Also needed to read a unimodal checkpoint without mmcl metadata.
    pub modality: Option<Modality>,
}

/// What [`forward_file`] computed.
#[derive(Debug, Clone, Copy)]
pub struct ForwardSummary {
    pub config: AvNetConfig,
    pub samples: usize,
}

/// Eval-mode forward of `input`'s `audio` f32 [B,1,F,T] and `video` f32 [B,3,T,H,W] through
/// `checkpoint`, `batch_size` samples at a time; writes `a_logits`, `v_logits`, `av_logits`
/// f32 [B,C] to `out` atomically (a unimodal network has one encoder: no `v_logits` for an
/// audio one, no `a_logits` for a visual one).
pub fn forward_file(
    checkpoint: &Path,
    input: &Path,
    out: &Path,
    batch_size: usize,
    expected: Expected,
) -> anyhow::Result<ForwardSummary> {
    let cfg = infer_config_with(checkpoint, expected.modality)?;
    check_arg(checkpoint, "width", expected.width, cfg.width)?;
    check_arg(checkpoint, "classes", expected.classes, cfg.classes)?;
    if cfg.modality == Modality::AudioVisual {
        check_arg(checkpoint, "fusion", expected.fusion, cfg.fusion)?;
    }
    check_arg(checkpoint, "modality", expected.modality, cfg.modality)?;
    let device = Device::Cpu;
    let net = AvNet::from_checkpoint_with(cfg, checkpoint, &device)?;
    let (audio, video) = read_inputs(input, &device)?;
    let logits = forward_batched(&net, &audio, &video, batch_size.max(1))?;
    let bytes = mmcl_io::safetensors_bytes(&logits, None)?;
    mmcl_io::write_atomic(out, &bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(ForwardSummary {
        config: cfg,
        samples: audio.dim(0)?,
    })
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
        a.extend(out.a_logits);
        v.extend(out.v_logits);
        av.push(out.av_logits);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut out = HashMap::from([("av_logits".to_string(), Tensor::cat(&av, 0)?)]);
    for (name, parts) in [("a_logits", a), ("v_logits", v)] {
        if !parts.is_empty() {
            out.insert(name.to_string(), Tensor::cat(&parts, 0)?);
        }
    }
    Ok(out)
}
