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
        let n = items.len();
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
        let classes = classes.unwrap_or(0);
        let label = le_bytes(
            &items.iter().map(|s| s.target).collect::<Vec<_>>(),
            u32::to_le_bytes,
        );
        let rate = le_bytes(
            &items
                .iter()
                .map(|s| s.sample.sample_rate)
                .collect::<Vec<_>>(),
            u32::to_le_bytes,
        );
        let audio_len = le_bytes(
            &items
                .iter()
                .map(|s| s.sample.audio.len() as u64)
                .collect::<Vec<_>>(),
            u64::to_le_bytes,
        );
        let audio: Vec<u8> = items
            .iter()
            .flat_map(|s| le_bytes(&s.sample.audio, i16::to_le_bytes))
            .collect();
        let shapes: Vec<u64> = items
            .iter()
            .flat_map(|s| s.sample.frame_shape.map(|d| d as u64))
            .collect();
        let frame_shape = le_bytes(&shapes, u64::to_le_bytes);
        let frames: Vec<u8> = items
            .iter()
            .flat_map(|s| s.sample.frames.iter().copied())
            .collect();
        let origins: Vec<u64> = items
            .iter()
            .flat_map(|s| {
                [
                    s.sample.index as u64,
                    s.sample.label as u64,
                    s.sample.super_label as u64,
                ]
            })
            .collect();
        let origin = le_bytes(&origins, u64::to_le_bytes);
        let has_logits: Vec<u8> = items.iter().map(|s| s.logits.is_some() as u8).collect();
        let m = has_logits.iter().filter(|&&h| h == 1).count();
        let logit_values: Vec<f32> = items
            .iter()
            .filter_map(|s| s.logits.as_ref())
            .flat_map(|l| l.audio.iter().chain(&l.visual).chain(&l.fused).copied())
            .collect();
        let logits = le_bytes(&logit_values, f32::to_le_bytes);
        let tensors = vec![
            ("label", view(Dtype::U32, vec![n], &label, path)?),
            ("sample_rate", view(Dtype::U32, vec![n], &rate, path)?),
            ("audio_len", view(Dtype::U64, vec![n], &audio_len, path)?),
            (
                "audio",
                view(Dtype::I16, vec![audio.len() / 2], &audio, path)?,
            ),
            (
                "frame_shape",
                view(Dtype::U64, vec![n, 3], &frame_shape, path)?,
            ),
            (
                "frames",
                view(Dtype::U8, vec![frames.len()], &frames, path)?,
            ),
            ("origin", view(Dtype::U64, vec![n, 3], &origin, path)?),
            ("has_logits", view(Dtype::U8, vec![n], &has_logits, path)?),
            (
                "logits",
                view(Dtype::F32, vec![m, 3, classes], &logits, path)?,
            ),
        ];
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
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
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
        let meta: BufferMeta =
            serde_json::from_str(md.get("meta").map(String::as_str).unwrap_or(""))
                .map_err(|e| bad(format!("bad meta: {e}")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let get = |name: &str, dtype: Dtype| -> Result<TensorView<'_>> {
            let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
            if t.dtype() != dtype {
                return Err(bad(format!(
                    "{name}: dtype {:?}, expected {dtype:?}",
                    t.dtype()
                )));
            }
            Ok(t)
        };
        let label: Vec<u32> = get("label", Dtype::U32)?
            .data()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let n = label.len();
        let rate: Vec<u32> = get("sample_rate", Dtype::U32)?
            .data()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let audio_len: Vec<u64> = get("audio_len", Dtype::U64)?
            .data()
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let audio: Vec<i16> = get("audio", Dtype::I16)?
            .data()
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let shapes: Vec<u64> = get("frame_shape", Dtype::U64)?
            .data()
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let frames = get("frames", Dtype::U8)?.data();
        let origins: Vec<u64> = get("origin", Dtype::U64)?
            .data()
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let has_logits = get("has_logits", Dtype::U8)?.data();
        let logits_view = get("logits", Dtype::F32)?;
        let classes = *logits_view
            .shape()
            .get(2)
            .ok_or_else(|| bad("logits must be [M, 3, C]".into()))?;
        let logits: Vec<f32> = logits_view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if rate.len() != n
            || audio_len.len() != n
            || shapes.len() != 3 * n
            || origins.len() != 3 * n
            || has_logits.len() != n
        {
            return Err(bad(
                "per-item tensors disagree on the number of items".into()
            ));
        }
        let (mut a_off, mut f_off, mut l_off) = (0usize, 0usize, 0usize);
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            let a_len = audio_len[i] as usize;
            let shape = [
                shapes[3 * i] as usize,
                shapes[3 * i + 1] as usize,
                shapes[3 * i + 2] as usize,
            ];
            let f_len = shape.iter().product::<usize>() * 3;
            if a_off + a_len > audio.len() || f_off + f_len > frames.len() {
                return Err(bad(format!(
                    "item {i}: audio or frames run past the end of the data"
                )));
            }
            let stored = if has_logits[i] == 1 {
                if l_off + 3 * classes > logits.len() {
                    return Err(bad(format!(
                        "item {i}: logits run past the end of the data"
                    )));
                }
                let l = &logits[l_off..l_off + 3 * classes];
                l_off += 3 * classes;
                Some(StoredLogits {
                    audio: l[..classes].to_vec(),
                    visual: l[classes..2 * classes].to_vec(),
                    fused: l[2 * classes..].to_vec(),
                })
            } else {
                None
            };
            let sample = CompactSample {
                index: usize::try_from(origins[3 * i])
                    .map_err(|_| bad(format!("item {i}: dataset index out of range")))?,
                label: u32::try_from(origins[3 * i + 1])
                    .map_err(|_| bad(format!("item {i}: class out of range")))?,
                super_label: u32::try_from(origins[3 * i + 2])
                    .map_err(|_| bad(format!("item {i}: super_class out of range")))?,
                audio: audio[a_off..a_off + a_len].to_vec(),
                sample_rate: rate[i],
                frames: frames[f_off..f_off + f_len].to_vec(),
                frame_shape: shape,
            };
            items.push(MemoryItem {
                sample: sample.into(),
                target: label[i],
                logits: stored,
            });
            a_off += a_len;
            f_off += f_len;
        }
        if a_off != audio.len() || f_off != frames.len() || l_off != logits.len() {
            return Err(bad("trailing data after the last item".into()));
        }
        ReplayBuffer::from_parts(meta, items).map_err(|e| bad(e.to_string()))
    }
}
