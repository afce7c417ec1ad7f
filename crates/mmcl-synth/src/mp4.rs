//! MP4 (H.264 + AAC) output through FFmpeg (feature `ffmpeg`), so the video-decoding path
//! of `prep` runs end to end on synthetic data. Frames are encoded at 1 fps (one per second
//! of clip, as the reference extracts them), audio as mono AAC at the profile's rate.
//! Encoding is single-threaded and one clip is encoded at a time, so the same input gives
//! the same bytes.
use std::path::Path;

use ffmpeg::{codec, encoder, format, frame, ChannelLayout, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;
use image::RgbImage;

static ENCODE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Why an MP4 could not be written (FFmpeg's message).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Mp4Error(String);

fn err(what: &str) -> impl Fn(ffmpeg::Error) -> Mp4Error + '_ {
    move |e| Mp4Error(format!("{what}: {e}"))
}

/// Encodes `frames` (1 fps) and mono `audio` at `sample_rate` into an MP4 at `path`.
pub fn write_mp4(
    path: &Path,
    frames: &[RgbImage],
    audio: &[f32],
    sample_rate: u32,
) -> Result<(), Mp4Error> {
    ffmpeg::init().map_err(err("initialising FFmpeg"))?;
    // Encoders log statistics at info level for every file; keep stderr for real problems.
    ffmpeg::log::set_level(ffmpeg::log::Level::Error);
    let (w, h) = frames
        .first()
        .map(|f| f.dimensions())
        .ok_or_else(|| Mp4Error("no frames".into()))?;
    if w % 2 != 0 || h % 2 != 0 {
        return Err(Mp4Error(format!(
            "H.264 needs even frame sizes, got {w}x{h}"
        )));
    }
    const AAC_RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    if !AAC_RATES.contains(&sample_rate) {
        return Err(Mp4Error(format!(
            "AAC does not support {sample_rate} Hz (use one of {AAC_RATES:?})"
        )));
    }
    let mut octx = format::output_as(path, "mp4").map_err(err("opening the MP4 muxer"))?;
    let global = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

    // Encoders running concurrently in rayon threads gave different H.264 bytes for the
    // same input (observed with FFmpeg 5.1 + x264 164), so one MP4 is encoded at a time.
    let _one_at_a_time = ENCODE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // Video: H.264 (libx264), YUV 4:2:0, time base 1 s.
    let vcodec = encoder::find(codec::Id::H264)
        .ok_or_else(|| Mp4Error("FFmpeg has no H.264 encoder".into()))?;
    let mut venc = codec::context::Context::new_with_codec(vcodec)
        .encoder()
        .video()
        .map_err(err("H.264 encoder"))?;
    venc.set_width(w);
    venc.set_height(h);
    venc.set_format(format::Pixel::YUV420P);
    venc.set_time_base(Rational(1, 1));
    venc.set_frame_rate(Some(Rational(1, 1)));
    if global {
        venc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut vopts = Dictionary::new();
    vopts.set("threads", "1");
    vopts.set("preset", "medium");
    // Constant QP, no psy/adaptive quantisation or lookahead: nothing depends on float
    // state carried over between encoders.
    vopts.set("qp", "18");
    vopts.set(
        "x264-params",
        "aq-mode=0:psy=0:mbtree=0:rc-lookahead=0:sync-lookahead=0",
    );
    let mut venc = venc
        .open_with(vopts)
        .map_err(err("opening the H.264 encoder"))?;
    let vindex = {
        let mut st = octx
            .add_stream(vcodec)
            .map_err(err("adding the video stream"))?;
        st.set_parameters(&venc);
        st.set_time_base(Rational(1, 1));
        st.index()
    };

    // Audio: AAC (FFmpeg's native encoder), mono float planar.
    let acodec = encoder::find(codec::Id::AAC)
        .ok_or_else(|| Mp4Error("FFmpeg has no AAC encoder".into()))?;
    let mut aenc = codec::context::Context::new_with_codec(acodec)
        .encoder()
        .audio()
        .map_err(err("AAC encoder"))?;
    aenc.set_rate(sample_rate as i32);
    aenc.set_channel_layout(ChannelLayout::MONO);
    aenc.set_channels(1);
    aenc.set_format(format::Sample::F32(format::sample::Type::Planar));
    // ~2 bits per sample: 16 kb/s at 8 kHz, 32 kb/s at 16 kHz.
    aenc.set_bit_rate(2 * sample_rate as usize);
    aenc.set_time_base(Rational(1, sample_rate as i32));
    if global {
        aenc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut aopts = Dictionary::new();
    aopts.set("threads", "1");
    let mut aenc = aenc
        .open_with(aopts)
        .map_err(err("opening the AAC encoder"))?;
    let aindex = {
        let mut st = octx
            .add_stream(acodec)
            .map_err(err("adding the audio stream"))?;
        st.set_parameters(&aenc);
        st.set_time_base(Rational(1, sample_rate as i32));
        st.index()
    };

    octx.write_header().map_err(err("writing the MP4 header"))?;
    let vtb = octx.stream(vindex).expect("stream added").time_base();
    let atb = octx.stream(aindex).expect("stream added").time_base();

    for (i, img) in frames.iter().enumerate() {
        let mut f = frame::Video::new(format::Pixel::YUV420P, w, h);
        rgb_to_yuv420p(img, &mut f);
        f.set_pts(Some(i as i64));
        venc.send_frame(&f).map_err(err("encoding video"))?;
        drain(&mut venc, &mut octx, vindex, Rational(1, 1), vtb, 1)?;
    }
    venc.send_eof().map_err(err("flushing video"))?;
    drain(&mut venc, &mut octx, vindex, Rational(1, 1), vtb, 1)?;

    let chunk = match aenc.frame_size() {
        0 => 1024,
        n => n as usize,
    };
    for (k, part) in audio.chunks(chunk).enumerate() {
        let mut f = frame::Audio::new(
            format::Sample::F32(format::sample::Type::Planar),
            part.len(),
            ChannelLayout::MONO,
        );
        f.set_rate(sample_rate);
        f.plane_mut::<f32>(0)[..part.len()].copy_from_slice(part);
        f.set_pts(Some((k * chunk) as i64));
        aenc.send_frame(&f).map_err(err("encoding audio"))?;
        drain(
            &mut aenc,
            &mut octx,
            aindex,
            Rational(1, sample_rate as i32),
            atb,
            0,
        )?;
    }
    aenc.send_eof().map_err(err("flushing audio"))?;
    drain(
        &mut aenc,
        &mut octx,
        aindex,
        Rational(1, sample_rate as i32),
        atb,
        0,
    )?;
    octx.write_trailer()
        .map_err(err("writing the MP4 trailer"))?;
    Ok(())
}

fn drain(
    enc: &mut encoder::Encoder,
    octx: &mut format::context::Output,
    index: usize,
    from: Rational,
    to: Rational,
    default_duration: i64,
) -> Result<(), Mp4Error> {
    let mut p = Packet::empty();
    while enc.receive_packet(&mut p).is_ok() {
        // Without a duration the last video frame would last 0 s (a 3 s stream for 4 frames).
        if p.duration() == 0 {
            p.set_duration(default_duration);
        }
        p.set_stream(index);
        p.rescale_ts(from, to);
        p.write_interleaved(octx).map_err(err("writing a packet"))?;
    }
    Ok(())
}

/// BT.601 limited-range RGB -> YUV 4:2:0 (chroma averaged over 2x2 blocks).
fn rgb_to_yuv420p(img: &RgbImage, f: &mut frame::Video) {
    let (w, h) = img.dimensions();
    let px = |x: u32, y: u32| img.get_pixel(x, y).0.map(|v| v as f32);
    // Zero everything first (alignment padding included) so no stale memory reaches x264.
    for plane in 0..3 {
        f.data_mut(plane).fill(0);
    }
    let ys = f.stride(0);
    let y_plane = f.data_mut(0);
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = px(x, y);
            y_plane[y as usize * ys + x as usize] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    let (us, vs) = (f.stride(1), f.stride(2));
    for cy in 0..h / 2 {
        for cx in 0..w / 2 {
            let mut s = [0f32; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px(2 * cx + dx, 2 * cy + dy);
                for k in 0..3 {
                    s[k] += p[k] / 4.0;
                }
            }
            let [r, g, b] = s;
            let u = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b)
                .round()
                .clamp(0.0, 255.0) as u8;
            let v = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b)
                .round()
                .clamp(0.0, 255.0) as u8;
            f.data_mut(1)[cy as usize * us + cx as usize] = u;
            f.data_mut(2)[cy as usize * vs + cx as usize] = v;
        }
    }
}
