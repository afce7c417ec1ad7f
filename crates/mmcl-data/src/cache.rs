//! The preprocessing cache: decoded clips in safetensors shards, opened through mmap.
//!
//! Layout of a cache directory (format version [`FORMAT_VERSION`]):
//!
//! ```text
//! CACHE/
//!   cache.json                      header: format, version, manifest sha256, options, shard list
//!   report.json                     the prep report: usable/skipped counts per class and per reason
//!   CACHE.md                        this description, for people who open the cache by hand
//!   shards/shard-00000.safetensors  manifest rows [0, shard_clips), in manifest order
//!   shards/shard-00001.safetensors  manifest rows [shard_clips, 2*shard_clips), ...
//!   .tmp/                           shards being written (temp + rename); removed on resume
//! ```
//!
//! Each shard holds, for every usable clip `ID` of its manifest rows:
//!
//! | tensor        | dtype | shape          | content |
//! |---------------|-------|----------------|---------|
//! | `audio/ID`    | I16   | `[L]`          | mono waveform at `options.sample_rate`, tiled (repeated) until at least `L = options.clip_samples` samples long, then cut to exactly `L`; value = sample * 32768, saturated (the 16-bit PCM the reference reads, unchanged when the source already is 16-bit PCM at the target rate) |
//! | `frames/ID`   | U8    | `[T, H, W, 3]` | all `T >= options.min_frames` frames of the clip, RGB, in time order; resized so the shorter side is `options.frame_size` when it was larger (never upscaled; `frame_size` 0 keeps the native size) |
//!
//! and in its safetensors `__metadata__` (all values are strings, JSON where structured):
//! `format` = `mmcl-cache-shard`, `version`, `manifest_sha256`, `options` (JSON
//! [`CacheOptions`]), `first_row`, `rows`, `clips` (JSON array of [`ClipRecord`], the usable
//! clips in manifest order) and `skipped` (JSON array of [`SkipRecord`]).
//!
//! Python: `safetensors.safe_open("shards/shard-00000.safetensors", "np")`, then
//! `f.metadata()["clips"]` lists the clips and `f.get_tensor("audio/" + id) / 32768.0` is the
//! waveform the reference's librosa load returns.
//!
//! A sample index (as used by [`crate::loader::Loader`]) is the position of a usable clip in
//! manifest order across all shards; [`Cache::records`] lists them.
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CacheError, Result};
use crate::manifest::Split;

/// Version of the on-disk layout described in the module doc.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the cache header file.
pub const HEADER_FILE: &str = "cache.json";
/// Name of the prep report file.
pub const REPORT_FILE: &str = "report.json";
/// Name of the human-readable description written into every cache.
pub const README_FILE: &str = "CACHE.md";
/// Directory holding the shards.
pub const SHARD_DIR: &str = "shards";
/// Directory holding shards while they are written.
pub const TMP_DIR: &str = ".tmp";

const SHARD_FORMAT: &str = "mmcl-cache-shard";
const HEADER_FORMAT: &str = "mmcl-cache";

/// What a cache was built with. Two runs of `prep` on one cache directory must agree on
/// every field (otherwise resuming would mix incompatible shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheOptions {
    /// Audio sample rate of the stored waveforms, Hz.
    pub sample_rate: u32,
    /// Stored waveform length in samples (clip seconds x sample rate; reference: 10 s).
    pub clip_samples: usize,
    /// Shorter side of the stored frames (larger frames are downscaled); 0 = native size.
    pub frame_size: u32,
    /// A clip is usable only with at least this many frames (= frames per clip T; the
    /// reference needs more than 3 frames, i.e. 4).
    pub min_frames: usize,
    /// Manifest rows per shard.
    pub shard_clips: usize,
    /// Which frames are taken from video files (manifests with MP4 instead of frame
    /// folders); caches from before this field was recorded read as the reference's rule.
    #[serde(default, with = "frame_sampling_text")]
    pub video_frames: mmcl_media::frames::FrameSampling,
}

/// `FrameSampling` as its text form (`reference`, `fps=1`) in the cache header.
mod frame_sampling_text {
    use mmcl_media::frames::FrameSampling;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &FrameSampling, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FrameSampling, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl CacheOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.sample_rate == 0
            || self.clip_samples == 0
            || self.min_frames == 0
            || self.shard_clips == 0
        {
            return Err(CacheError::Config(format!(
                "sample_rate, clip_samples, min_frames and shard_clips must be positive: {self:?}"
            )));
        }
        Ok(())
    }
}

/// One usable clip of the cache (also the JSON element of a shard's `clips` metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipRecord {
    /// Clip id from the manifest (tensor names are `audio/ID` and `frames/ID`).
    pub id: String,
    /// Row of the clip in the manifest (0-based, header excluded).
    pub row: usize,
    /// Class label (0..100 for MMCL-VGGSound).
    pub label: u32,
    pub class_name: String,
    /// Supercategory label (fixed mapping; the Domain-IL target).
    pub super_label: u32,
    pub supercategory: String,
    /// Split name as in the manifest (`train` / `test`).
    pub split: String,
    /// Number of stored frames T.
    pub frames: usize,
    /// Stored frame height and width.
    pub height: usize,
    pub width: usize,
}

/// A clip that `prep` could not use, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipRecord {
    pub id: String,
    pub row: usize,
    pub label: u32,
    pub class_name: String,
    pub split: String,
    /// Short machine-readable reason (see [`crate::prep::SkipReason`]).
    pub reason: String,
    /// Human-readable detail (the underlying error, naming the file).
    pub detail: String,
}

/// One shard in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the cache directory.
    pub file: String,
    pub first_row: usize,
    pub rows: usize,
    pub clips: usize,
    pub skipped: usize,
}

/// Contents of `cache.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheHeader {
    pub format: String,
    pub version: u32,
    /// False while `prep` is running or after it was interrupted.
    pub complete: bool,
    /// SHA-256 (hex) of the manifest file's bytes.
    pub manifest_sha256: String,
    /// Manifest path as given to `prep` (informational only).
    pub manifest_path: String,
    pub options: CacheOptions,
    /// Number of manifest rows.
    pub rows: usize,
    pub clips: usize,
    pub skipped: usize,
    pub shards: Vec<ShardEntry>,
}

impl CacheHeader {
    pub(crate) fn new(
        manifest_sha256: String,
        manifest_path: String,
        options: CacheOptions,
        rows: usize,
    ) -> Self {
        CacheHeader {
            format: HEADER_FORMAT.into(),
            version: FORMAT_VERSION,
            complete: false,
            manifest_sha256,
            manifest_path,
            options,
            rows,
            clips: 0,
            skipped: 0,
            shards: Vec::new(),
        }
    }

    /// Reads `DIR/cache.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(HEADER_FILE);
        let text = fs::read_to_string(&path).map_err(|e| CacheError::io(&path, e))?;
        let header: CacheHeader =
            serde_json::from_str(&text).map_err(|e| CacheError::Metadata {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if header.format != HEADER_FORMAT || header.version != FORMAT_VERSION {
            return Err(CacheError::Metadata {
                path,
                reason: format!(
                    "format {} version {} (this build reads {HEADER_FORMAT} version {FORMAT_VERSION})",
                    header.format, header.version
                ),
            });
        }
        Ok(header)
    }

    /// Writes `DIR/cache.json` atomically.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("header serialises");
        write_atomic(&dir.join(HEADER_FILE), text.as_bytes())
    }
}

/// SHA-256 (lowercase hex) of a file's bytes: the identity that ties a cache to its manifest.
pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| CacheError::io(path, e))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` atomically and durably (mmcl-io's shared writer).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    mmcl_io::write_atomic(path, bytes).map_err(|e| CacheError::io(path, e))
}

/// File name of shard `k`.
pub fn shard_file_name(k: usize) -> String {
    format!("shard-{k:05}.safetensors")
}

/// A decoded clip ready to be written: the waveform (little-endian i16 bytes) and frames.
#[derive(Debug, Clone)]
pub(crate) struct PreparedClip {
    pub record: ClipRecord,
    /// `clip_samples` i16 values, little-endian.
    pub audio_le: Vec<u8>,
    /// `[T, H, W, 3]` u8.
    pub frames: Vec<u8>,
}

/// Identity of the shard being written (goes into its metadata).
pub(crate) struct ShardIdentity<'a> {
    pub manifest_sha256: &'a str,
    pub options: &'a CacheOptions,
    pub first_row: usize,
    pub rows: usize,
}

/// Writes one shard atomically: into `DIR/.tmp/`, then renamed into `DIR/shards/`.
pub(crate) fn write_shard(
    dir: &Path,
    k: usize,
    id: &ShardIdentity<'_>,
    clips: &[PreparedClip],
    skipped: &[SkipRecord],
) -> Result<()> {
    let name = shard_file_name(k);
    let tmp_dir = dir.join(TMP_DIR);
    fs::create_dir_all(&tmp_dir).map_err(|e| CacheError::io(&tmp_dir, e))?;
    let tmp = tmp_dir.join(&name);
    let fin = dir.join(SHARD_DIR).join(&name);

    let records: Vec<&ClipRecord> = clips.iter().map(|c| &c.record).collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), SHARD_FORMAT.to_string());
    meta.insert("version".to_string(), FORMAT_VERSION.to_string());
    meta.insert(
        "manifest_sha256".to_string(),
        id.manifest_sha256.to_string(),
    );
    meta.insert(
        "options".to_string(),
        serde_json::to_string(id.options).expect("options serialise"),
    );
    meta.insert("first_row".to_string(), id.first_row.to_string());
    meta.insert("rows".to_string(), id.rows.to_string());
    meta.insert(
        "clips".to_string(),
        serde_json::to_string(&records).expect("records serialise"),
    );
    meta.insert(
        "skipped".to_string(),
        serde_json::to_string(skipped).expect("records serialise"),
    );

    let shapes: Vec<([usize; 1], [usize; 4])> = clips
        .iter()
        .map(|c| {
            let r = &c.record;
            ([c.audio_le.len() / 2], [r.frames, r.height, r.width, 3])
        })
        .collect();
    let mut views = Vec::with_capacity(clips.len() * 2);
    for (c, (ashape, fshape)) in clips.iter().zip(&shapes) {
        let shard_err = |e: safetensors::SafeTensorError| CacheError::Shard {
            path: tmp.clone(),
            reason: format!("clip {}: {e}", c.record.id),
        };
        views.push((
            format!("audio/{}", c.record.id),
            TensorView::new(Dtype::I16, ashape.to_vec(), &c.audio_le).map_err(shard_err)?,
        ));
        views.push((
            format!("frames/{}", c.record.id),
            TensorView::new(Dtype::U8, fshape.to_vec(), &c.frames).map_err(shard_err)?,
        ));
    }
    // Sorted header: the same clips give the same shard bytes on every prep.
    let bytes = mmcl_io::safetensors_bytes(views, Some(meta)).map_err(|e| CacheError::Shard {
        path: tmp.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&tmp, &bytes)?;
    mmcl_io::rename_durable(&tmp, &fin).map_err(|e| CacheError::io(&fin, e))
}

/// What a shard's metadata says (read without touching its tensor data).
#[derive(Debug, Clone)]
pub(crate) struct ShardMeta {
    pub manifest_sha256: String,
    pub options: CacheOptions,
    pub first_row: usize,
    pub rows: usize,
    pub clips: Vec<ClipRecord>,
    pub skipped: Vec<SkipRecord>,
}

fn parse_shard_meta<'a>(path: &Path, bytes: &'a [u8]) -> Result<(ShardMeta, SafeTensors<'a>)> {
    let bad = |reason: String| CacheError::Shard {
        path: path.to_path_buf(),
        reason,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let meta = metadata
        .metadata()
        .as_ref()
        .ok_or_else(|| bad("no __metadata__".into()))?;
    let get = |key: &str| {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("metadata key {key} missing")))
    };
    if get("format")? != SHARD_FORMAT || get("version")? != FORMAT_VERSION.to_string() {
        return Err(bad(format!(
            "format {} version {} (this build reads {SHARD_FORMAT} version {FORMAT_VERSION})",
            get("format")?,
            get("version")?
        )));
    }
    let json_err = |key: &str, e: serde_json::Error| bad(format!("metadata {key}: {e}"));
    let num = |key: &str| -> Result<usize> {
        get(key)?
            .parse()
            .map_err(|e| bad(format!("metadata {key}: {e}")))
    };
    let m = ShardMeta {
        manifest_sha256: get("manifest_sha256")?.to_string(),
        options: serde_json::from_str(get("options")?).map_err(|e| json_err("options", e))?,
        first_row: num("first_row")?,
        rows: num("rows")?,
        clips: serde_json::from_str(get("clips")?).map_err(|e| json_err("clips", e))?,
        skipped: serde_json::from_str(get("skipped")?).map_err(|e| json_err("skipped", e))?,
    };
    Ok((m, st))
}

/// Reads and validates only the metadata of a finished shard (used when resuming).
pub(crate) fn read_shard_meta(path: &Path) -> Result<ShardMeta> {
    let file = fs::File::open(path).map_err(|e| CacheError::io(path, e))?;
    // SAFETY: shards are immutable once renamed into place; we only read.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| CacheError::io(path, e))?;
    Ok(parse_shard_meta(path, &map)?.0)
}

/// Byte ranges of one clip inside its shard's mmap.
#[derive(Debug, Clone)]
struct ClipLocation {
    shard: usize,
    audio: Range<usize>,
    frames: Range<usize>,
}

/// The frames of one cached clip, borrowed from the mmap: u8 `[frames, height, width, 3]`.
#[derive(Debug, Clone, Copy)]
pub struct FramesView<'a> {
    pub data: &'a [u8],
    pub frames: usize,
    pub height: usize,
    pub width: usize,
}

impl<'a> FramesView<'a> {
    /// Frame `t` as packed RGB rows (`height * width * 3` bytes).
    pub fn frame(&self, t: usize) -> &'a [u8] {
        let n = self.height * self.width * 3;
        &self.data[t * n..(t + 1) * n]
    }
}

/// An opened, complete cache: header, one read-only mmap per shard, and the clip index.
pub struct Cache {
    dir: PathBuf,
    header: CacheHeader,
    maps: Vec<Mmap>,
    records: Vec<ClipRecord>,
    locations: Vec<ClipLocation>,
    skipped: Vec<SkipRecord>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("dir", &self.dir)
            .field("clips", &self.records.len())
            .field("shards", &self.maps.len())
            .finish()
    }
}

impl Cache {
    /// Opens a cache built by `prep`. Fails if it is incomplete or a shard is invalid.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let header = CacheHeader::read(&dir)?;
        if !header.complete {
            return Err(CacheError::Incomplete { path: dir });
        }
        let mut maps = Vec::with_capacity(header.shards.len());
        let mut records = Vec::with_capacity(header.clips);
        let mut locations = Vec::with_capacity(header.clips);
        let mut skipped = Vec::with_capacity(header.skipped);
        for (k, entry) in header.shards.iter().enumerate() {
            let path = dir.join(&entry.file);
            let file = fs::File::open(&path).map_err(|e| CacheError::io(&path, e))?;
            // SAFETY: shards are never modified after the atomic rename that created them.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| CacheError::io(&path, e))?;
            {
                let (meta, st) = parse_shard_meta(&path, &map)?;
                let bad = |reason: String| CacheError::Shard {
                    path: path.clone(),
                    reason,
                };
                if meta.manifest_sha256 != header.manifest_sha256 || meta.options != header.options
                {
                    return Err(bad(
                        "shard belongs to another manifest or other options than cache.json".into(),
                    ));
                }
                for rec in meta.clips {
                    let audio = tensor_range(
                        &st,
                        &format!("audio/{}", rec.id),
                        Dtype::I16,
                        &[header.options.clip_samples],
                        &map,
                    )
                    .map_err(bad)?;
                    let frames = tensor_range(
                        &st,
                        &format!("frames/{}", rec.id),
                        Dtype::U8,
                        &[rec.frames, rec.height, rec.width, 3],
                        &map,
                    )
                    .map_err(bad)?;
                    locations.push(ClipLocation {
                        shard: k,
                        audio,
                        frames,
                    });
                    records.push(rec);
                }
                skipped.extend(meta.skipped);
            }
            maps.push(map);
        }
        Ok(Cache {
            dir,
            header,
            maps,
            records,
            locations,
            skipped,
        })
    }

    /// Opens a cache and checks that it was built from the manifest file `manifest`.
    pub fn open_for_manifest(dir: impl AsRef<Path>, manifest: &Path) -> Result<Self> {
        let cache = Self::open(dir)?;
        let current = file_sha256(manifest)?;
        if current != cache.header.manifest_sha256 {
            return Err(CacheError::ManifestMismatch {
                cache: cache.dir.clone(),
                manifest: manifest.to_path_buf(),
                cached: cache.header.manifest_sha256.clone(),
                current,
            });
        }
        Ok(cache)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn header(&self) -> &CacheHeader {
        &self.header
    }
    pub fn options(&self) -> &CacheOptions {
        &self.header.options
    }
    /// Number of usable clips (sample indices are `0..len()`).
    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// Usable clips in manifest order; position = sample index.
    pub fn records(&self) -> &[ClipRecord] {
        &self.records
    }
    /// Clips that prep skipped, with reasons.
    pub fn skipped(&self) -> &[SkipRecord] {
        &self.skipped
    }

    pub fn record(&self, index: usize) -> Result<&ClipRecord> {
        self.records.get(index).ok_or(CacheError::IndexOutOfRange {
            index,
            len: self.records.len(),
        })
    }

    /// Label of a sample.
    pub fn label(&self, index: usize) -> Result<u32> {
        Ok(self.record(index)?.label)
    }

    /// The stored waveform of a sample as little-endian i16 bytes (`clip_samples * 2`).
    pub fn audio_le_bytes(&self, index: usize) -> Result<&[u8]> {
        self.record(index)?;
        let loc = &self.locations[index];
        Ok(&self.maps[loc.shard][loc.audio.clone()])
    }

    /// Copies `out.len()` samples of a sample's waveform starting at `start` as i16.
    pub fn audio_i16(&self, index: usize, start: usize, out: &mut [i16]) -> Result<()> {
        let bytes = self.audio_slice(index, start, out.len())?;
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *o = i16::from_le_bytes([b[0], b[1]]);
        }
        Ok(())
    }

    /// Copies `out.len()` samples of a sample's waveform starting at `start` as f32 in
    /// [-1, 1) (i16 / 32768, as librosa/soundfile read 16-bit PCM).
    pub fn audio_f32(&self, index: usize, start: usize, out: &mut [f32]) -> Result<()> {
        let bytes = self.audio_slice(index, start, out.len())?;
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *o = i16::from_le_bytes([b[0], b[1]]) as f32 * (1.0 / 32768.0);
        }
        Ok(())
    }

    fn audio_slice(&self, index: usize, start: usize, len: usize) -> Result<&[u8]> {
        let all = self.audio_le_bytes(index)?;
        let total = all.len() / 2;
        if start + len > total {
            return Err(CacheError::Config(format!(
                "audio window {start}..{} is outside the stored {total} samples",
                start + len
            )));
        }
        Ok(&all[start * 2..(start + len) * 2])
    }

    /// The stored frames of a sample, borrowed from the mmap.
    pub fn frames(&self, index: usize) -> Result<FramesView<'_>> {
        let rec = self.record(index)?;
        let loc = &self.locations[index];
        Ok(FramesView {
            data: &self.maps[loc.shard][loc.frames.clone()],
            frames: rec.frames,
            height: rec.height,
            width: rec.width,
        })
    }

    /// Sample indices of one split, in manifest order.
    pub fn indices_in_split(&self, split: Split) -> Vec<usize> {
        self.indices_where(|r| r.split == split.as_str())
    }

    /// Sample indices whose record satisfies `keep`, in manifest order.
    pub fn indices_where(&self, mut keep: impl FnMut(&ClipRecord) -> bool) -> Vec<usize> {
        (0..self.records.len())
            .filter(|&i| keep(&self.records[i]))
            .collect()
    }

    /// Sample indices of one split grouped by class label (each list in manifest order).
    pub fn indices_by_class(&self, split: Split) -> BTreeMap<u32, Vec<usize>> {
        let mut map: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.records.iter().enumerate() {
            if r.split == split.as_str() {
                map.entry(r.label).or_default().push(i);
            }
        }
        map
    }

    /// Sample indices of one split grouped by supercategory label.
    pub fn indices_by_super_label(&self, split: Split) -> BTreeMap<u32, Vec<usize>> {
        let mut map: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.records.iter().enumerate() {
            if r.split == split.as_str() {
                map.entry(r.super_label).or_default().push(i);
            }
        }
        map
    }

    /// Class names by label, as recorded in the cache (labels without usable clips are absent).
    pub fn class_names(&self) -> BTreeMap<u32, String> {
        self.records
            .iter()
            .map(|r| (r.label, r.class_name.clone()))
            .collect()
    }
}

fn tensor_range(
    st: &SafeTensors<'_>,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    map: &[u8],
) -> std::result::Result<Range<usize>, String> {
    let view = st.tensor(name).map_err(|e| format!("tensor {name}: {e}"))?;
    if view.dtype() != dtype || view.shape() != shape {
        return Err(format!(
            "tensor {name} is {:?} {:?}, expected {dtype:?} {shape:?}",
            view.dtype(),
            view.shape()
        ));
    }
    // The view borrows from `map`; turn it into a range so the cache stays self-contained.
    let start = view.data().as_ptr() as usize - map.as_ptr() as usize;
    Ok(start..start + view.data().len())
}
