//! Opt-in wall-clock accounting of the CPU kernels per op class, for `mmcl bench step`'s
//! profile. Off by default; when off, the cost is one relaxed atomic load per kernel call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The op classes the kernels are accounted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    ConvForward,
    ConvBackwardInput,
    ConvBackwardWeight,
    BatchNormForward,
    BatchNormBackward,
    PoolForward,
    PoolBackward,
    /// Fused elementwise kernels (add+ReLU and its mask).
    Elementwise,
}

impl OpClass {
    pub const ALL: [OpClass; 8] = [
        OpClass::ConvForward,
        OpClass::ConvBackwardInput,
        OpClass::ConvBackwardWeight,
        OpClass::BatchNormForward,
        OpClass::BatchNormBackward,
        OpClass::PoolForward,
        OpClass::PoolBackward,
        OpClass::Elementwise,
    ];
    pub fn name(self) -> &'static str {
        match self {
            OpClass::ConvForward => "conv_fwd",
            OpClass::ConvBackwardInput => "conv_bwd_input",
            OpClass::ConvBackwardWeight => "conv_bwd_weight",
            OpClass::BatchNormForward => "bn_fwd",
            OpClass::BatchNormBackward => "bn_bwd",
            OpClass::PoolForward => "pool_fwd",
            OpClass::PoolBackward => "pool_bwd",
            OpClass::Elementwise => "fused_elementwise",
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
static CALLS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Turns the accounting on or off (process-wide).
pub fn set_profiling(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The accumulated (class, total time, calls) since the last call, and resets them.
pub fn take_profile() -> Vec<(OpClass, Duration, u64)> {
    OpClass::ALL
        .iter()
        .map(|&c| {
            let i = c as usize;
            (
                c,
                Duration::from_nanos(NANOS[i].swap(0, Ordering::Relaxed)),
                CALLS[i].swap(0, Ordering::Relaxed),
            )
        })
        .collect()
}

/// Runs `f`, adding its wall time to `class` when profiling is on.
#[inline]
pub(crate) fn timed<T>(class: OpClass, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let t0 = Instant::now();
    let r = f();
    let i = class as usize;
    NANOS[i].fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    CALLS[i].fetch_add(1, Ordering::Relaxed);
    r
}
