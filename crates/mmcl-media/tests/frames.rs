//! Frames: frame folders, video decoding (feature `ffmpeg`) against `ffmpeg -vf fps=1`, image
//! ops against torch, typed errors. Fixtures: tools/golden_media/make_fixtures.py.
use std::path::{Path, PathBuf};

use mmcl_media::frames::{self, RgbFrame};
use mmcl_media::{image_ops, MediaError};
use safetensors::SafeTensors;

/// An `[H, W, 3]` u8 tensor of a safetensors fixture as an image.
fn fixture_image(st: &SafeTensors, name: &str) -> RgbFrame {
    let t = st.tensor(name).unwrap();
    let s = t.shape();
    RgbFrame::from_raw(s[1] as u32, s[0] as u32, t.data().to_vec()).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `ffmpeg -i video_h264.mp4 -vf fps=1` frames, as written by the fixture script.
fn ffmpeg_fps1_frames() -> Vec<RgbFrame> {
    fixture_frames("video_fps1.safetensors")
}

/// Mean absolute difference of two same-sized frames, in levels.
#[cfg(feature = "ffmpeg")]
fn mean_abs_diff(a: &RgbFrame, b: &RgbFrame) -> f64 {
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum();
    sum / a.as_raw().len() as f64
}

/// The `frames` tensor `[N, H, W, 3]` of a fixture as images.
fn fixture_frames(file: &str) -> Vec<RgbFrame> {
    let bytes = std::fs::read(fixture(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("frames").unwrap();
    let [n, h, w, c] = t.shape() else {
        panic!("rank")
    };
    assert_eq!(*c, 3);
    t.data()
        .chunks_exact(h * w * 3)
        .take(*n)
        .map(|d| RgbFrame::from_raw(*w as u32, *h as u32, d.to_vec()).unwrap())
        .collect()
}

#[test]
fn frame_folder_is_read_in_file_name_order() {
    let want = ffmpeg_fps1_frames();
    let dir = tempfile::tempdir().unwrap();
    // Written out of order, with a non-image file that must be ignored.
    for (i, f) in want.iter().enumerate().rev() {
        f.save(dir.path().join(format!("frame_{:03}.png", i + 1)))
            .unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let got = frames::read_frame_dir(dir.path()).unwrap();
    assert_eq!(got, want);
    let listed = frames::list_frame_files(dir.path()).unwrap();
    assert_eq!(listed.len(), want.len());
    assert!(listed[0].ends_with("frame_001.png"));
    // JPEG frames decode too (lossy: close, not equal).
    let jdir = tempfile::tempdir().unwrap();
    want[0].save(jdir.path().join("00001.jpg")).unwrap();
    let j = frames::read_frame_dir(jdir.path()).unwrap();
    assert_eq!(j[0].dimensions(), want[0].dimensions());
}

#[test]
fn bad_frame_inputs_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = frames::read_frame_dir(dir.path()).unwrap_err();
    assert!(matches!(e, MediaError::NoFrames { .. }), "{e:?}");
    std::fs::write(dir.path().join("00001.jpg"), "not a jpeg").unwrap();
    let e = frames::read_frame_dir(dir.path()).unwrap_err();
    assert!(matches!(e, MediaError::Image { .. }), "{e:?}");
    assert!(e.to_string().contains("00001.jpg"));
    std::fs::write(dir.path().join("00001.jpg"), "").unwrap();
    assert!(matches!(
        frames::read_frame_dir(dir.path()),
        Err(MediaError::EmptyFile { .. })
    ));
    // Truncated JPEG.
    let img = RgbFrame::from_pixel(32, 32, image::Rgb([1, 2, 3]));
    let p = dir.path().join("00001.jpg");
    img.save(&p).unwrap();
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 3]).unwrap();
    let _ = frames::read_frame_dir(dir.path()); // an error or a partial image, never a panic
    assert!(matches!(
        frames::read_frame_dir(&dir.path().join("missing")),
        Err(MediaError::Io { .. })
    ));
    let text = dir.path().join("clip.mp4");
    std::fs::write(&text, "plain text, not a video").unwrap();
    let e = frames::read_frames(&text, frames::FrameSampling::Fps(1)).unwrap_err();
    if cfg!(feature = "ffmpeg") {
        assert!(matches!(e, MediaError::UnsupportedFormat { .. }), "{e:?}");
    } else {
        assert!(matches!(e, MediaError::FfmpegDisabled { .. }), "{e:?}");
    }
}

#[test]
fn resize_matches_torch_antialiased_bilinear() {
    let bytes = std::fs::read(fixture("resize_golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let to_img = |name: &str| fixture_image(&st, name);
    let input = to_img("input");
    for name in ["out_16x20", "out_50x30", "out_7x37"] {
        let want = to_img(name);
        let got = image_ops::resize(&input, want.width(), want.height()).unwrap();
        let max = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap();
        // torch filters in one float pass; we round to u8 between passes as PIL does.
        assert!(max <= 1, "{name}: max level difference {max}");
    }
}

/// torchvision's RandomResizedCrop on a PIL image is PIL's crop + bilinear resize. Our
/// fixed-point kernel follows Pillow's arithmetic with the horizontal pass first, as every
/// Pillow up to 12 (the reference's era) does: equal to the level. Pillow >= 13 resizes
/// vertically first when the height shrinks much more than the width (python-pillow/Pillow
/// #9549); the fixture marks those cases, where values may differ by one level.
#[test]
fn resized_crop_equals_pil() {
    let bytes = std::fs::read(fixture("pil_resize_golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let to_img = |name: &str| fixture_image(&st, name);
    let input = to_img("input");
    let cases: Vec<i64> = st
        .tensor("cases")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let mut exact_cases = 0;
    for (k, c) in cases.chunks_exact(7).enumerate() {
        let [left, top, width, height, out_w, out_h] =
            [c[0], c[1], c[2], c[3], c[4], c[5]].map(|v| v as u32);
        let pil_vertical_first = c[6] == 1;
        let rect = image_ops::CropRect {
            top,
            left,
            height,
            width,
        };
        let got = image_ops::resized_crop(&input, rect, out_w, out_h).unwrap();
        let want = to_img(&format!("out_{k}"));
        let diffs: Vec<i32> = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap();
        if pil_vertical_first {
            assert!(max <= 1, "case {k} {c:?}: max level difference {max}");
        } else {
            let n = diffs.iter().filter(|&&d| d != 0).count();
            assert_eq!(
                n, 0,
                "case {k} {c:?}: {n} values differ from PIL (max {max})"
            );
            exact_cases += 1;
        }
    }
    assert!(
        exact_cases >= 8,
        "only {exact_cases} cases compared exactly"
    );
}

#[test]
fn frame_sampling_parses_its_text_forms() {
    use frames::FrameSampling;
    assert_eq!(
        "reference".parse::<FrameSampling>().unwrap(),
        FrameSampling::Reference
    );
    assert_eq!(
        "fps=2".parse::<FrameSampling>().unwrap(),
        FrameSampling::Fps(2)
    );
    assert_eq!(FrameSampling::Fps(1).to_string(), "fps=1");
    assert_eq!(FrameSampling::default(), FrameSampling::Reference);
    for bad in ["fps=0", "fps=1.5", "ffmpeg", ""] {
        let e = bad.parse::<FrameSampling>().unwrap_err().to_string();
        assert!(e.contains("expected `reference` or `fps=R`"), "{bad}: {e}");
    }
}

/// The reference's rule against OpenCV, as the reference extracted its frames
/// (tools/golden_media/video_reference.py): decoded frames 0, 25, 50, 75 of the 25 fps
/// clip, and exactly those of the full decode.
#[cfg(feature = "ffmpeg")]
#[test]
fn reference_sampling_matches_opencv_first_frame_of_each_second() {
    let want = fixture_frames("video_reference.safetensors");
    let got =
        frames::decode_video(&fixture("video_h264.mp4"), frames::FrameSampling::Reference).unwrap();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.len(), 4);
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let mad = mean_abs_diff(g, w);
        eprintln!("frame {k}: mean abs diff to OpenCV {mad:.3}");
        assert!(mad <= 2.0, "frame {k}: mean abs diff {mad}");
    }
    // Every frame (the fps filter at the native 25 fps) contains them at 0, 25, 50, 75.
    let all =
        frames::decode_video(&fixture("video_h264.mp4"), frames::FrameSampling::Fps(25)).unwrap();
    assert_eq!(all.len(), 80);
    for (k, g) in got.iter().enumerate() {
        assert_eq!(g, &all[25 * k], "frame {k}");
    }
    // ...and they differ from the fps filter's choice (frames 12, 37, 62).
    let fps1 =
        frames::decode_video(&fixture("video_h264.mp4"), frames::FrameSampling::Fps(1)).unwrap();
    assert_ne!(got[0], fps1[0]);
}

/// `decode_video_each` stops after `max_frames` (prep streams video through it) and gives
/// the same frames as a full decode, under both sampling rules.
#[cfg(feature = "ffmpeg")]
#[test]
fn video_decoding_stops_after_max_frames() {
    let video = fixture("video_h264.mp4");
    for sampling in [
        frames::FrameSampling::Fps(25),
        frames::FrameSampling::Reference,
    ] {
        let all = frames::decode_video(&video, sampling).unwrap();
        let mut got: Vec<RgbFrame> = Vec::new();
        let n = frames::decode_video_each(&video, sampling, Some(3), &mut |f| {
            got.push(f.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 3, "{sampling}");
        assert_eq!(&got[..], &all[..3], "{sampling}");
    }
}

#[cfg(feature = "ffmpeg")]
#[test]
fn h264_frames_match_ffmpeg_fps1() {
    let want = ffmpeg_fps1_frames();
    let got =
        frames::decode_video(&fixture("video_h264.mp4"), frames::FrameSampling::Fps(1)).unwrap();
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.dimensions(), w.dimensions());
        let mad = mean_abs_diff(g, w);
        eprintln!("frame {k}: mean abs diff {mad:.3}");
        assert!(mad <= 2.0, "frame {k}: mean abs diff {mad}");
    }
}

#[cfg(all(feature = "ffmpeg", feature = "aac"))]
#[test]
fn ffmpeg_audio_extraction_matches_symphonia() {
    let via_ffmpeg = mmcl_media::ffmpeg::decode_audio(&fixture("video_h264.mp4")).unwrap();
    let via_symphonia = mmcl_media::audio::decode_file(&fixture("video_h264.mp4")).unwrap();
    assert_eq!(via_ffmpeg.sample_rate, 16_000);
    assert_eq!(via_ffmpeg.samples.len(), 51_200);
    assert_eq!(via_symphonia.samples.len(), 51_200);
    let err: f32 = via_ffmpeg
        .samples
        .iter()
        .zip(&via_symphonia.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err < 1e-3, "ffmpeg vs symphonia AAC decode differ by {err}");
}
