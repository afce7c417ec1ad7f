//! Media decoding and preprocessing for mmcl: audio decoding/resampling, STFT log-spectrograms, video frames, torchvision-style image transforms.
