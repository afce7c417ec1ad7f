//! The audio-visual ResNet-18 classifier of SAMM/MMCL on candle, reference-compatible checkpoints, and SGD with momentum.
