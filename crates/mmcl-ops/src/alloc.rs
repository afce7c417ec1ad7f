//! Process allocator policy for training loops.
//!
//! A training step frees and re-allocates every activation and gradient (~100 MB at the mini
//! scale). glibc's malloc serves big blocks with fresh `mmap`s and returns freed memory to
//! the OS, so each step page-faults all of it again: about 28 000 faults and ~30 ms of
//! kernel time per mini step here (`perf stat`), ~10% of the step; at the paper scale
//! (blocks > 32 MiB, always mmapped by default) 839k faults in 3 steps instead of 514k
//! (mostly the first step's). [`keep_freed_memory`] keeps it in the process instead.

/// Makes glibc's malloc keep freed memory for reuse: no `mmap` for big blocks (paper-scale
/// activations exceed glibc's largest mmap threshold, 32 MiB) and no trimming of the heap
/// top. Process-wide; call once at the start of a
/// binary that trains. Returns whether the settings were applied (false on other libcs or
/// platforms, where it does nothing).
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3, M_MMAP_MAX = -4.
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        const M_MMAP_MAX: std::ffi::c_int = -4;
        // SAFETY: mallopt only changes allocator tuning parameters; valid for any values.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
                && mallopt(M_MMAP_MAX, 0) == 1
                && mallopt(M_TRIM_THRESHOLD, std::ffi::c_int::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
