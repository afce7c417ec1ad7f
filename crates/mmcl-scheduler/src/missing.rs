//! A modality missing in training: a share of every task's training clips arrives without
//! its audio (silence) or without its frames (black), as `data.missing = { audio = 0.3 }`.
//!
//! The clips are chosen per task from the run seed: task `t`'s training clips are shuffled
//! by a generator seeded from (seed, t); the first `round(audio * n)` lose their audio, the
//! next `round(visual * n)` their frames, so no clip loses both. The signal is zero-filled
//! before feature extraction, as [`mmcl_media::corrupt`]'s `missing` corruptions do (the
//! network sees the log-spectrogram of silence, normalised black frames), and the replay
//! memory stores such a clip as it arrived. The choice is recorded in the run folder's
//! `missing.json` (cache indices per task and modality).

use std::collections::BTreeMap;

use mmcl_media::corrupt::{AudioCorruption, Corruption, VisualCorruption};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::scenario::Task;
use crate::SchedulerError;

/// The file in a run folder recording which training clips missed a modality.
pub const MISSING_FILE: &str = "missing.json";

/// Shares of each task's training clips without their audio / their frames.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingModality {
    #[serde(default)]
    pub audio: f64,
    #[serde(default)]
    pub visual: f64,
}

impl MissingModality {
    /// Nothing missing (the default, left out of `config.toml`).
    pub fn is_none(&self) -> bool {
        self.audio == 0.0 && self.visual == 0.0
    }

    /// Shares in `[0, 1]` that add up to at most 1.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let share = |v: f64| (0.0..=1.0).contains(&v);
        if !(share(self.audio) && share(self.visual) && self.audio + self.visual <= 1.0) {
            return Err(SchedulerError::Config(format!(
                "data.missing: audio {} and visual {} must be shares in [0, 1] adding up to at most 1",
                self.audio, self.visual
            )));
        }
        Ok(())
    }
}

/// Which training clips miss which modality, by task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MissingChoice {
    /// Per task: the cache indices without audio.
    pub audio: Vec<Vec<usize>>,
    /// Per task: the cache indices without frames.
    pub visual: Vec<Vec<usize>>,
}

impl MissingChoice {
    /// The per-clip corruption the loader applies in training
    /// ([`mmcl_data::loader::Loader::with_train_corruptions`]).
    pub fn corruptions(&self) -> BTreeMap<usize, Corruption> {
        let mut map = BTreeMap::new();
        for &i in self.audio.iter().flatten() {
            map.entry(i)
                .or_insert(Corruption::audio(AudioCorruption::Missing));
        }
        for &i in self.visual.iter().flatten() {
            map.entry(i)
                .or_insert(Corruption::visual(VisualCorruption::Missing));
        }
        map
    }
}

/// Draws the clips of each task that miss a modality. `train_idx` maps a task's training
/// positions to cache indices. A clip drawn into several tasks (GCIL) keeps its first fate.
pub fn choose(
    missing: &MissingModality,
    tasks: &[Task],
    train_idx: &[usize],
    seed: u64,
) -> MissingChoice {
    let mut choice = MissingChoice::default();
    for (t, task) in tasks.iter().enumerate() {
        let mut clips: Vec<usize> = task.train.iter().map(|&i| train_idx[i]).collect();
        clips.sort_unstable();
        clips.dedup();
        let mut rng =
            ChaCha8Rng::seed_from_u64(mmcl_data::loader::splitmix64(seed ^ 0x0155_1e55) ^ t as u64);
        clips.shuffle(&mut rng);
        let n = clips.len() as f64;
        let n_audio = (missing.audio * n).round() as usize;
        let n_visual = ((missing.visual * n).round() as usize).min(clips.len() - n_audio);
        let mut audio = clips[..n_audio].to_vec();
        let mut visual = clips[n_audio..n_audio + n_visual].to_vec();
        audio.sort_unstable();
        visual.sort_unstable();
        choice.audio.push(audio);
        choice.visual.push(visual);
    }
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(train: std::ops::Range<usize>) -> Task {
        Task {
            train: train.collect(),
            test: Vec::new(),
            classes: Vec::new(),
            new_targets: Vec::new(),
        }
    }

    #[test]
    fn each_task_loses_its_share_seeded_and_never_both_modalities() {
        let tasks = [task(0..10), task(10..30)];
        let train_idx: Vec<usize> = (100..130).collect();
        let m = MissingModality {
            audio: 0.3,
            visual: 0.2,
        };
        let c = choose(&m, &tasks, &train_idx, 7);
        assert_eq!((c.audio[0].len(), c.visual[0].len()), (3, 2));
        assert_eq!((c.audio[1].len(), c.visual[1].len()), (6, 4));
        assert!(c.audio[1].iter().all(|i| (110..130).contains(i)));
        assert_eq!(c, choose(&m, &tasks, &train_idx, 7));
        assert_ne!(c, choose(&m, &tasks, &train_idx, 8));
        let map = c.corruptions();
        assert_eq!(map.len(), 15, "no clip loses both");
        assert!(MissingModality::default().is_none());
        assert!(MissingModality {
            audio: 0.7,
            visual: 0.4
        }
        .validate()
        .is_err());
        assert!(MissingModality {
            audio: -0.1,
            visual: 0.0
        }
        .validate()
        .is_err());
        assert!(m.validate().is_ok());
    }
}
