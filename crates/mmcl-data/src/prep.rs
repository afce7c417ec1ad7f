//! `prep`: decode every clip of a manifest once, in parallel, into the cache.
//!
//! Manifest row `r` goes to shard `r / shard_clips`. Shards are decoded one after another,
//! the clips of a shard in parallel on a rayon pool of `jobs` threads, and each shard is
//! written atomically (into `.tmp/`, then renamed into `shards/`). Running `prep` again on
//! the same directory resumes: finished shards are kept, `.tmp/` is cleared, and the cache
//! header (`cache.json`) only says `complete: true` once every shard exists. The header
//! records the manifest's SHA-256 and the options; running with another manifest or other
//! options on an existing cache is an error, never a silent mix. One `prep` writes a cache
//! at a time: it holds an advisory lock (`.lock`), and a second one is refused at once.
//!
//! A clip that cannot be used (missing or unreadable audio or frames, fewer than
//! `min_frames` frames, frames of different sizes, media over a decoding limit) is skipped
//! and reported with its reason in `report.json` and in [`PrepReport`]; nothing is dropped
//! silently, and no input can take the run down.
//!
//! # Memory per clip
//!
//! Each decoding thread holds one clip at a time, and a clip never needs more than:
//! * audio: only the stored span (`clip_seconds`) is decoded
//!   ([`mmcl_media::audio::load_mono_with`]), under the media crate's limits (rates
//!   1 kHz - 768 kHz, <= 32 channels, resampler blocks <= 65536 frames): under 60 MB for a
//!   10 s clip whatever the file declares (the `mmcl-media` crate doc derives it), plus the
//!   stored i16 copy (2 B x `clip_samples`);
//! * frames: one native frame at a time, decoded under `image::Limits` (<= 8192 px per side,
//!   <= 128 MiB decoded, <= 64 MiB file: at most 320 MiB while it is decoded), each shrunk
//!   to the stored size before the next is read; the stored frames of one clip are capped
//!   at [`MAX_CLIP_FRAME_BYTES`] (128 MiB; a default-size clip of 10 frames is 3.5 MB),
//!   beyond which the clip is skipped as `frames_over_limit` (video frames are streamed the
//!   same way, [`mmcl_media::frames::decode_video_each`]).
//!
//! So one clip peaks below about 60 MB + 320 MiB + 128 MiB; `jobs` threads decode in
//! parallel, and a shard's stored clips (at most `shard_clips` x 128 MiB, 64 x 3.5 MB at
//! the defaults) are held until it is written. Tested by `tests/hostile.rs` under a 1 GiB
//! address-space cap.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cache::{
    file_sha256, read_shard_meta, shard_file_name, write_atomic, write_shard, CacheHeader,
    CacheOptions, ClipRecord, PreparedClip, ShardEntry, ShardIdentity, SkipRecord, README_FILE,
    REPORT_FILE, SHARD_DIR, TMP_DIR,
};
use crate::error::{CacheError, Result};
use crate::manifest::{Manifest, ManifestEntry};
use mmcl_media::MediaError;

/// Most bytes the stored frames of one clip may take (`[T, H, W, 3]` after the resize to
/// `frame_size`); a clip over it is skipped as [`SkipReason::FramesOverLimit`].
pub const MAX_CLIP_FRAME_BYTES: u64 = 128 << 20;

/// Options of `prep`. The first five fields define the cache ([`CacheOptions`]); `jobs` and
/// `progress` only change how it is built.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepOptions {
    /// Target sample rate of the stored waveforms (reference: 16 kHz).
    pub sample_rate: u32,
    /// Stored clip length in seconds (reference: 10 s); shorter clips are tiled.
    pub clip_seconds: f64,
    /// Shorter side of the stored frames; larger frames are downscaled, smaller ones kept.
    /// 0 keeps every frame at its native size. Default 256 (enough for RandomResizedCrop 224).
    pub frame_size: u32,
    /// Minimum number of frames for a clip to be usable (= frames per clip T; reference 4).
    pub min_frames: usize,
    /// Manifest rows per shard.
    pub shard_clips: usize,
    /// Which frames are taken from video files (default: the reference's rule, the first
    /// frame of every int(fps)-frame block).
    pub video_frames: mmcl_media::frames::FrameSampling,
    /// Decoding threads; 0 = all cores.
    pub jobs: usize,
    /// Draw a progress bar with ETA on stderr.
    pub progress: bool,
}

impl Default for PrepOptions {
    fn default() -> Self {
        PrepOptions {
            sample_rate: 16_000,
            clip_seconds: 10.0,
            frame_size: 256,
            min_frames: 4,
            shard_clips: 64,
            video_frames: mmcl_media::frames::FrameSampling::Reference,
            jobs: 0,
            progress: false,
        }
    }
}

impl PrepOptions {
    /// The options recorded in (and checked against) the cache.
    pub fn cache_options(&self) -> CacheOptions {
        CacheOptions {
            sample_rate: self.sample_rate,
            clip_samples: (self.clip_seconds * self.sample_rate as f64).round() as usize,
            frame_size: self.frame_size,
            min_frames: self.min_frames,
            shard_clips: self.shard_clips,
            video_frames: self.video_frames,
        }
    }
}

/// Preparation hints a dataset may ship next to its manifest: `dataset.json` with a
/// `loader_hints` object (written by `mmcl synth`), giving the clip length and rate of
/// synthetic profiles. Real VGGSound manifests have none; the defaults are the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct DatasetHints {
    pub sample_rate: u32,
    pub clip_seconds: f64,
    pub frames_per_clip: usize,
    pub frame_size: u32,
}

/// Reads `dataset.json` next to `manifest` if there is one with `loader_hints`.
pub fn dataset_hints(manifest: &Path) -> Result<Option<DatasetHints>> {
    let path = manifest
        .parent()
        .unwrap_or(Path::new("."))
        .join("dataset.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CacheError::io(&path, e)),
    };
    let bad = |reason: String| CacheError::Metadata {
        path: path.clone(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    match value.get("loader_hints") {
        None => Ok(None),
        Some(h) => serde_json::from_value(h.clone())
            .map(Some)
            .map_err(|e| bad(format!("loader_hints: {e}"))),
    }
}

/// Why a clip was skipped. The string form (`as_str`) is what reports count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The audio (or video) file named by the manifest does not exist.
    AudioMissing,
    /// The audio could not be decoded or resampled.
    AudioUnreadable,
    /// The audio declares a format over a decoding limit (a sample rate outside
    /// 1 kHz - 768 kHz, too many channels, a rate pair the resampler refuses).
    AudioOverLimit,
    /// The audio decoded to zero samples.
    AudioEmpty,
    /// The frame folder (or video) named by the manifest does not exist.
    FramesMissing,
    /// A frame (or the video) could not be decoded.
    FramesUnreadable,
    /// Fewer than `min_frames` frames.
    TooFewFrames,
    /// Frames of one clip have different sizes.
    FrameSizeMismatch,
    /// A frame over the image limits, or the clip's stored frames over
    /// [`MAX_CLIP_FRAME_BYTES`].
    FramesOverLimit,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::AudioMissing => "audio_missing",
            SkipReason::AudioUnreadable => "audio_unreadable",
            SkipReason::AudioOverLimit => "audio_over_limit",
            SkipReason::AudioEmpty => "audio_empty",
            SkipReason::FramesMissing => "frames_missing",
            SkipReason::FramesUnreadable => "frames_unreadable",
            SkipReason::TooFewFrames => "too_few_frames",
            SkipReason::FrameSizeMismatch => "frame_size_mismatch",
            SkipReason::FramesOverLimit => "frames_over_limit",
        }
    }
}

/// Per-class counts in the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassReport {
    pub class_name: String,
    pub usable_train: usize,
    pub usable_test: usize,
    pub skipped: usize,
    /// Skipped clips of this class by reason.
    pub skipped_by_reason: BTreeMap<String, usize>,
}

/// What `prep` did; also written to `CACHE/report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepReport {
    pub cache: PathBuf,
    pub manifest: PathBuf,
    pub manifest_sha256: String,
    pub options: CacheOptions,
    /// Manifest rows.
    pub rows: usize,
    pub usable: usize,
    pub skipped: usize,
    /// Skipped clips by reason.
    pub skipped_by_reason: BTreeMap<String, usize>,
    /// Counts by class label.
    pub classes: BTreeMap<u32, ClassReport>,
    /// Every skipped clip with its reason and the underlying error.
    pub skipped_clips: Vec<SkipRecord>,
    /// Shards decoded by this run and shards kept from an earlier run.
    pub shards_written: usize,
    pub shards_reused: usize,
    /// Wall time of this run and clips decoded per second by it.
    pub seconds: f64,
    pub clips_per_second: f64,
    /// Total bytes of the shard files.
    pub bytes: u64,
}

/// Reads the manifest at `manifest_path` and builds (or resumes) the cache in `out`.
///
/// Steps: open (or check) the cache header and mark the cache incomplete; find the shards
/// an earlier run finished; decode the others in parallel; assemble the header and the
/// report from every shard's own metadata; write them, the header last.
pub fn prepare(manifest_path: &Path, out: &Path, opts: &PrepOptions) -> Result<PrepReport> {
    let start = Instant::now();
    let manifest = Manifest::read(manifest_path).map_err(|e| CacheError::Manifest {
        path: manifest_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let sha = file_sha256(manifest_path)?;
    let options = opts.cache_options();
    options.validate()?;

    // Create or check the header before touching anything else.
    let shard_dir = out.join(SHARD_DIR);
    fs::create_dir_all(&shard_dir).map_err(|e| CacheError::io(&shard_dir, e))?;
    // One writer per cache: a second prep into it is refused at once, naming the holder.
    let _lock = mmcl_io::DirLock::acquire(out)?;
    let rows = manifest.entries.len();
    let mut header = open_header(out, manifest_path, &sha, options, rows)?;
    remove_tmp_dir(out)?;

    let n_shards = rows.div_ceil(options.shard_clips);
    let pending = pending_shards(&shard_dir, &sha, &options, rows);
    let decode_start = Instant::now();
    decode_shards(&manifest, out, &sha, &options, &pending, opts)?;
    remove_tmp_dir(out)?;
    let decode_seconds = decode_start.elapsed().as_secs_f64();

    let pending_rows: usize = pending.iter().map(|p| p.count).sum();
    let mut report = PrepReport {
        cache: out.to_path_buf(),
        manifest: manifest_path.to_path_buf(),
        manifest_sha256: sha.clone(),
        options,
        rows,
        usable: 0,
        skipped: 0,
        skipped_by_reason: BTreeMap::new(),
        classes: BTreeMap::new(),
        skipped_clips: Vec::new(),
        shards_written: pending.len(),
        shards_reused: n_shards - pending.len(),
        seconds: 0.0,
        clips_per_second: if decode_seconds > 0.0 {
            pending_rows as f64 / decode_seconds
        } else {
            0.0
        },
        bytes: 0,
    };
    collect_shards(out, n_shards, &mut header, &mut report)?;
    report.seconds = start.elapsed().as_secs_f64();
    finish_cache(out, &mut header, &report)?;
    Ok(report)
}

/// The cache's header: the existing one if it was built from this manifest with these
/// options (else a typed mismatch error), or a new one; written back marked incomplete.
fn open_header(
    out: &Path,
    manifest_path: &Path,
    sha: &str,
    options: CacheOptions,
    rows: usize,
) -> Result<CacheHeader> {
    let mut header = match CacheHeader::read(out) {
        Ok(h) => {
            check_compatible(out, manifest_path, &h, sha, &options)?;
            h
        }
        Err(CacheError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            CacheHeader::new(
                sha.to_string(),
                manifest_path.display().to_string(),
                options,
                rows,
            )
        }
        Err(e) => return Err(e),
    };
    header.complete = false;
    header.write(out)?;
    Ok(header)
}

/// Removes what an interrupted shard write left in the cache's temporary folder.
fn remove_tmp_dir(out: &Path) -> Result<()> {
    let tmp_dir = out.join(TMP_DIR);
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| CacheError::io(&tmp_dir, e))?;
    }
    Ok(())
}

/// A shard still to decode: its number and its manifest rows `first..first + count`.
#[derive(Clone, Copy)]
struct PendingShard {
    k: usize,
    first: usize,
    count: usize,
}

/// The shards no earlier run finished for this manifest and these options (a shard file
/// that does not read back, or holds other rows, is decoded again).
fn pending_shards(
    shard_dir: &Path,
    sha: &str,
    options: &CacheOptions,
    rows: usize,
) -> Vec<PendingShard> {
    let mut pending = Vec::new();
    for k in 0..rows.div_ceil(options.shard_clips) {
        let first = k * options.shard_clips;
        let count = options.shard_clips.min(rows - first);
        let path = shard_dir.join(shard_file_name(k));
        let done = path.exists()
            && match read_shard_meta(&path) {
                Ok(m) => {
                    m.manifest_sha256 == sha
                        && m.options == *options
                        && m.first_row == first
                        && m.rows == count
                }
                Err(_) => false,
            };
        if !done {
            pending.push(PendingShard { k, first, count });
        }
    }
    pending
}

/// Decodes the `pending` shards' clips on `opts.jobs` threads and writes each shard.
fn decode_shards(
    manifest: &Manifest,
    out: &Path,
    sha: &str,
    options: &CacheOptions,
    pending: &[PendingShard],
    opts: &PrepOptions,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| {
            CacheError::Config(format!("cannot start {} decoding threads: {e}", opts.jobs))
        })?;
    let pending_rows: usize = pending.iter().map(|p| p.count).sum();
    let bar = progress_bar(pending_rows as u64, opts.progress);
    for &PendingShard { k, first, count } in pending {
        let entries = &manifest.entries[first..first + count];
        let results: Vec<std::result::Result<PreparedClip, Box<SkipRecord>>> = pool.install(|| {
            entries
                .par_iter()
                .enumerate()
                .map(|(i, e)| {
                    let r = decode_clip(manifest, e, first + i, options);
                    bar.inc(1);
                    r
                })
                .collect()
        });
        let mut clips = Vec::new();
        let mut skipped = Vec::new();
        for r in results {
            match r {
                Ok(c) => clips.push(c),
                Err(s) => skipped.push(*s),
            }
        }
        let id = ShardIdentity {
            manifest_sha256: sha,
            options,
            first_row: first,
            rows: count,
        };
        write_shard(out, k, &id, &clips, &skipped)?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Lists every shard in `header` and counts its clips and skips into `report`, from the
/// shards' own metadata (so a resumed prep reports the shards an earlier run wrote too).
fn collect_shards(
    out: &Path,
    n_shards: usize,
    header: &mut CacheHeader,
    report: &mut PrepReport,
) -> Result<()> {
    header.shards.clear();
    for k in 0..n_shards {
        let rel = format!("{SHARD_DIR}/{}", shard_file_name(k));
        let path = out.join(&rel);
        let meta = read_shard_meta(&path)?;
        report.bytes += fs::metadata(&path)
            .map_err(|e| CacheError::io(&path, e))?
            .len();
        header.shards.push(ShardEntry {
            file: rel,
            first_row: meta.first_row,
            rows: meta.rows,
            clips: meta.clips.len(),
            skipped: meta.skipped.len(),
        });
        for c in &meta.clips {
            let cr = class_entry(&mut report.classes, c.label, &c.class_name);
            if c.split == "test" {
                cr.usable_test += 1;
            } else {
                cr.usable_train += 1;
            }
        }
        for s in meta.skipped {
            let cr = class_entry(&mut report.classes, s.label, &s.class_name);
            cr.skipped += 1;
            *cr.skipped_by_reason.entry(s.reason.clone()).or_default() += 1;
            *report
                .skipped_by_reason
                .entry(s.reason.clone())
                .or_default() += 1;
            report.skipped_clips.push(s);
        }
        report.usable += meta.clips.len();
    }
    report.skipped = report.skipped_clips.len();
    header.clips = report.usable;
    header.skipped = report.skipped;
    Ok(())
}

/// Writes the report and the cache README, then the header marked complete: only now is
/// the cache usable.
fn finish_cache(out: &Path, header: &mut CacheHeader, report: &PrepReport) -> Result<()> {
    let report_json = serde_json::to_string_pretty(report).expect("report serialises");
    write_atomic(&out.join(REPORT_FILE), report_json.as_bytes())?;
    write_atomic(&out.join(README_FILE), cache_readme(header).as_bytes())?;
    header.complete = true;
    header.write(out)
}

fn class_entry<'a>(
    classes: &'a mut BTreeMap<u32, ClassReport>,
    label: u32,
    name: &str,
) -> &'a mut ClassReport {
    classes.entry(label).or_insert_with(|| ClassReport {
        class_name: name.to_string(),
        ..Default::default()
    })
}

fn check_compatible(
    out: &Path,
    manifest: &Path,
    h: &CacheHeader,
    sha: &str,
    options: &CacheOptions,
) -> Result<()> {
    if h.manifest_sha256 != sha {
        return Err(CacheError::ManifestMismatch {
            cache: out.to_path_buf(),
            manifest: manifest.to_path_buf(),
            cached: h.manifest_sha256.clone(),
            current: sha.to_string(),
        });
    }
    if &h.options != options {
        return Err(CacheError::OptionsMismatch {
            cache: out.to_path_buf(),
            cached: format!("{:?}", h.options),
            requested: format!("{options:?}"),
        });
    }
    Ok(())
}

fn progress_bar(len: u64, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "prep {bar:40} {pos}/{len} clips  {per_sec}  elapsed {elapsed}  ETA {eta}",
        )
        .expect("valid template"),
    );
    bar
}

/// Decodes one manifest entry into a cache clip, or says why it cannot be used.
fn decode_clip(
    manifest: &Manifest,
    e: &ManifestEntry,
    row: usize,
    options: &CacheOptions,
) -> std::result::Result<PreparedClip, Box<SkipRecord>> {
    let skip = |reason: SkipReason, detail: String| {
        Box::new(SkipRecord {
            id: e.id.clone(),
            row,
            label: e.label,
            class_name: e.class_name.clone(),
            split: e.split.as_str().to_string(),
            reason: reason.as_str().to_string(),
            detail,
        })
    };

    // Audio: the audio file, else the video's audio track.
    let audio_path = manifest
        .audio_path(e)
        .or_else(|| manifest.video_path(e))
        .ok_or_else(|| skip(SkipReason::AudioMissing, "no audio or video path".into()))?;
    if !audio_path.exists() {
        return Err(skip(
            SkipReason::AudioMissing,
            format!("{}: file not found", audio_path.display()),
        ));
    }
    // Only the stored span is decoded (a longer file is cut to it anyway).
    let span = mmcl_media::audio::DecodeOptions::first_seconds(
        options.clip_samples as f64 / options.sample_rate as f64,
    );
    let wave = mmcl_media::audio::load_mono_with(&audio_path, options.sample_rate, &span).map_err(
        |err| {
            let reason = match err {
                MediaError::Limit { .. } => SkipReason::AudioOverLimit,
                _ => SkipReason::AudioUnreadable,
            };
            skip(reason, err.to_string())
        },
    )?;
    if wave.is_empty() {
        return Err(skip(
            SkipReason::AudioEmpty,
            format!("{}: decoded zero samples", audio_path.display()),
        ));
    }
    let audio_le = tile_to_i16_le(&wave, options.clip_samples);

    let frames_err = |err: MediaError| {
        let reason = match err {
            MediaError::Limit { .. } => SkipReason::FramesOverLimit,
            _ => SkipReason::FramesUnreadable,
        };
        skip(reason, err.to_string())
    };
    // Frames: the frame folder, else frames decoded from the video; each frame is shrunk to
    // the stored size as it arrives, so one native frame is alive at a time.
    let mut stored = StoredFrames::new(options.frame_size);
    if let Some(dir) = manifest.frames_path(e) {
        if !dir.exists() {
            return Err(skip(
                SkipReason::FramesMissing,
                format!("{}: folder not found", dir.display()),
            ));
        }
        let files = mmcl_media::frames::list_frame_files(&dir).map_err(frames_err)?;
        for file in &files {
            let f = mmcl_media::frames::read_frame(file).map_err(frames_err)?;
            stored
                .push(&f, files.len())
                .map_err(|(reason, detail)| skip(reason, detail))?;
        }
    } else if let Some(video) = manifest.video_path(e) {
        if !video.exists() {
            return Err(skip(
                SkipReason::FramesMissing,
                format!("{}: file not found", video.display()),
            ));
        }
        let mut refused = None;
        let decoded =
            mmcl_media::frames::decode_video_each(&video, options.video_frames, None, &mut |f| {
                stored.push(f, 1).map_err(|r| {
                    refused = Some(r);
                    // Only stops the decoder; `refused` says why.
                    MediaError::InvalidArgument("clip refused".into())
                })
            });
        if let Some((reason, detail)) = refused {
            return Err(skip(reason, detail));
        }
        decoded.map_err(frames_err)?;
    } else {
        return Err(skip(
            SkipReason::FramesMissing,
            "no frames or video path".into(),
        ));
    }
    if stored.count < options.min_frames {
        return Err(skip(
            SkipReason::TooFewFrames,
            format!(
                "{} frames, at least {} needed",
                stored.count, options.min_frames
            ),
        ));
    }
    let (w, h) = stored.size;
    let frames = stored.count;
    let data = stored.data;
    Ok(PreparedClip {
        record: ClipRecord {
            id: e.id.clone(),
            row,
            label: e.label,
            class_name: e.class_name.clone(),
            super_label: e.super_label,
            supercategory: e.supercategory.clone(),
            split: e.split.as_str().to_string(),
            frames,
            height: h as usize,
            width: w as usize,
        },
        audio_le,
        frames: data,
    })
}

/// A clip's frames in the stored layout, filled one decoded frame at a time (so only one
/// native frame is alive), checked for equal sizes and the [`MAX_CLIP_FRAME_BYTES`] cap.
struct StoredFrames {
    frame_size: u32,
    /// Native size of frame 0 (every frame must have it).
    native: (u32, u32),
    /// Stored size (after the resize).
    size: (u32, u32),
    count: usize,
    data: Vec<u8>,
}

impl StoredFrames {
    fn new(frame_size: u32) -> Self {
        StoredFrames {
            frame_size,
            native: (0, 0),
            size: (0, 0),
            count: 0,
            data: Vec::new(),
        }
    }

    /// Appends frame `f`, shrunk to the stored size, of a clip known to have at least
    /// `expected` frames (a folder's file count: refused at its first frame when they cannot
    /// fit; 1 for a video, whose frames are counted as they come).
    fn push(
        &mut self,
        f: &mmcl_media::frames::RgbFrame,
        expected: usize,
    ) -> std::result::Result<(), (SkipReason, String)> {
        let dims = f.dimensions();
        if self.count == 0 {
            self.native = dims;
            self.size = stored_size(dims.0, dims.1, self.frame_size);
        }
        let frames = expected.max(self.count + 1);
        let bytes = frames as u64 * self.size.0 as u64 * self.size.1 as u64 * 3;
        if bytes > MAX_CLIP_FRAME_BYTES {
            return Err((
                SkipReason::FramesOverLimit,
                format!(
                    "{frames} frames of {}x{} stored are {bytes} bytes, over the limit of \
                     {} MiB per clip",
                    self.size.0,
                    self.size.1,
                    MAX_CLIP_FRAME_BYTES >> 20
                ),
            ));
        }
        if self.count == 0 {
            self.data.reserve_exact(bytes as usize);
        } else if dims != self.native {
            let (w0, h0) = self.native;
            return Err((
                SkipReason::FrameSizeMismatch,
                format!(
                    "frame {} is {}x{}, frame 0 is {w0}x{h0}",
                    self.count, dims.0, dims.1
                ),
            ));
        }
        if self.size == dims {
            self.data.extend_from_slice(f.as_raw());
        } else {
            let r = mmcl_media::image_ops::resize(f, self.size.0, self.size.1)
                .map_err(|err| (SkipReason::FramesUnreadable, err.to_string()))?;
            self.data.extend_from_slice(r.as_raw());
        }
        self.count += 1;
        Ok(())
    }
}

/// Size with the shorter side scaled to `target` when it is larger (torchvision `Resize(int)`
/// rounding: the longer side is truncated); `target` 0 keeps the size.
pub fn stored_size(w: u32, h: u32, target: u32) -> (u32, u32) {
    let short = w.min(h);
    if target == 0 || short <= target {
        return (w, h);
    }
    if w <= h {
        (target, ((target as u64 * h as u64) / w as u64) as u32)
    } else {
        (((target as u64 * w as u64) / h as u64) as u32, target)
    }
}

/// The first `len` samples of the periodic extension of `wave` (the reference tiles by
/// doubling until long enough, which is the same prefix), as saturated little-endian i16.
pub(crate) fn tile_to_i16_le(wave: &[f32], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len * 2);
    for i in 0..len {
        out.extend_from_slice(&f32_to_i16(wave[i % wave.len()]).to_le_bytes());
    }
    out
}

/// x * 32768, rounded and saturated: exact for 16-bit PCM decoded as i / 32768.
pub fn f32_to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn cache_readme(h: &CacheHeader) -> String {
    let o = &h.options;
    format!(
        "# mmcl preprocessing cache (format version {version})\n\n\
         Built by `mmcl prep` from manifest `{manifest}` (sha256 `{sha}`): {clips} usable clips, \
         {skipped} skipped (see report.json for every skipped clip and its reason).\n\n\
         Files: `cache.json` (header: options, shard list, `complete` flag), `report.json`, \
         `shards/shard-NNNNN.safetensors` (manifest rows [N*{shard}, (N+1)*{shard}), in manifest order).\n\n\
         Tensors of each usable clip ID in its shard:\n\n\
         | name | dtype | shape | content |\n|---|---|---|---|\n\
         | `audio/ID` | I16 | [{samples}] | mono {sr} Hz waveform, tiled to at least {samples} samples ({secs} s) and cut to that length; divide by 32768 for floats |\n\
         | `frames/ID` | U8 | [T, H, W, 3] | all T >= {minf} RGB frames in time order; shorter side {fs} |\n\n\
         Shard `__metadata__` (string values): `format`, `version`, `manifest_sha256`, `options` (JSON), \
         `first_row`, `rows`, `clips` (JSON list: id, row, label, class_name, super_label, supercategory, \
         split, frames, height, width), `skipped` (JSON list: id, row, label, class_name, split, reason, detail).\n\n\
         Python:\n\n```python\nfrom safetensors import safe_open\nimport json\n\
         with safe_open(\"shards/shard-00000.safetensors\", \"np\") as f:\n    \
         clips = json.loads(f.metadata()[\"clips\"])\n    \
         wave = f.get_tensor(\"audio/\" + clips[0][\"id\"]) / 32768.0\n    \
         frames = f.get_tensor(\"frames/\" + clips[0][\"id\"])  # uint8 [T, H, W, 3]\n```\n",
        version = h.version,
        manifest = h.manifest_path,
        sha = h.manifest_sha256,
        clips = h.clips,
        skipped = h.skipped,
        shard = o.shard_clips,
        samples = o.clip_samples,
        sr = o.sample_rate,
        secs = o.clip_samples as f64 / o.sample_rate as f64,
        minf = o.min_frames,
        fs = if o.frame_size == 0 {
            "native (not resized)".to_string()
        } else {
            format!("downscaled to {} px when larger (never upscaled)", o.frame_size)
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn pcm16_roundtrip_is_exact_and_saturates() {
        let pcm: [i16; 6] = [-32768, -1, 0, 1, 12345, 32767];
        for x in pcm {
            assert_eq!(super::f32_to_i16(x as f32 / 32768.0), x);
        }
        assert_eq!(super::f32_to_i16(2.0), 32767);
        assert_eq!(super::f32_to_i16(-2.0), -32768);
    }
}
