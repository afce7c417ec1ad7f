//! `mmcl media …`: inspection commands over the media crate, so users can check our
//! preprocessing against their own tools (librosa, ffmpeg).
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use mmcl_media::spectrogram::{PadMode, SpectrogramConfig, Stft};
use safetensors::tensor::{Dtype, TensorView};

#[derive(Subcommand)]
pub enum MediaCommand {
    /// Decode, down-mix to mono, resample, then STFT + log of the WHOLE file (no tiling, no
    /// crop). Writes f32 tensors `waveform` [N] and `spectrogram` [freq, time]; compare with
    /// `numpy.log(abs(librosa.stft(librosa.load(FILE, sr=SR)[0], n_fft=256, hop_length=128)) + 1e-7)`.
    Spectrogram {
        /// Audio file (WAV, FLAC, MP3, OGG/Vorbis, AAC in MP4/M4A; more with --features ffmpeg).
        file: PathBuf,
        /// Output .safetensors file, written atomically.
        #[arg(long)]
        out: PathBuf,
        /// Target sample rate in Hz.
        #[arg(long, default_value_t = 16_000)]
        sample_rate: u32,
        /// Centre padding: constant (zeros, librosa >= 0.10) or reflect (librosa < 0.10).
        #[arg(long, default_value = "constant", value_parser = ["constant", "reflect"])]
        pad_mode: String,
    },
    /// Frames of a video (sampled by --sampling; needs --features ffmpeg) or of a frame
    /// folder (JPEG/PNG sorted by name), at native resolution. Writes u8 tensor `frames`
    /// [N, H, W, 3]; with `--sampling fps=1` compare with `ffmpeg -i INPUT -vf fps=1 f%03d.png`.
    Frames {
        /// Video file or folder of frames.
        input: PathBuf,
        /// Output .safetensors file, written atomically.
        #[arg(long)]
        out: PathBuf,
        /// Which video frames: `reference` (the first frame of every int(fps)-frame block,
        /// as the reference's OpenCV extraction) or `fps=R` (ffmpeg's fps filter).
        #[arg(long, default_value = "reference")]
        sampling: mmcl_media::frames::FrameSampling,
    },
}

pub fn run(command: MediaCommand) -> anyhow::Result<()> {
    match command {
        MediaCommand::Spectrogram {
            file,
            out,
            sample_rate,
            pad_mode,
        } => {
            let pad_mode: PadMode = pad_mode.parse()?;
            let waveform = mmcl_media::audio::load_mono(&file, sample_rate)?;
            let stft = Stft::new(SpectrogramConfig {
                pad_mode,
                ..Default::default()
            })?;
            let spec = stft
                .log_magnitude(&waveform)
                .with_context(|| format!("{}: spectrogram", file.display()))?;
            write_safetensors(
                &out,
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
            println!(
                "{}: {} samples at {sample_rate} Hz -> spectrogram [{}, {}] -> {}",
                file.display(),
                waveform.len(),
                spec.freq,
                spec.time,
                out.display()
            );
        }
        MediaCommand::Frames {
            input,
            out,
            sampling,
        } => {
            let frames = mmcl_media::frames::read_frames(&input, sampling)?;
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
            write_safetensors(&out, vec![("frames", Dtype::U8, shape, data)])?;
            println!(
                "{}: {} frames of {w}x{h} -> {}",
                input.display(),
                frames.len(),
                out.display()
            );
        }
    }
    Ok(())
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `tensors` to a temporary file next to `path`, then renames it into place.
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
    crate::atomic::write_atomic(path, &bytes)
}
