//! The replay memory of ER and SAMM: reservoir sampling over the whole stream of compact,
//! un-augmented samples (from [`mmcl_data::loader::CompactSample`]), their targets and, for
//! SAMM, the three heads' logits from the training pass at insertion (never refreshed).
//!
//! Reservoir (Vitter's algorithm R, as mammoth): the `n`-th sample of the stream (0-based)
//! is stored while the memory is not full; afterwards it replaces a uniformly chosen slot
//! `j` drawn in `0..=n` when `j < capacity`. Saved as one safetensors file (stacked arrays,
//! documented in [`Memory::save`]) so a resumed run continues with the same memory.

use std::collections::HashMap;
use std::path::Path;

use mmcl_data::loader::CompactSample;
use rand::Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{MethodError, Result};

/// One stored sample.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryItem {
    pub sample: CompactSample,
    /// Training target under the scenario (class, or supercategory for Dom).
    pub target: u32,
    /// Logits of the audio, visual and fused heads at insertion (SAMM), each `[C]`.
    pub logits: Option<[Vec<f32>; 3]>,
}

/// Reservoir replay memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    capacity: usize,
    seen: u64,
    items: Vec<MemoryItem>,
}

impl Memory {
    pub fn new(capacity: usize) -> Self {
        Memory {
            capacity,
            seen: 0,
            items: Vec::with_capacity(capacity.min(1 << 16)),
        }
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Samples of the stream offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }
    pub fn items(&self) -> &[MemoryItem] {
        &self.items
    }

    /// Offer one sample of the stream (reservoir sampling).
    pub fn add<R: Rng>(&mut self, item: MemoryItem, rng: &mut R) {
        if self.capacity == 0 {
            self.seen += 1;
            return;
        }
        if self.items.len() < self.capacity {
            self.items.push(item);
        } else {
            let j = rng.random_range(0..=self.seen);
            if (j as usize) < self.capacity {
                self.items[j as usize] = item;
            }
        }
        self.seen += 1;
    }

    /// `min(n, len)` distinct items chosen uniformly.
    pub fn sample<R: Rng>(&self, n: usize, rng: &mut R) -> Vec<&MemoryItem> {
        let k = n.min(self.items.len());
        rand::seq::index::sample(rng, self.items.len(), k)
            .into_iter()
            .map(|i| &self.items[i])
            .collect()
    }

    /// Write the memory as safetensors: `audio` i16 `[N, L]`, `frames` u8 `[N, T, S, S, 3]`,
    /// `index` i64, `label`, `super_label`, `target` u32 `[N]`, and `logits` f32 `[N, 3, C]`
    /// (audio, visual, fused) when stored; metadata `capacity`, `seen`. Atomic.
    pub fn save(&self, path: &Path) -> Result<()> {
        let n = self.items.len();
        let mut meta = HashMap::new();
        meta.insert("capacity".to_string(), self.capacity.to_string());
        meta.insert("seen".to_string(), self.seen.to_string());
        let audio_len = self.items.first().map_or(0, |it| it.sample.audio.len());
        let frames_shape = self
            .items
            .first()
            .map_or([0; 4], |it| it.sample.frames_shape);
        let classes = self
            .items
            .first()
            .and_then(|it| it.logits.as_ref())
            .map(|l| l[0].len());
        for it in &self.items {
            if it.sample.audio.len() != audio_len
                || it.sample.frames_shape != frames_shape
                || it.logits.as_ref().map(|l| l[0].len()) != classes
            {
                return Err(MethodError::State {
                    path: path.to_owned(),
                    reason: "memory items differ in shape".into(),
                });
            }
        }
        let audio: Vec<u8> = self
            .items
            .iter()
            .flat_map(|it| it.sample.audio.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        let frames: Vec<u8> = self
            .items
            .iter()
            .flat_map(|it| it.sample.frames.iter().copied())
            .collect();
        let u32s = |f: &dyn Fn(&MemoryItem) -> u32| -> Vec<u8> {
            self.items
                .iter()
                .flat_map(|it| f(it).to_le_bytes())
                .collect()
        };
        let index: Vec<u8> = self
            .items
            .iter()
            .flat_map(|it| (it.sample.index as i64).to_le_bytes())
            .collect();
        let label = u32s(&|it| it.sample.label);
        let super_label = u32s(&|it| it.sample.super_label);
        let target = u32s(&|it| it.target);
        let mut views: Vec<(String, TensorView)> = vec![
            (
                "audio".into(),
                view(Dtype::I16, vec![n, audio_len], &audio, path)?,
            ),
            (
                "frames".into(),
                view(
                    Dtype::U8,
                    [n].into_iter().chain(frames_shape).collect(),
                    &frames,
                    path,
                )?,
            ),
            ("index".into(), view(Dtype::I64, vec![n], &index, path)?),
            ("label".into(), view(Dtype::U32, vec![n], &label, path)?),
            (
                "super_label".into(),
                view(Dtype::U32, vec![n], &super_label, path)?,
            ),
            ("target".into(), view(Dtype::U32, vec![n], &target, path)?),
        ];
        let logits: Vec<u8>;
        if let Some(c) = classes {
            logits = self
                .items
                .iter()
                .flat_map(|it| {
                    it.logits
                        .as_ref()
                        .expect("checked")
                        .iter()
                        .flat_map(|l| l.iter().flat_map(|v| v.to_le_bytes()))
                })
                .collect();
            views.push((
                "logits".into(),
                view(Dtype::F32, vec![n, 3, c], &logits, path)?,
            ));
        }
        let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| MethodError::State {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        crate::write_atomic(path, &bytes)
    }

    /// Read a memory written by [`Memory::save`].
    pub fn load(path: &Path) -> Result<Memory> {
        let bad = |reason: String| MethodError::State {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| MethodError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let meta = metadata.metadata().clone().unwrap_or_default();
        let num = |k: &str| -> Result<u64> {
            meta.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("metadata `{k}` missing")))
        };
        let capacity = num("capacity")? as usize;
        let seen = num("seen")?;
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
        let audio = get("audio", Dtype::I16)?;
        let frames = get("frames", Dtype::U8)?;
        let n = audio.shape()[0];
        let audio_len = audio.shape()[1];
        let fshape: [usize; 4] = frames.shape()[1..]
            .try_into()
            .map_err(|_| bad("frames must be 5-d".into()))?;
        let fsize: usize = fshape.iter().product();
        let u32v = |name: &str| -> Result<Vec<u32>> {
            Ok(get(name, Dtype::U32)?
                .data()
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
                .collect())
        };
        let label = u32v("label")?;
        let super_label = u32v("super_label")?;
        let target = u32v("target")?;
        let index: Vec<i64> = get("index", Dtype::I64)?
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let logits = match st.tensor("logits") {
            Ok(t) => {
                let c = t.shape()[2];
                let v: Vec<f32> = t
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect();
                Some((c, v))
            }
            Err(_) => None,
        };
        if [
            label.len(),
            super_label.len(),
            target.len(),
            index.len(),
            frames.shape()[0],
        ]
        .iter()
        .any(|&l| l != n)
        {
            return Err(bad("tensors disagree on the number of items".into()));
        }
        let a = audio.data();
        let f = frames.data();
        let items = (0..n)
            .map(|i| MemoryItem {
                sample: CompactSample {
                    index: index[i] as usize,
                    label: label[i],
                    super_label: super_label[i],
                    audio: a[i * audio_len * 2..(i + 1) * audio_len * 2]
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect(),
                    frames: f[i * fsize..(i + 1) * fsize].to_vec(),
                    frames_shape: fshape,
                },
                target: target[i],
                logits: logits.as_ref().map(|(c, v)| {
                    let row = &v[i * 3 * c..(i + 1) * 3 * c];
                    [
                        row[..*c].to_vec(),
                        row[*c..2 * c].to_vec(),
                        row[2 * c..].to_vec(),
                    ]
                }),
            })
            .collect();
        Ok(Memory {
            capacity,
            seen,
            items,
        })
    }
}

fn view<'a>(
    dtype: Dtype,
    shape: Vec<usize>,
    data: &'a [u8],
    path: &Path,
) -> Result<TensorView<'a>> {
    TensorView::new(dtype, shape, data).map_err(|e| MethodError::State {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn item(i: usize, logits: bool) -> MemoryItem {
        MemoryItem {
            sample: CompactSample {
                index: i,
                label: i as u32 % 7,
                super_label: i as u32 % 3,
                audio: vec![i as i16, -(i as i16), 7],
                frames: vec![i as u8; 2 * 2 * 2 * 3],
                frames_shape: [2, 2, 2, 3],
            },
            target: i as u32 % 5,
            logits: logits.then(|| [vec![i as f32, 1.0], vec![2.0, -1.0], vec![0.5, i as f32]]),
        }
    }

    #[test]
    fn reservoir_keeps_capacity_and_is_roughly_uniform() {
        let mut counts = vec![0usize; 100];
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut m = Memory::new(10);
            for i in 0..100 {
                m.add(item(i, false), &mut rng);
            }
            assert_eq!(m.len(), 10);
            assert_eq!(m.seen(), 100);
            for it in m.items() {
                counts[it.sample.index] += 1;
            }
        }
        // Each sample is kept with probability 0.1: 20 of 200 on average.
        let early: usize = counts[..50].iter().sum();
        let late: usize = counts[50..].iter().sum();
        assert!(
            (early as f64 / late as f64 - 1.0).abs() < 0.25,
            "{early} vs {late}"
        );
    }

    #[test]
    fn sample_is_without_replacement() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut m = Memory::new(20);
        for i in 0..20 {
            m.add(item(i, false), &mut rng);
        }
        let s = m.sample(15, &mut rng);
        let mut idx: Vec<usize> = s.iter().map(|it| it.sample.index).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(idx.len(), 15);
        assert_eq!(m.sample(50, &mut rng).len(), 20);
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        for logits in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let mut m = Memory::new(4);
            for i in 0..9 {
                m.add(item(i, logits), &mut rng);
            }
            let p = dir.path().join("m.safetensors");
            m.save(&p).unwrap();
            assert_eq!(Memory::load(&p).unwrap(), m);
        }
        let p = dir.path().join("empty.safetensors");
        Memory::new(3).save(&p).unwrap();
        assert_eq!(Memory::load(&p).unwrap(), Memory::new(3));
    }

    #[test]
    fn corrupt_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.safetensors");
        std::fs::write(&p, b"not safetensors").unwrap();
        assert!(matches!(Memory::load(&p), Err(MethodError::State { .. })));
    }
}
