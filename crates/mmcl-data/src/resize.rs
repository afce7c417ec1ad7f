//! The loader's frame output: flip + ImageNet normalisation of a resized packed-RGB frame
//! into the `[3, T, S, S]` clip tensor, through per-channel lookup tables. (The crop + resize
//! itself is mmcl-media's allocation-free `image_ops::resized_crop_into`, one implementation
//! for both crates.)
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
    use mmcl_media::image_ops::{self, CropRect, ResizeScratch, IMAGENET_MEAN, IMAGENET_STD};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        RgbImage::from_fn(w, h, |_, _| Rgb([rng.random(), rng.random(), rng.random()]))
    }

    /// The loader's path (buffer resize + `write_planes`) equals mmcl-media's image path
    /// (`resized_crop` + `hflip` + `to_normalized_chw`) bit for bit.
    #[test]
    fn matches_mmcl_media_image_path_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut scratch = ResizeScratch::default();
        let tables = normalisation_tables(IMAGENET_MEAN, IMAGENET_STD);
        for case in 0..60 {
            let (w, h) = (rng.random_range(3..90u32), rng.random_range(3..70u32));
            let img = noise(w, h, case);
            let size = rng.random_range(1..48usize);
            let rect: CropRect =
                image_ops::random_resized_crop_params(w, h, &Default::default(), &mut rng);
            let expect = image_ops::resized_crop(&img, rect, size as u32, size as u32).unwrap();
            let mut got = vec![0u8; size * size * 3];
            image_ops::resized_crop_into(
                img.as_raw(),
                w as usize,
                h as usize,
                rect,
                size,
                size,
                &mut scratch,
                &mut got,
            )
            .unwrap();
            assert_eq!(got, expect.as_raw().as_slice(), "case {case}");

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
}
