//! Minimal ISO-BMFF walker that reads the first audio track's edit list.
//!
//! symphonia's MP4 demuxer ignores edit lists, so AAC audio decodes with the encoder's priming
//! samples (usually 1024) in front and padding behind. FFmpeg, Apple and the MP4 spec express
//! the valid span through `elst`; we read it here and trim after decoding, which makes a 10 s
//! clip decode to 10 s, as `ffmpeg` does.

/// The span of valid samples of an audio track, in the track's media timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioEdit {
    /// Samples (media timescale units) to drop at the start.
    pub skip: u64,
    /// Samples to keep after `skip`; `None` = keep everything.
    pub keep: Option<u64>,
    /// The track's media timescale (normally equal to the sample rate).
    pub media_timescale: u32,
}

impl AudioEdit {
    /// `v` media-timescale units in samples at `sample_rate`.
    pub fn scaled(&self, v: u64, sample_rate: u32) -> usize {
        if self.media_timescale == sample_rate || self.media_timescale == 0 {
            v as usize
        } else {
            (v as u128 * sample_rate as u128 / self.media_timescale as u128) as usize
        }
    }
}

/// A `moov` box larger than this is not read (real ones are kilobytes to a few megabytes).
const MAX_MOOV: u64 = 64 << 20;

/// [`audio_edit`] of the file at `path`, reading only its `moov` box: top-level boxes are
/// skipped by seeking, so memory does not grow with the media data. `Ok(None)` when there is
/// no usable `moov` (or it is over [`MAX_MOOV`]).
pub(crate) fn read_audio_edit(path: &std::path::Path) -> std::io::Result<Option<AudioEdit>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let file_len = f.metadata()?.len();
    let mut pos = 0u64;
    while pos + 8 <= file_len {
        f.seek(SeekFrom::Start(pos))?;
        let mut h = [0u8; 16];
        f.read_exact(&mut h[..8])?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let (header, size) = match size32 {
            1 => {
                if pos + 16 > file_len {
                    return Ok(None);
                }
                f.read_exact(&mut h[8..16])?;
                (
                    16u64,
                    u64::from_be_bytes(h[8..16].try_into().expect("8 bytes")),
                )
            }
            0 => (8u64, file_len - pos),
            s => (8u64, s),
        };
        if size < header || pos.saturating_add(size) > file_len {
            return Ok(None);
        }
        if &h[4..8] == b"moov" {
            if size > MAX_MOOV {
                return Ok(None);
            }
            let mut buf = vec![0u8; size as usize];
            f.seek(SeekFrom::Start(pos))?;
            f.read_exact(&mut buf)?;
            return Ok(audio_edit(&buf));
        }
        pos += size;
    }
    Ok(None)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_be_bytes(a)
    })
}

/// Iterates over the boxes of `buf` as (type, body).
fn boxes(buf: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let size32 = be_u32(buf, pos)? as u64;
        let kind: [u8; 4] = buf.get(pos + 4..pos + 8)?.try_into().ok()?;
        let (header, size) = match size32 {
            1 => (16u64, be_u64(buf, pos + 8)?),
            0 => (8u64, (buf.len() - pos) as u64),
            s => (8u64, s),
        };
        if size < header {
            return None;
        }
        let end = pos.checked_add(usize::try_from(size).ok()?)?;
        let body = buf.get(pos + header as usize..end)?;
        pos = end;
        Some((kind, body))
    })
}

fn child<'a>(buf: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(buf).find(|(k, _)| k == kind).map(|(_, b)| b)
}

/// Reads the edit of the first sound track of an MP4/M4A/MOV file held in `buf`.
/// Returns `None` when there is no sound track or no usable edit list.
pub(crate) fn audio_edit(buf: &[u8]) -> Option<AudioEdit> {
    let moov = child(buf, b"moov")?;
    let mvhd = child(moov, b"mvhd")?;
    let movie_timescale = if mvhd.first()? == &1 {
        be_u32(mvhd, 20)?
    } else {
        be_u32(mvhd, 12)?
    };
    for (kind, trak) in boxes(moov) {
        if &kind != b"trak" {
            continue;
        }
        let mdia = child(trak, b"mdia")?;
        let hdlr = child(mdia, b"hdlr")?;
        if hdlr.get(8..12)? != b"soun" {
            continue;
        }
        let mdhd = child(mdia, b"mdhd")?;
        let media_timescale = if mdhd.first()? == &1 {
            be_u32(mdhd, 20)?
        } else {
            be_u32(mdhd, 12)?
        };
        let elst = child(trak, b"edts").and_then(|e| child(e, b"elst"))?;
        let version = *elst.first()?;
        let count = be_u32(elst, 4)?;
        let mut at = 8usize;
        for _ in 0..count {
            let (seg_dur, media_time): (u64, i64) = if version == 1 {
                let d = be_u64(elst, at)?;
                let t = be_u64(elst, at + 8)? as i64;
                at += 20;
                (d, t)
            } else {
                let d = be_u32(elst, at)? as u64;
                let t = be_u32(elst, at + 4)? as i32 as i64;
                at += 12;
                (d, t)
            };
            if media_time < 0 {
                // An empty edit delays presentation; nothing to trim for it.
                continue;
            }
            let keep = if seg_dur == 0 || movie_timescale == 0 {
                None
            } else {
                Some((seg_dur as u128 * media_timescale as u128 / movie_timescale as u128) as u64)
            };
            return Some(AudioEdit {
                skip: media_time as u64,
                keep,
                media_timescale,
            });
        }
        return None;
    }
    None
}
