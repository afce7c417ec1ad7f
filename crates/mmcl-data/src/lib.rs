//! Manifests, the VGGSound manifest builder, the safetensors preprocessing cache and the augmenting batch loader.

pub mod classes;
pub mod manifest;
pub mod vggsound;
pub mod cache;
pub mod error;
pub mod loader;
pub mod prep;
mod resize;
