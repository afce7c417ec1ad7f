//! The tensor operations the network needs beyond plain candle ops, from `mmcl_ops`:
//! conv2d with correct gradients for every shape (candle 0.11's backward fails for stride 2
//! when H and W differ in parity), the stem's 3x3/2 max pool with a backward pass, and
//! training-mode BatchNorm (optionally fused with ReLU) and the residual `relu(a + b)`.
//! Fast CPU custom ops; candle compositions on other devices.
pub use mmcl_ops::{
    add_relu, batch_norm_relu_train, batch_norm_train, conv2d, conv2d_batch_norm_train, max_pool2d,
    Conv2dConfig, MaxPoolConfig,
};
