//! Writing a whole dataset: media files, manifest and reports, in parallel but
//! deterministically (each clip draws from its own ChaCha8 stream of the seed).
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use mmcl_data::manifest::{Manifest, ManifestEntry, Split};

use crate::audio::{self, render_audio};
use crate::error::SynthError;
use crate::profile::Profile;
use crate::signature::{all_signatures, ClassSignature};
use crate::visual::{self, render_frames};

/// Format tag of `dataset.json`.
pub const DATASET_FORMAT: &str = "mmcl-synth-dataset/1";
/// Marker written while a generation is under way (removed at the end).
const PARTIAL_FILE: &str = ".synth-partial.json";

/// One clip to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipSpec {
    pub label: u32,
    pub split: Split,
    /// Index among the class's clips of this split.
    pub index: u32,
    /// Clip id, e.g. `c007-train-0003`.
    pub id: String,
}

impl ClipSpec {
    /// The clip's RNG stream: depends only on (label, split, index), so growing a profile's
    /// counts leaves the earlier clips of the same seed unchanged.
    pub fn stream(&self) -> u64 {
        ((self.label as u64) << 33)
            | ((matches!(self.split, Split::Test) as u64) << 32)
            | self.index as u64
    }
}

/// All clips of a profile: class by class, test clips first, then train.
pub fn clip_specs(profile: &Profile) -> Vec<ClipSpec> {
    let mut out = Vec::with_capacity(profile.total_clips());
    for label in 0..crate::NUM_CLASSES as u32 {
        for (split, n) in [
            (Split::Test, profile.test_per_class),
            (Split::Train, profile.train_per_class),
        ] {
            for index in 0..n {
                out.push(ClipSpec {
                    label,
                    split,
                    index,
                    id: format!("c{label:03}-{split}-{index:04}"),
                });
            }
        }
    }
    out
}

/// A rendered clip in memory: waveform in [-1, 1] at the profile's sample rate and one
/// frame per second.
pub struct RenderedClip {
    pub audio: Vec<f32>,
    pub frames: Vec<RgbImage>,
}

/// Renders one clip of class `sig` from stream `stream` of `seed`, without touching disk.
pub fn render_clip(
    profile: &Profile,
    sig: &ClassSignature,
    seed: u64,
    stream: u64,
) -> RenderedClip {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let audio = render_audio(
        &sig.audio,
        profile.sample_rate,
        profile.clip_samples(),
        &mut rng,
    );
    let frames = render_frames(
        &sig.visual,
        profile.frame_size,
        profile.frames_per_clip(),
        &mut rng,
    );
    RenderedClip { audio, frames }
}

/// What `generate` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct SynthSummary {
    pub out: PathBuf,
    pub manifest: PathBuf,
    pub clips: usize,
    pub train: usize,
    pub test: usize,
    /// Bytes of media files written (WAV + PNG + MP4).
    pub media_bytes: u64,
}

/// Identity of a generated dataset (profile + seed + format); a folder holds one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Identity {
    format: String,
    seed: u64,
    profile: Profile,
    /// MP4 files were written too.
    #[serde(default)]
    mp4: bool,
}

/// How to generate (what to write besides WAV + PNG, and whether to show progress).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthOptions {
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Also write `video/<id>.mp4` (H.264 + AAC, frames at 1 fps); needs feature `ffmpeg`.
    pub mp4: bool,
}

/// Generates the dataset of `profile` from `seed` into `out`:
/// `audio/<id>.wav` (16-bit PCM mono), `frames/<id>/00000.png…` (one per second),
/// `manifest.csv`, `dataset.json` (profile, loader hints, per-class counts and traits) and
/// `CLASSES.md` (the same as a readable table). Every file is written atomically.
/// `out` must be empty, absent, or hold an earlier (possibly interrupted) generation with
/// the same profile and seed, which is then overwritten with identical bytes.
pub fn generate(
    out: &Path,
    profile: &Profile,
    seed: u64,
    progress: bool,
) -> Result<SynthSummary, SynthError> {
    generate_with(
        out,
        profile,
        seed,
        SynthOptions {
            progress,
            mp4: false,
        },
    )
}

/// [`generate`] with options; with `mp4` set, every clip also gets `video/<id>.mp4`
/// (H.264 + AAC) and its manifest row names it.
pub fn generate_with(
    out: &Path,
    profile: &Profile,
    seed: u64,
    opts: SynthOptions,
) -> Result<SynthSummary, SynthError> {
    let progress = opts.progress;
    profile.validate()?;
    if opts.mp4 && !cfg!(feature = "ffmpeg") {
        return Err(SynthError::NoFfmpeg);
    }
    let identity = Identity {
        format: DATASET_FORMAT.into(),
        seed,
        profile: profile.clone(),
        mp4: opts.mp4,
    };
    check_out_dir(out, &identity)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Io { path, source }
    };
    // The marker comes first: until it exists nothing else is written, so a start that
    // fails on it (ENOSPC, permissions) leaves a folder a re-run accepts.
    std::fs::create_dir_all(out).map_err(io(out))?;
    let partial = out.join(PARTIAL_FILE);
    write_atomic(
        &partial,
        &serde_json::to_vec_pretty(&identity).expect("identity serialises"),
    )?;
    std::fs::create_dir_all(out.join("audio")).map_err(io(&out.join("audio")))?;
    std::fs::create_dir_all(out.join("frames")).map_err(io(&out.join("frames")))?;
    if opts.mp4 {
        std::fs::create_dir_all(out.join("video")).map_err(io(&out.join("video")))?;
    }

    let signatures = all_signatures();
    let specs = clip_specs(profile);
    let bar = if progress {
        let b = indicatif::ProgressBar::new(specs.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "synth {bar:40} {pos}/{len} clips [{elapsed_precise} < {eta_precise}]",
            )
            .expect("valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let results: Vec<(ManifestEntry, u64)> = specs
        .par_iter()
        .map(|spec| {
            let r = write_clip(
                out,
                profile,
                &signatures[spec.label as usize],
                seed,
                spec,
                opts.mp4,
            );
            bar.inc(1);
            r
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();

    let mut manifest = Manifest::new(out);
    let mut media_bytes = 0;
    for (e, b) in results {
        manifest.entries.push(e);
        media_bytes += b;
    }
    let manifest_path = out.join("manifest.csv");
    // The media were written without per-file fsyncs: make them durable before the
    // manifest that lists them.
    mmcl_io::sync_filesystem(out).map_err(io(out))?;
    manifest.write(&manifest_path)?;
    let report = DatasetReport::new(&identity, &signatures, &manifest);
    let json_path = out.join("dataset.json");
    let json = serde_json::to_vec_pretty(&report).map_err(|source| SynthError::Json {
        path: json_path.clone(),
        source,
    })?;
    write_atomic(&json_path, &json)?;
    write_atomic(&out.join("CLASSES.md"), report.to_markdown().as_bytes())?;
    std::fs::remove_file(&partial).map_err(io(&partial))?;
    let test = manifest.split(Split::Test).count();
    Ok(SynthSummary {
        out: out.to_path_buf(),
        manifest: manifest_path,
        clips: manifest.entries.len(),
        train: manifest.entries.len() - test,
        test,
        media_bytes,
    })
}

/// What a start that failed before its marker was written can leave in the output folder:
/// an unfinished temporary of the marker (a killed writer's), or an empty media folder (made
/// before the marker by older versions). `None` for anything else.
fn failed_start_leftover(entry: &std::fs::DirEntry) -> Option<Leftover> {
    let name = entry.file_name();
    let name = name.to_string_lossy();
    let kind = entry.file_type().ok()?;
    if name.starts_with(&format!(".{PARTIAL_FILE}.")) && kind.is_file() {
        return Some(Leftover::MarkerTemp);
    }
    (matches!(name.as_ref(), "audio" | "frames" | "video")
        && kind.is_dir()
        && std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none()))
    .then_some(Leftover::EmptyFolder)
}

enum Leftover {
    MarkerTemp,
    EmptyFolder,
}

fn check_out_dir(out: &Path, identity: &Identity) -> Result<(), SynthError> {
    let Ok(listing) = std::fs::read_dir(out) else {
        return Ok(()); // absent: created later (or the creation error names it)
    };
    let mut temps = Vec::new();
    let mut leftovers_only = true;
    for entry in listing {
        match entry.as_ref().ok().and_then(failed_start_leftover) {
            Some(Leftover::MarkerTemp) => temps.push(entry.expect("checked").path()),
            Some(Leftover::EmptyFolder) => {}
            None => {
                leftovers_only = false;
                break;
            }
        }
    }
    if leftovers_only {
        // Start afresh: an unfinished marker temporary is garbage.
        for t in temps {
            std::fs::remove_file(&t).map_err(|source| SynthError::Io { path: t, source })?;
        }
        return Ok(());
    }
    let not_empty = |reason: String| SynthError::NotEmpty {
        path: out.to_path_buf(),
        reason,
    };
    for (file, key) in [(PARTIAL_FILE, "identity"), ("dataset.json", "identity")] {
        let path = out.join(file);
        if let Ok(text) = std::fs::read(&path) {
            let value: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| not_empty(format!("{file} unreadable: {e}")))?;
            let found = if file == PARTIAL_FILE {
                Some(value)
            } else {
                value.get(key).cloned()
            };
            let found: Option<Identity> = found.and_then(|v| serde_json::from_value(v).ok());
            return match found {
                Some(f) if &f == identity => Ok(()),
                Some(f) => Err(not_empty(format!(
                    "profile {} seed {} (asked: profile {} seed {})",
                    f.profile.name, f.seed, identity.profile.name, identity.seed
                ))),
                None => Err(not_empty(format!("{file} is not an mmcl-synth dataset"))),
            };
        }
    }
    Err(not_empty("it has files but no dataset.json".into()))
}

fn write_clip(
    out: &Path,
    profile: &Profile,
    sig: &ClassSignature,
    seed: u64,
    spec: &ClipSpec,
    mp4: bool,
) -> Result<(ManifestEntry, u64), SynthError> {
    let clip = render_clip(profile, sig, seed, spec.stream());
    let audio_rel = format!("audio/{}.wav", spec.id);
    let audio_path = out.join(&audio_rel);
    let wav = encode_wav(&clip.audio, profile.sample_rate).map_err(|source| SynthError::Wav {
        path: audio_path.clone(),
        source,
    })?;
    let mut bytes = wav.len() as u64;
    write_media(&audio_path, &wav)?;

    let frames_rel = format!("frames/{}", spec.id);
    let frames_dir = out.join(&frames_rel);
    std::fs::create_dir_all(&frames_dir).map_err(|source| SynthError::Io {
        path: frames_dir.clone(),
        source,
    })?;
    for (i, frame) in clip.frames.iter().enumerate() {
        let path = frames_dir.join(format!("{i:05}.png"));
        let png = encode_png(frame).map_err(|source| SynthError::Png {
            path: path.clone(),
            source,
        })?;
        bytes += png.len() as u64;
        write_media(&path, &png)?;
    }
    let mut entry = ManifestEntry::new(spec.id.clone(), spec.label, spec.split)
        .with_audio(audio_rel)
        .with_frames(frames_rel);
    if mp4 {
        let video_rel = format!("video/{}.mp4", spec.id);
        bytes += write_video(&out.join(&video_rel), &clip, profile.sample_rate)?;
        entry.video = Some(video_rel.into());
    }
    Ok((entry, bytes))
}

#[cfg(feature = "ffmpeg")]
fn write_video(path: &Path, clip: &RenderedClip, sample_rate: u32) -> Result<u64, SynthError> {
    mmcl_io::write_atomic_with(
        path,
        |tmp| {
            crate::mp4::write_mp4(tmp, &clip.frames, &clip.audio, sample_rate).map_err(|e| {
                SynthError::Mp4 {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })
        },
        |source| SynthError::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|source| SynthError::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(not(feature = "ffmpeg"))]
fn write_video(_path: &Path, _clip: &RenderedClip, _sample_rate: u32) -> Result<u64, SynthError> {
    Err(SynthError::NoFfmpeg)
}

/// 16-bit PCM mono WAV bytes.
pub fn encode_wav(samples: &[f32], sample_rate: u32) -> Result<Vec<u8>, hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(44 + 2 * samples.len()));
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec)?;
        let mut i16w = w.get_i16_writer(samples.len() as u32);
        for s in audio::to_i16(samples) {
            i16w.write_sample(s);
        }
        i16w.flush()?;
        w.finalize()?;
    }
    Ok(cursor.into_inner())
}

/// PNG bytes of a frame.
pub fn encode_png(frame: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut buf = Vec::new();
    frame.write_with_encoder(image::codecs::png::PngEncoder::new(&mut buf))?;
    Ok(buf)
}

/// Writes atomically and durably (mmcl-io's shared writer).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    mmcl_io::write_atomic(path, bytes).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A media file: atomic, made durable by the one `sync_filesystem` before the manifest.
fn write_media(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    mmcl_io::write_atomic_bulk(path, bytes).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Per-class entry of `dataset.json`.
#[derive(Serialize)]
struct ClassReport<'a> {
    #[serde(flatten)]
    signature: &'a ClassSignature,
    super_label: u32,
    train: usize,
    test: usize,
    sound: String,
    look: String,
}

/// Hints for preparing and loading this dataset.
#[derive(Serialize)]
struct LoaderHints {
    /// `mmcl prep --sample-rate`: the WAV rate (no resampling needed).
    sample_rate: u32,
    /// `mmcl prep --clip-seconds`: the clip length.
    clip_seconds: u32,
    /// Audio crop the loader takes (half the clip).
    crop_seconds: f64,
    /// Log-spectrogram shape [freq, time] of one crop (n_fft 256, hop 128).
    spectrogram_shape: [usize; 2],
    frames_per_clip: u32,
    frame_size: u32,
}

/// Per-clip variation applied on top of the class signatures.
#[derive(Serialize)]
struct Variation {
    f0_jitter: f32,
    pulse_rate_jitter: f32,
    background_snr_db: (f32, f32),
    audio_distractor_probability: f64,
    hue_jitter_degrees: f32,
    radius_jitter: f32,
    visual_distractor_probability: f64,
    other: &'static str,
}

/// `dataset.json`.
#[derive(Serialize)]
struct DatasetReport<'a> {
    identity: &'a Identity,
    generator_version: &'static str,
    design_version: u32,
    loader_hints: LoaderHints,
    clips: usize,
    train: usize,
    test: usize,
    variation: Variation,
    classes: Vec<ClassReport<'a>>,
}

impl<'a> DatasetReport<'a> {
    fn new(identity: &'a Identity, signatures: &'a [ClassSignature], manifest: &Manifest) -> Self {
        let p = &identity.profile;
        let counts = manifest.counts();
        let classes = signatures
            .iter()
            .map(|s| {
                let c = counts.get(&s.label).copied().unwrap_or_default();
                let a = &s.audio;
                let v = &s.visual;
                ClassReport {
                    signature: s,
                    super_label: s.supercategory.label(),
                    train: c.train,
                    test: c.test,
                    sound: format!(
                        "{:?} at {:.0} Hz, {} harmonics, {:.1} events/s, noise band {:.0} Hz",
                        a.timbre, a.f0, a.harmonics, a.pulse_rate, a.noise_center
                    )
                    .to_lowercase(),
                    look: format!(
                        "{:?} {:?}, hue {:.0} deg, speed {:.2}/s",
                        v.texture, v.shape, v.hue, v.speed
                    )
                    .to_lowercase(),
                }
            })
            .collect();
        let test = manifest.split(Split::Test).count();
        DatasetReport {
            identity,
            generator_version: env!("CARGO_PKG_VERSION"),
            design_version: crate::DESIGN_VERSION,
            loader_hints: LoaderHints {
                sample_rate: p.sample_rate,
                clip_seconds: p.clip_seconds,
                crop_seconds: p.crop_seconds,
                spectrogram_shape: p.spectrogram_shape(),
                frames_per_clip: p.frames_per_clip(),
                frame_size: p.frame_size,
            },
            clips: manifest.entries.len(),
            train: manifest.entries.len() - test,
            test,
            variation: Variation {
                f0_jitter: audio::F0_JITTER,
                pulse_rate_jitter: audio::RATE_JITTER,
                background_snr_db: audio::SNR_DB,
                audio_distractor_probability: audio::DISTRACTOR_PROB,
                hue_jitter_degrees: visual::HUE_JITTER,
                radius_jitter: visual::RADIUS_JITTER,
                visual_distractor_probability: visual::DISTRACTOR_PROB,
                other: "random onset, FM phase, noise level (x0.7-1.3), peak level (0.3-0.9); object position, \
                        direction, speed (x0.7-1.3), saturation, brightness; random two-colour background gradient; \
                        pixel noise (sigma 0.02-0.08)",
            },
            classes,
        }
    }

    fn to_markdown(&self) -> String {
        let p = &self.identity.profile;
        let h = &self.loader_hints;
        let mut s = format!(
            "# Synthetic MMCL dataset: profile `{}`, seed {}\n\n\
             {} clips ({} train, {} test) of {} s: mono {} Hz 16-bit WAV, {} frames of {}x{} px per clip.\n\
             Loader crop {} s -> log-spectrogram {}x{} (n_fft 256, hop 128).\n\n\
             Each class has an audio and a visual signature. A trait *family* sets the timbre and \
             frequency register (audio) and the colour family, texture and speed (visual); half of \
             the classes carry their supercategory's family, the rest another one's, so the \
             supercategory of a subclass must be learnt per subclass (Dom-IL). Classes listed under \
             *sounds like* share their audio signature, under *looks like* their visual one.\n\n\
             | label | class | supercategory | family | train | test | sound | look | sounds like | looks like |\n\
             |---:|---|---|---|---:|---:|---|---|---|---|\n",
            p.name, self.identity.seed, self.clips, self.train, self.test, p.clip_seconds, p.sample_rate,
            h.frames_per_clip, p.frame_size, p.frame_size, p.crop_seconds, h.spectrogram_shape[0], h.spectrogram_shape[1]
        );
        let list = |v: &[u32]| {
            v.iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for c in &self.classes {
            let sig = c.signature;
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                sig.label,
                sig.name,
                sig.supercategory.name(),
                sig.family.name(),
                c.train,
                c.test,
                c.sound,
                c.look,
                list(&sig.audio_confusable_with),
                list(&sig.visual_confusable_with)
            ));
        }
        s
    }
}
