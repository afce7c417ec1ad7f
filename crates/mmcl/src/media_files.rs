//! Media inspection files (`mmcl media`): our preprocessing of one input written as
//! safetensors, for comparison with the user's own tools (librosa, ffmpeg).
use std::path::Path;

use anyhow::Context;
use mmcl_media::frames::FrameSampling;
use mmcl_media::spectrogram::{PadMode, SpectrogramConfig, Stft};
use safetensors::tensor::{Dtype, TensorView};

/// Shapes of what [`write_spectrogram`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct SpectrogramShapes {
    pub samples: usize,
    pub freq: usize,
    pub time: usize,
}

/// Decode, down-mix, resample to `sample_rate`, then STFT + log of the whole `file`; writes
/// f32 `waveform` [N] and `spectrogram` [freq, time] to `out`.
pub fn write_spectrogram(
    file: &Path,
    out: &Path,
    sample_rate: u32,
    pad_mode: PadMode,
) -> anyhow::Result<SpectrogramShapes> {
    let waveform = mmcl_media::audio::load_mono(file, sample_rate)?;
    let stft = Stft::new(SpectrogramConfig {
        pad_mode,
        ..Default::default()
    })?;
    let spec = stft
        .log_magnitude(&waveform)
        .with_context(|| format!("{}: spectrogram", file.display()))?;
    write_safetensors(
        out,
        vec![
            (
                "waveform",
                Dtype::F32,
                vec![waveform.len()],
                f32_bytes(&waveform),
            ),
            (
                "spectrogram",
                Dtype::F32,
                vec![spec.freq, spec.time],
                f32_bytes(&spec.data),
            ),
        ],
    )?;
    Ok(SpectrogramShapes {
        samples: waveform.len(),
        freq: spec.freq,
        time: spec.time,
    })
}

/// Frames of a video or frame folder at native resolution; writes u8 `frames` [N, H, W, 3]
/// to `out`. Returns (frames, width, height).
pub fn write_frames(
    input: &Path,
    out: &Path,
    sampling: FrameSampling,
) -> anyhow::Result<(usize, u32, u32)> {
    let frames = mmcl_media::frames::read_frames(input, sampling)?;
    let (w, h) = frames[0].dimensions();
    let mut data = Vec::with_capacity(frames.len() * (w * h * 3) as usize);
    for (i, f) in frames.iter().enumerate() {
        anyhow::ensure!(
            f.dimensions() == (w, h),
            "{}: frame {i} is {}x{}, frame 0 is {w}x{h}; frames must share one size",
            input.display(),
            f.width(),
            f.height()
        );
        data.extend_from_slice(f.as_raw());
    }
    let shape = vec![frames.len(), h as usize, w as usize, 3];
    write_safetensors(out, vec![("frames", Dtype::U8, shape, data)])?;
    Ok((frames.len(), w, h))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write_safetensors(
    path: &Path,
    tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>,
) -> anyhow::Result<()> {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            Ok((*name, TensorView::new(*dtype, shape.clone(), data)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = mmcl_io::safetensors_bytes(views, None)?;
    mmcl_io::write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}
