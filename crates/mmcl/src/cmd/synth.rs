//! `mmcl synth`: generate the synthetic MMCL-shaped dataset (see the `mmcl-synth` crate).
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use mmcl_synth::Profile;

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
    let mut p = Profile::by_name(&a.profile)?;
    let custom = [
        a.train_per_class,
        a.test_per_class,
        a.clip_seconds,
        a.sample_rate,
        a.frame_size,
    ]
    .iter()
    .any(Option::is_some);
    p.train_per_class = a.train_per_class.unwrap_or(p.train_per_class);
    p.test_per_class = a.test_per_class.unwrap_or(p.test_per_class);
    if let Some(s) = a.clip_seconds {
        p.clip_seconds = s;
        p.crop_seconds = s as f64 / 2.0;
    }
    p.sample_rate = a.sample_rate.unwrap_or(p.sample_rate);
    p.frame_size = a.frame_size.unwrap_or(p.frame_size);
    if custom {
        p.name = format!("{}-custom", p.name);
    }
    let start = Instant::now();
    let opts = mmcl_synth::SynthOptions {
        progress: !a.quiet,
        mp4: a.mp4,
    };
    let s = mmcl_synth::generate_with(&a.out, &p, a.seed, opts)
        .with_context(|| format!("generating profile {} into {}", p.name, a.out.display()))?;
    let secs = start.elapsed().as_secs_f64();
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
