//! Allocation-free forms of the transforms, for a loader that prepares thousands of clips a
//! second: the caller owns the output buffers and one scratch value per thread, so after the
//! first clip nothing is allocated. Each gives the same bits as its allocating counterpart
//! (tested):
//!
//! | allocating | here |
//! |---|---|
//! | [`crate::image_ops::resized_crop`] | [`resized_crop_into`] with a [`ResizeScratch`], on any packed RGB buffer (a decoded frame, an mmap'd cache tensor) |
//! | [`crate::image_ops::hflip`] + [`crate::image_ops::to_normalized_chw`] | [`write_normalized_planes`], straight into a `[3, T, H, W]` clip tensor |
//! | [`crate::spectrogram::Stft::log_magnitude`] | [`crate::spectrogram::Stft::log_magnitude_into`] with a [`StftScratch`] |
//! | [`crate::transform::AudioTransform::apply`] | [`crate::transform::AudioTransform::apply_into`] with a [`TransformScratch`] |
//!
//! Kernels use AVX2 when the CPU has it (detected at run time) and equal the scalar path bit
//! for bit.
use realfft::num_complex::Complex64;

pub use crate::resize::{resized_crop_into, ResizeScratch};

/// Reusable per-thread buffers for [`crate::spectrogram::Stft::log_magnitude_into`].
#[derive(Default)]
pub struct StftScratch {
    pub(crate) frame: Vec<f64>,
    pub(crate) spectrum: Vec<Complex64>,
    pub(crate) fft: Vec<Complex64>,
    /// `|S|` time-major (`[time, freq]`), transposed into the output at the end.
    pub(crate) magnitude: Vec<f32>,
}

/// Reusable buffers for [`crate::transform::AudioTransform::apply_into`] (one per thread).
#[derive(Default)]
pub struct TransformScratch {
    pub(crate) crop: Vec<f32>,
    pub(crate) stft: StftScratch,
}

/// Packed RGB u8 `width x height` (`rgb`) -> normalised planes `out[c * channel_stride..]
/// [..H * W]`, mirrored left-right when `flip` (`hflip` then [`crate::image_ops::to_normalized_chw`], in one
/// pass with no image copy; the values are the same bits). Vectorised with AVX2 when present.
/// Panics if a buffer is too short (a caller bug).
#[allow(clippy::too_many_arguments)]
pub fn write_normalized_planes(
    rgb: &[u8],
    width: usize,
    height: usize,
    flip: bool,
    mean: [f32; 3],
    std: [f32; 3],
    out: &mut [f32],
    channel_stride: usize,
) {
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| -mean[c] / std[c]);
    let hw = width * height;
    let rgb = &rgb[..hw * 3];
    let (r, rest) = out.split_at_mut(channel_stride);
    let (g, b) = rest.split_at_mut(channel_stride);
    let planes = [&mut r[..hw], &mut g[..hw], &mut b[..hw]];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        unsafe { planes_avx2(rgb, width, flip, scale, shift, planes) };
        return;
    }
    planes_generic(rgb, width, flip, scale, shift, planes);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn planes_avx2(
    rgb: &[u8],
    width: usize,
    flip: bool,
    scale: [f32; 3],
    shift: [f32; 3],
    planes: [&mut [f32]; 3],
) {
    planes_generic(rgb, width, flip, scale, shift, planes)
}

#[inline(always)]
fn planes_generic(
    rgb: &[u8],
    width: usize,
    flip: bool,
    scale: [f32; 3],
    shift: [f32; 3],
    planes: [&mut [f32]; 3],
) {
    let [r, g, b] = planes;
    let rows = rgb
        .chunks_exact(width * 3)
        .zip(r.chunks_exact_mut(width))
        .zip(g.chunks_exact_mut(width).zip(b.chunks_exact_mut(width)));
    for ((src, rr), (gg, bb)) in rows {
        // (u8 as f32) * scale + shift, per channel: separate loops over the interleaved row
        // vectorise; the flip reverses the plane row afterwards.
        for (d, px) in rr.iter_mut().zip(src.chunks_exact(3)) {
            *d = px[0] as f32 * scale[0] + shift[0];
        }
        for (d, px) in gg.iter_mut().zip(src.chunks_exact(3)) {
            *d = px[1] as f32 * scale[1] + shift[1];
        }
        for (d, px) in bb.iter_mut().zip(src.chunks_exact(3)) {
            *d = px[2] as f32 * scale[2] + shift[2];
        }
        if flip {
            rr.reverse();
            gg.reverse();
            bb.reverse();
        }
    }
}
