//! Deterministic synthetic audio-visual dataset generator (real WAV/PNG/MP4 files) shaped like MMCL-VGGSound.
