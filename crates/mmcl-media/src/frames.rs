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

/// Decodes one JPEG/PNG file (format from its content) to RGB u8.
pub fn read_frame(path: &Path) -> Result<RgbFrame> {
    let bytes = std::fs::read(path).map_err(|source| MediaError::Io {
        path: path.into(),
        source,
    })?;
    decode_frame_bytes(&bytes, path)
}

/// Decodes an in-memory JPEG/PNG; `path` only names the source in errors.
pub fn decode_frame_bytes(bytes: &[u8], path: &Path) -> Result<RgbFrame> {
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
    let img = image::load_from_memory_with_format(bytes, format).map_err(|e| err(e.to_string()))?;
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

/// Reads the frames of `input`: a frame folder, or a video file decoded at `fps` frames per
/// second (the first frame of each 1/fps interval; needs the `ffmpeg` feature).
pub fn read_frames(input: &Path, fps: f64) -> Result<Vec<RgbFrame>> {
    if input.is_dir() {
        read_frame_dir(input)
    } else {
        decode_video(input, fps)
    }
}

/// Decodes a video file at `fps` frames per second, like `ffmpeg -i input -vf fps=<fps>`
/// (frame `k` is the frame shown at time `k / fps`), as RGB u8 at native resolution.
#[cfg(feature = "ffmpeg")]
pub fn decode_video(path: &Path, fps: f64) -> Result<Vec<RgbFrame>> {
    crate::ffmpeg::decode_video(path, fps)
}

/// Decodes a video file at `fps` frames per second. This build has no `ffmpeg` feature, so it
/// always returns [`MediaError::FfmpegDisabled`] (after checking that the file is readable).
#[cfg(not(feature = "ffmpeg"))]
pub fn decode_video(path: &Path, fps: f64) -> Result<Vec<RgbFrame>> {
    let _ = fps;
    std::fs::metadata(path).map_err(|source| MediaError::Io {
        path: path.into(),
        source,
    })?;
    Err(MediaError::FfmpegDisabled {
        path: path.to_path_buf(),
    })
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
