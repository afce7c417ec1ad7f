//! FFmpeg-backed decoding (cargo feature `ffmpeg`, ffmpeg-next 9 over FFmpeg >= 5.1): video
//! frames at a fixed rate, and audio from any container FFmpeg reads.
use std::path::Path;

use ff::format::{sample::Type as SampleType, Pixel, Sample};
use ff::media::Type;
use ff::software::scaling::{context::Context as Scaler, flag::Flags};
use ff::util::frame::{audio::Audio as AudioFrame, video::Video as VideoFrame};
use ffmpeg_next as ff;

use crate::audio::{check_stream, downmix_into, DecodedAudio, FrameBudget, MAX_CHANNELS};
use crate::error::{MediaError, Result};
use crate::frames::{FrameSampling, RgbFrame};

fn ff_err<'a>(path: &'a Path, what: &str) -> impl Fn(ff::Error) -> MediaError + 'a {
    let what = what.to_string();
    move |e| MediaError::Ffmpeg {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

fn open(path: &Path) -> Result<ff::format::context::Input> {
    let meta = std::fs::metadata(path).map_err(|source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() == 0 {
        return Err(MediaError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    ff::init().map_err(ff_err(path, "init"))?;
    ff::util::log::set_level(ff::util::log::Level::Fatal);
    ff::format::input(path).map_err(|e| MediaError::UnsupportedFormat {
        path: path.to_path_buf(),
        reason: format!("FFmpeg cannot open it: {e}"),
    })
}

/// Round half away from zero (FFmpeg's `AV_ROUND_NEAR_INF`).
fn round_near(x: f64) -> i64 {
    x.round() as i64
}

/// Decodes the best video stream, keeping the frames `sampling` selects.
/// [`FrameSampling::Reference`]: decoded frames 0, n, 2n, ... with n = int(average frame
/// rate), as the reference's OpenCV loop. [`FrameSampling::Fps`]: the semantics of FFmpeg's
/// `fps` filter (`ffmpeg -i input -vf fps=<fps>`): with input timestamps rounded to the output
/// grid, output frame `k` is the last input frame whose rounded timestamp is <= `k`; the grid
/// starts at the first frame, and ends at the rounded end of the last frame. For 1 fps on a
/// 25 fps video that is frames 12, 37, 62, … (the frame shown just before 0.5 s, 1.5 s, …).
/// Frames are converted to RGB24 with swscale (bicubic flag, as the `ffmpeg` CLI).
/// Each output frame goes to `sink`; decoding stops after `max_frames` frames; returns how
/// many were given ([`crate::frames::decode_video`] collects them). A frame over [`crate::frames::MAX_FRAME_SIDE`] /
/// [`crate::frames::MAX_FRAME_BYTES`] is a [`MediaError::Limit`] before it is converted.
pub(crate) fn decode_video_each(
    path: &Path,
    sampling: FrameSampling,
    max_frames: Option<usize>,
    sink: &mut dyn FnMut(&RgbFrame) -> Result<()>,
) -> Result<usize> {
    let mut ictx = open(path)?;
    let stream = ictx
        .streams()
        .best(Type::Video)
        .ok_or_else(|| MediaError::NoFrames {
            path: path.to_path_buf(),
            reason: "no video stream".into(),
        })?;
    let stream_index = stream.index();
    let tb = f64::from(stream.time_base());
    let avg_rate = stream.avg_frame_rate();
    let frame_dur_s = if avg_rate.numerator() > 0 && avg_rate.denominator() > 0 {
        Some(1.0 / f64::from(avg_rate))
    } else {
        None
    };
    // The reference's block length: OpenCV's CAP_PROP_FPS (the average frame rate, else the
    // stream's base rate) truncated by int(); the fps filter's output rate otherwise.
    let (block, fps) = match sampling {
        FrameSampling::Reference => {
            let rate = frame_dur_s.map(|d| 1.0 / d).or_else(|| {
                let r = stream.rate();
                (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
            });
            let rate = rate.ok_or_else(|| MediaError::NoFrames {
                path: path.to_path_buf(),
                reason: "the video stream declares no frame rate".into(),
            })?;
            (Some((rate as u64).max(1)), 0.0)
        }
        FrameSampling::Fps(r) => (None, f64::from(r)),
    };
    let ctx = ff::codec::context::Context::from_parameters(stream.parameters())
        .map_err(ff_err(path, "codec parameters"))?;
    let mut decoder = ctx
        .decoder()
        .video()
        .map_err(|e| MediaError::UnsupportedCodec {
            path: path.to_path_buf(),
            reason: format!("no FFmpeg video decoder: {e}"),
        })?;

    let mut state = FpsState::default();
    let mut out = FrameSink {
        sink,
        given: 0,
        max: max_frames.unwrap_or(usize::MAX),
    };
    let mut scaler: Option<(Scaler, Pixel, u32, u32)> = None;
    let mut to_rgb = |frame: &VideoFrame| -> Result<RgbFrame> {
        let (fmt, w, h) = (frame.format(), frame.width(), frame.height());
        crate::frames::check_frame_size(path, w, h)?;
        if scaler
            .as_ref()
            .is_none_or(|s| (s.1, s.2, s.3) != (fmt, w, h))
        {
            let s = Scaler::get(fmt, w, h, Pixel::RGB24, w, h, Flags::BICUBIC)
                .map_err(ff_err(path, "swscale"))?;
            scaler = Some((s, fmt, w, h));
        }
        let mut rgb = VideoFrame::empty();
        scaler
            .as_mut()
            .map(|s| s.0.run(frame, &mut rgb))
            .transpose()
            .map_err(ff_err(path, "swscale"))?;
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let stride = rgb.stride(0);
        let data = rgb.data(0);
        let mut buf = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            buf.extend_from_slice(&data[y * stride..y * stride + 3 * w]);
        }
        RgbFrame::from_raw(w as u32, h as u32, buf).ok_or_else(|| MediaError::Ffmpeg {
            path: path.to_path_buf(),
            reason: "RGB frame of unexpected size".into(),
        })
    };

    let mut receive = |decoder: &mut ff::decoder::Video,
                       state: &mut FpsState,
                       out: &mut FrameSink|
     -> Result<()> {
        loop {
            if out.full() {
                return Ok(());
            }
            let mut frame = VideoFrame::empty();
            if decoder.receive_frame(&mut frame).is_err() {
                return Ok(());
            }
            if let Some(n) = block {
                if state.decoded % n == 0 {
                    out.give(&to_rgb(&frame)?)?;
                }
                state.decoded += 1;
                continue;
            }
            let t = frame.timestamp().or(frame.pts()).map(|ts| ts as f64 * tb);
            let t = t.unwrap_or(state.last_t.map_or(0.0, |l| l + frame_dur_s.unwrap_or(0.0)));
            let slot = round_near(t * fps);
            if let Some((cur, _)) = &state.cur {
                let rgb = if state.next < slot {
                    Some(to_rgb(cur)?)
                } else {
                    None
                };
                while state.next < slot && !out.full() {
                    out.give(rgb.as_ref().expect("converted above"))?;
                    state.next += 1;
                }
            } else {
                state.next = slot;
            }
            if let Some(l) = state.last_t {
                state.last_dur = t - l;
            }
            state.last_t = Some(t);
            state.cur = Some((frame, t));
        }
    };

    for (stream, packet) in ictx.packets() {
        if out.full() {
            break;
        }
        if stream.index() != stream_index {
            continue;
        }
        decoder
            .send_packet(&packet)
            .map_err(|e| MediaError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("video packet rejected by the decoder: {e}"),
            })?;
        receive(&mut decoder, &mut state, &mut out)?;
    }
    if !out.full() {
        let _ = decoder.send_eof();
        receive(&mut decoder, &mut state, &mut out)?;
    }

    // (The reference rule keeps no pending frame: `state.cur` stays empty.)
    if let Some((cur, t)) = &state.cur {
        let dur = frame_dur_s.unwrap_or(state.last_dur.max(0.0));
        let end = round_near((t + dur) * fps);
        if state.next < end && !out.full() {
            let rgb = to_rgb(cur)?;
            while state.next < end && !out.full() {
                out.give(&rgb)?;
                state.next += 1;
            }
        }
    }
    if out.given == 0 {
        return Err(MediaError::NoFrames {
            path: path.to_path_buf(),
            reason: "the video stream decoded to zero frames".into(),
        });
    }
    Ok(out.given)
}

/// Where [`decode_video_each`] sends its frames, and when it has enough.
struct FrameSink<'s> {
    sink: &'s mut dyn FnMut(&RgbFrame) -> Result<()>,
    given: usize,
    max: usize,
}

impl FrameSink<'_> {
    fn full(&self) -> bool {
        self.given >= self.max
    }

    fn give(&mut self, frame: &RgbFrame) -> Result<()> {
        (self.sink)(frame)?;
        self.given += 1;
        Ok(())
    }
}

#[derive(Default)]
struct FpsState {
    /// Frames decoded so far (the reference rule's frame counter).
    decoded: u64,
    next: i64,
    cur: Option<(VideoFrame, f64)>,
    last_t: Option<f64>,
    last_dur: f64,
}

/// Decodes the best audio stream of any container FFmpeg reads, down-mixed to mono f32 at the
/// native rate. FFmpeg applies the container's encoder-delay trimming (edit lists, skip
/// samples) itself. Rates and channel counts are checked as in [`crate::audio::decode_file`].
pub fn decode_audio(path: &Path) -> Result<DecodedAudio> {
    decode_audio_budgeted(path, &|_| Ok(None))
}

/// [`decode_audio`] that stops once `budget(rate)` frames are decoded.
pub(crate) fn decode_audio_budgeted(path: &Path, budget: FrameBudget) -> Result<DecodedAudio> {
    let mut ictx = open(path)?;
    let stream = ictx
        .streams()
        .best(Type::Audio)
        .ok_or_else(|| MediaError::NoAudioTrack {
            path: path.to_path_buf(),
        })?;
    let stream_index = stream.index();
    let ctx = ff::codec::context::Context::from_parameters(stream.parameters())
        .map_err(ff_err(path, "codec parameters"))?;
    let mut decoder = ctx
        .decoder()
        .audio()
        .map_err(|e| MediaError::UnsupportedCodec {
            path: path.to_path_buf(),
            reason: format!("no FFmpeg audio decoder: {e}"),
        })?;
    let mut mono = Vec::new();
    let mut interleaved = Vec::new();
    let mut rate = 0u32;
    let mut limit: Option<usize> = None;
    // Ok(true) once the budget is covered.
    let mut receive = |decoder: &mut ff::decoder::Audio, mono: &mut Vec<f32>| -> Result<bool> {
        let mut frame = AudioFrame::empty();
        while decoder.receive_frame(&mut frame).is_ok() {
            let channels = frame.channels().max(1) as usize;
            if frame.rate() != rate || channels > MAX_CHANNELS {
                check_stream(path, frame.rate(), channels)?;
                if rate == 0 {
                    limit = budget(frame.rate())?;
                }
                rate = frame.rate();
            }
            frame_to_interleaved(&frame, channels, &mut interleaved).ok_or_else(|| {
                MediaError::UnsupportedCodec {
                    path: path.to_path_buf(),
                    reason: format!("sample format {:?}", frame.format()),
                }
            })?;
            downmix_into(&interleaved, channels, mono);
            if limit.is_some_and(|l| mono.len() >= l) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let mut covered = false;
    for (stream, packet) in ictx.packets() {
        if stream.index() != stream_index {
            continue;
        }
        decoder
            .send_packet(&packet)
            .map_err(|e| MediaError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("audio packet rejected by the decoder: {e}"),
            })?;
        if receive(&mut decoder, &mut mono)? {
            covered = true;
            break;
        }
    }
    if !covered {
        let _ = decoder.send_eof();
        receive(&mut decoder, &mut mono)?;
    }
    if let Some(l) = limit {
        mono.truncate(l);
    }
    if mono.is_empty() || rate == 0 {
        return Err(MediaError::NoSamples {
            path: path.to_path_buf(),
        });
    }
    Ok(DecodedAudio {
        samples: mono,
        sample_rate: rate,
    })
}

/// Reads one sample from its native-endian bytes as f32.
type SampleConv = fn(&[u8]) -> f32;

/// Converts any FFmpeg sample format to interleaved f32; `None` for an unknown format.
fn frame_to_interleaved(frame: &AudioFrame, channels: usize, out: &mut Vec<f32>) -> Option<()> {
    let n = frame.samples();
    out.clear();
    out.resize(n * channels, 0.0);
    let (width, planar, conv): (usize, bool, SampleConv) = match frame.format() {
        Sample::U8(t) => (1, t == SampleType::Planar, |b| {
            (b[0] as f32 - 128.0) / 128.0
        }),
        Sample::I16(t) => (2, t == SampleType::Planar, |b| {
            i16::from_ne_bytes([b[0], b[1]]) as f32 / 32768.0
        }),
        Sample::I32(t) => (4, t == SampleType::Planar, |b| {
            i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
        }),
        Sample::I64(t) => (8, t == SampleType::Planar, |b| {
            i64::from_ne_bytes(b.try_into().unwrap_or([0; 8])) as f32 / 9.223_372e18
        }),
        Sample::F32(t) => (4, t == SampleType::Planar, |b| {
            f32::from_ne_bytes([b[0], b[1], b[2], b[3]])
        }),
        Sample::F64(t) => (8, t == SampleType::Planar, |b| {
            f64::from_ne_bytes(b.try_into().unwrap_or([0; 8])) as f32
        }),
        Sample::None => return None,
    };
    if planar {
        for c in 0..channels {
            let plane = frame.data(c);
            for i in 0..n {
                out[i * channels + c] = conv(plane.get(i * width..(i + 1) * width)?);
            }
        }
    } else {
        let data = frame.data(0);
        for (i, o) in out.iter_mut().enumerate() {
            *o = conv(data.get(i * width..(i + 1) * width)?);
        }
    }
    Some(())
}
