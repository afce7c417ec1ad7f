//! The replay memory of ER and SAMM: an [`mmcl_buffer::ReplayBuffer`] of [`StoredSample`]s
//! (reservoir selection by default, as the paper), plus the lossless conversion between the
//! loader's [`CompactSample`] and the buffer's [`StoredSample`].
//!
//! What a stored sample holds: the un-augmented compact inputs of the batch sample (16-bit
//! audio crop, u8 frames), its training target as the buffer label (class, or supercategory
//! under domain-incremental learning), its dataset index and labels as the
//! [`SampleOrigin`], and for SAMM the three heads' logits from the training pass at
//! insertion (never refreshed).
//!
//! Randomness: selection and minibatch sampling both draw from the buffer's own ChaCha8
//! generator, which is seeded from the step generator the scheduler derives from the run
//! seed, at the first item the memory receives; the buffer file (mmcl-buffer's safetensors
//! format, its generator state included) is the method's checkpoint of the memory, so a
//! resumed run draws exactly what an uninterrupted one does.

use std::path::Path;

use mmcl_buffer::{ReplayBuffer, SampleOrigin, SelectionPolicy, StoredLogits, StoredSample};
use mmcl_data::loader::CompactSample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::method::{StepEnv, TrainBatch};
use crate::{MethodError, Result};

/// File name of the memory inside a checkpoint folder.
pub const MEMORY_FILE: &str = "memory.safetensors";

/// The replay memory type of ER and SAMM.
pub type Memory = ReplayBuffer<StoredSample>;

/// `sample` (recorded at `sample_rate`) as a buffer item trained with `target`.
pub fn to_stored(
    sample: &CompactSample,
    target: u32,
    sample_rate: u32,
    logits: Option<StoredLogits>,
) -> Result<StoredSample> {
    let [t, h, w, channels] = sample.frames_shape;
    if channels != 3 {
        return Err(MethodError::Config(format!(
            "compact sample {} has frames {:?}; the memory stores RGB [T, H, W, 3]",
            sample.index, sample.frames_shape
        )));
    }
    let origin = SampleOrigin {
        index: sample.index as u64,
        class: sample.label,
        super_class: sample.super_label,
    };
    Ok(StoredSample::new(
        sample.audio.clone(),
        sample_rate,
        sample.frames.clone(),
        [t, h, w],
        target,
        origin,
        logits,
    )?)
}

/// The loader's compact sample back from a buffer item (inverse of [`to_stored`]).
pub fn to_compact(stored: &StoredSample) -> Result<CompactSample> {
    let index = usize::try_from(stored.origin.index).map_err(|_| {
        MethodError::Config(format!(
            "stored sample index {} does not fit this platform",
            stored.origin.index
        ))
    })?;
    let [t, h, w] = stored.frame_shape;
    Ok(CompactSample {
        index,
        label: stored.origin.class,
        super_label: stored.origin.super_class,
        audio: stored.audio.clone(),
        frames: stored.frames.clone(),
        frames_shape: [t, h, w, 3],
    })
}

/// Compact copies of `items` (in order), ready for [`crate::compact_tensors`].
pub fn compact_samples(items: &[&StoredSample]) -> Result<Vec<CompactSample>> {
    items.iter().map(|s| to_compact(s)).collect()
}

/// An empty memory of `capacity` samples. Its generator is replaced by one seeded from the
/// run (see [`remember`]) before it draws anything.
pub fn new_memory(capacity: usize, policy: SelectionPolicy) -> Result<Memory> {
    if capacity == 0 {
        return Err(MethodError::Config(
            "a replay method needs buffer_size > 0".into(),
        ));
    }
    Ok(ReplayBuffer::new(capacity, policy, 0)?)
}

/// Offer every sample of `batch` to `memory`, with optional per-sample logits
/// (`[audio, visual, fused]`, each `[B][C]`). Before the memory's first item, its generator
/// is seeded from `env.rng` (the step generator, derived from the run seed).
pub fn remember(
    memory: &mut Memory,
    batch: &TrainBatch,
    logits: Option<[Vec<Vec<f32>>; 3]>,
    env: &mut StepEnv,
) -> Result<()> {
    if batch.compact.len() != batch.len() {
        return Err(MethodError::Config(format!(
            "the batch carries {} compact samples for {} inputs: the loader must run with `compact` on for replay methods",
            batch.compact.len(),
            batch.len()
        )));
    }
    if memory.seen() == 0 {
        *memory = ReplayBuffer::with_rng(
            memory.capacity(),
            memory.policy(),
            ChaCha8Rng::from_rng(&mut *env.rng),
        )?;
    }
    let sample_rate = env.loader.cache().options().sample_rate;
    let mut logits = logits.map(|[a, v, f]| (a.into_iter(), v.into_iter(), f.into_iter()));
    for (sample, &target) in batch.compact.iter().zip(&batch.targets) {
        let stored = match logits.as_mut() {
            None => None,
            Some((a, v, f)) => match (a.next(), v.next(), f.next()) {
                (Some(audio), Some(visual), Some(fused)) => Some(StoredLogits {
                    audio,
                    visual,
                    fused,
                }),
                _ => {
                    return Err(MethodError::Config(
                        "fewer logit rows than batch samples".into(),
                    ))
                }
            },
        };
        memory.observe(to_stored(sample, target, sample_rate, stored)?);
    }
    Ok(())
}

/// Write `memory` into the checkpoint folder `dir` (mmcl-buffer's format, atomic).
pub fn save_memory(memory: &Memory, dir: &Path) -> Result<()> {
    Ok(memory.save(dir.join(MEMORY_FILE))?)
}

/// Read the memory saved in `dir`, checking it has the configured capacity and policy.
pub fn load_memory(dir: &Path, capacity: usize, policy: SelectionPolicy) -> Result<Memory> {
    let path = dir.join(MEMORY_FILE);
    let memory = Memory::load(&path)?;
    if memory.capacity() != capacity || memory.policy() != policy {
        return Err(MethodError::State {
            path,
            reason: format!(
                "memory of capacity {} ({:?}), the run is configured for {capacity} ({policy:?})",
                memory.capacity(),
                memory.policy()
            ),
        });
    }
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(i: usize) -> CompactSample {
        CompactSample {
            index: 1_000_000 + i,
            label: 300 + i as u32,
            super_label: 9 + i as u32,
            audio: vec![i16::MIN, -1, 0, 1, i16::MAX, i as i16],
            frames: (0..2 * 3 * 4 * 3).map(|k| (k * 5 + i) as u8).collect(),
            frames_shape: [2, 3, 4, 3],
        }
    }

    #[test]
    fn compact_to_stored_and_back_is_lossless() {
        for i in 0..3 {
            let c = compact(i);
            let logits = (i > 0).then(|| StoredLogits {
                audio: vec![1.0, -2.0],
                visual: vec![0.5, f32::MIN_POSITIVE],
                fused: vec![3.0, i as f32],
            });
            let s = to_stored(&c, 7, 16_000, logits.clone()).unwrap();
            assert_eq!(s.label, 7, "the buffer label is the training target");
            assert_eq!(s.logits, logits);
            assert_eq!(s.sample_rate, 16_000);
            assert_eq!(to_compact(&s).unwrap(), c);
        }
    }

    #[test]
    fn lossless_through_the_buffer_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = new_memory(3, SelectionPolicy::Reservoir).unwrap();
        for i in 0..8 {
            m.observe(to_stored(&compact(i), i as u32 % 2, 16_000, None).unwrap());
        }
        save_memory(&m, dir.path()).unwrap();
        let back = load_memory(dir.path(), 3, SelectionPolicy::Reservoir).unwrap();
        assert_eq!(back.all(), m.all());
        assert_eq!(back.meta(), m.meta());
        let items: Vec<&StoredSample> = back.iter().collect();
        let again = compact_samples(&items).unwrap();
        for (c, s) in again.iter().zip(back.iter()) {
            assert_eq!(*c, compact(s.origin.index as usize - 1_000_000));
        }
    }

    #[test]
    fn mismatched_memory_and_bad_shapes_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let m = new_memory(3, SelectionPolicy::Reservoir).unwrap();
        save_memory(&m, dir.path()).unwrap();
        assert!(matches!(
            load_memory(dir.path(), 4, SelectionPolicy::Reservoir),
            Err(MethodError::State { .. })
        ));
        assert!(matches!(
            load_memory(dir.path(), 3, SelectionPolicy::Ring),
            Err(MethodError::State { .. })
        ));
        let mut gray = compact(0);
        gray.frames_shape = [2, 3, 12, 1];
        assert!(to_stored(&gray, 0, 16_000, None).is_err());
        assert!(new_memory(0, SelectionPolicy::Reservoir).is_err());
        let corrupt = dir.path().join(MEMORY_FILE);
        std::fs::write(&corrupt, b"not safetensors").unwrap();
        let err = load_memory(dir.path(), 3, SelectionPolicy::Reservoir).unwrap_err();
        assert!(err.to_string().contains(MEMORY_FILE), "{err}");
    }
}
