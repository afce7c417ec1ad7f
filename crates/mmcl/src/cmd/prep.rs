//! `mmcl prep`: decode a manifest's clips once into the safetensors cache (see
//! `mmcl_data::prep`).
use std::path::PathBuf;

use clap::Args;
use mmcl_data::prep::PrepOptions;

use crate::datasets::{prep_options, prepare_cache, PrepOverrides};

#[derive(Args)]
pub struct PrepArgs {
    /// The manifest (CSV) to prepare.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Cache folder to create, or to resume when an earlier run was interrupted.
    #[arg(long)]
    pub out: PathBuf,
    /// Decoding threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Stored frame size: frames whose shorter side is larger are downscaled to it (never
    /// upscaled); 0 keeps the native size. 256 leaves room for RandomResizedCrop to 224.
    #[arg(long, default_value_t = 256)]
    pub frame_size: u32,
    /// Target audio sample rate (default: the dataset's `dataset.json` hint, else 16000).
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// Stored clip length in seconds; shorter clips are tiled (default: hint, else 10).
    #[arg(long)]
    pub clip_seconds: Option<f64>,
    /// Minimum frames for a clip to be usable = frames per clip T (default: hint, else 4).
    #[arg(long)]
    pub min_frames: Option<usize>,
    /// Manifest rows per shard.
    #[arg(long, default_value_t = 64)]
    pub shard_clips: usize,
    /// Which frames are taken from video files (manifests with MP4 instead of frames):
    /// `reference` (the first frame of every int(fps)-frame block, as the reference's
    /// OpenCV extraction) or `fps=R` (ffmpeg's fps filter).
    #[arg(long, default_value = "reference")]
    pub video_frames: mmcl_media::frames::FrameSampling,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: PrepArgs) -> anyhow::Result<()> {
    let given = PrepOverrides {
        sample_rate: a.sample_rate,
        clip_seconds: a.clip_seconds,
        min_frames: a.min_frames,
    };
    let base = PrepOptions {
        frame_size: a.frame_size,
        shard_clips: a.shard_clips,
        video_frames: a.video_frames,
        jobs: a.jobs,
        progress: !a.quiet,
        ..PrepOptions::default()
    };
    let (opts, hints) = prep_options(&a.manifest, given, base)?;
    if let Some(h) = &hints {
        eprintln!(
            "dataset.json hints: {} Hz, {} s clips, {} frames per clip",
            h.sample_rate, h.clip_seconds, h.frames_per_clip
        );
    }
    let report = prepare_cache(&a.manifest, &a.out, &opts)?;
    println!(
        "{}: {} of {} clips usable, {} skipped; {} shards written, {} reused; {:.1} clips/s; {:.1} MB; {:.1} s",
        report.cache.display(),
        report.usable,
        report.rows,
        report.skipped,
        report.shards_written,
        report.shards_reused,
        report.clips_per_second,
        report.bytes as f64 / 1e6,
        report.seconds
    );
    for (reason, n) in &report.skipped_by_reason {
        println!("  skipped {n} clips: {reason}");
    }
    if report.skipped > 0 {
        println!(
            "  every skipped clip and its reason: {}",
            report.cache.join("report.json").display()
        );
    }
    Ok(())
}
