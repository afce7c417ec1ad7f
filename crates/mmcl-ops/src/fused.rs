//! Elementwise fusions that save whole passes over activations in a training step:
//! `relu(a + b)` (the residual join of a ResNet block).

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::profile::{timed, OpClass};
use crate::select::use_fast;
use crate::util::{f32_slice, output_vec};
use crate::OpsError;

/// Elements per rayon task in elementwise kernels.
const CHUNK: usize = 1 << 14;

struct AddReluOp;
struct ReluMaskOp;

impl CustomOp2 for AddReluOp {
    fn name(&self) -> &'static str {
        "mmcl-add-relu"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        timed(OpClass::Elementwise, || {
            let a = f32_slice(s1, l1, "add_relu")?;
            let b = f32_slice(s2, l2, "add_relu")?;
            let mut y = output_vec(a.len());
            y.par_chunks_mut(CHUNK)
                .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
                .for_each(|(y, (a, b))| {
                    for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
                        *o = (u + v).max(0.0);
                    }
                });
            Ok((CpuStorage::F32(y), l1.shape().clone()))
        })
    }
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = dy.contiguous()?.apply_op2_no_bwd(y, &ReluMaskOp)?;
        Ok((a.track_op().then(|| g.clone()), b.track_op().then_some(g)))
    }
}

impl CustomOp2 for ReluMaskOp {
    fn name(&self) -> &'static str {
        "mmcl-relu-mask"
    }
    /// `dy * (y > 0)`.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        timed(OpClass::Elementwise, || {
            let dy = f32_slice(s1, l1, "relu-mask")?;
            let y = f32_slice(s2, l2, "relu-mask")?;
            let mut g = output_vec(dy.len());
            g.par_chunks_mut(CHUNK)
                .zip(dy.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
                .for_each(|(g, (d, y))| {
                    for ((o, &d), &y) in g.iter_mut().zip(d).zip(y) {
                        *o = if y > 0.0 { d } else { 0.0 };
                    }
                });
            Ok((CpuStorage::F32(g), l1.shape().clone()))
        })
    }
}

/// `relu(a + b)` for two tensors of the same shape, differentiable w.r.t. both.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(OpsError::Shape {
            op: "add_relu",
            msg: format!("shapes differ: {:?} vs {:?}", a.dims(), b.dims()),
        }
        .into());
    }
    if use_fast(a)? && b.dtype() == candle_core::DType::F32 {
        a.contiguous()?.apply_op2(&b.contiguous()?, AddReluOp)
    } else {
        (a + b)?.relu()
    }
}
