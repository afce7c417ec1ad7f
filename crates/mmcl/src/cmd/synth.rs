//! `mmcl synth`: generate the synthetic MMCL-shaped dataset (see the `mmcl-synth` crate).
use std::path::PathBuf;

use clap::Args;

use crate::datasets::{synth_profile, synthesise, ProfileOverrides};

#[derive(Args)]
pub struct SynthArgs {
    /// Size profile: tiny (tests), mini (default of `cargo xtask reproduce`), small.
    #[arg(long, default_value = "mini")]
    pub profile: String,
    /// Seed of every random choice; the same profile and seed give byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (absent, empty, or an earlier generation with the same profile and seed).
    #[arg(long)]
    pub out: PathBuf,
    /// Override the profile's training clips per class.
    #[arg(long)]
    pub train_per_class: Option<u32>,
    /// Override the profile's test clips per class.
    #[arg(long)]
    pub test_per_class: Option<u32>,
    /// Override the clip length (whole seconds; one frame per second).
    #[arg(long)]
    pub clip_seconds: Option<u32>,
    /// Override the WAV sample rate (Hz).
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// Override the frame size (px).
    #[arg(long)]
    pub frame_size: Option<u32>,
    /// Also write `video/<id>.mp4` (H.264 + AAC, 1 fps) for every clip; needs mmcl built
    /// with `--features ffmpeg`.
    #[arg(long)]
    pub mp4: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: SynthArgs) -> anyhow::Result<()> {
    let overrides = ProfileOverrides {
        train_per_class: a.train_per_class,
        test_per_class: a.test_per_class,
        clip_seconds: a.clip_seconds,
        sample_rate: a.sample_rate,
        frame_size: a.frame_size,
    };
    let p = synth_profile(&a.profile, overrides)?;
    let opts = mmcl_synth::SynthOptions {
        progress: !a.quiet,
        mp4: a.mp4,
    };
    let (s, secs) = synthesise(&a.out, &p, a.seed, opts)?;
    let [f, t] = p.spectrogram_shape();
    println!(
        "synth: profile {} seed {}: {} clips ({} train, {} test) of {} s at {} Hz, {} frames of {}x{} px",
        p.name,
        a.seed,
        s.clips,
        s.train,
        s.test,
        p.clip_seconds,
        p.sample_rate,
        p.frames_per_clip(),
        p.frame_size,
        p.frame_size
    );
    println!(
        "synth: {:.1} MB of media in {:.1} s; loader crop {} s -> spectrogram {f}x{t}",
        s.media_bytes as f64 / 1e6,
        secs,
        p.crop_seconds
    );
    println!("synth: manifest {}", s.manifest.display());
    println!(
        "synth: classes and traits in {}",
        a.out.join("CLASSES.md").display()
    );
    Ok(())
}
