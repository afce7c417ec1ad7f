//! The loader's hot path for frames: crop + antialiased bilinear resize straight from the
//! mmap'd u8 frame, then flip + ImageNet normalisation into the `[3, T, S, S]` output.
//!
//! Arithmetic is *the same* as `mmcl_media::image_ops::resized_crop` (PIL's triangle filter
//! with f32 weights, horizontal pass first, each pass rounded to u8) followed by
//! `hflip` and `write_normalized_chw`, operation for operation, so results are bit-identical
//! (tests check this against mmcl-media on random crops). What differs is speed: no copy of
//! the frame into an `RgbImage`, filter taps kept in flat reusable buffers, the source row
//! converted to f32 once instead of once per tap, tap loops specialised for the common
//! 2- and 3-tap cases, and the normalisation done through per-channel lookup tables.
use mmcl_media::image_ops::CropRect;

/// Flat filter taps: output `i` reads `len[i]` inputs from `start[i]` with weights
/// `weights[i * max_len..][..len[i]]`.
#[derive(Default)]
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    weights: Vec<f32>,
    max_len: usize,
    w64: Vec<f64>,
}

impl Taps {
    /// PIL's `precompute_coeffs` for the bilinear filter, exactly as mmcl-media computes it.
    fn plan(&mut self, in_size: usize, out_size: usize) {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = filter_scale;
        self.max_len = (support * 2.0).ceil() as usize + 2;
        self.start.clear();
        self.len.clear();
        self.weights.clear();
        self.weights.resize(out_size * self.max_len, 0.0);
        for i in 0..out_size {
            let center = (i as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5).floor().max(0.0)) as usize;
            let xmax = ((center + support + 0.5).floor() as usize).min(in_size);
            let n = xmax - xmin;
            debug_assert!(n <= self.max_len);
            self.w64.clear();
            self.w64.extend((xmin..xmax).map(|x| {
                let t = ((x as f64 - center + 0.5) / filter_scale).abs();
                if t < 1.0 {
                    1.0 - t
                } else {
                    0.0
                }
            }));
            let total: f64 = self.w64.iter().sum();
            let dst = &mut self.weights[i * self.max_len..i * self.max_len + n];
            for (d, &w) in dst.iter_mut().zip(&self.w64) {
                *d = if total > 0.0 {
                    (w / total) as f32
                } else {
                    w as f32
                };
            }
            self.start.push(xmin);
            self.len.push(n);
        }
    }
}

/// Reusable buffers of one loader thread.
#[derive(Default)]
pub(crate) struct ResizeScratch {
    horiz: Taps,
    vert: Taps,
    row: Vec<f32>,
    tmp: Vec<u8>,
    acc: Vec<f32>,
}

#[inline(always)]
fn to_u8(x: f32) -> u8 {
    (x + 0.5).clamp(0.0, 255.0) as u8
}

/// Crops `rect` out of the packed RGB image `src` (`src_w` pixels per row) and resizes it to
/// `out_w x out_h` into `out` (packed RGB, `out_h * out_w * 3` bytes).
pub(crate) fn resized_crop_into(
    src: &[u8],
    src_w: usize,
    rect: CropRect,
    out_w: usize,
    out_h: usize,
    scratch: &mut ResizeScratch,
    out: &mut [u8],
) {
    let (cw, ch) = (rect.width as usize, rect.height as usize);
    let (left, top) = (rect.left as usize, rect.top as usize);
    let ResizeScratch {
        horiz,
        vert,
        row,
        tmp,
        acc,
    } = scratch;
    horiz.plan(cw, out_w);
    vert.plan(ch, out_h);

    // Only the rows some vertical tap reads need the horizontal pass.
    let first_row = vert.start[0];
    let last_row = (0..out_h)
        .map(|y| vert.start[y] + vert.len[y])
        .max()
        .unwrap_or(0);
    let stride = out_w * 3;
    tmp.resize(ch * stride, 0);
    row.resize(cw * 3, 0.0);
    let k = horiz.max_len;
    for y in first_row..last_row {
        let s = ((top + y) * src_w + left) * 3;
        for (d, &v) in row.iter_mut().zip(&src[s..s + cw * 3]) {
            *d = v as f32;
        }
        let out_row = &mut tmp[y * stride..(y + 1) * stride];
        for (x, o) in out_row.chunks_exact_mut(3).enumerate() {
            let st = horiz.start[x] * 3;
            let w = &horiz.weights[x * k..x * k + horiz.len[x]];
            let (mut a0, mut a1, mut a2) = (0f32, 0f32, 0f32);
            match *w {
                [w0, w1] => {
                    let p = &row[st..st + 6];
                    a0 += w0 * p[0];
                    a1 += w0 * p[1];
                    a2 += w0 * p[2];
                    a0 += w1 * p[3];
                    a1 += w1 * p[4];
                    a2 += w1 * p[5];
                }
                [w0, w1, w2] => {
                    let p = &row[st..st + 9];
                    a0 += w0 * p[0];
                    a1 += w0 * p[1];
                    a2 += w0 * p[2];
                    a0 += w1 * p[3];
                    a1 += w1 * p[4];
                    a2 += w1 * p[5];
                    a0 += w2 * p[6];
                    a1 += w2 * p[7];
                    a2 += w2 * p[8];
                }
                _ => {
                    let p = &row[st..st + w.len() * 3];
                    for (&wj, px) in w.iter().zip(p.chunks_exact(3)) {
                        a0 += wj * px[0];
                        a1 += wj * px[1];
                        a2 += wj * px[2];
                    }
                }
            }
            o[0] = to_u8(a0);
            o[1] = to_u8(a1);
            o[2] = to_u8(a2);
        }
    }

    // Vertical pass, vectorised across the row.
    acc.resize(stride, 0.0);
    let kv = vert.max_len;
    for (y, o) in out[..out_h * stride].chunks_exact_mut(stride).enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let st = vert.start[y];
        for (j, &w) in vert.weights[y * kv..y * kv + vert.len[y]]
            .iter()
            .enumerate()
        {
            let r = &tmp[(st + j) * stride..(st + j + 1) * stride];
            for (a, &v) in acc.iter_mut().zip(r) {
                *a += w * v as f32;
            }
        }
        for (d, &a) in o.iter_mut().zip(acc.iter()) {
            *d = to_u8(a);
        }
    }
}

/// `(v as f32) * (1 / (255 std[c])) + (-mean[c] / std[c])` for every u8 `v`, per channel: the
/// values `mmcl_media::image_ops::write_normalized_chw` computes.
pub(crate) fn normalisation_tables(mean: [f32; 3], std: [f32; 3]) -> [[f32; 256]; 3] {
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| -mean[c] / std[c]);
    std::array::from_fn(|c| std::array::from_fn(|v| v as f32 * scale[c] + shift[c]))
}

/// Packed RGB `size x size` -> three planes of `out` (`out[c * channel_stride..]`),
/// mirrored left-right when `flip`.
pub(crate) fn write_planes(
    img: &[u8],
    size: usize,
    flip: bool,
    tables: &[[f32; 256]; 3],
    out: &mut [f32],
    channel_stride: usize,
) {
    let hw = size * size;
    let (r, rest) = out.split_at_mut(channel_stride);
    let (g, b) = rest.split_at_mut(channel_stride);
    let (r, g, b) = (&mut r[..hw], &mut g[..hw], &mut b[..hw]);
    for y in 0..size {
        let src = &img[y * size * 3..(y + 1) * size * 3];
        let (rr, gg, bb) = (
            &mut r[y * size..(y + 1) * size],
            &mut g[y * size..(y + 1) * size],
            &mut b[y * size..(y + 1) * size],
        );
        if flip {
            for (x, px) in src.chunks_exact(3).enumerate() {
                let d = size - 1 - x;
                rr[d] = tables[0][px[0] as usize];
                gg[d] = tables[1][px[1] as usize];
                bb[d] = tables[2][px[2] as usize];
            }
        } else {
            for (x, px) in src.chunks_exact(3).enumerate() {
                rr[x] = tables[0][px[0] as usize];
                gg[x] = tables[1][px[1] as usize];
                bb[x] = tables[2][px[2] as usize];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};
    use mmcl_media::image_ops::{self, IMAGENET_MEAN, IMAGENET_STD};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        RgbImage::from_fn(w, h, |_, _| Rgb([rng.random(), rng.random(), rng.random()]))
    }

    #[test]
    fn matches_mmcl_media_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut scratch = ResizeScratch::default();
        let tables = normalisation_tables(IMAGENET_MEAN, IMAGENET_STD);
        for case in 0..60 {
            let (w, h) = (rng.random_range(3..90u32), rng.random_range(3..70u32));
            let img = noise(w, h, case);
            let size = rng.random_range(1..48usize);
            let rect = image_ops::random_resized_crop_params(w, h, &Default::default(), &mut rng);
            let expect = image_ops::resized_crop(&img, rect, size as u32, size as u32).unwrap();
            let mut got = vec![0u8; size * size * 3];
            resized_crop_into(
                img.as_raw(),
                w as usize,
                rect,
                size,
                size,
                &mut scratch,
                &mut got,
            );
            assert_eq!(
                got,
                expect.as_raw().as_slice(),
                "case {case}: {w}x{h} {rect:?} -> {size}"
            );

            let flip = case % 2 == 0;
            let flipped = if flip {
                image_ops::hflip(&expect)
            } else {
                expect.clone()
            };
            let want = image_ops::to_normalized_chw(&flipped, IMAGENET_MEAN, IMAGENET_STD);
            let mut planes = vec![0f32; 3 * size * size];
            write_planes(&got, size, flip, &tables, &mut planes, size * size);
            assert_eq!(planes, want, "case {case} normalisation");
        }
    }

    #[test]
    fn non_square_outputs_match_too() {
        let img = noise(61, 37, 5);
        let mut scratch = ResizeScratch::default();
        for &(ow, oh) in &[(10usize, 29usize), (80, 12), (61, 37), (200, 150)] {
            let rect = CropRect {
                top: 0,
                left: 0,
                height: 37,
                width: 61,
            };
            let expect = image_ops::resized_crop(&img, rect, ow as u32, oh as u32).unwrap();
            let mut got = vec![0u8; ow * oh * 3];
            resized_crop_into(img.as_raw(), 61, rect, ow, oh, &mut scratch, &mut got);
            assert_eq!(got, expect.as_raw().as_slice(), "{ow}x{oh}");
        }
    }
}
