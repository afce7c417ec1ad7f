//! Tensor operations candle lacks or is slow at: conv2d with correct gradients, 3x3/2 max pool, fused BatchNorm; fast CPU kernels as candle custom ops.
