//! `mmcl media …`: inspection commands over the media crate, so users can check our
//! preprocessing against their own tools (librosa, ffmpeg).
use std::path::PathBuf;

use clap::Subcommand;

use crate::media_files::{write_frames, write_spectrogram};

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
            let s = write_spectrogram(&file, &out, sample_rate, pad_mode.parse()?)?;
            println!(
                "{}: {} samples at {sample_rate} Hz -> spectrogram [{}, {}] -> {}",
                file.display(),
                s.samples,
                s.freq,
                s.time,
                out.display()
            );
        }
        MediaCommand::Frames {
            input,
            out,
            sampling,
        } => {
            let (n, w, h) = write_frames(&input, &out, sampling)?;
            println!(
                "{}: {n} frames of {w}x{h} -> {}",
                input.display(),
                out.display()
            );
        }
    }
    Ok(())
}
