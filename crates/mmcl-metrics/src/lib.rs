//! Continual-learning metrics, the paper's table layouts and plots for mmcl.
//!
//! Pure computation over accuracy numbers (no tensors): the runner converts each run's
//! results into [`AccuracyMatrix`]es and [`report::RunRecord`]s, this crate turns them into
//! metrics, Markdown/CSV tables with the paper's numbers beside ours, and SVG/PNG plots
//! drawn with an embedded font (no system fonts needed).
//!
//! ```
//! use mmcl_metrics::{AccuracyMatrix, MeanStd};
//! let a = AccuracyMatrix::new(vec![vec![90.0], vec![60.0, 80.0], vec![30.0, 50.0, 70.0]])?;
//! assert_eq!(a.final_mean_accuracy(), 50.0);
//! assert_eq!(a.backward_transfer(), Some(-45.0));
//! assert_eq!(a.forgetting(), Some(45.0));
//! let over_seeds = MeanStd::of(&[50.0, 54.0]).unwrap();
//! assert_eq!(over_seeds.format(2), "52.00 ± 2.00");
//! # Ok::<(), mmcl_metrics::MetricsError>(())
//! ```
//!
//! # Definitions
//!
//! All accuracies are percentages. `A[t][i]` is the accuracy on task `i`'s test set after
//! training task `t`, tasks numbered `0..T`, last task `L = T - 1`. One matrix is kept per
//! inference mode (for SAMM: audio head, visual head, fused head, calibrated ensemble).
//!
//! - **Final mean accuracy** (class-IL headline): `mean_{i<=L} A[L][i]`, unweighted over
//!   tasks.
//! - **Task-IL accuracy**: the same on the task-IL matrix (logits masked to the task's
//!   classes at evaluation; Seq only).
//! - **Backward transfer**: `BWT = mean_{i<L} (A[L][i] - A[i][i])` (negative = forgetting).
//! - **Forgetting**: `F = mean_{i<L} (max_{i<=t<L} A[t][i] - A[L][i])`.
//! - **Forward transfer** (Lopez-Paz & Ranzato 2017):
//!   `FWT = mean_{1<=i<=L} (A[i-1][i] - b[i])`, `b[i]` = a randomly initialised model's
//!   accuracy on task `i`. Needs task `i` evaluated before it is trained (row `i-1` holding
//!   an entry `i`); otherwise it is not reported. In class-IL it is ~`-b[i]` by
//!   construction (unseen classes cannot be predicted), so it is informative for Dom.
//! - **GCIL**: `acc[t]` = accuracy on the cumulative test set of every class seen up to
//!   task `t`. Reported: the mean over the cumulative test sets `mean_t acc[t]` (what the
//!   reference implementation and so the paper report) and the final all-seen `acc[L]`.
//! - **ECE**: expected calibration error with 15 equal-width confidence bins, computed by
//!   the evaluator per task after the last task; reported as the mean over tasks.
//! - **Stability**: mean accuracy on the earlier tasks after each task,
//!   `mean_{1<=t<=L} mean_{i<t} A[t][i]` (high = old knowledge kept).
//! - **Plasticity**: accuracy on the task just learned, `mean_{t<=L} A[t][t]`
//!   (high = new knowledge acquired).
//! - **Task-recency bias** after task `t`: the share (%) of all test predictions (over
//!   every seen task's test set) that fall on classes of task `t`, from prediction counts
//!   per task of the predicted class; reported after the last task. An unbiased model on
//!   equal-sized test sets scores about `100 / T`; a model that only predicts its newest
//!   classes scores 100.
//!
//! **Mean ± std over seeds** uses the population standard deviation (divide by `n`,
//! numpy's `np.std` default, which mammoth-style code such as the paper's uses) unless
//! [`Ddof::Sample`] is chosen. The number of seeds is printed with every table.

pub mod error;
pub mod io;
pub mod keys;
pub mod matrix;
pub mod paper;
pub mod plot;
pub mod stats;
pub mod table;

pub use error::{MetricsError, Result};
pub use keys::{Method, Modality, Scenario};
pub use matrix::{gcil_summary, mean_ece, task_recency_bias, AccuracyMatrix, GcilSummary};
pub use paper::{paper_value, PaperValue};
pub use stats::{Ddof, MeanStd};
pub use table::{Cell, CellKey, PaperLayoutTable, TableRow};
