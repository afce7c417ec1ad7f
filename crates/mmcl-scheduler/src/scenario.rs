//! Scenario construction: which training samples, test samples and targets each task has.
//!
//! Pure index logic over the dataset's labels, independent of how samples are stored, so it
//! is cheap to test. Indices refer to positions in the train and test sample lists passed in.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::gcil::{self, GcilConfig};
use crate::SchedulerError;

/// The label facts of one sample the scenarios need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLabels {
    /// Fine class, `0..num_classes`.
    pub label: u32,
    /// Supercategory with the fixed mapping (animals 0, music 1, people 2, sports 3, vehicle 4).
    pub super_label: u32,
}

/// Where the class order of Seq (and Dom's subclass order) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClassOrder {
    /// Class labels in increasing order. MMCL labels are the class names' ranks in
    /// code-point order (`mmcl_data::classes`), which is the reference's order: its subset
    /// CSV is sorted by label and classes are numbered in order of appearance, so Seq task
    /// 0 holds the ten alphabetically first classes, of several supercategories.
    #[default]
    #[serde(alias = "manifest")]
    Reference,
    /// A permutation drawn from `class_order_seed`.
    Permuted,
}

/// Which continual-learning scenario to build, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScenarioConfig {
    /// Class-incremental: disjoint groups of classes, one head over all classes.
    Seq {
        tasks: usize,
        classes_per_task: usize,
        #[serde(default)]
        class_order: ClassOrder,
        #[serde(default)]
        class_order_seed: u64,
    },
    /// Domain-incremental: the target is the supercategory; each task brings
    /// `subclasses_per_super` new fine classes of every supercategory, in increasing label
    /// order inside each supercategory (alphabetical, see [`ClassOrder::Reference`]). The
    /// reference's Dom subset file, which fixed its subclass order, is not released.
    Dom {
        tasks: usize,
        subclasses_per_super: usize,
        #[serde(default)]
        class_order: ClassOrder,
        #[serde(default)]
        class_order_seed: u64,
    },
    /// Generalised class-incremental (Mi et al. 2020), see [`crate::gcil`].
    Gcil(GcilConfig),
}

impl ScenarioConfig {
    /// Seq-VGGSound as in the paper: 10 tasks of 10 classes.
    pub fn seq_paper() -> Self {
        ScenarioConfig::Seq {
            tasks: 10,
            classes_per_task: 10,
            class_order: ClassOrder::Reference,
            class_order_seed: 0,
        }
    }
    /// Dom-VGGSound as in the paper: 5 tasks, 4 new subclasses per supercategory each.
    pub fn dom_paper() -> Self {
        ScenarioConfig::Dom {
            tasks: 5,
            subclasses_per_super: 4,
            class_order: ClassOrder::Reference,
            class_order_seed: 0,
        }
    }
    /// Short name used in run folders and reports: `seq`, `dom`, `gcil-uniform`, `gcil-longtail`.
    pub fn short_name(&self) -> String {
        match self {
            ScenarioConfig::Seq { .. } => "seq".into(),
            ScenarioConfig::Dom { .. } => "dom".into(),
            ScenarioConfig::Gcil(g) => format!("gcil-{}", g.weights.name()),
        }
    }
}

/// How test sets of tasks are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    Seq,
    Dom,
    Gcil,
}

/// One task of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Indices into the training samples.
    pub train: Vec<usize>,
    /// Indices into the test samples: this task's own test set. For Seq and Dom the test
    /// samples of the task's classes; for GCIL the test samples of the classes that first
    /// appear in this task (so the union over tasks `0..=t` is the cumulative test set).
    pub test: Vec<usize>,
    /// Fine classes whose samples appear in this task's training data.
    pub classes: Vec<u32>,
    /// Model outputs (targets) introduced by this task; for task-IL masking and recency.
    /// Seq: the task's classes. Dom: empty after the first task (all 5 targets from task 0).
    /// GCIL: classes first seen in this task.
    pub new_targets: Vec<u32>,
}

/// A built scenario: tasks, the target function and the head size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub kind: ScenarioKind,
    pub name: String,
    pub tasks: Vec<Task>,
    /// Size of the classification head (100 for Seq/GCIL at paper scale, 5 for Dom).
    pub num_outputs: usize,
    /// Whether task-IL accuracy (logits masked to the task's targets) is meaningful.
    pub task_il: bool,
}

impl Scenario {
    /// The training/evaluation target of a sample under this scenario.
    pub fn target(&self, s: SampleLabels) -> u32 {
        match self.kind {
            ScenarioKind::Dom => s.super_label,
            ScenarioKind::Seq | ScenarioKind::Gcil => s.label,
        }
    }

    /// Merge every task into one (the JOINT upper bound trains on all data at once). The
    /// evaluation test sets stay per task, see [`Scenario::joint_eval_tasks`].
    pub fn joint(&self) -> Scenario {
        let mut train: Vec<usize> = self
            .tasks
            .iter()
            .flat_map(|t| t.train.iter().copied())
            .collect();
        train.sort_unstable();
        train.dedup();
        let mut classes: Vec<u32> = self
            .tasks
            .iter()
            .flat_map(|t| t.classes.iter().copied())
            .collect();
        classes.sort_unstable();
        classes.dedup();
        let mut new_targets: Vec<u32> = self
            .tasks
            .iter()
            .flat_map(|t| t.new_targets.iter().copied())
            .collect();
        new_targets.sort_unstable();
        new_targets.dedup();
        let test: Vec<usize> = self
            .tasks
            .iter()
            .flat_map(|t| t.test.iter().copied())
            .collect();
        Scenario {
            kind: self.kind,
            name: self.name.clone(),
            tasks: vec![Task {
                train,
                test,
                classes,
                new_targets,
            }],
            num_outputs: self.num_outputs,
            task_il: self.task_il,
        }
    }
}

/// Number of fine classes and supercategories found in the labels.
fn class_counts(train: &[SampleLabels], test: &[SampleLabels]) -> (usize, usize) {
    let all = train.iter().chain(test);
    let classes = all.clone().map(|s| s.label as usize + 1).max().unwrap_or(0);
    let supers = all.map(|s| s.super_label as usize + 1).max().unwrap_or(0);
    (classes, supers)
}

fn ordered_classes(classes: &[u32], order: ClassOrder, seed: u64) -> Vec<u32> {
    let mut v = classes.to_vec();
    v.sort_unstable();
    if order == ClassOrder::Permuted {
        v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    }
    v
}

fn indices_of(samples: &[SampleLabels], classes: &[u32]) -> Vec<usize> {
    let mut member = vec![
        false;
        samples
            .iter()
            .map(|s| s.label as usize + 1)
            .max()
            .unwrap_or(0)
    ];
    for &c in classes {
        if (c as usize) < member.len() {
            member[c as usize] = true;
        }
    }
    samples
        .iter()
        .enumerate()
        .filter(|(_, s)| member[s.label as usize])
        .map(|(i, _)| i)
        .collect()
}

/// Build a scenario from the labels of the training and test samples.
pub fn build(
    cfg: &ScenarioConfig,
    train: &[SampleLabels],
    test: &[SampleLabels],
) -> Result<Scenario, SchedulerError> {
    if train.is_empty() {
        return Err(SchedulerError::Scenario("no training samples".into()));
    }
    let (num_classes, num_supers) = class_counts(train, test);
    let present = classes_with_training_data(train, num_classes);
    let (kind, tasks, num_outputs, task_il) = match cfg {
        ScenarioConfig::Seq {
            tasks,
            classes_per_task,
            class_order,
            class_order_seed,
        } => {
            let order = (*class_order, *class_order_seed);
            let tasks = seq_tasks(train, test, &present, *tasks, *classes_per_task, order)?;
            (ScenarioKind::Seq, tasks, num_classes, true)
        }
        ScenarioConfig::Dom {
            tasks,
            subclasses_per_super,
            class_order,
            class_order_seed,
        } => {
            let split = DomSplit {
                tasks: *tasks,
                subclasses_per_super: *subclasses_per_super,
                class_order: *class_order,
                class_order_seed: *class_order_seed,
            };
            let tasks = dom_tasks(train, test, &present, (num_classes, num_supers), &split)?;
            (ScenarioKind::Dom, tasks, num_supers, false)
        }
        ScenarioConfig::Gcil(g) => {
            let tasks = gcil_tasks(g, train, test, num_classes)?;
            (ScenarioKind::Gcil, tasks, num_classes, false)
        }
    };
    Ok(Scenario {
        kind,
        name: cfg.short_name(),
        tasks,
        num_outputs,
        task_il,
    })
}

/// The classes (ascending) with at least one training sample, of `num_classes`.
fn classes_with_training_data(train: &[SampleLabels], num_classes: usize) -> Vec<u32> {
    let mut seen = vec![false; num_classes];
    for s in train {
        seen[s.label as usize] = true;
    }
    (0..num_classes as u32)
        .filter(|&c| seen[c as usize])
        .collect()
}

/// Seq: the `present` classes in the chosen `(order, seed)`, cut into `tasks` disjoint tasks
/// of `classes_per_task`; every class is new in its task.
fn seq_tasks(
    train: &[SampleLabels],
    test: &[SampleLabels],
    present: &[u32],
    tasks: usize,
    classes_per_task: usize,
    (class_order, class_order_seed): (ClassOrder, u64),
) -> Result<Vec<Task>, SchedulerError> {
    let need = tasks * classes_per_task;
    if tasks == 0 || classes_per_task == 0 || need > present.len() {
        return Err(SchedulerError::Scenario(format!(
            "seq needs {tasks} tasks x {classes_per_task} classes = {need} classes with training data, the data has {}",
            present.len()
        )));
    }
    let order = ordered_classes(present, class_order, class_order_seed);
    Ok(order[..need]
        .chunks(classes_per_task)
        .map(|chunk| {
            let mut classes = chunk.to_vec();
            classes.sort_unstable();
            Task {
                train: indices_of(train, &classes),
                test: indices_of(test, &classes),
                new_targets: classes.clone(),
                classes,
            }
        })
        .collect())
}

/// Dom's settings, as [`ScenarioConfig::Dom`] holds them.
struct DomSplit {
    tasks: usize,
    subclasses_per_super: usize,
    class_order: ClassOrder,
    class_order_seed: u64,
}

/// Dom: task `t` takes the `t`-th `subclasses_per_super` fine classes of every
/// supercategory (each supercategory's classes in the chosen order, seeded per
/// supercategory); the targets are the supercategories, all new in the first task.
fn dom_tasks(
    train: &[SampleLabels],
    test: &[SampleLabels],
    present: &[u32],
    (num_classes, num_supers): (usize, usize),
    split: &DomSplit,
) -> Result<Vec<Task>, SchedulerError> {
    let DomSplit {
        tasks,
        subclasses_per_super: per_super,
        ..
    } = *split;
    if tasks == 0 || per_super == 0 {
        return Err(SchedulerError::Scenario(
            "dom needs at least one task and one subclass per supercategory".into(),
        ));
    }
    let by_super = classes_by_super(train, test, present, (num_classes, num_supers), split)?;
    Ok((0..tasks)
        .map(|t| {
            let mut classes: Vec<u32> = by_super
                .iter()
                .flat_map(|list| list[t * per_super..(t + 1) * per_super].iter().copied())
                .collect();
            classes.sort_unstable();
            Task {
                train: indices_of(train, &classes),
                test: indices_of(test, &classes),
                classes,
                new_targets: if t == 0 {
                    (0..num_supers as u32).collect()
                } else {
                    Vec::new()
                },
            }
        })
        .collect())
}

/// The `present` fine classes of each supercategory, in the chosen order; an error when a
/// class appears under two supercategories or a supercategory has too few classes.
fn classes_by_super(
    train: &[SampleLabels],
    test: &[SampleLabels],
    present: &[u32],
    (num_classes, num_supers): (usize, usize),
    split: &DomSplit,
) -> Result<Vec<Vec<u32>>, SchedulerError> {
    let (tasks, per_super) = (split.tasks, split.subclasses_per_super);
    let mut by_super: Vec<Vec<u32>> = vec![Vec::new(); num_supers];
    let mut super_of = vec![u32::MAX; num_classes];
    for s in train.iter().chain(test) {
        let prev = super_of[s.label as usize];
        if prev != u32::MAX && prev != s.super_label {
            return Err(SchedulerError::Scenario(format!(
                "class {} appears under supercategories {prev} and {}",
                s.label, s.super_label
            )));
        }
        super_of[s.label as usize] = s.super_label;
    }
    for &c in present {
        by_super[super_of[c as usize] as usize].push(c);
    }
    for (k, list) in by_super.iter_mut().enumerate() {
        let seed = split.class_order_seed.wrapping_add(k as u64);
        *list = ordered_classes(list, split.class_order, seed);
        if list.len() < tasks * per_super {
            return Err(SchedulerError::Scenario(format!(
                "dom needs {tasks} x {per_super} subclasses of supercategory {k}, the data has {}",
                list.len()
            )));
        }
    }
    Ok(by_super)
}

/// GCIL: the sampled stream of tasks; a task's new targets (and test set) are the classes
/// it is the first to contain.
fn gcil_tasks(
    g: &GcilConfig,
    train: &[SampleLabels],
    test: &[SampleLabels],
    num_classes: usize,
) -> Result<Vec<Task>, SchedulerError> {
    let labels: Vec<u32> = train.iter().map(|s| s.label).collect();
    let stream = gcil::sample_stream(g, &labels, num_classes)?;
    let mut seen = vec![false; num_classes];
    Ok(stream
        .into_iter()
        .map(|task| {
            let new: Vec<u32> = task
                .classes
                .iter()
                .copied()
                .filter(|&c| !seen[c as usize])
                .collect();
            for &c in &new {
                seen[c as usize] = true;
            }
            Task {
                train: task.samples,
                test: indices_of(test, &new),
                classes: task.classes,
                new_targets: new,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 classes in 5 supercategories of 20 (class c belongs to supercategory c / 20),
    /// `per_class` train and 2 test samples each.
    pub(crate) fn labels(per_class: usize) -> (Vec<SampleLabels>, Vec<SampleLabels>) {
        let mk = |n: usize| {
            (0..100u32)
                .flat_map(|c| {
                    std::iter::repeat_n(
                        SampleLabels {
                            label: c,
                            super_label: c / 20,
                        },
                        n,
                    )
                })
                .collect::<Vec<_>>()
        };
        (mk(per_class), mk(2))
    }

    #[test]
    fn seq_tasks_are_disjoint_and_complete() {
        let (train, test) = labels(3);
        let s = build(&ScenarioConfig::seq_paper(), &train, &test).unwrap();
        assert_eq!(s.tasks.len(), 10);
        assert_eq!(s.num_outputs, 100);
        let mut all = Vec::new();
        for (t, task) in s.tasks.iter().enumerate() {
            assert_eq!(
                task.classes,
                (t as u32 * 10..t as u32 * 10 + 10).collect::<Vec<_>>()
            );
            assert_eq!(task.train.len(), 30);
            assert_eq!(task.test.len(), 20);
            assert!(task
                .train
                .iter()
                .all(|&i| task.classes.contains(&train[i].label)));
            assert!(task
                .test
                .iter()
                .all(|&i| task.classes.contains(&test[i].label)));
            all.extend(task.train.iter().copied());
        }
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), train.len());
    }

    #[test]
    fn seq_permuted_order_is_seeded() {
        let (train, test) = labels(1);
        let cfg = |seed| ScenarioConfig::Seq {
            tasks: 10,
            classes_per_task: 10,
            class_order: ClassOrder::Permuted,
            class_order_seed: seed,
        };
        let a = build(&cfg(1), &train, &test).unwrap();
        let b = build(&cfg(1), &train, &test).unwrap();
        let c = build(&cfg(2), &train, &test).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.tasks[0].classes, c.tasks[0].classes);
        assert_ne!(a.tasks[0].classes, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn seq_rejects_too_few_classes() {
        let (train, test) = labels(1);
        let cfg = ScenarioConfig::Seq {
            tasks: 11,
            classes_per_task: 10,
            class_order: ClassOrder::Reference,
            class_order_seed: 0,
        };
        assert!(matches!(
            build(&cfg, &train, &test),
            Err(SchedulerError::Scenario(_))
        ));
    }

    #[test]
    fn dom_brings_four_new_subclasses_per_supercategory() {
        let (train, test) = labels(2);
        let s = build(&ScenarioConfig::dom_paper(), &train, &test).unwrap();
        assert_eq!(s.tasks.len(), 5);
        assert_eq!(s.num_outputs, 5);
        let mut seen = std::collections::HashSet::new();
        for task in &s.tasks {
            assert_eq!(task.classes.len(), 20);
            for k in 0..5u32 {
                assert_eq!(task.classes.iter().filter(|&&c| c / 20 == k).count(), 4);
            }
            for &c in &task.classes {
                assert!(seen.insert(c), "class {c} reused");
            }
            assert_eq!(task.train.len(), 40);
            // Targets are the fixed supercategory labels.
            assert!(task
                .train
                .iter()
                .all(|&i| s.target(train[i]) == train[i].label / 20));
        }
        assert_eq!(s.tasks[0].new_targets, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn joint_merges_all_training_data() {
        let (train, test) = labels(2);
        let s = build(&ScenarioConfig::seq_paper(), &train, &test)
            .unwrap()
            .joint();
        assert_eq!(s.tasks.len(), 1);
        assert_eq!(s.tasks[0].train.len(), train.len());
        assert_eq!(s.tasks[0].test.len(), test.len());
    }
}
