//! Visual corruptions of decoded RGB u8 frames (height x width x 3, row-major), applied to a
//! clip's frames together (occlusion and dropped frames act on the clip, the rest per frame).
use std::path::Path;

use rand::Rng;

use super::noise::fill_gaussian_u16;
use super::spec::{Severity, VisualCorruption};
use crate::error::{MediaError, Result};
use crate::frames::{decode_frame_bytes, RgbFrame};

/// Standard deviation of the additive Gaussian noise, on [0, 1] pixel values, at
/// severities 1..=5 (ImageNet-C `gaussian_noise`).
pub const NOISE_SIGMA: [f32; 5] = [0.08, 0.12, 0.18, 0.26, 0.38];
/// Gaussian blur sigma in pixels of a 224-pixel frame at severities 1..=5 (ImageNet-C
/// `gaussian_blur`); applied as `sigma * min(width, height) / 224`.
pub const BLUR_SIGMA_224: [f32; 5] = [1.0, 2.0, 3.0, 4.0, 6.0];
/// JPEG quality at severities 1..=5 (ImageNet-C `jpeg_compression`).
pub const JPEG_QUALITY: [u8; 5] = [25, 18, 15, 10, 7];
/// Night, first step: contrast factor towards each channel's frame mean (ImageNet-C
/// `contrast`).
pub const NIGHT_CONTRAST: [f32; 5] = [0.4, 0.3, 0.2, 0.1, 0.05];
/// Night, second step: subtracted from HSV value on [0, 1] (ImageNet-C `brightness`,
/// negated).
pub const NIGHT_DARKEN: [f32; 5] = [0.1, 0.2, 0.3, 0.4, 0.5];
/// Share of the frame area covered by the occluding rectangle at severities 1..=5.
pub const OCCLUSION_FRACTION: [f32; 5] = [0.1, 0.2, 0.3, 0.4, 0.5];
/// Share of a clip's frames dropped at severities 1..=5 (rounded, at least 1 and at most
/// all but one frame).
pub const DROP_FRACTION: [f32; 5] = [0.2, 0.35, 0.5, 0.65, 0.8];
/// Frame side the ImageNet-C blur sigmas are defined for.
const BLUR_REFERENCE_SIDE: f32 = 224.0;

impl VisualCorruption {
    /// Corrupts a clip stored as `T` frames of `height x width x 3` bytes back to back
    /// (`frames.len() = T * height * width * 3`, the layout of a prepared cache's clip).
    ///
    /// Severity 0 returns at once without touching `frames` or `rng`. Errors (frames
    /// unchanged): a zero side, or a length that is not a whole number of frames.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        frames: &mut [u8],
        width: usize,
        height: usize,
        rng: &mut R,
    ) -> Result<()> {
        let size = width * height * 3;
        if size == 0 || frames.len() % size != 0 {
            return Err(MediaError::InvalidArgument(format!(
                "visual corruption `{self}`: {} bytes are not whole {width}x{height} RGB frames",
                frames.len()
            )));
        }
        let mut views: Vec<&mut [u8]> = frames.chunks_exact_mut(size).collect();
        self.apply_views(&mut views, width, height, rng)
    }

    /// [`VisualCorruption::apply`] on decoded frames, which must all have one size.
    pub fn apply_images<R: Rng + ?Sized>(
        &self,
        frames: &mut [RgbFrame],
        rng: &mut R,
    ) -> Result<()> {
        let Some(first) = frames.first() else {
            return Ok(());
        };
        let (w, h) = first.dimensions();
        if let Some(f) = frames.iter().find(|f| f.dimensions() != (w, h)) {
            return Err(MediaError::InvalidArgument(format!(
                "visual corruption `{self}`: frames of different sizes ({w}x{h} and {}x{})",
                f.width(),
                f.height()
            )));
        }
        if w == 0 || h == 0 {
            return Err(MediaError::InvalidArgument(format!(
                "visual corruption `{self}`: empty {w}x{h} frames"
            )));
        }
        let mut views: Vec<&mut [u8]> = frames.iter_mut().map(|f| &mut **f).collect();
        self.apply_views(&mut views, w as usize, h as usize, rng)
    }

    fn apply_views<R: Rng + ?Sized>(
        &self,
        frames: &mut [&mut [u8]],
        width: usize,
        height: usize,
        rng: &mut R,
    ) -> Result<()> {
        if self.is_identity() || frames.is_empty() {
            return Ok(());
        }
        let pick = |s: Severity, t: &[f32; 5]| s.pick(t).expect("severity 0 returned above");
        match *self {
            VisualCorruption::Noise(s) => {
                let sigma = pick(s, &NOISE_SIGMA) * 255.0;
                let mut z = vec![0f32; 4096];
                for f in frames.iter_mut() {
                    gaussian_noise(f, sigma, &mut z, rng);
                }
            }
            VisualCorruption::Blur(s) => {
                let side = width.min(height) as f32;
                let sigma = pick(s, &BLUR_SIGMA_224) * side / BLUR_REFERENCE_SIDE;
                let mut scratch = Vec::new();
                for f in frames.iter_mut() {
                    gaussian_blur(f, width, height, sigma, &mut scratch);
                }
            }
            VisualCorruption::Jpeg(s) => {
                let quality = s.pick(&JPEG_QUALITY).expect("severity 0 returned above");
                for f in frames.iter_mut() {
                    jpeg_roundtrip(f, width, height, quality)?;
                }
            }
            VisualCorruption::Night(s) => {
                let (c, b) = (pick(s, &NIGHT_CONTRAST), pick(s, &NIGHT_DARKEN));
                for f in frames.iter_mut() {
                    night(f, c, b);
                }
            }
            VisualCorruption::Occlusion(s) => {
                occlude(frames, width, height, pick(s, &OCCLUSION_FRACTION), rng)
            }
            VisualCorruption::Drop(s) => drop_frames(frames, pick(s, &DROP_FRACTION), rng),
            VisualCorruption::Missing => frames.iter_mut().for_each(|f| f.fill(0)),
        }
        Ok(())
    }
}

/// `x + N(0, sigma)` per byte (sigma in 0..255 units), clipped to 0..=255 and rounded; the
/// draws at 16-bit resolution ([`fill_gaussian_u16`]), in blocks of `z`.
fn gaussian_noise<R: Rng + ?Sized>(frame: &mut [u8], sigma: f32, z: &mut [f32], rng: &mut R) {
    for block in frame.chunks_mut(z.len()) {
        let z = &mut z[..block.len()];
        fill_gaussian_u16(z, rng);
        for (x, &z) in block.iter_mut().zip(z.iter()) {
            *x = to_u8(*x as f32 + sigma * z);
        }
    }
}

/// Rounds half up and saturates to 0..=255 (the float-to-int cast saturates; `f32::round`
/// is a libm call on baseline x86-64, this is two instructions).
#[inline(always)]
fn to_u8(v: f32) -> u8 {
    (v + 0.5) as u8
}

/// Separable Gaussian blur, taps to `ceil(4 sigma)` either side and edge pixels repeated
/// (scikit-image's `gaussian`, which ImageNet-C uses: truncate 4, mode `nearest`).
fn gaussian_blur(frame: &mut [u8], width: usize, height: usize, sigma: f32, tmp: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected. The result is the same as without it: the compiler
        // only widens the lanes, each output keeps its order of float operations.
        unsafe { gaussian_blur_avx2(frame, width, height, sigma, tmp) };
        return;
    }
    blur_impl(frame, width, height, sigma, tmp)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gaussian_blur_avx2(
    frame: &mut [u8],
    width: usize,
    height: usize,
    sigma: f32,
    tmp: &mut Vec<f32>,
) {
    blur_impl(frame, width, height, sigma, tmp)
}

#[inline(always)]
fn blur_impl(frame: &mut [u8], width: usize, height: usize, sigma: f32, tmp: &mut Vec<f32>) {
    let r = (4.0 * sigma).ceil().max(1.0) as usize;
    let mut taps: Vec<f32> = (0..=2 * r)
        .map(|i| {
            let d = i as f32 - r as f32;
            (-0.5 * d * d / (sigma * sigma)).exp()
        })
        .collect();
    let total: f32 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= total);
    let row = width * 3;
    tmp.clear();
    tmp.resize(row * height, 0.0);
    // Horizontal: one padded row, then out[j] = sum_k taps[k] * padded[j + 3k] (contiguous in
    // j for every tap, so the inner loop vectorises; summing symmetric tap pairs first
    // measured 2-4x slower here: those loops did not vectorise).
    let mut padded = vec![0f32; (width + 2 * r) * 3];
    for y in 0..height {
        let src = &frame[y * row..(y + 1) * row];
        for (p, px) in padded.chunks_exact_mut(3).enumerate() {
            let x = p.saturating_sub(r).min(width - 1);
            px.copy_from_slice(&[
                src[x * 3] as f32,
                src[x * 3 + 1] as f32,
                src[x * 3 + 2] as f32,
            ]);
        }
        let out = &mut tmp[y * row..(y + 1) * row];
        for (k, &t) in taps.iter().enumerate() {
            for (o, &v) in out.iter_mut().zip(&padded[3 * k..3 * k + row]) {
                *o += t * v;
            }
        }
    }
    // Vertical: each output row is the tap-weighted sum of whole rows (edge rows repeated).
    let mut acc = vec![0f32; row];
    for y in 0..height {
        acc.fill(0.0);
        for (k, &t) in taps.iter().enumerate() {
            let sy = (y + k).saturating_sub(r).min(height - 1);
            for (a, &v) in acc.iter_mut().zip(&tmp[sy * row..(sy + 1) * row]) {
                *a += t * v;
            }
        }
        for (d, &a) in frame[y * row..(y + 1) * row].iter_mut().zip(&acc) {
            *d = to_u8(a);
        }
    }
}

/// Encodes the frame as a JPEG of `quality` (the `image` crate's baseline encoder) and
/// decodes it back with the crate's frame decoder.
fn jpeg_roundtrip(frame: &mut [u8], width: usize, height: usize, quality: u8) -> Result<()> {
    let err = |e: image::ImageError| {
        MediaError::InvalidArgument(format!("JPEG corruption of a {width}x{height} frame: {e}"))
    };
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode(
            frame,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(err)?;
    let decoded = decode_frame_bytes(&bytes, Path::new("<jpeg corruption>"))?;
    frame.copy_from_slice(decoded.as_raw());
    Ok(())
}

/// Contrast `c` towards each channel's mean over the frame, then the HSV value lowered by
/// `darken` (on [0, 1], floored at 0) at fixed hue and saturation: every channel of a pixel
/// is scaled by `max(V - darken, 0) / V`, `V` = its largest channel.
fn night(frame: &mut [u8], contrast: f32, darken: f32) {
    let pixels = (frame.len() / 3).max(1) as f64;
    let mut mean = [0f64; 3];
    for px in frame.chunks_exact(3) {
        for c in 0..3 {
            mean[c] += px[c] as f64;
        }
    }
    let mean = mean.map(|m| (m / pixels / 255.0) as f32);
    for px in frame.chunks_exact_mut(3) {
        let v: [f32; 3] =
            std::array::from_fn(|c| (px[c] as f32 / 255.0 - mean[c]) * contrast + mean[c]);
        let value = v[0].max(v[1]).max(v[2]);
        let scale = if value > 0.0 {
            (value - darken).max(0.0) / value
        } else {
            0.0
        };
        for c in 0..3 {
            px[c] = to_u8(v[c] * scale * 255.0);
        }
    }
}

/// One black rectangle of `fraction` of the frame area (aspect ratio log-uniform in
/// [1/2, 2], a side longer than the frame clamped and the other widened to keep the area),
/// at a uniform position, the same in every frame.
fn occlude<R: Rng + ?Sized>(
    frames: &mut [&mut [u8]],
    width: usize,
    height: usize,
    fraction: f32,
    rng: &mut R,
) {
    let area = fraction as f64 * (width * height) as f64;
    let aspect = (rng.random_range(-1.0..=1.0f64) * std::f64::consts::LN_2).exp();
    let rw = ((area * aspect).sqrt().round() as usize).clamp(1, width);
    let rh = ((area / rw as f64).round() as usize).clamp(1, height);
    // A side clamped to the frame is made up by the other one, so the area stays the share.
    let rw = ((area / rh as f64).round() as usize).clamp(1, width);
    let x0 = rng.random_range(0..=width - rw);
    let y0 = rng.random_range(0..=height - rh);
    for f in frames.iter_mut() {
        for y in y0..y0 + rh {
            f[(y * width + x0) * 3..(y * width + x0 + rw) * 3].fill(0);
        }
    }
}

/// How many of `t` frames [`DROP_FRACTION`]'s `fraction` drops: `round(fraction * t)`
/// within 1..=t-1 (a clip keeps at least one frame; one frame cannot be dropped, only
/// missing).
pub fn dropped_count(fraction: f32, t: usize) -> usize {
    if t < 2 {
        return 0;
    }
    ((fraction * t as f32).round() as usize).clamp(1, t - 1)
}

/// Drops [`dropped_count`] frames chosen uniformly; each becomes a copy of the nearest
/// earlier kept frame (a frozen stream), or of the first kept frame if none is earlier.
fn drop_frames<R: Rng + ?Sized>(frames: &mut [&mut [u8]], fraction: f32, rng: &mut R) {
    let t = frames.len();
    let d = dropped_count(fraction, t);
    let mut kept = vec![true; t];
    for i in rand::seq::index::sample(rng, t, d) {
        kept[i] = false;
    }
    let first_kept = kept
        .iter()
        .position(|&k| k)
        .expect("at least one frame is kept");
    let mut source = first_kept;
    for i in 0..t {
        if kept[i] {
            source = i;
            continue;
        }
        let (dst, src) = if source < i {
            let (a, b) = frames.split_at_mut(i);
            (&mut b[0], &a[source])
        } else {
            let (a, b) = frames.split_at_mut(source);
            (&mut a[i], &b[0])
        };
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_counts_at_paper_and_tiny_frame_counts() {
        let at = |t| DROP_FRACTION.map(|f| dropped_count(f, t));
        assert_eq!(at(4), [1, 1, 2, 3, 3]);
        assert_eq!(at(2), [1, 1, 1, 1, 1]);
        assert_eq!(at(1), [0; 5]);
        assert_eq!(at(10), [2, 4, 5, 7, 8]);
    }

    #[test]
    fn blur_keeps_a_flat_frame_and_spreads_an_impulse() {
        let (w, h) = (9, 7);
        let mut flat = vec![77u8; w * h * 3];
        gaussian_blur(&mut flat, w, h, 1.5, &mut Vec::new());
        assert!(flat.iter().all(|&x| x == 77));
        let mut dot = vec![0u8; w * h * 3];
        dot[(3 * w + 4) * 3] = 255;
        gaussian_blur(&mut dot, w, h, 1.0, &mut Vec::new());
        // Centre keeps 1/(2 pi sigma^2) ~ 0.159 of the energy; neighbours are symmetric.
        let at = |x: usize, y: usize| dot[(y * w + x) * 3];
        assert!((at(4, 3) as i32 - 41).abs() <= 1, "{}", at(4, 3));
        assert_eq!(at(3, 3), at(5, 3));
        assert_eq!(at(4, 2), at(4, 4));
        assert_eq!(dot[(3 * w + 4) * 3 + 1], 0, "channels stay separate");
    }

    #[test]
    fn blur_is_the_same_with_and_without_avx2() {
        let (w, h) = (37, 23);
        let frame: Vec<u8> = (0..w * h * 3).map(|i| (i * 7919 % 251) as u8).collect();
        for sigma in [0.3, 1.0, 2.5] {
            let (mut a, mut b) = (frame.clone(), frame.clone());
            gaussian_blur(&mut a, w, h, sigma, &mut Vec::new());
            blur_impl(&mut b, w, h, sigma, &mut Vec::new());
            assert_eq!(a, b, "sigma {sigma}");
            assert_ne!(a, frame);
        }
    }

    #[test]
    fn night_darkens_at_fixed_hue() {
        let mut px = vec![200u8, 100, 50];
        night(&mut px, 1.0, 0.25);
        // V 200/255 -> V - 0.25: every channel scaled by 1 - 0.25 * 255 / 200 = 0.68125.
        assert_eq!(px, vec![136, 68, 34]);
    }
}
