//! Process-wide settings for programs that train or evaluate, applied before the first
//! candle op. The step benchmark applies the same ones, so its figures hold for real runs.

/// What [`tune_for_training`] set, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingProcess {
    /// `CANDLE_NUM_THREADS` in effect.
    pub candle_threads: String,
    /// Whether glibc's malloc keeps freed memory (see [`crate::alloc`]).
    pub keeps_freed_memory: bool,
}

/// - candle 0.11 runs large elementwise ops (gradient accumulation in backward) on its own
///   spin-waiting thread pool next to rayon's; on a small, shared CPU the spinning costs
///   more than the parallelism gains (tiny/mini steps 10-20% faster with 1 thread). The pool
///   reads the variable once, at its first use; an explicit `CANDLE_NUM_THREADS` wins.
/// - Freed activations and gradients stay in the process instead of being page-faulted back
///   in at every step ([`crate::alloc::keep_freed_memory`]).
///
/// Call while the process is still single-threaded (first thing in a command).
pub fn tune_for_training() -> TrainingProcess {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY-relevant: set_var is only sound while no other thread reads the
        // environment; callers run this before any pool or worker thread starts.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    TrainingProcess {
        candle_threads: std::env::var("CANDLE_NUM_THREADS").unwrap_or_default(),
        keeps_freed_memory: crate::alloc::keep_freed_memory(),
    }
}

/// Worker threads of rayon's global pool, on which the CPU kernels run (for reports).
pub fn worker_threads() -> usize {
    crate::util::threads()
}
