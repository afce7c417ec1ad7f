//! Continual-learning metrics, the paper's table layouts and plots for mmcl.
//!
//! [`RunMetrics::derive`] turns the raw facts of one run's `results.json` (the scheduler's
//! [`mmcl_scheduler::RunResults`]: correct-prediction counts per test set, test-set sizes,
//! prediction counts per output, calibration bins) into every number the report shows;
//! the scheduler computes none of them. Tables are Markdown/CSV with the paper's numbers
//! beside ours; plots are SVG/PNG drawn with an embedded font (no system fonts needed).
//!
//! ```
//! use mmcl_metrics::{AccuracyMatrix, MeanStd};
//! let a = AccuracyMatrix::new(vec![vec![90.0], vec![60.0, 80.0], vec![30.0, 50.0, 70.0]])?;
//! assert_eq!(a.final_mean_accuracy(), Some(50.0));
//! assert_eq!(a.backward_transfer(), Some(-45.0));
//! assert_eq!(a.forgetting(), Some(45.0));
//! let over_seeds = MeanStd::of(&[50.0, 54.0]).unwrap();
//! assert_eq!(over_seeds.format(2), "52.00 ± 2.00");
//! # Ok::<(), mmcl_metrics::MetricsError>(())
//! ```
//!
//! # Definitions
//!
//! This is the one place the metrics are defined; the code implements each once.
//! Accuracies are percentages. Test set `i` is the test data of task `i`'s classes (Seq,
//! Dom) or of the classes first seen in task `i` (GCIL); `n[i]` is its size (0 possible in
//! GCIL). `A[t][i]` = `100 * correct[t][i] / n[i]` is the accuracy on test set `i` after
//! training task `t`, tasks `0..T`, last task `L = T - 1`; entries of empty test sets are
//! left out of every mean below. One matrix is kept per inference mode (for SAMM: audio
//! head, visual head, fused head, calibrated ensemble). JOINT trains once on all data: its
//! one row is its final row, and the metrics of a sequence (BWT, forgetting, FWT,
//! stability, plasticity, recency) do not apply to it.
//!
//! - **Final mean accuracy** (Seq/Dom headline): `mean_i A[L][i]`, unweighted over tasks.
//! - **Task-IL accuracy**: the same with the logits masked to each test set's task's
//!   classes (Seq only).
//! - **Backward transfer**: `BWT = mean_{i<L} (A[L][i] - A[i][i])` (negative = forgetting).
//! - **Forgetting** (mammoth's `forgetting`, which the reference uses):
//!   `F = mean_{i<L} (max_{i<=t<=L} A[t][i] - A[L][i])`. The max includes the last row, so
//!   `F >= 0`; a task whose accuracy only rose counts 0, not a negative amount.
//! - **Forward transfer** (Lopez-Paz & Ranzato 2017, mammoth's `forward_transfer`):
//!   `FWT = mean_{1<=i<=L} (A[i-1][i] - b[i])`, `b[i]` = the randomly initialised model's
//!   accuracy on test set `i` (one evaluation per run, before training); needs each next
//!   task evaluated before it is trained (`train.eval_future`). In class-IL (Seq, GCIL) a
//!   model cannot predict classes it never trained on, so FWT is about `-b[i]` there; it
//!   is informative for Dom, whose targets are shared by every task.
//! - **GCIL headline** (the reference's, and so the paper's GCIL tables): the FINAL model
//!   is evaluated on each cumulative test set `0..=t`,
//!   `c[t] = sum_{i<=t} correct[L][i] / sum_{i<=t} n[i]` (test-count weighted), and the
//!   headline is `mean_t c[t]` over the `T` cumulative sets. Also reported: the **final
//!   all-seen accuracy** `c[L]`. (Not the mean over `t` of the model after task `t` on set
//!   `t`, which is the **seen accuracy** curve plotted per task.)
//! - **ECE** (expected calibration error, 15 equal-width confidence bins, confidence = max
//!   softmax probability): of the final model over every seen test sample (Seq/Dom: the
//!   whole test set), `100 * sum_b |sum of confidences_b - correct_b| / n`; the evaluator
//!   stores the bin totals, the bins are those of `mmcl_losses::ConfidenceBins`.
//! - **Plasticity**: accuracy on the task just learned, `P = mean_t A[t][t]` (high = new
//!   knowledge acquired).
//! - **Stability**: the final model's accuracy on the earlier tasks, `S = mean_{i<L}
//!   A[L][i]` (high = old knowledge kept). We take the final model's rather than an average
//!   along the sequence because it is what the learner ends with, and then the two split
//!   the headline exactly: final mean accuracy = `(L * S + A[L][L]) / T` (no gaps), so a
//!   method's standing reads as "keeps more" (S) or "learns more" (P).
//! - **Task-recency bias** after task `t`: the share (%) of the predictions of the model
//!   after task `t`, over every seen test sample (test sets `0..=t`), that fall on the
//!   outputs task `t` introduced; its baseline is the share of those outputs' classes in
//!   the seen test data (`100 * n[t] / sum_{i<=t} n[i]`), what a model without bias would
//!   score. Defined for `t >= 1` (after task 0 it is 100 % by construction) where task `t`
//!   introduces outputs (so never in Dom, whose outputs all come with task 0); the
//!   report's summary is the value after the last task.
//!
//! **Mean ± std over seeds** uses the population standard deviation (divide by `n`,
//! numpy's `np.std` default, which mammoth-style code such as the paper's uses) unless
//! [`Ddof::Sample`] is chosen. The number of seeds is printed with every table.

pub mod ablation;
pub mod analysis;
pub mod derive;
pub mod error;
pub mod io;
pub mod keys;
pub mod matrix;
pub mod paper;
pub mod plot;
pub mod provenance;
pub mod robustness;
pub mod stats;
pub mod table;

pub use derive::{ModeMetrics, RunMetrics};
pub use error::{MetricsError, Result};
pub use keys::{Method, Modality, Scenario};
pub use matrix::{
    accuracy_percent, cumulative_accuracy, ece_from_bins, final_row_accuracy, gcil_summary,
    task_recency_bias, AccuracyMatrix, GcilSummary,
};
pub use paper::{paper_value, PaperValue};
pub use stats::{Ddof, MeanStd};
pub use table::{Cell, CellKey, PaperLayoutTable, TableRow};
