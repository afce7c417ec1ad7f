//! A convolution followed by training-mode BatchNorm (optionally + ReLU) as one autograd
//! node: the ResNet's conv-BN pairs.
//!
//! Same arithmetic as [`crate::conv2d`] then [`crate::batch_norm_train`] (bit-identical
//! results), but the convolution's output is not a node of candle's graph: candle's backward
//! materialises every node's gradient as `zeros + gradient` (one allocation, a zero fill and
//! an add over the activation), which this saves once per convolution.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor};

use crate::bn::{bn_dims, bn_forward_cpu, bn_impl, BnBwdOp, Saved};
use crate::conv::{conv_fwd_cpu, Conv2dBwdInputOp, Conv2dBwdWeightOp, Conv2dConfig, Geom};
use crate::profile::{timed, OpClass};
use crate::select::use_fast;
use crate::util::f32_slice;
use crate::OpsError;

/// What the forward kernel leaves for the backward pass: the convolution output (the BN
/// input) and the BN statistics.
#[derive(Default)]
struct State {
    z: Option<Vec<f32>>,
    z_tensor: Option<Tensor>,
    saved: Option<Saved>,
}

struct ConvBnOp {
    g: Geom,
    eps: f64,
    relu: bool,
    state: Arc<Mutex<State>>,
}

fn poisoned() -> candle_core::Error {
    OpsError::Poisoned {
        op: "conv2d_batch_norm_train",
    }
    .into()
}

impl CustomOp3 for ConvBnOp {
    fn name(&self) -> &'static str {
        "mmcl-conv2d-batch-norm-train"
    }
    /// Args: x [N, Cin, H, W], weight [Cout, Cin, KH, KW], cat(gamma, beta) [2 * Cout].
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let x = f32_slice(s1, l1, "conv2d_batch_norm_train")?;
        let w = f32_slice(s2, l2, "conv2d_batch_norm_train")?;
        let gb = f32_slice(s3, l3, "conv2d_batch_norm_train")?;
        let z = timed(OpClass::ConvForward, || conv_fwd_cpu(x, w, &g));
        let (y, saved) = timed(OpClass::BatchNormForward, || {
            bn_forward_cpu(
                &z,
                (g.n, g.cout, g.p()),
                &gb[..g.cout],
                &gb[g.cout..],
                self.eps,
                self.relu,
            )
        });
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        st.z = Some(z);
        st.saved = Some(saved);
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.cout, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        gb: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.g;
        let st = self.state.lock().map_err(|_| poisoned())?;
        let (Some(z), Some(saved)) = (st.z_tensor.as_ref(), st.saved.as_ref()) else {
            return Err(OpsError::Config {
                op: "conv2d_batch_norm_train",
                msg: "backward before forward".into(),
            }
            .into());
        };
        let op = BnBwdOp {
            relu: self.relu,
            saved,
            grads: Mutex::new(None),
        };
        let dz = z.apply_op2_no_bwd(&dy.contiguous()?, &op)?;
        let (gw, gbias) = op
            .grads
            .lock()
            .map_err(|_| poisoned())?
            .take()
            .expect("filled by the kernel");
        let dgb = Tensor::from_vec([gw, gbias].concat(), gb.shape(), gb.device())?;
        let dx = if x.track_op() {
            Some(dz.apply_op2_no_bwd(w, &Conv2dBwdInputOp { g })?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(&dz, &Conv2dBwdWeightOp { g })?)
        } else {
            None
        };
        Ok((dx, dw, Some(dgb)))
    }
}

/// `batch_norm_train(conv2d(x, w, cfg), gamma, beta, eps)`, with the ReLU after it fused
/// when `relu`: returns `(y, batch_mean [Cout], biased_batch_var [Cout])` exactly like
/// [`crate::batch_norm_train`] / [`crate::batch_norm_relu_train`] applied to
/// [`crate::conv2d`]'s output, with gradients to `x`, `w`, `gamma` and `beta`. One candle
/// node on the CPU (see the module docs); the two separate ops elsewhere.
pub fn conv2d_batch_norm_train(
    x: &Tensor,
    w: &Tensor,
    cfg: Conv2dConfig,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let g = Geom::new(x.shape(), w.shape(), cfg)?;
    let fast = use_fast(x)?
        && w.dtype() == DType::F32
        && gamma.dtype() == DType::F32
        && beta.dtype() == DType::F32;
    if !fast {
        let z = crate::conv2d(x, w, cfg)?;
        return bn_impl(&z, gamma, beta, eps, relu);
    }
    let c = g.cout;
    if gamma.dims() != [c] || beta.dims() != [c] {
        return Err(OpsError::Shape {
            op: "conv2d_batch_norm_train",
            msg: format!(
                "gamma {:?} and beta {:?} must both be [{c}]",
                gamma.dims(),
                beta.dims()
            ),
        }
        .into());
    }
    // Same validation as batch_norm_train (more than one value per channel).
    bn_dims(&Shape::from((g.n, g.cout, g.oh, g.ow)))?;
    let gb = Tensor::cat(&[gamma, beta], 0)?;
    let state = Arc::new(Mutex::new(State::default()));
    let op = ConvBnOp {
        g,
        eps,
        relu,
        state: state.clone(),
    };
    let y = x
        .contiguous()?
        .apply_op3(&w.contiguous()?, &gb.contiguous()?, op)?;
    let mut st = state.lock().map_err(|_| poisoned())?;
    let z = st.z.take().ok_or(OpsError::Config {
        op: "conv2d_batch_norm_train",
        msg: "forward kernel did not run".into(),
    })?;
    st.z_tensor = Some(Tensor::from_vec(
        z,
        (g.n, g.cout, g.oh, g.ow),
        &Device::Cpu,
    )?);
    let saved = st.saved.as_ref().expect("set with z");
    let mean = Tensor::from_vec(saved.mean.clone(), c, x.device())?;
    let var = Tensor::from_vec(saved.var.clone(), c, x.device())?;
    Ok((y, mean, var))
}
