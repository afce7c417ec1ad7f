//! Frame rendering: a class's [`VisualSignature`] plus per-clip variation -> RGB frames.
use image::{Rgb, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::signature::{Shape, Texture, VisualSignature};

/// Per-clip hue jitter of the object (degrees).
pub const HUE_JITTER: f32 = 8.0;
/// Object radius jitter (relative).
pub const RADIUS_JITTER: f32 = 0.2;
/// Probability of an unrelated distractor shape in the scene.
pub const DISTRACTOR_PROB: f64 = 0.5;

struct Object {
    shape: Shape,
    texture: Texture,
    rgb: [f32; 3],
    radius: f32,
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
}

/// Renders `frames` square frames of `size` px, one per second of clip.
pub fn render_frames(
    sig: &VisualSignature,
    size: u32,
    frames: u32,
    rng: &mut ChaCha8Rng,
) -> Vec<RgbImage> {
    let hue = sig.hue + rng.random_range(-HUE_JITTER..=HUE_JITTER);
    let sat = (sig.saturation * rng.random_range(0.8..1.1f32)).min(1.0);
    let val = rng.random_range(0.6..1.0f32);
    let radius = sig.radius * (1.0 + rng.random_range(-RADIUS_JITTER..=RADIUS_JITTER));
    let angle = rng.random::<f32>() * std::f32::consts::TAU;
    let speed = sig.speed * rng.random_range(0.7..1.3f32);
    let object = Object {
        shape: sig.shape,
        texture: sig.texture,
        rgb: hsv(hue, sat, val),
        radius,
        x: rng.random_range(radius..1.0 - radius),
        y: rng.random_range(radius..1.0 - radius),
        vx: speed * angle.cos(),
        vy: speed * angle.sin(),
    };
    // Background: a gradient between two dull random colours, either direction.
    let bg_a = hsv(
        rng.random::<f32>() * 360.0,
        rng.random_range(0.0..0.4f32),
        rng.random_range(0.15..0.7f32),
    );
    let bg_b = hsv(
        rng.random::<f32>() * 360.0,
        rng.random_range(0.0..0.4f32),
        rng.random_range(0.15..0.7f32),
    );
    let vertical = rng.random_bool(0.5);
    let pixel_noise = rng.random_range(0.02..0.08f32);
    let distractor = rng.random_bool(DISTRACTOR_PROB).then(|| {
        let r = rng.random_range(0.08..0.16f32);
        Object {
            shape: [Shape::Disc, Shape::Square, Shape::Triangle, Shape::Ring]
                [rng.random_range(0..4)],
            texture: Texture::Solid,
            rgb: hsv(
                rng.random::<f32>() * 360.0,
                rng.random_range(0.3..0.9f32),
                rng.random_range(0.4..1.0f32),
            ),
            radius: r,
            x: rng.random_range(r..1.0 - r),
            y: rng.random_range(r..1.0 - r),
            vx: 0.0,
            vy: 0.0,
        }
    });

    let s = size as f32;
    (0..frames)
        .map(|f| {
            let t = f as f32;
            let (ox, oy) = (
                bounce(object.x + object.vx * t, object.radius),
                bounce(object.y + object.vy * t, object.radius),
            );
            RgbImage::from_fn(size, size, |px, py| {
                let (x, y) = ((px as f32 + 0.5) / s, (py as f32 + 0.5) / s);
                let g = if vertical { y } else { x };
                let mut c = [0f32; 3];
                for k in 0..3 {
                    c[k] = bg_a[k] * (1.0 - g) + bg_b[k] * g;
                }
                if let Some(d) = &distractor {
                    if let Some(shade) = coverage(d, d.x, d.y, x, y) {
                        c = d.rgb.map(|v| v * shade);
                    }
                }
                if let Some(shade) = coverage(&object, ox, oy, x, y) {
                    c = object.rgb.map(|v| v * shade);
                }
                let mut out = [0u8; 3];
                for k in 0..3 {
                    let n: f32 = StandardNormal.sample(rng);
                    out[k] = ((c[k] + pixel_noise * n).clamp(0.0, 1.0) * 255.0).round() as u8;
                }
                Rgb(out)
            })
        })
        .collect()
}

/// Position after bouncing between the walls `r` and `1 - r`.
fn bounce(p: f32, r: f32) -> f32 {
    let len = (1.0 - 2.0 * r).max(1e-3);
    let y = (p - r).rem_euclid(2.0 * len);
    r + if y > len { 2.0 * len - y } else { y }
}

/// If (x, y) lies on the object centred at (cx, cy), the texture's brightness factor.
fn coverage(o: &Object, cx: f32, cy: f32, x: f32, y: f32) -> Option<f32> {
    let (u, v) = ((x - cx) / o.radius, (y - cy) / o.radius);
    let inside = match o.shape {
        Shape::Disc => u * u + v * v <= 1.0,
        Shape::Square => u.abs() <= 0.85 && v.abs() <= 0.85,
        Shape::Triangle => (-1.0..=0.8).contains(&v) && u.abs() <= (v + 1.0) / 1.8,
        Shape::Ring => (0.3..=1.0).contains(&(u * u + v * v)),
    };
    inside.then(|| match o.texture {
        Texture::Solid => 1.0,
        Texture::Spots => {
            if (u * 7.0).sin() * (v * 7.0).sin() > 0.45 {
                0.55
            } else {
                1.0
            }
        }
        Texture::Stripes => {
            if (u * 9.0).sin() > 0.0 {
                1.0
            } else {
                0.6
            }
        }
        Texture::Checker => {
            if (u * 5.0).sin() * (v * 5.0).sin() > 0.0 {
                1.0
            } else {
                0.6
            }
        }
        Texture::Gradient => 0.5 + 0.5 * (v + 1.0) / 2.0,
    })
}

/// HSV (degrees, 0..1, 0..1) to linear RGB 0..1.
pub fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let m = v - c;
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [r + m, g + m, b + m]
}
