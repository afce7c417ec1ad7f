//! Small helpers shared by the CPU kernels: contiguous f32 views of candle storage,
//! reusable per-thread scratch buffers and thin GEMM wrappers over the `gemm` crate.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Shape};
use std::cell::RefCell;

use crate::OpsError;

/// The contiguous f32 slice a CPU tensor's layout describes.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &'static str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        other => {
            return Err(OpsError::DType {
                op,
                dtype: format!("{:?}", other.dtype()),
            }
            .into());
        }
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(OpsError::NotContiguous { op }.into()),
    }
}

/// The dims of a 4-d shape, or a typed error naming the op.
pub(crate) fn dims4(shape: &Shape, op: &'static str) -> Result<(usize, usize, usize, usize)> {
    match shape.dims() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        d => Err(OpsError::Rank {
            op,
            expected: 4,
            got: d.to_vec(),
        }
        .into()),
    }
}

thread_local! {
    // Per-thread scratch (im2col columns and gradient accumulators): big buffers are taken
    // out and put back, so a step allocates them once per thread, not once per call, and a
    // re-entrant use (rayon work stealing) simply gets a fresh buffer instead of a panic.
    static SCRATCH: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// An output buffer of `len` floats whose contents are unspecified (no zeroing pass): for
/// kernels that write every element before anything reads it.
pub(crate) fn output_vec(len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: f32 has no invalid bit patterns and the capacity is `len`; every caller
    // overwrites all `len` elements before reading any (see the call sites).
    #[allow(clippy::uninit_vec)]
    unsafe {
        v.set_len(len)
    };
    v
}

/// A scratch buffer of at least `len` floats; contents are unspecified.
pub(crate) fn take_scratch(len: usize) -> Vec<f32> {
    let mut v = SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        // Prefer the smallest cached buffer that is big enough.
        let mut best: Option<usize> = None;
        for (i, b) in s.iter().enumerate() {
            if b.capacity() >= len && best.is_none_or(|j| s[j].capacity() > b.capacity()) {
                best = Some(i);
            }
        }
        match best {
            Some(i) => s.swap_remove(i),
            None => s.pop().unwrap_or_default(),
        }
    });
    if v.len() < len {
        v.resize(len, 0.0);
    }
    v
}

/// Returns a buffer taken with [`take_scratch`] to this thread's cache.
pub(crate) fn put_scratch(v: Vec<f32>) {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < 4 {
            s.push(v);
        }
    });
}

/// Number of rayon worker threads (at least 1).
pub(crate) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// A matrix operand: base pointer plus row and column strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl Mat {
    /// Row-major `rows x cols` matrix.
    pub fn row_major(s: &[f32], cols: usize) -> Self {
        Mat {
            ptr: s.as_ptr(),
            rs: cols as isize,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(s: &[f32], cols: usize) -> Self {
        Mat {
            ptr: s.as_ptr(),
            rs: 1,
            cs: cols as isize,
        }
    }
}

/// `dst[m x n] (row-major) = (accumulate ? dst : 0) + lhs[m x k] * rhs[k x n]`.
///
/// `par` selects gemm's own rayon parallelism; use it only from outside rayon tasks that
/// hold scratch buffers of big GEMMs.
#[allow(clippy::too_many_arguments)] // mirrors the BLAS signature
pub(crate) fn gemm_rm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    par: bool,
) {
    assert!(dst.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let parallelism = if par {
        gemm::Parallelism::Rayon(threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the callers pass operands whose strides stay inside slices they own for the
    // call (checked by construction at each call site); dst is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Like [`gemm_rm`] but `dst` [m x n] is column-major (element (i, j) at `j * m + i`).
pub(crate) fn gemm_cm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: Mat,
    rhs: Mat,
    par: bool,
) {
    gemm_cm_acc(m, n, k, dst, false, lhs, rhs, par)
}

/// [`gemm_cm`], optionally accumulating into `dst`.
#[allow(clippy::too_many_arguments)] // mirrors the BLAS signature
pub(crate) fn gemm_cm_acc(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    par: bool,
) {
    assert!(dst.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let parallelism = if par {
        gemm::Parallelism::Rayon(threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: as in `gemm_rm`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            m as isize,
            1,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A raw pointer that may be shared across rayon tasks writing disjoint regions.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
