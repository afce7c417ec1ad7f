//! Data on disk from the command line: generate the synthetic dataset (`mmcl synth`), build
//! a benchmark manifest from a dataset the user brings (`mmcl manifest`), and decode a
//! manifest into the preprocessing cache (`mmcl prep`), each with the defaults the command
//! line documents.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use mmcl_data::manifest::Manifest;
use mmcl_data::prep::{dataset_hints, prepare, DatasetHints, PrepOptions, PrepReport};
use mmcl_data::vggsound::{build_manifest, VggSoundOptions, VggSoundReport};
use mmcl_synth::{Profile, SynthSummary};

/// Overrides of a synthetic profile's sizes (None: the profile's).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProfileOverrides {
    pub train_per_class: Option<u32>,
    pub test_per_class: Option<u32>,
    /// Whole seconds; the loader's crop becomes half of it.
    pub clip_seconds: Option<u32>,
    pub sample_rate: Option<u32>,
    pub frame_size: Option<u32>,
}

/// The profile `name` with `o` applied; a changed profile is named `<name>-custom`.
pub fn synth_profile(name: &str, o: ProfileOverrides) -> anyhow::Result<Profile> {
    let mut p = Profile::by_name(name)?;
    let custom = [
        o.train_per_class,
        o.test_per_class,
        o.clip_seconds,
        o.sample_rate,
        o.frame_size,
    ]
    .iter()
    .any(Option::is_some);
    p.train_per_class = o.train_per_class.unwrap_or(p.train_per_class);
    p.test_per_class = o.test_per_class.unwrap_or(p.test_per_class);
    if let Some(s) = o.clip_seconds {
        p.clip_seconds = s;
        p.crop_seconds = s as f64 / 2.0;
    }
    p.sample_rate = o.sample_rate.unwrap_or(p.sample_rate);
    p.frame_size = o.frame_size.unwrap_or(p.frame_size);
    if custom {
        p.name = format!("{}-custom", p.name);
    }
    Ok(p)
}

/// Generate `profile` with `seed` into `out`; returns the summary and the seconds taken.
pub fn synthesise(
    out: &Path,
    profile: &Profile,
    seed: u64,
    opts: mmcl_synth::SynthOptions,
) -> anyhow::Result<(SynthSummary, f64)> {
    let start = Instant::now();
    let s = mmcl_synth::generate_with(out, profile, seed, opts)
        .with_context(|| format!("generating profile {} into {}", profile.name, out.display()))?;
    Ok((s, start.elapsed().as_secs_f64()))
}

/// Build the MMCL-VGGSound manifest of `csv` and the clips under `root`, write it to `out`
/// and the full report (JSON) to `report` (default: `<out>` with `.report.json`), both
/// atomically. No usable clip at all is an error naming `root`.
pub fn vggsound_manifest(
    csv: &Path,
    root: &Path,
    out: &Path,
    report: Option<&Path>,
    opts: &VggSoundOptions,
) -> anyhow::Result<(Manifest, VggSoundReport, PathBuf)> {
    let (manifest, found) = build_manifest(csv, root, out, opts)?;
    if manifest.entries.is_empty() {
        bail!(
            "no usable clip of the 100 classes under {} (expected audio/<id>.wav + frames/<id>/ or video/<id>.mp4)",
            root.display()
        );
    }
    manifest.write(out)?;
    let report_path = report.map_or_else(|| out.with_extension("report.json"), Path::to_path_buf);
    let json = serde_json::to_string_pretty(&found)?;
    mmcl_io::write_atomic(&report_path, json.as_bytes())
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    Ok((manifest, found, report_path))
}

/// Preparation settings given on the command line (None: the dataset's `dataset.json` hint,
/// else the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct PrepOverrides {
    pub sample_rate: Option<u32>,
    pub clip_seconds: Option<f64>,
    pub min_frames: Option<usize>,
}

/// The options of preparing `manifest`: `given`, else its dataset's hints, else the
/// defaults (`base` holds everything else). Also returns the hints found.
pub fn prep_options(
    manifest: &Path,
    given: PrepOverrides,
    base: PrepOptions,
) -> anyhow::Result<(PrepOptions, Option<DatasetHints>)> {
    let hints = dataset_hints(manifest)?;
    let d = PrepOptions::default();
    let opts = PrepOptions {
        sample_rate: given
            .sample_rate
            .or(hints.map(|h| h.sample_rate))
            .unwrap_or(d.sample_rate),
        clip_seconds: given
            .clip_seconds
            .or(hints.map(|h| h.clip_seconds))
            .unwrap_or(d.clip_seconds),
        min_frames: given
            .min_frames
            .or(hints.map(|h| h.frames_per_clip))
            .unwrap_or(d.min_frames),
        ..base
    };
    Ok((opts, hints))
}

/// Decode `manifest` into the cache `out` with `opts`.
pub fn prepare_cache(
    manifest: &Path,
    out: &Path,
    opts: &PrepOptions,
) -> anyhow::Result<PrepReport> {
    prepare(manifest, out, opts)
        .with_context(|| format!("preparing {} into {}", manifest.display(), out.display()))
}
