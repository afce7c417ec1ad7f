//! The replay memory of ER and SAMM: an [`mmcl_buffer::ReplayBuffer`] of [`MemoryItem`]s
//! (reservoir selection by default, as the paper).
//!
//! What an item holds: the batch sample's [`mmcl_data::loader::CompactSample`] itself (the
//! un-augmented 16-bit audio crop and u8 frames, dataset index and labels; shared with the
//! batch by `Arc`, so remembering copies no audio or frames), its training target as the
//! buffer label (class, or supercategory under domain-incremental learning), and for SAMM the
//! three heads' logits from the training pass at insertion (never refreshed). Replayed items
//! go straight into the batch tensors ([`crate::compact_tensors`] takes the items).
//!
//! Randomness: selection and minibatch sampling both draw from the buffer's own ChaCha8
//! generator, which is seeded from the step generator the scheduler derives from the run
//! seed, at the first item the memory receives; the buffer file (mmcl-buffer's safetensors
//! format, its generator state included) is the method's checkpoint of the memory, so a
//! resumed run draws exactly what an uninterrupted one does.

use std::path::Path;

use mmcl_buffer::{MemoryItem, ReplayBuffer, SelectionPolicy, StoredLogits};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::method::{StepEnv, TrainBatch};
use crate::{MethodError, Result};

/// File name of the memory inside a checkpoint folder.
pub const MEMORY_FILE: &str = "memory.safetensors";

/// The replay memory type of ER and SAMM.
pub type Memory = ReplayBuffer<MemoryItem>;

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
        memory.observe(MemoryItem::new(sample.clone(), target, stored)?);
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
    use std::sync::Arc;

    use mmcl_data::loader::CompactSample;

    use super::*;

    fn compact(i: usize) -> Arc<CompactSample> {
        Arc::new(mmcl_testkit::compact_sample(1_000_000 + i, [2, 3, 4], 6))
    }

    #[test]
    fn lossless_through_the_buffer_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = new_memory(3, SelectionPolicy::Reservoir).unwrap();
        for i in 0..8 {
            let logits = (i % 2 == 1).then(|| StoredLogits {
                audio: vec![1.0, -2.0],
                visual: vec![0.5, f32::MIN_POSITIVE],
                fused: vec![3.0, i as f32],
            });
            m.observe(MemoryItem::new(compact(i), i as u32 % 2, logits).unwrap());
        }
        save_memory(&m, dir.path()).unwrap();
        let back = load_memory(dir.path(), 3, SelectionPolicy::Reservoir).unwrap();
        assert_eq!(back.all(), m.all());
        assert_eq!(back.meta(), m.meta());
        for it in back.iter() {
            assert_eq!(it.sample, compact(it.sample.index - 1_000_000));
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
        let mut short = (*compact(0)).clone();
        short.frame_shape = [2, 3, 5];
        assert!(MemoryItem::new(Arc::new(short), 0, None).is_err());
        assert!(new_memory(0, SelectionPolicy::Reservoir).is_err());
        let corrupt = dir.path().join(MEMORY_FILE);
        std::fs::write(&corrupt, b"not safetensors").unwrap();
        let err = load_memory(dir.path(), 3, SelectionPolicy::Reservoir).unwrap_err();
        assert!(err.to_string().contains(MEMORY_FILE), "{err}");
    }
}
