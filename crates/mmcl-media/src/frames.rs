//! Video frames: a clip's folder of JPEG/PNG files, or (feature `ffmpeg`) any video file
//! decoded at a fixed rate; plus the choice of which `T` frames a clip contributes.
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::error::{MediaError, Result};

/// One RGB frame, u8, height x width x 3, at native resolution.
pub type RgbFrame = image::RgbImage;

fn is_frame_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        .unwrap_or(false)
}

/// The JPEG/PNG files in `dir`, sorted by file name (byte order, as Python's `sorted`).
/// Errors with [`MediaError::NoFrames`] when there are none.
pub fn list_frame_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| MediaError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if is_frame_file(&path) && entry.file_type().map_err(io)?.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(MediaError::NoFrames {
            path: dir.to_path_buf(),
            reason: "folder has no .jpg/.jpeg/.png files".into(),
        });
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Widest and tallest frame any decoder accepts (pixels per side): 8K UHD (7680 x 4320) fits.
pub const MAX_FRAME_SIDE: u32 = 8192;
/// Most bytes one frame may decode to, both in the decoder's own pixel format and as RGB u8
/// (`image::Limits::max_alloc` and our check before the RGB conversion): 8K RGB8 is 95 MiB.
pub const MAX_FRAME_BYTES: u64 = 128 << 20;
/// Largest frame file read (a JPEG/PNG frame is kilobytes to a few megabytes).
pub const MAX_FRAME_FILE_BYTES: u64 = 64 << 20;

/// The one check of a frame's declared size, shared by the image and the video decoders:
/// each side <= [`MAX_FRAME_SIDE`] and the RGB u8 frame <= [`MAX_FRAME_BYTES`].
pub(crate) fn check_frame_size(path: &Path, width: u32, height: u32) -> Result<()> {
    let rgb = width as u64 * height as u64 * 3;
    if width > MAX_FRAME_SIDE || height > MAX_FRAME_SIDE || rgb > MAX_FRAME_BYTES {
        return Err(MediaError::Limit {
            path: path.to_path_buf(),
            reason: format!(
                "frame of {width}x{height} pixels is over the limit of {MAX_FRAME_SIDE} px per \
                 side and {} MiB as RGB",
                MAX_FRAME_BYTES >> 20
            ),
        });
    }
    Ok(())
}

/// Decodes one JPEG/PNG file (format from its content) to RGB u8. A file over
/// [`MAX_FRAME_FILE_BYTES`] or an image over [`MAX_FRAME_SIDE`] / [`MAX_FRAME_BYTES`] is a
/// [`MediaError::Limit`], found before its pixels are allocated.
pub fn read_frame(path: &Path) -> Result<RgbFrame> {
    let io = |source| MediaError::Io {
        path: path.into(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FRAME_FILE_BYTES {
        return Err(MediaError::Limit {
            path: path.to_path_buf(),
            reason: format!(
                "image file of {len} bytes is over the limit of {} MiB",
                MAX_FRAME_FILE_BYTES >> 20
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    decode_frame_bytes(&bytes, path)
}

/// Decodes an in-memory JPEG/PNG; `path` only names the source in errors. Decoding runs under
/// `image::Limits` ([`MAX_FRAME_SIDE`] per side, [`MAX_FRAME_BYTES`] of allocation) and the
/// declared size is checked from the header before any pixel buffer exists.
pub fn decode_frame_bytes(bytes: &[u8], path: &Path) -> Result<RgbFrame> {
    use image::ImageDecoder;
    let err = |reason: String| MediaError::Image {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(MediaError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let format = image::guess_format(bytes).map_err(|e| err(e.to_string()))?;
    let reader = |max_side: Option<u32>| {
        let mut r = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
        let mut limits = image::Limits::default();
        limits.max_image_width = max_side;
        limits.max_image_height = max_side;
        limits.max_alloc = Some(MAX_FRAME_BYTES);
        r.limits(limits);
        r
    };
    let limit_err = |e: image::ImageError| match e {
        image::ImageError::Limits(l) => {
            // Name the declared size (read again from the header, only on this error path).
            if let Ok((w, h)) = reader(None).into_dimensions() {
                if let Err(e) = check_frame_size(path, w, h) {
                    return e;
                }
            }
            MediaError::Limit {
                path: path.to_path_buf(),
                reason: format!(
                    "{l} (frames: at most {MAX_FRAME_SIDE} px per side, {} MiB decoded)",
                    MAX_FRAME_BYTES >> 20
                ),
            }
        }
        other => err(other.to_string()),
    };
    let decoder = reader(Some(MAX_FRAME_SIDE))
        .into_decoder()
        .map_err(limit_err)?;
    let (w, h) = decoder.dimensions();
    check_frame_size(path, w, h)?;
    if decoder.total_bytes() > MAX_FRAME_BYTES {
        return Err(MediaError::Limit {
            path: path.to_path_buf(),
            reason: format!(
                "{w}x{h} {:?} image decodes to {} bytes, over the limit of {} MiB",
                decoder.color_type(),
                decoder.total_bytes(),
                MAX_FRAME_BYTES >> 20
            ),
        });
    }
    let img = image::DynamicImage::from_decoder(decoder).map_err(limit_err)?;
    if img.width() == 0 || img.height() == 0 {
        return Err(err("zero-sized image".into()));
    }
    Ok(img.into_rgb8())
}

/// Reads every frame of a clip's frame folder, sorted by file name.
pub fn read_frame_dir(dir: &Path) -> Result<Vec<RgbFrame>> {
    list_frame_files(dir)?
        .iter()
        .map(|p| read_frame(p))
        .collect()
}

/// Which frames of a video file are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FrameSampling {
    /// The reference's offline extraction (OpenCV, `video_preprocessing.py`): with
    /// `n = int(fps)` of the stream (its average frame rate, truncated; at least 1), the
    /// first frame of every block of `n` decoded frames, i.e. decoded frames 0, n, 2n, ...
    /// For 25 fps that is frames 0, 25, 50 (the frames at 0 s, 1 s, 2 s); for 29.97 fps,
    /// frames 0, 29, 58, ..., which drift ahead of the seconds as the reference's do.
    #[default]
    Reference,
    /// FFmpeg's `fps` filter (`ffmpeg -i input -vf fps=R`) at `R` frames per second: the
    /// frame shown at each output time (for 1 fps on 25 fps video, frames 12, 37, 62, ...).
    Fps(u32),
}

impl std::fmt::Display for FrameSampling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameSampling::Reference => f.write_str("reference"),
            FrameSampling::Fps(r) => write!(f, "fps={r}"),
        }
    }
}

impl std::str::FromStr for FrameSampling {
    type Err = MediaError;

    /// `reference` or `fps=R` (R a positive integer).
    fn from_str(s: &str) -> Result<Self> {
        if s == "reference" {
            return Ok(FrameSampling::Reference);
        }
        s.strip_prefix("fps=")
            .and_then(|r| r.parse::<u32>().ok())
            .filter(|&r| r > 0)
            .map(FrameSampling::Fps)
            .ok_or_else(|| {
                MediaError::InvalidArgument(format!(
                    "frame sampling {s:?}: expected `reference` or `fps=R` with R a positive integer"
                ))
            })
    }
}

/// Reads the frames of `input`: a frame folder, or a video file sampled by `sampling`
/// (needs the `ffmpeg` feature).
pub fn read_frames(input: &Path, sampling: FrameSampling) -> Result<Vec<RgbFrame>> {
    if input.is_dir() {
        read_frame_dir(input)
    } else {
        decode_video(input, sampling)
    }
}

/// Decodes the frames of a video file that `sampling` keeps, as RGB u8 at native
/// resolution. Needs the `ffmpeg` feature; without it always [`MediaError::FfmpegDisabled`]
/// (after checking that the file is readable).
pub fn decode_video(path: &Path, sampling: FrameSampling) -> Result<Vec<RgbFrame>> {
    let mut out = Vec::new();
    decode_video_each(path, sampling, None, &mut |f| {
        out.push(f.clone());
        Ok(())
    })?;
    Ok(out)
}

/// [`decode_video`] that hands each output frame to `sink` instead of collecting them (so a
/// caller can shrink each frame before the next is decoded) and stops after `max_frames`
/// frames. Returns the number of frames given to `sink`. Each frame is checked against
/// [`MAX_FRAME_SIDE`] / [`MAX_FRAME_BYTES`] before it is converted.
pub fn decode_video_each(
    path: &Path,
    sampling: FrameSampling,
    max_frames: Option<usize>,
    sink: &mut dyn FnMut(&RgbFrame) -> Result<()>,
) -> Result<usize> {
    #[cfg(feature = "ffmpeg")]
    {
        crate::ffmpeg::decode_video_each(path, sampling, max_frames, sink)
    }
    #[cfg(not(feature = "ffmpeg"))]
    {
        let _ = (sampling, max_frames, sink);
        std::fs::metadata(path).map_err(|source| MediaError::Io {
            path: path.into(),
            source,
        })?;
        Err(MediaError::FfmpegDisabled {
            path: path.to_path_buf(),
        })
    }
}

/// Chooses `t` of `n_avail` frame indices, in increasing order.
///
/// * `train`: `t` distinct positions drawn uniformly with the caller's RNG, sorted. (The
///   reference computed such a choice but then used the first `t` files; we use the choice.)
/// * evaluation: evenly spaced, the centre of each of `t` equal segments:
///   `floor((2i + 1) * n_avail / (2t))`.
///
/// With fewer than `t` frames available both modes use the evenly spaced rule, which repeats
/// frames. `n_avail == 0` or `t == 0` gives an empty list.
pub fn select_frames<R: Rng + ?Sized>(
    n_avail: usize,
    t: usize,
    train: bool,
    rng: &mut R,
) -> Vec<usize> {
    if n_avail == 0 || t == 0 {
        return Vec::new();
    }
    if train && n_avail >= t {
        let mut idx = rand::seq::index::sample(rng, n_avail, t).into_vec();
        idx.sort_unstable();
        return idx;
    }
    (0..t).map(|i| ((2 * i + 1) * n_avail) / (2 * t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn selection_rules() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(select_frames(10, 4, false, &mut rng), vec![1, 3, 6, 8]);
        assert_eq!(select_frames(4, 4, false, &mut rng), vec![0, 1, 2, 3]);
        assert_eq!(select_frames(2, 4, true, &mut rng), vec![0, 0, 1, 1]);
        assert!(select_frames(0, 4, true, &mut rng).is_empty());
        for _ in 0..100 {
            let s = select_frames(10, 4, true, &mut rng);
            assert_eq!(s.len(), 4);
            assert!(s.windows(2).all(|w| w[0] < w[1]) && s[3] < 10);
        }
        let a = select_frames(10, 4, true, &mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(
            a,
            select_frames(10, 4, true, &mut ChaCha8Rng::seed_from_u64(5))
        );
    }
}
