//! The generalised class-incremental (GCIL) stream sampler of Mi et al. (2020), as the
//! reference implementation of SAMM uses it.
//!
//! For every task: draw the number of classes `n` uniformly in `1..=min(max_classes, classes
//! with data left)`; draw `n` distinct classes uniformly among the classes with data left;
//! draw `samples_per_task` labels with replacement, with probability proportional to the
//! class weight, redrawing until every chosen class appears at least once; each class then
//! contributes `min(draws, samples left)` new samples. Samples are never reused. Weights are
//! uniform (1) or long-tailed (`0.984^class_index`, about 4.9x between head and tail at 100
//! classes). Each class's samples are taken in an order shuffled once from the seed.
//! Small datasets: the draws per task scale with the training set (1000 at 48,700 clips),
//! and "redraw until every chosen class appears" needs about `n * H_n` draws for `n`
//! classes (coupon collector), so the class-count bound is lowered to the largest `n` with
//! `2 * n * H_n <= draws` ([`GcilConfig::class_bound`]). At paper scale this keeps the
//! reference's 50 (2 * 50 * H_50 = 450 <= 1000).
//! The stream's seed is its own (1992 by default, as the reference), independent of the
//! run seed, so every run sees the same stream.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::SchedulerError;

/// Class weights of the label draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GcilWeights {
    Uniform,
    Longtail,
}

impl GcilWeights {
    pub fn name(self) -> &'static str {
        match self {
            GcilWeights::Uniform => "uniform",
            GcilWeights::Longtail => "longtail",
        }
    }
    /// The weight of a class index.
    pub fn weight(self, class: u32) -> f64 {
        match self {
            GcilWeights::Uniform => 1.0,
            GcilWeights::Longtail => 0.984f64.powi(class as i32),
        }
    }
}

/// Parameters of the GCIL stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcilConfig {
    /// Class weights.
    pub weights: GcilWeights,
    /// Number of tasks (20 in the paper).
    #[serde(default = "default_tasks")]
    pub tasks: usize,
    /// Label draws per task (1000 at paper scale, 48,700 training clips). `None` scales
    /// 1000 by the training set size: `max(1, round(1000 * n_train / 48700))`.
    #[serde(default)]
    pub samples_per_task: Option<usize>,
    /// Upper bound of the number of classes per task (50 in the reference).
    #[serde(default = "default_max_classes")]
    pub max_classes: usize,
    /// Stream seed (1992 in the reference).
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_tasks() -> usize {
    20
}
fn default_max_classes() -> usize {
    50
}
fn default_seed() -> u64 {
    1992
}

/// Training clips of MMCL-VGGSound, the scale at which 1000 draws per task are used.
pub const PAPER_TRAIN_SIZE: usize = 48_700;
/// Label draws per task at paper scale.
pub const PAPER_SAMPLES_PER_TASK: usize = 1000;

impl GcilConfig {
    /// The paper's setting with the given weights.
    pub fn paper(weights: GcilWeights) -> Self {
        GcilConfig {
            weights,
            tasks: 20,
            samples_per_task: None,
            max_classes: 50,
            seed: 1992,
        }
    }

    /// Label draws per task for a training set of `n_train` samples.
    pub fn draws_per_task(&self, n_train: usize) -> usize {
        self.samples_per_task.unwrap_or_else(|| {
            ((PAPER_SAMPLES_PER_TASK as f64 * n_train as f64 / PAPER_TRAIN_SIZE as f64).round()
                as usize)
                .max(1)
        })
    }
}

/// Maximum redraws of the label draw before giving up with an error.
const MAX_REDRAWS: usize = 100_000;

impl GcilConfig {
    /// The upper bound on classes per task for `draws` label draws (see the module docs).
    pub fn class_bound(&self, draws: usize) -> usize {
        let mut n = 1;
        let mut harmonic = 1.0;
        while n < self.max_classes {
            let h = harmonic + 1.0 / (n + 1) as f64;
            if 2.0 * (n + 1) as f64 * h > draws as f64 {
                break;
            }
            n += 1;
            harmonic = h;
        }
        n
    }
}

/// One GCIL task: the classes drawn and the training sample indices taken.
#[derive(Debug, Clone, PartialEq)]
pub struct GcilTask {
    /// The classes drawn for this task (sorted); each contributed at least one sample unless
    /// its data ran out, in which case it is dropped.
    pub classes: Vec<u32>,
    /// Indices into the label list.
    pub samples: Vec<usize>,
}

/// Sample the GCIL stream over training labels `labels` (`0..num_classes`).
pub fn sample_stream(
    cfg: &GcilConfig,
    labels: &[u32],
    num_classes: usize,
) -> Result<Vec<GcilTask>, SchedulerError> {
    if cfg.tasks == 0 || cfg.max_classes == 0 {
        return Err(SchedulerError::Scenario(
            "gcil needs tasks >= 1 and max_classes >= 1".into(),
        ));
    }
    let draws = cfg.draws_per_task(labels.len());
    let class_bound = cfg.class_bound(draws);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // Per-class pools in a seeded order; `next[c]` is the first unused position.
    let mut pools: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        if (l as usize) >= num_classes {
            return Err(SchedulerError::Scenario(format!(
                "label {l} out of range 0..{num_classes}"
            )));
        }
        pools[l as usize].push(i);
    }
    for pool in &mut pools {
        pool.shuffle(&mut rng);
    }
    let mut next = vec![0usize; num_classes];
    let mut tasks = Vec::with_capacity(cfg.tasks);
    for t in 0..cfg.tasks {
        let available: Vec<u32> = (0..num_classes as u32)
            .filter(|&c| next[c as usize] < pools[c as usize].len())
            .collect();
        if available.is_empty() {
            return Err(SchedulerError::Scenario(format!(
                "gcil ran out of training data at task {t} of {} (draws per task {draws})",
                cfg.tasks
            )));
        }
        let n = rng.random_range(1..=class_bound.min(available.len()));
        let mut chosen: Vec<u32> = available.choose_multiple(&mut rng, n).copied().collect();
        chosen.sort_unstable();
        let weights: Vec<f64> = chosen.iter().map(|&c| cfg.weights.weight(c)).collect();
        let total: f64 = weights.iter().sum();
        // Redraw until every chosen class appears; impossible when draws < n, so then only
        // require as many distinct classes as there are draws.
        let need_distinct = n.min(draws);
        let mut attempts = 0;
        let counts = loop {
            attempts += 1;
            if attempts > MAX_REDRAWS {
                return Err(SchedulerError::Scenario(format!(
                    "gcil task {t}: {draws} draws never covered all {n} chosen classes in {MAX_REDRAWS} tries"
                )));
            }
            let mut counts = vec![0usize; n];
            for _ in 0..draws {
                let mut u = rng.random::<f64>() * total;
                let mut k = n - 1;
                for (j, w) in weights.iter().enumerate() {
                    if u < *w {
                        k = j;
                        break;
                    }
                    u -= w;
                }
                counts[k] += 1;
            }
            if counts.iter().filter(|&&c| c > 0).count() >= need_distinct {
                break counts;
            }
        };
        let mut samples = Vec::new();
        let mut classes = Vec::new();
        for (j, &c) in chosen.iter().enumerate() {
            let c_us = c as usize;
            let take = counts[j].min(pools[c_us].len() - next[c_us]);
            if take == 0 {
                continue;
            }
            samples.extend_from_slice(&pools[c_us][next[c_us]..next[c_us] + take]);
            next[c_us] += take;
            classes.push(c);
        }
        samples.sort_unstable();
        tasks.push(GcilTask { classes, samples });
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(per_class: usize) -> Vec<u32> {
        (0..100u32)
            .flat_map(|c| std::iter::repeat_n(c, per_class))
            .collect()
    }

    #[test]
    fn paper_scale_draws_are_scaled_by_dataset_size() {
        let cfg = GcilConfig::paper(GcilWeights::Uniform);
        assert_eq!(cfg.draws_per_task(48_700), 1000);
        assert_eq!(cfg.draws_per_task(4_870), 100);
        assert_eq!(cfg.draws_per_task(10), 1);
    }

    #[test]
    fn samples_are_never_reused_and_sizes_hold() {
        let labels = labels(487);
        for w in [GcilWeights::Uniform, GcilWeights::Longtail] {
            let tasks = sample_stream(&GcilConfig::paper(w), &labels, 100).unwrap();
            assert_eq!(tasks.len(), 20);
            let mut all: Vec<usize> = tasks
                .iter()
                .flat_map(|t| t.samples.iter().copied())
                .collect();
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), n, "a sample was reused");
            for t in &tasks {
                assert!(!t.classes.is_empty() && t.classes.len() <= 50);
                // Each task takes at most 1000 samples, and exactly 1000 while data lasts.
                assert!(t.samples.len() <= 1000);
                for &i in &t.samples {
                    assert!(t.classes.binary_search(&labels[i]).is_ok());
                }
                for &c in &t.classes {
                    assert!(
                        t.samples.iter().any(|&i| labels[i] == c),
                        "chosen class {c} has no sample"
                    );
                }
            }
            // With 487 samples per class, the first task cannot exhaust any class.
            assert_eq!(tasks[0].samples.len(), 1000);
        }
    }

    #[test]
    fn class_bound_keeps_paper_value_and_shrinks_for_few_draws() {
        let cfg = GcilConfig::paper(GcilWeights::Uniform);
        assert_eq!(cfg.class_bound(1000), 50);
        let small = cfg.class_bound(100);
        assert!((10..50).contains(&small), "{small}");
        assert_eq!(cfg.class_bound(1), 1);
    }

    #[test]
    fn stream_is_deterministic_in_its_seed() {
        let labels = labels(50);
        let cfg = GcilConfig {
            samples_per_task: Some(100),
            ..GcilConfig::paper(GcilWeights::Longtail)
        };
        let a = sample_stream(&cfg, &labels, 100).unwrap();
        let b = sample_stream(&cfg, &labels, 100).unwrap();
        assert_eq!(a, b);
        let c = sample_stream(&GcilConfig { seed: 7, ..cfg }, &labels, 100).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn longtail_favours_low_class_indices() {
        // Over many tasks, head classes receive more draws than tail classes.
        let labels = labels(100_000 / 100);
        let cfg = GcilConfig {
            tasks: 60,
            samples_per_task: Some(1000),
            max_classes: 100,
            ..GcilConfig::paper(GcilWeights::Longtail)
        };
        let tasks = sample_stream(&cfg, &labels, 100).unwrap();
        let mut per_class = vec![0usize; 100];
        let mut chosen = vec![0usize; 100];
        for t in &tasks {
            for &i in &t.samples {
                per_class[labels[i] as usize] += 1;
            }
            for &c in &t.classes {
                chosen[c as usize] += 1;
            }
        }
        // Samples per time the class was chosen: head (0..20) vs tail (80..100).
        let rate = |r: std::ops::Range<usize>| {
            let s: usize = r.clone().map(|c| per_class[c]).sum();
            let n: usize = r.map(|c| chosen[c]).sum();
            s as f64 / n as f64
        };
        assert!(
            rate(0..20) > 1.5 * rate(80..100),
            "head {} tail {}",
            rate(0..20),
            rate(80..100)
        );
    }

    #[test]
    fn exhaustion_is_an_error_not_a_panic() {
        let labels = labels(1);
        // 100 samples, one per class; 200 tasks take at least one sample each.
        let cfg = GcilConfig {
            tasks: 200,
            samples_per_task: Some(50),
            ..GcilConfig::paper(GcilWeights::Uniform)
        };
        assert!(matches!(
            sample_stream(&cfg, &labels, 100),
            Err(SchedulerError::Scenario(_))
        ));
    }
}
