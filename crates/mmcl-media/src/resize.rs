//! The resize kernel behind [`crate::image_ops::resize`] / [`crate::image_ops::resized_crop`]:
//! PIL's antialiased bilinear resample (`Image.resize(.., BILINEAR)`, what torchvision's
//! `Resize`/`RandomResizedCrop` run on PIL images), reproduced operation for operation from
//! Pillow's `Resample.c`:
//!
//! * coefficients: a triangle filter whose support widens by the downscale factor, computed in
//!   f64, normalised per output, then converted to 22-bit fixed point (`(int)(0.5 + k * 2^22)`);
//! * two separable passes, horizontal first as in Pillow <= 12 (Pillow >= 13 goes vertical
//!   first when the height shrinks much more than the width: up to one level apart there;
//!   `tests/frames.rs` checks both against Pillow's output); the horizontal pass runs only
//!   over the source rows the vertical pass reads; each pass accumulates `u8 * i32` from
//!   `2^21` (rounding) and clips `acc >> 22` to u8, so the intermediate image is u8 as in PIL.
//!
//! Integer arithmetic makes the result independent of the evaluation order, so the SIMD path
//! (AVX2, detected at run time; the horizontal pass does two taps of one output pixel per
//! instruction, the vertical pass eight channels of a row) equals the scalar path bit for
//! bit, which the tests check on odd sizes, border crops, upscaling and downscaling.
//!
//! [`resized_crop_into`] works on any packed RGB u8 buffer (a decoded frame, an mmap'd
//! cache tensor) and reuses a [`ResizeScratch`], so a loader thread allocates nothing per
//! frame.
use crate::error::{MediaError, Result};
use crate::image_ops::CropRect;

const PRECISION_BITS: u32 = 22;
const ROUND: i32 = 1 << (PRECISION_BITS - 1);
/// Bytes of slack after a padded source row, so SIMD loads of a padded tap group stay inside.
const ROW_SLACK: usize = 16;

/// Fixed-point filter taps of one pass: output `i` reads `len[i]` inputs from `start[i]`
/// with weights `k[i * ksize..][..len[i]]` (zero beyond `len[i]`, up to `ksize`, which is even).
#[derive(Debug, Default, Clone)]
struct Coeffs {
    start: Vec<usize>,
    len: Vec<usize>,
    k: Vec<i32>,
    ksize: usize,
    w64: Vec<f64>,
}

impl Coeffs {
    /// Pillow's `precompute_coeffs` (bilinear filter, support 1, box `0..in_size`) followed by
    /// `normalize_coeffs_8bpc`.
    fn plan(&mut self, in_size: usize, out_size: usize) {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // bilinear support 1.0 * filterscale
        let ksize = support.ceil() as usize * 2 + 1;
        self.ksize = ksize.next_multiple_of(2);
        self.start.clear();
        self.len.clear();
        self.k.clear();
        self.k.resize(out_size * self.ksize, 0);
        let ss = 1.0 / filterscale;
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) truncates; negative values clamp to 0 either way.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let n = xmax.saturating_sub(xmin);
            self.w64.clear();
            let mut ww = 0.0;
            for x in 0..n {
                let t = ((x + xmin) as f64 - center + 0.5) * ss;
                let w = bilinear_filter(t);
                self.w64.push(w);
                ww += w;
            }
            let dst = &mut self.k[xx * self.ksize..xx * self.ksize + n];
            for (d, &w) in dst.iter_mut().zip(&self.w64) {
                let w = if ww != 0.0 { w / ww } else { w };
                *d = if w < 0.0 {
                    (-0.5 + w * (1 << PRECISION_BITS) as f64) as i32
                } else {
                    (0.5 + w * (1 << PRECISION_BITS) as f64) as i32
                };
            }
            self.start.push(xmin);
            self.len.push(n);
        }
    }

    fn taps(&self, i: usize) -> &[i32] {
        &self.k[i * self.ksize..i * self.ksize + self.len[i]]
    }
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

#[inline(always)]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Reusable buffers for [`resized_crop_into`] (one per thread).
#[derive(Debug, Default, Clone)]
pub struct ResizeScratch {
    horiz: Coeffs,
    vert: Coeffs,
    /// Horizontal coefficients repeated per channel lane: `[k, k, k, k]` per tap.
    horiz4: Vec<i32>,
    row: Vec<u8>,
    tmp: Vec<u8>,
}

/// Which implementation runs; the SIMD ones are only chosen when the CPU has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    pub(crate) fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        Kernel::Scalar
    }

    /// Every kernel this CPU can run (for tests).
    #[cfg(test)]
    fn available() -> Vec<Kernel> {
        let mut v = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            v.push(Kernel::Avx2);
        }
        v
    }
}

/// Crops `rect` out of the packed RGB image `src` (`src_w` x `src_h` pixels, rows of
/// `src_w * 3` bytes) and resizes it to `out_w` x `out_h` (PIL's bilinear) into `out`
/// (packed RGB, at least `out_h * out_w * 3` bytes).
#[allow(clippy::too_many_arguments)]
pub fn resized_crop_into(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    rect: CropRect,
    out_w: usize,
    out_h: usize,
    scratch: &mut ResizeScratch,
    out: &mut [u8],
) -> Result<()> {
    resized_crop_with(
        Kernel::best(),
        src,
        src_w,
        src_h,
        rect,
        out_w,
        out_h,
        scratch,
        out,
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn resized_crop_with(
    kernel: Kernel,
    src: &[u8],
    src_w: usize,
    src_h: usize,
    rect: CropRect,
    out_w: usize,
    out_h: usize,
    scratch: &mut ResizeScratch,
    out: &mut [u8],
) -> Result<()> {
    let (left, top) = (rect.left as usize, rect.top as usize);
    let (cw, ch) = (rect.width as usize, rect.height as usize);
    if cw == 0
        || ch == 0
        || out_w == 0
        || out_h == 0
        || left + cw > src_w
        || top + ch > src_h
        || src.len() < src_w * src_h * 3
        || out.len() < out_w * out_h * 3
    {
        return Err(MediaError::InvalidArgument(format!(
            "crop {rect:?} of a {src_w}x{src_h} image ({} bytes) to {out_w}x{out_h} ({} bytes)",
            src.len(),
            out.len()
        )));
    }
    let ResizeScratch {
        horiz,
        vert,
        horiz4,
        row,
        tmp,
    } = scratch;
    horiz.plan(cw, out_w);
    vert.plan(ch, out_h);

    // Horizontal pass over the source rows the vertical pass reads -> tmp (u8, rounded).
    let first_row = vert.start[0];
    let last_row = vert.start[out_h - 1] + vert.len[out_h - 1];
    let stride = out_w * 3;
    let rows = last_row - first_row;
    // One byte of slack: the SIMD path stores 4 bytes per 3-byte pixel.
    tmp.clear();
    tmp.resize(rows * stride + 1, 0);
    let src_stride = src_w * 3;
    let row_bytes = cw * 3;
    if cw == out_w {
        // Identity filter (weights [2^22, 0]): a copy, as PIL skips the pass.
        for y in 0..rows {
            let s = (top + first_row + y) * src_stride + left * 3;
            tmp[y * stride..(y + 1) * stride].copy_from_slice(&src[s..s + row_bytes]);
        }
    } else {
        row.clear();
        row.resize(row_bytes + horiz.ksize * 3 + ROW_SLACK, 0);
        match kernel {
            Kernel::Scalar => {
                for y in 0..rows {
                    let s = (top + first_row + y) * src_stride + left * 3;
                    horizontal_scalar(
                        &src[s..s + row_bytes],
                        horiz,
                        &mut tmp[y * stride..(y + 1) * stride],
                    );
                }
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                horiz4.clear();
                horiz4.extend(horiz.k.iter().flat_map(|&k| [k; 4]));
                for y in 0..rows {
                    let s = (top + first_row + y) * src_stride + left * 3;
                    row[..row_bytes].copy_from_slice(&src[s..s + row_bytes]);
                    // SAFETY: AVX2 was detected (Kernel::best); `row` has ksize pixels + 16
                    // bytes of slack after the crop row, `tmp` one byte after the last pixel.
                    unsafe {
                        avx2::horizontal(row, horiz, horiz4, &mut tmp[y * stride..]);
                    }
                }
            }
        }
    }

    // Vertical pass -> out.
    let out = &mut out[..out_h * stride];
    if ch == out_h {
        out.copy_from_slice(&tmp[..out_h * stride]);
        return Ok(());
    }
    match kernel {
        Kernel::Scalar => vertical_scalar(tmp, stride, first_row, vert, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected (Kernel::best).
        Kernel::Avx2 => unsafe { avx2::vertical(tmp, stride, first_row, vert, out) },
    }
    Ok(())
}

fn horizontal_scalar(row: &[u8], horiz: &Coeffs, out: &mut [u8]) {
    for (x, px) in out.chunks_exact_mut(3).enumerate() {
        let st = horiz.start[x] * 3;
        let (mut s0, mut s1, mut s2) = (ROUND, ROUND, ROUND);
        for (p, &k) in row[st..].chunks_exact(3).zip(horiz.taps(x)) {
            s0 += p[0] as i32 * k;
            s1 += p[1] as i32 * k;
            s2 += p[2] as i32 * k;
        }
        px[0] = clip8(s0);
        px[1] = clip8(s1);
        px[2] = clip8(s2);
    }
}

fn vertical_scalar(tmp: &[u8], stride: usize, first_row: usize, vert: &Coeffs, out: &mut [u8]) {
    for (y, o) in out.chunks_exact_mut(stride).enumerate() {
        let st = vert.start[y] - first_row;
        let taps = vert.taps(y);
        for (i, d) in o.iter_mut().enumerate() {
            let mut s = ROUND;
            for (j, &k) in taps.iter().enumerate() {
                s += tmp[(st + j) * stride + i] as i32 * k;
            }
            *d = clip8(s);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{clip8, Coeffs, PRECISION_BITS, ROUND};

    /// One padded source row -> `out_w` pixels at `out[..]` (writes one byte past the last
    /// pixel, which `out` must hold).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn horizontal(row: &[u8], horiz: &Coeffs, horiz4: &[i32], out: &mut [u8]) {
        let n_out = horiz.start.len();
        debug_assert!(out.len() > n_out * 3);
        debug_assert!(horiz4.len() == horiz.k.len() * 4);
        // [p0 r g b, 0, p1 r g b, 0] from 6 consecutive bytes.
        let spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
        let round = _mm_set1_epi32(ROUND);
        let ksize = horiz.ksize;
        let rp = row.as_ptr();
        let op = out.as_mut_ptr();
        for x in 0..n_out {
            let st = horiz.start[x];
            let pairs = horiz.len[x].div_ceil(2);
            // Tap pair j reads bytes (st + 2j) * 3 .. + 8, inside the padded row.
            debug_assert!((st + 2 * pairs) * 3 + 2 <= row.len());
            let kp = horiz4.as_ptr().add(x * ksize * 4);
            let mut acc = _mm256_setzero_si256();
            for j in 0..pairs {
                let b = _mm_loadl_epi64(rp.add((st + 2 * j) * 3) as *const __m128i);
                let px = _mm256_cvtepu8_epi32(_mm_shuffle_epi8(b, spread));
                let k = _mm256_loadu_si256(kp.add(8 * j) as *const __m256i);
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, k));
            }
            let s = _mm_add_epi32(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256::<1>(acc),
            );
            let s = _mm_srai_epi32::<{ PRECISION_BITS as i32 }>(_mm_add_epi32(s, round));
            let s = _mm_packus_epi16(_mm_packs_epi32(s, s), s);
            (op.add(x * 3) as *mut i32).write_unaligned(_mm_cvtsi128_si32(s));
        }
    }

    /// Vertical pass over `tmp` (rows of `stride` bytes, row 0 = source row `first_row`).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn vertical(
        tmp: &[u8],
        stride: usize,
        first_row: usize,
        vert: &Coeffs,
        out: &mut [u8],
    ) {
        let round = _mm256_set1_epi32(ROUND);
        let tp = tmp.as_ptr();
        for (y, o) in out.chunks_exact_mut(stride).enumerate() {
            let st = vert.start[y] - first_row;
            let taps = vert.taps(y);
            debug_assert!((st + taps.len()) * stride <= tmp.len());
            let mut i = 0;
            while i + 16 <= stride {
                let (mut lo, mut hi) = (round, round);
                for (j, &k) in taps.iter().enumerate() {
                    let kv = _mm256_set1_epi32(k);
                    let v = _mm_loadu_si128(tp.add((st + j) * stride + i) as *const __m128i);
                    let vlo = _mm256_cvtepu8_epi32(v);
                    let vhi = _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(v));
                    lo = _mm256_add_epi32(lo, _mm256_mullo_epi32(vlo, kv));
                    hi = _mm256_add_epi32(hi, _mm256_mullo_epi32(vhi, kv));
                }
                let lo = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(lo);
                let hi = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(hi);
                // packs works per 128-bit lane: [lo0 hi0 | lo1 hi1] -> reorder to lo, hi.
                let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(lo, hi));
                let b =
                    _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
                _mm_storeu_si128(o.as_mut_ptr().add(i) as *mut __m128i, b);
                i += 16;
            }
            for (ii, d) in o.iter_mut().enumerate().skip(i) {
                let mut s = ROUND;
                for (j, &k) in taps.iter().enumerate() {
                    s += tmp[(st + j) * stride + ii] as i32 * k;
                }
                *d = clip8(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn noise(w: usize, h: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
        (0..w * h * 3).map(|_| rng.random()).collect()
    }

    fn both(
        src: &[u8],
        w: usize,
        h: usize,
        rect: CropRect,
        ow: usize,
        oh: usize,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut scratch = ResizeScratch::default();
        let mut a = vec![0u8; ow * oh * 3];
        resized_crop_with(
            Kernel::Scalar,
            src,
            w,
            h,
            rect,
            ow,
            oh,
            &mut scratch,
            &mut a,
        )
        .unwrap();
        for kernel in Kernel::available() {
            let mut b = vec![0u8; ow * oh * 3];
            resized_crop_with(kernel, src, w, h, rect, ow, oh, &mut scratch, &mut b).unwrap();
            assert_eq!(a, b, "{kernel:?}: {w}x{h} {rect:?} -> {ow}x{oh}");
        }
        (a.clone(), a)
    }

    #[test]
    fn simd_equals_scalar_on_odd_sizes_borders_up_and_down() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let full = |w: usize, h: usize| CropRect {
            top: 0,
            left: 0,
            width: w as u32,
            height: h as u32,
        };
        // Full images, up and down, odd sizes, 1-pixel edges.
        for &(w, h, ow, oh) in &[
            (37, 23, 20, 16),
            (37, 23, 30, 50),
            (37, 23, 37, 7),
            (1, 1, 5, 3),
            (5, 3, 1, 1),
            (640, 360, 224, 224),
            (455, 256, 224, 224),
            (17, 200, 33, 9),
            (31, 29, 31, 29),
        ] {
            let src = noise(w, h, &mut rng);
            let (a, b) = both(&src, w, h, full(w, h), ow, oh);
            assert_eq!(a, b, "{w}x{h} -> {ow}x{oh}");
        }
        // Crops touching each border, random crops.
        let (w, h) = (97, 61);
        let src = noise(w, h, &mut rng);
        for rect in [
            CropRect {
                top: 0,
                left: 0,
                width: 40,
                height: 30,
            },
            CropRect {
                top: 31,
                left: 57,
                width: 40,
                height: 30,
            },
            CropRect {
                top: 60,
                left: 96,
                width: 1,
                height: 1,
            },
            CropRect {
                top: 0,
                left: 90,
                width: 7,
                height: 61,
            },
        ] {
            for &(ow, oh) in &[(24, 24), (91, 13), (3, 70)] {
                let (a, b) = both(&src, w, h, rect, ow, oh);
                assert_eq!(a, b, "{rect:?} -> {ow}x{oh}");
            }
        }
        for case in 0..200 {
            let (w, h) = (rng.random_range(1..120usize), rng.random_range(1..90usize));
            let src = noise(w, h, &mut rng);
            let cw = rng.random_range(1..=w);
            let ch = rng.random_range(1..=h);
            let rect = CropRect {
                left: rng.random_range(0..=w - cw) as u32,
                top: rng.random_range(0..=h - ch) as u32,
                width: cw as u32,
                height: ch as u32,
            };
            let (ow, oh) = (rng.random_range(1..150usize), rng.random_range(1..150usize));
            let (a, b) = both(&src, w, h, rect, ow, oh);
            assert_eq!(a, b, "case {case}: {w}x{h} {rect:?} -> {ow}x{oh}");
        }
    }

    #[test]
    fn fixed_point_coefficients_are_pils() {
        // 8 -> 3 (scale 8/3): Pillow's coefficients for output 0, in 22-bit fixed point.
        let mut c = Coeffs::default();
        c.plan(8, 3);
        assert_eq!(c.start, vec![0, 1, 4]);
        assert_eq!(c.len, vec![4, 6, 4]);
        let sum: i64 = c.taps(1).iter().map(|&k| k as i64).sum();
        assert!((sum - (1 << 22)).abs() <= 3, "{sum}");
        // Identity: weights [2^22, 0], so an identity pass is a copy.
        c.plan(5, 5);
        assert!((0..5).all(|i| c.taps(i)[0] == 1 << 22 && c.taps(i)[1..].iter().all(|&k| k == 0)));
    }

    #[test]
    fn rejects_bad_rectangles_and_short_buffers() {
        let src = vec![0u8; 10 * 8 * 3];
        let mut s = ResizeScratch::default();
        let mut out = vec![0u8; 4 * 4 * 3];
        let r = |left, top, width, height| CropRect {
            top,
            left,
            width,
            height,
        };
        assert!(resized_crop_into(&src, 10, 8, r(5, 0, 6, 8), 4, 4, &mut s, &mut out).is_err());
        assert!(resized_crop_into(&src, 10, 8, r(0, 0, 0, 8), 4, 4, &mut s, &mut out).is_err());
        assert!(resized_crop_into(&src, 10, 8, r(0, 0, 10, 8), 5, 4, &mut s, &mut out).is_err());
        assert!(resized_crop_into(&src, 11, 8, r(0, 0, 10, 8), 4, 4, &mut s, &mut out).is_err());
        assert!(resized_crop_into(&src, 10, 8, r(0, 0, 10, 8), 4, 4, &mut s, &mut out).is_ok());
    }
}
