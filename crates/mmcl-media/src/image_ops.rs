//! Image transforms with torchvision semantics, on `image::RgbImage` (u8 HWC).
//!
//! * [`resize`] / [`resized_crop`]: bilinear with antialiasing, PIL's
//!   algorithm (what torchvision uses for PIL images, and what `antialias=True`, its default,
//!   approximates for tensors): a triangle filter whose support widens by the downscale
//!   factor, separable, horizontal pass first, each pass rounded to u8, in PIL's 22-bit fixed
//!   point, so the output is PIL's exactly (tested against Pillow's own output; Pillow >= 13
//!   runs the vertical pass first when the height shrinks much more than the width, and
//!   there differs from its older self and from us by at most one level; torch's one-pass
//!   float `antialias=True` differs by at most one level). SIMD (AVX2) when the CPU has it;
//!   [`crate::fast::resized_crop_into`] is the allocation-free form for any packed RGB buffer.
//! * [`random_resized_crop`]: `RandomResizedCrop(size)` with scale (0.08, 1), ratio (3/4, 4/3):
//!   ten tries of an area fraction drawn uniformly and a log-uniform aspect ratio, sizes
//!   rounded half-to-even as Python's `round`, then the centre-crop fallback, exactly as
//!   torchvision's `get_params`. The random source is the caller's RNG, so the draws are
//!   reproducible from the run seed (not bit-identical to torch's generator).
//! * [`hflip`], [`to_normalized_chw`] (to [0, 1] then `(x - mean) / std`, ImageNet defaults).
use image::RgbImage;
use rand::Rng;

use crate::error::{MediaError, Result};
use crate::fast::{resized_crop_into, write_normalized_planes, ResizeScratch};

/// ImageNet channel means (RGB), as torchvision's normalisation uses.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// An integer crop rectangle: top-left corner (`left`, `top`), size (`width`, `height`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    pub top: u32,
    pub left: u32,
    pub height: u32,
    pub width: u32,
}

/// Parameters of [`random_resized_crop`]; the default is torchvision's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomResizedCropConfig {
    /// Bounds of the crop area as a fraction of the image area.
    pub scale: (f64, f64),
    /// Bounds of the crop aspect ratio (width / height), sampled log-uniformly.
    pub ratio: (f64, f64),
    /// Tries before the centre-crop fallback.
    pub attempts: usize,
}

impl Default for RandomResizedCropConfig {
    fn default() -> Self {
        Self {
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            attempts: 10,
        }
    }
}

/// Python's `round` (half to even) to an integer.
fn py_round(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// torchvision's `RandomResizedCrop.get_params` for an image of `width` x `height`.
pub fn random_resized_crop_params<R: Rng + ?Sized>(
    width: u32,
    height: u32,
    cfg: &RandomResizedCropConfig,
    rng: &mut R,
) -> CropRect {
    let (w_img, h_img) = (width as i64, height as i64);
    let area = (width as f64) * (height as f64);
    let (log_lo, log_hi) = (cfg.ratio.0.ln(), cfg.ratio.1.ln());
    for _ in 0..cfg.attempts {
        let target_area = area * uniform(rng, cfg.scale.0, cfg.scale.1);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let w = py_round((target_area * aspect).sqrt());
        let h = py_round((target_area / aspect).sqrt());
        if 0 < w && w <= w_img && 0 < h && h <= h_img {
            let top = rng.random_range(0..=(h_img - h)) as u32;
            let left = rng.random_range(0..=(w_img - w)) as u32;
            return CropRect {
                top,
                left,
                height: h as u32,
                width: w as u32,
            };
        }
    }
    // Fallback: central crop clamped to the ratio bounds.
    let in_ratio = width as f64 / height as f64;
    let (w, h) = if in_ratio < cfg.ratio.0.min(cfg.ratio.1) {
        (w_img, py_round(w_img as f64 / cfg.ratio.0.min(cfg.ratio.1)))
    } else if in_ratio > cfg.ratio.0.max(cfg.ratio.1) {
        (py_round(h_img as f64 * cfg.ratio.0.max(cfg.ratio.1)), h_img)
    } else {
        (w_img, h_img)
    };
    CropRect {
        top: ((h_img - h) / 2) as u32,
        left: ((w_img - w) / 2) as u32,
        height: h as u32,
        width: w as u32,
    }
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// `RandomResizedCrop(size)` with torchvision's defaults: draws the crop with the caller's RNG
/// and resizes it to `size` x `size`.
pub fn random_resized_crop<R: Rng + ?Sized>(
    img: &RgbImage,
    size: u32,
    rng: &mut R,
) -> Result<RgbImage> {
    check_nonempty(img)?;
    let rect = random_resized_crop_params(img.width(), img.height(), &Default::default(), rng);
    resized_crop(img, rect, size, size)
}

fn check_nonempty(img: &RgbImage) -> Result<()> {
    if img.width() == 0 || img.height() == 0 {
        return Err(MediaError::InvalidArgument(
            "image of zero width or height".into(),
        ));
    }
    Ok(())
}

/// Antialiased bilinear resize of the whole image to `width` x `height` (PIL semantics).
pub fn resize(img: &RgbImage, width: u32, height: u32) -> Result<RgbImage> {
    check_nonempty(img)?;
    let rect = CropRect {
        top: 0,
        left: 0,
        height: img.height(),
        width: img.width(),
    };
    resized_crop(img, rect, width, height)
}

/// Crops `rect` out of `img` and resizes it to `width` x `height` (torchvision
/// `F.resized_crop`), without materialising the crop.
pub fn resized_crop(img: &RgbImage, rect: CropRect, width: u32, height: u32) -> Result<RgbImage> {
    check_nonempty(img)?;
    if rect.width == 0
        || rect.height == 0
        || rect.left + rect.width > img.width()
        || rect.top + rect.height > img.height()
        || width == 0
        || height == 0
    {
        return Err(MediaError::InvalidArgument(format!(
            "crop {rect:?} of a {}x{} image to {width}x{height}",
            img.width(),
            img.height()
        )));
    }
    let mut out = vec![0u8; width as usize * height as usize * 3];
    resized_crop_into(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
        rect,
        width as usize,
        height as usize,
        &mut ResizeScratch::default(),
        &mut out,
    )?;
    RgbImage::from_raw(width, height, out)
        .ok_or_else(|| MediaError::InvalidArgument("resize buffer size".into()))
}

/// Horizontal flip (torchvision `hflip`).
pub fn hflip(img: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(img)
}

/// u8 HWC -> f32 CHW in [0, 1], then `(x - mean[c]) / std[c]`
/// ([`crate::fast::write_normalized_planes`] writes into a caller's clip tensor instead).
pub fn to_normalized_chw(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0f32; 3 * w * h];
    write_normalized_planes(img.as_raw(), w, h, false, mean, std, &mut out, w * h);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn random_resized_crop_respects_bounds() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let cfg = RandomResizedCropConfig::default();
        for &(w, h) in &[(640u32, 360u32), (224, 224), (100, 400), (37, 5)] {
            for _ in 0..500 {
                let r = random_resized_crop_params(w, h, &cfg, &mut rng);
                assert!(r.width >= 1 && r.height >= 1);
                assert!(r.left + r.width <= w && r.top + r.height <= h);
                let area = (r.width * r.height) as f64 / (w * h) as f64;
                let ratio = r.width as f64 / r.height as f64;
                let fallback = r.left == (w - r.width) / 2 && r.top == (h - r.height) / 2;
                if !fallback {
                    // Rounding to whole pixels may move area/ratio slightly past the bounds.
                    let tol_w = 1.0 / r.width as f64 + 1.0 / r.height as f64;
                    assert!(area >= 0.08 * (1.0 - 2.0 * tol_w) && area <= 1.0, "{area}");
                    assert!(ratio >= 0.75 * (1.0 - tol_w) && ratio <= 4.0 / 3.0 * (1.0 + tol_w));
                }
            }
        }
    }

    #[test]
    fn fallback_is_torchvision_centre_crop() {
        // A 1000x10 image: no try can fit, so the fallback clamps the ratio to 4/3.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let r = random_resized_crop_params(1000, 10, &Default::default(), &mut rng);
        assert_eq!(
            r,
            CropRect {
                top: 0,
                left: (1000 - 13) / 2,
                height: 10,
                width: 13
            }
        );
        let cfg = RandomResizedCropConfig {
            attempts: 0,
            ..Default::default()
        };
        let r = random_resized_crop_params(300, 200, &cfg, &mut rng);
        assert_eq!(
            r,
            CropRect {
                top: 0,
                left: 16,
                height: 200,
                width: 267
            }
        );
        let r = random_resized_crop_params(250, 200, &cfg, &mut rng);
        assert_eq!(
            r,
            CropRect {
                top: 0,
                left: 0,
                height: 200,
                width: 250
            }
        );
    }

    #[test]
    fn resize_constant_image_and_identity() {
        let img = RgbImage::from_pixel(50, 30, image::Rgb([10, 200, 77]));
        let out = resize(&img, 17, 64).unwrap();
        assert!(out.pixels().all(|p| p.0 == [10, 200, 77]));
        let noise = RgbImage::from_fn(9, 7, |x, y| {
            image::Rgb([(x * 29 + y * 7) as u8, x as u8, y as u8])
        });
        assert_eq!(resize(&noise, 9, 7).unwrap(), noise);
    }

    #[test]
    fn resize_matches_pil_on_a_small_case() {
        // torch: F.interpolate(arange(8.) * 30, size=3, mode="bilinear", antialias=True)
        //   -> [33.1579, 105.0, 176.8421]; PIL's BILINEAR resize gives the same rounded.
        let img = RgbImage::from_fn(8, 1, |x, _| {
            let v = (x * 30) as u8;
            image::Rgb([v, v, v])
        });
        let out = resize(&img, 3, 1).unwrap();
        let row: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        assert_eq!(row, vec![33, 105, 177]);
    }

    #[test]
    fn normalised_planes_equal_hflip_then_normalise() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for &(w, h) in &[(1u32, 1u32), (7, 3), (33, 17), (224, 5)] {
            let img = RgbImage::from_fn(w, h, |_, _| image::Rgb(rng.random()));
            let hw = (w * h) as usize;
            for flip in [false, true] {
                let src = if flip { hflip(&img) } else { img.clone() };
                let mut want = vec![0f32; 3 * hw];
                for (i, px) in src.as_raw().chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        want[c * hw + i] = px[c] as f32 * (1.0 / (255.0 * IMAGENET_STD[c]))
                            + (-IMAGENET_MEAN[c] / IMAGENET_STD[c]);
                    }
                }
                // Into a [3, T=2, H, W] tensor at t = 1.
                let mut out = vec![f32::NAN; 3 * 2 * hw];
                write_normalized_planes(
                    img.as_raw(),
                    w as usize,
                    h as usize,
                    flip,
                    IMAGENET_MEAN,
                    IMAGENET_STD,
                    &mut out[hw..],
                    2 * hw,
                );
                for c in 0..3 {
                    assert_eq!(
                        out[c * 2 * hw + hw..(c * 2 + 2) * hw],
                        want[c * hw..(c + 1) * hw]
                    );
                    assert!(out[c * 2 * hw..c * 2 * hw + hw].iter().all(|x| x.is_nan()));
                }
                if !flip {
                    assert_eq!(to_normalized_chw(&img, IMAGENET_MEAN, IMAGENET_STD), want);
                }
            }
        }
    }

    #[test]
    fn hflip_and_normalise() {
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([x as u8 * 255, 0, 0]));
        let f = hflip(&img);
        assert_eq!(f.get_pixel(0, 0).0, [255, 0, 0]);
        let t = to_normalized_chw(&img, IMAGENET_MEAN, IMAGENET_STD);
        assert_eq!(t.len(), 6);
        assert!((t[0] - (-0.485 / 0.229)).abs() < 1e-6);
        assert!((t[1] - (1.0 - 0.485) / 0.229).abs() < 1e-5);
        assert!((t[2] - (-0.456 / 0.224)).abs() < 1e-6);
    }
}
