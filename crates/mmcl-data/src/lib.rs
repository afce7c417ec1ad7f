//! Manifests, the VGGSound manifest builder, the safetensors preprocessing cache and the augmenting batch loader.
