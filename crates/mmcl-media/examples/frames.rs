//! A clip's frames turned into model input `[3, T, 224, 224]`, as a data loader does it:
//! `T = 4` frames chosen (evenly spaced for evaluation, at random for training), each resized
//! (evaluation) or RandomResizedCrop + random flip (training), then ImageNet-normalised
//! straight into the clip tensor. Seeded, so every run prints the same.
//!
//! ```sh
//! cargo run -p mmcl-media --example frames                  # 10 synthetic PNG frames
//! cargo run -p mmcl-media --example frames -- clip_frames/  # a folder of JPEG/PNG frames
//! cargo run -p mmcl-media --features ffmpeg --example frames -- clip.mp4  # one per second
//! ```
use std::path::{Path, PathBuf};

use mmcl_media::fast;
use mmcl_media::frames::{self, FrameSampling, RgbFrame};
use mmcl_media::image_ops::{self, IMAGENET_MEAN, IMAGENET_STD};
use rand::{rngs::StdRng, Rng, SeedableRng};

const FRAMES: usize = 4;
const SIZE: u32 = 224;

fn main() -> std::process::ExitCode {
    // Errors by their message, which names the file and the reason.
    if let Err(e) = run() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Keeps the synthetic folder alive until the end of main.
    let mut synthetic = None;
    let input: PathBuf = match std::env::args_os().nth(1) {
        Some(arg) => arg.into(),
        None => {
            let dir = tempfile::tempdir()?;
            write_synthetic_frames(dir.path(), 10)?;
            synthetic.insert(dir).path().to_path_buf()
        }
    };
    // A folder is read in file-name order; a video file (feature `ffmpeg`) is sampled as the
    // reference's extraction does, one frame per second.
    let clip = frames::read_frames(&input, FrameSampling::Reference)?;
    let (w, h) = clip.first().map_or((0, 0), |f| f.dimensions());
    let name = match synthetic {
        Some(_) => "synthetic frames (a square moving right)".to_string(),
        None => input.display().to_string(),
    };
    println!("{name}: {} frames of {w} x {h}", clip.len());

    let mut rng = StdRng::seed_from_u64(0);
    for train in [false, true] {
        let chosen = frames::select_frames(clip.len(), FRAMES, train, &mut rng);
        println!(
            "{}: frames {chosen:?}",
            if train { "train" } else { "eval" }
        );
        let plane = (SIZE * SIZE) as usize;
        let mut tensor = vec![0f32; 3 * FRAMES * plane];
        for (t, &i) in chosen.iter().enumerate() {
            let (frame, how) = augment(&clip[i], train, &mut rng)?;
            let flip = train && rng.random_bool(0.5);
            // Channel c of frame t goes to tensor[c][t]: offset t * plane, stride T * plane.
            fast::write_normalized_planes(
                frame.as_raw(),
                SIZE as usize,
                SIZE as usize,
                flip,
                IMAGENET_MEAN,
                IMAGENET_STD,
                &mut tensor[t * plane..],
                FRAMES * plane,
            );
            println!(
                "  t = {t}: frame {i}, {how}{}",
                if flip { ", flipped" } else { "" }
            );
        }
        let means: Vec<String> = tensor
            .chunks_exact(FRAMES * plane)
            .map(|c| format!("{:+.3}", c.iter().sum::<f32>() / c.len() as f32))
            .collect();
        println!(
            "  tensor [3, {FRAMES}, {SIZE}, {SIZE}], channel means (R, G, B): {}",
            means.join(", ")
        );
    }
    Ok(())
}

/// Evaluation: a plain resize to `SIZE x SIZE`; training: torchvision's RandomResizedCrop.
fn augment(
    frame: &RgbFrame,
    train: bool,
    rng: &mut StdRng,
) -> mmcl_media::Result<(RgbFrame, String)> {
    if !train {
        let out = image_ops::resize(frame, SIZE, SIZE)?;
        return Ok((out, format!("resized to {SIZE} x {SIZE}")));
    }
    let (w, h) = frame.dimensions();
    let rect = image_ops::random_resized_crop_params(w, h, &Default::default(), rng);
    let out = image_ops::resized_crop(frame, rect, SIZE, SIZE)?;
    let how = format!(
        "crop {} x {} at ({}, {}) resized to {SIZE} x {SIZE}",
        rect.width, rect.height, rect.left, rect.top
    );
    Ok((out, how))
}

/// `n` PNG frames of 320 x 180: a colour gradient with a white square moving left to right.
fn write_synthetic_frames(dir: &Path, n: u32) -> image::ImageResult<()> {
    let (w, h) = (320, 180);
    for k in 0..n {
        let left = k * (w - 40) / n.max(2).saturating_sub(1);
        let frame = RgbFrame::from_fn(w, h, |x, y| {
            if (left..left + 40).contains(&x) && (70..110).contains(&y) {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 96])
            }
        });
        frame.save(dir.join(format!("{k:05}.png")))?;
    }
    Ok(())
}
