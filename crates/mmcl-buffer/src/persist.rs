//! Saving and restoring a whole `ReplayBuffer<MemoryItem>` (items, counters and generator
//! state) as one safetensors file, so a resumed run continues exactly.
//!
//! Tensors (N items in slot order, M of them with logits, C classes):
//! `label` u32 [N] (the training target), `sample_rate` u32 [N], `audio_len` u64 [N], `audio` i16 [sum audio_len],
//! `frame_shape` u64 [N, 3] (T, H, W), `frames` u8 [sum T*H*W*3], `origin` u64 [N, 3]
//! (dataset index, class, super_class), `has_logits` u8 [N], `logits` f32 [M, 3, C] (heads
//! audio, visual, fused). Metadata: `format` = `mmcl-replay-buffer`, `version` = `2`,
//! `meta` = [`BufferMeta`] as JSON. (Version 1, without `origin`, is refused: it cannot be
//! completed without inventing data.)

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{BufferError, Result};
use crate::replay::{BufferMeta, ReplayBuffer};
use crate::sample::{MemoryItem, StoredLogits};
use mmcl_data::loader::CompactSample;

const FORMAT: &str = "mmcl-replay-buffer";
const VERSION: &str = "2";

fn le_bytes<T: Copy, const K: usize>(values: &[T], f: impl Fn(T) -> [u8; K]) -> Vec<u8> {
    values.iter().flat_map(|&v| f(v)).collect()
}

fn view<'a>(
    dtype: Dtype,
    shape: Vec<usize>,
    data: &'a [u8],
    path: &Path,
) -> Result<TensorView<'a>> {
    TensorView::new(dtype, shape, data).map_err(|e| BufferError::State {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl ReplayBuffer<MemoryItem> {
    /// Writes items, counters and generator state to `path` (temp file, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let state_err = |reason: String| BufferError::State {
            path: path.to_path_buf(),
            reason,
        };
        let items = self.all();
        let classes = logit_classes(items)?;
        let columns = encode_columns(items, classes);
        let tensors = columns
            .iter()
            .map(|c| Ok((c.name, view(c.dtype, c.shape.clone(), &c.bytes, path)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), FORMAT.to_string());
        metadata.insert("version".to_string(), VERSION.to_string());
        metadata.insert(
            "meta".to_string(),
            serde_json::to_string(&self.meta()).map_err(|e| state_err(e.to_string()))?,
        );
        let bytes = mmcl_io::safetensors_bytes(tensors, Some(metadata))
            .map_err(|e| state_err(e.to_string()))?;
        let io = |source| BufferError::Io {
            path: path.to_path_buf(),
            source,
        };
        mmcl_io::write_atomic(path, &bytes).map_err(io)
    }

    /// Reads a buffer written by [`ReplayBuffer::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bad = |reason: String| BufferError::State {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|source| BufferError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let meta = read_meta(&bytes, path)?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let items = Columns::read(&st, path)?.items(path)?;
        ReplayBuffer::from_parts(meta, items).map_err(|e| bad(e.to_string()))
    }
}

/// Validates every item; returns the number of classes of the stored logits (0 if none),
/// which must be the same for all.
fn logit_classes(items: &[MemoryItem]) -> Result<usize> {
    let mut classes = None;
    for s in items {
        s.validate()?;
        if let Some(l) = &s.logits {
            let c = l.classes()?;
            if *classes.get_or_insert(c) != c {
                return Err(BufferError::BadSample(format!(
                    "stored logits have {c} classes, others {}",
                    classes.unwrap()
                )));
            }
        }
    }
    Ok(classes.unwrap_or(0))
}

/// One tensor of the file, encoded.
struct Column {
    name: &'static str,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The file's tensors for `items` (see the module doc for names, dtypes and shapes).
fn encode_columns(items: &[MemoryItem], classes: usize) -> Vec<Column> {
    let n = items.len();
    let column = |name, dtype, shape, bytes| Column {
        name,
        dtype,
        shape,
        bytes,
    };
    let per_item = |f: fn(&MemoryItem) -> u32| -> Vec<u8> {
        le_bytes(&items.iter().map(f).collect::<Vec<_>>(), u32::to_le_bytes)
    };
    let audio_len: Vec<u64> = items.iter().map(|s| s.sample.audio.len() as u64).collect();
    let audio: Vec<u8> = items
        .iter()
        .flat_map(|s| le_bytes(&s.sample.audio, i16::to_le_bytes))
        .collect();
    let shapes: Vec<u64> = items
        .iter()
        .flat_map(|s| s.sample.frame_shape.map(|d| d as u64))
        .collect();
    let frames: Vec<u8> = items
        .iter()
        .flat_map(|s| s.sample.frames.iter().copied())
        .collect();
    let origins: Vec<u64> = items
        .iter()
        .flat_map(|s| {
            let c = &s.sample;
            [c.index as u64, c.label as u64, c.super_label as u64]
        })
        .collect();
    let has_logits: Vec<u8> = items.iter().map(|s| s.logits.is_some() as u8).collect();
    let m = has_logits.iter().filter(|&&h| h == 1).count();
    let logit_values: Vec<f32> = items
        .iter()
        .filter_map(|s| s.logits.as_ref())
        .flat_map(|l| l.audio.iter().chain(&l.visual).chain(&l.fused).copied())
        .collect();
    vec![
        column("label", Dtype::U32, vec![n], per_item(|s| s.target)),
        column(
            "sample_rate",
            Dtype::U32,
            vec![n],
            per_item(|s| s.sample.sample_rate),
        ),
        column(
            "audio_len",
            Dtype::U64,
            vec![n],
            le_bytes(&audio_len, u64::to_le_bytes),
        ),
        column("audio", Dtype::I16, vec![audio.len() / 2], audio),
        column(
            "frame_shape",
            Dtype::U64,
            vec![n, 3],
            le_bytes(&shapes, u64::to_le_bytes),
        ),
        column("frames", Dtype::U8, vec![frames.len()], frames),
        column(
            "origin",
            Dtype::U64,
            vec![n, 3],
            le_bytes(&origins, u64::to_le_bytes),
        ),
        column("has_logits", Dtype::U8, vec![n], has_logits),
        column(
            "logits",
            Dtype::F32,
            vec![m, 3, classes],
            le_bytes(&logit_values, f32::to_le_bytes),
        ),
    ]
}

/// The buffer's counters and generator state from the file's metadata, after checking it is
/// a replay buffer file of this version.
fn read_meta(bytes: &[u8], path: &Path) -> Result<BufferMeta> {
    let bad = |reason: String| BufferError::State {
        path: path.to_path_buf(),
        reason,
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let md = header.metadata().clone().unwrap_or_default();
    if md.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "not a replay buffer file (metadata format != {FORMAT})"
        )));
    }
    let version = md.get("version").map(String::as_str).unwrap_or("none");
    if version != VERSION {
        return Err(bad(format!(
            "replay buffer format version {version}, this build reads version {VERSION}"
        )));
    }
    serde_json::from_str(md.get("meta").map(String::as_str).unwrap_or(""))
        .map_err(|e| bad(format!("bad meta: {e}")))
}

/// The file's tensors, decoded (frames and flags borrowed from the file's bytes).
struct Columns<'a> {
    label: Vec<u32>,
    rate: Vec<u32>,
    audio_len: Vec<u64>,
    audio: Vec<i16>,
    shapes: Vec<u64>,
    frames: &'a [u8],
    origins: Vec<u64>,
    has_logits: &'a [u8],
    logits: Vec<f32>,
    classes: usize,
}

fn decode<T, const K: usize>(data: &[u8], f: fn([u8; K]) -> T) -> Vec<T> {
    data.chunks_exact(K)
        .map(|c| f(c.try_into().expect("chunks of K bytes")))
        .collect()
}

impl<'a> Columns<'a> {
    /// Reads every tensor with its expected dtype; checks the per-item ones agree on N.
    fn read(st: &'a SafeTensors<'a>, path: &Path) -> Result<Self> {
        let bad = |reason: String| BufferError::State {
            path: path.to_path_buf(),
            reason,
        };
        let get = |name: &str, dtype: Dtype| -> Result<TensorView<'a>> {
            let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
            if t.dtype() != dtype {
                return Err(bad(format!(
                    "{name}: dtype {:?}, expected {dtype:?}",
                    t.dtype()
                )));
            }
            Ok(t)
        };
        // In the file's order, so a malformed file reports its first bad tensor.
        let label = decode(get("label", Dtype::U32)?.data(), u32::from_le_bytes);
        let rate = decode(get("sample_rate", Dtype::U32)?.data(), u32::from_le_bytes);
        let audio_len = decode(get("audio_len", Dtype::U64)?.data(), u64::from_le_bytes);
        let audio = decode(get("audio", Dtype::I16)?.data(), i16::from_le_bytes);
        let shapes = decode(get("frame_shape", Dtype::U64)?.data(), u64::from_le_bytes);
        let frames = get("frames", Dtype::U8)?.data();
        let origins = decode(get("origin", Dtype::U64)?.data(), u64::from_le_bytes);
        let has_logits = get("has_logits", Dtype::U8)?.data();
        let logits_view = get("logits", Dtype::F32)?;
        let classes = *logits_view
            .shape()
            .get(2)
            .ok_or_else(|| bad("logits must be [M, 3, C]".into()))?;
        let c = Columns {
            label,
            rate,
            audio_len,
            audio,
            shapes,
            frames,
            origins,
            has_logits,
            logits: decode(logits_view.data(), f32::from_le_bytes),
            classes,
        };
        let n = c.label.len();
        if c.rate.len() != n
            || c.audio_len.len() != n
            || c.shapes.len() != 3 * n
            || c.origins.len() != 3 * n
            || c.has_logits.len() != n
        {
            return Err(bad(
                "per-item tensors disagree on the number of items".into()
            ));
        }
        Ok(c)
    }

    /// The items in slot order; every byte of audio, frames and logits must belong to one.
    fn items(&self, path: &Path) -> Result<Vec<MemoryItem>> {
        let bad = |reason: String| BufferError::State {
            path: path.to_path_buf(),
            reason,
        };
        let classes = self.classes;
        let (mut a_off, mut f_off, mut l_off) = (0usize, 0usize, 0usize);
        let mut items = Vec::with_capacity(self.label.len());
        for i in 0..self.label.len() {
            let a_len = self.audio_len[i] as usize;
            let shape = [
                self.shapes[3 * i] as usize,
                self.shapes[3 * i + 1] as usize,
                self.shapes[3 * i + 2] as usize,
            ];
            let f_len = shape.iter().product::<usize>() * 3;
            if a_off + a_len > self.audio.len() || f_off + f_len > self.frames.len() {
                return Err(bad(format!(
                    "item {i}: audio or frames run past the end of the data"
                )));
            }
            let stored = if self.has_logits[i] == 1 {
                if l_off + 3 * classes > self.logits.len() {
                    return Err(bad(format!(
                        "item {i}: logits run past the end of the data"
                    )));
                }
                let l = &self.logits[l_off..l_off + 3 * classes];
                l_off += 3 * classes;
                Some(StoredLogits {
                    audio: l[..classes].to_vec(),
                    visual: l[classes..2 * classes].to_vec(),
                    fused: l[2 * classes..].to_vec(),
                })
            } else {
                None
            };
            let origin = &self.origins[3 * i..3 * i + 3];
            let sample = CompactSample {
                index: usize::try_from(origin[0])
                    .map_err(|_| bad(format!("item {i}: dataset index out of range")))?,
                label: u32::try_from(origin[1])
                    .map_err(|_| bad(format!("item {i}: class out of range")))?,
                super_label: u32::try_from(origin[2])
                    .map_err(|_| bad(format!("item {i}: super_class out of range")))?,
                audio: self.audio[a_off..a_off + a_len].to_vec(),
                sample_rate: self.rate[i],
                frames: self.frames[f_off..f_off + f_len].to_vec(),
                frame_shape: shape,
            };
            items.push(MemoryItem {
                sample: sample.into(),
                target: self.label[i],
                logits: stored,
            });
            a_off += a_len;
            f_off += f_len;
        }
        if a_off != self.audio.len() || f_off != self.frames.len() || l_off != self.logits.len() {
            return Err(bad("trailing data after the last item".into()));
        }
        Ok(items)
    }
}
