#!/usr/bin/env python3
"""Generates the golden fixtures of crates/mmcl-media/tests/fixtures/.

Run from the repository root:  python3 tools/golden_media/make_fixtures.py
Needs: numpy, librosa (>= 0.10), torch, pillow, safetensors, and the `ffmpeg` CLI
(libx264, libmp3lame, libvorbis, native aac). The Rust tests only read the outputs.

Outputs (all small, committed):
  stft_golden.safetensors   librosa.stft log-magnitudes of 3 signals x 2 pad modes
  resample_golden.safetensors  librosa.load(sr=16000, mono=True) of resample_src_44k_stereo.wav
  resize_golden.safetensors torch F.interpolate(bilinear, antialias=True) of a random image
  pil_resize_golden.safetensors  PIL crop + resize(BILINEAR) of a random image, with the pass
                            order this Pillow used per case
  fmt_*                     one tiny file per audio format, made by ffmpeg from one tone
  video_h264.mp4 + video_fps1.safetensors  an H.264/AAC clip and `ffmpeg -vf fps=1` frames
"""
import os
import subprocess
import sys

import numpy as np
import librosa
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

OUT = os.path.join("crates", "mmcl-media", "tests", "fixtures")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-nostdin", *args], check=True)


def stft_golden():
    rng = np.random.default_rng(1)
    sr = 16000
    signals = {}
    n = 3001  # not multiples of the hop (128)
    t = np.arange(n) / sr
    signals["tone"] = 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 3000.0 * t)
    n = 4567
    signals["noise"] = 0.3 * rng.standard_normal(n)
    n = 5555
    t = np.arange(n) / sr
    signals["chirp"] = 0.8 * np.sin(2 * np.pi * (100.0 * t + 0.5 * (7000.0 - 100.0) / t[-1] * t ** 2))
    tensors = {}
    for name, y in signals.items():
        y = y.astype(np.float32)
        tensors[f"{name}.wave"] = y
        for mode in ("constant", "reflect"):
            s = np.abs(librosa.stft(y, n_fft=256, hop_length=128, center=True, pad_mode=mode))
            # librosa returns Fortran-ordered arrays; safetensors stores raw memory: force C order.
            tensors[f"{name}.{mode}"] = np.ascontiguousarray(np.log(s + 1e-7), dtype=np.float32)
    save_file(tensors, os.path.join(OUT, "stft_golden.safetensors"))


def audio_formats():
    # One source per rate/channel layout; the Rust test checks length and rate of each.
    tone = "sine=frequency=440:sample_rate={sr}:duration={d}"
    stereo = "[0:a][1:a]amerge=inputs=2"

    def make(out, sr, d, ch, codec_args):
        inputs = ["-f", "lavfi", "-i", tone.format(sr=sr, d=d)]
        if ch == 2:
            inputs += ["-f", "lavfi", "-i", "sine=frequency=660:sample_rate=%d:duration=%s" % (sr, d)]
            inputs += ["-filter_complex", stereo]
        ffmpeg(*inputs, *codec_args, "-map_metadata", "-1", os.path.join(OUT, out))

    make("fmt_pcm16_44k_stereo.wav", 44100, 0.5, 2, ["-c:a", "pcm_s16le"])
    make("fmt_pcm24_22k_mono.wav", 22050, 0.5, 1, ["-c:a", "pcm_s24le"])
    make("fmt_pcm32_16k_mono.wav", 16000, 0.5, 1, ["-c:a", "pcm_s32le"])
    make("fmt_f32_8k_stereo.wav", 8000, 0.5, 2, ["-c:a", "pcm_f32le"])
    make("fmt_flac_44k_stereo.flac", 44100, 0.5, 2, ["-c:a", "flac"])
    make("fmt_mp3_44k_stereo.mp3", 44100, 1, 2, ["-c:a", "libmp3lame", "-b:a", "64k"])
    make("fmt_vorbis_44k_stereo.ogg", 44100, 1, 2, ["-c:a", "libvorbis", "-q:a", "0"])
    make("fmt_aac_44k_stereo.m4a", 44100, 1, 2, ["-c:a", "aac", "-b:a", "48k"])


def resample_golden():
    rng = np.random.default_rng(2)
    # 0.5 s of 44.1 kHz stereo "real-ish" audio: two tones, a chirp and noise low-passed at
    # 6 kHz per channel (within the 16 kHz passband, like most speech/music energy).
    sr, n = 44100, 22050
    t = np.arange(n) / sr
    noise = rng.standard_normal((2, n))
    spec = np.fft.rfft(noise, axis=1)
    spec[:, np.fft.rfftfreq(n, 1 / sr) > 6000] = 0
    noise = np.fft.irfft(spec, n, axis=1)
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (200 * t + 3000 * t ** 2)) + 0.1 * noise[0]
    right = 0.3 * np.sin(2 * np.pi * 1234 * t) + 0.1 * noise[1]
    x = np.stack([left, right], 1)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    path = os.path.join(OUT, "resample_src_44k_stereo.wav")
    import wave
    with wave.open(path, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    y, _ = librosa.load(path, sr=16000, mono=True)
    save_file({"waveform": np.ascontiguousarray(y, dtype=np.float32)}, os.path.join(OUT, "resample_golden.safetensors"))


def resize_golden():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(23, 37, 3), dtype=np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    tensors = {"input": img}
    for h, w in ((16, 20), (50, 30), (7, 37)):
        y = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        out = y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        tensors[f"out_{h}x{w}"] = np.ascontiguousarray(out)
    save_file(tensors, os.path.join(OUT, "resize_golden.safetensors"))


def pil_resize_golden():
    """PIL's own bilinear crop + resize (what torchvision's RandomResizedCrop runs on PIL
    images). Pillow <= 12 always resizes horizontally first; Pillow >= 13 resizes vertically
    first when the height shrinks much more than the width (python-pillow/Pillow#9549), which
    can move a value by one level. Each case records which order this Pillow used
    (`vertical_first`), found by comparing with the two explicit one-pass-at-a-time orders."""
    from PIL import Image

    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, size=(61, 97, 3), dtype=np.uint8)
    pil = Image.fromarray(img)
    # (left, top, width, height) -> (out_w, out_h): down- and upscaling, borders, 1-pixel crops,
    # and narrow crops whose height shrinks while the width grows.
    cases = [((0, 0, 97, 61), (32, 32)), ((13, 7, 41, 29), (24, 24)), ((90, 0, 7, 61), (9, 40)),
             ((0, 50, 97, 11), (224, 20)), ((5, 5, 1, 1), (3, 3)), ((33, 17, 60, 44), (59, 43)),
             ((1, 2, 95, 58), (224, 224)), ((90, 0, 7, 61), (9, 61)), ((90, 0, 7, 61), (7, 40)),
             ((0, 0, 7, 61), (9, 40)), ((40, 0, 7, 61), (9, 40))]
    rows = []
    tensors = {"input": img}
    for k, ((l, t, w, h), (ow, oh)) in enumerate(cases):
        crop = pil.crop((l, t, l + w, t + h))
        out = np.asarray(crop.resize((ow, oh), Image.BILINEAR), dtype=np.uint8)
        h_first = np.asarray(crop.resize((ow, h), Image.BILINEAR).resize((ow, oh), Image.BILINEAR))
        v_first = np.asarray(crop.resize((w, oh), Image.BILINEAR).resize((ow, oh), Image.BILINEAR))
        vertical_first = int(not np.array_equal(out, h_first) and np.array_equal(out, v_first))
        rows.append((l, t, w, h, ow, oh, vertical_first))
        tensors[f"out_{k}"] = np.ascontiguousarray(out)
    tensors["cases"] = np.array(rows, dtype=np.int64)
    save_file(tensors, os.path.join(OUT, "pil_resize_golden.safetensors"))


def video():
    mp4 = os.path.join(OUT, "video_h264.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=3.2",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=3.2",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "30", "-g", "25",
           "-c:a", "aac", "-b:a", "24k", "-shortest", "-map_metadata", "-1", mp4)
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-nostdin", "-i", mp4, "-vf", "fps=1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True,
                         capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 48, 64, 3)
    # Same bytes as `ffmpeg -i video_h264.mp4 -vf fps=1 f%03d.png` (PNG is lossless).
    save_file({"frames": frames.copy()}, os.path.join(OUT, "video_fps1.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.isdir("crates"):
        sys.exit("run from the repository root")
    stft_golden()
    audio_formats()
    resample_golden()
    resize_golden()
    pil_resize_golden()
    video()
    for f in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, f)):8d}  {f}")


if __name__ == "__main__":
    main()
