//! Checkpoints as safetensors with exactly the reference PyTorch state_dict's names,
//! shapes and dtypes (f32 parameters and running statistics, int64 scalar
//! `num_batches_tracked`), so `model.load_state_dict(safetensors.torch.load_file(p),
//! strict=True)` works in PyTorch and a PyTorch-saved state_dict loads here.
//!
//! We also write one header metadata entry, `mmcl.avnet.v1`, holding the [`AvNetConfig`]
//! as JSON (one entry so the file bytes are reproducible: the safetensors header stores
//! metadata as an unordered map). PyTorch ignores it, and [`infer_config`] works without it
//! for every audio-visual layout by reading the tensor shapes.
//!
//! A unimodal network saves only its encoder, the head on it (`x_out` or `y_out`) and the
//! fused head `fc_out`; it loads both those files and the older two-encoder ones, whose
//! other encoder and head it ignores (see [`AvNet::load`]).
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors, View};

use crate::avnet::{lock, AvNet, AvNetConfig};
use crate::fusion::{Fusion, Modality};
use crate::{ModelError, Result};

const META_KEY: &str = "mmcl.avnet.v1";

/// Header metadata found in a checkpoint (all optional: PyTorch-written files have none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CheckpointMeta {
    pub modality: Option<Modality>,
    pub frames: Option<usize>,
}

fn ckpt_err(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the architecture of a checkpoint from its tensor shapes: a unimodal checkpoint
/// names its modality by the one encoder it holds; an older two-encoder unimodal one needs
/// the mmcl metadata (its layout is the same for both modalities).
pub fn infer_config(path: impl AsRef<Path>) -> Result<AvNetConfig> {
    infer_config_with(path, None)
}

/// [`infer_config`], with `unimodal` naming the modality of a unimodal checkpoint that
/// has no mmcl metadata (e.g. written by PyTorch). Ignored for audio-visual layouts.
pub fn infer_config_with(
    path: impl AsRef<Path>,
    unimodal: Option<Modality>,
) -> Result<AvNetConfig> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| ckpt_err(path, format!("not a safetensors file: {e}")))?;
    let mut meta = read_meta(path, &bytes)?;
    if meta.modality.is_none() {
        meta.modality = unimodal;
    }
    infer_from(path, &st, &meta)
}

fn read_meta(path: &Path, bytes: &[u8]) -> Result<CheckpointMeta> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ckpt_err(path, format!("not a safetensors file: {e}")))?;
    let mut meta = CheckpointMeta::default();
    if let Some(json) = header.metadata().as_ref().and_then(|m| m.get(META_KEY)) {
        let cfg: AvNetConfig = serde_json::from_str(json)
            .map_err(|e| ckpt_err(path, format!("bad {META_KEY} metadata {json:?}: {e}")))?;
        meta.modality = Some(cfg.modality);
        meta.frames = Some(cfg.frames);
    }
    Ok(meta)
}

fn infer_from(path: &Path, st: &SafeTensors<'_>, meta: &CheckpointMeta) -> Result<AvNetConfig> {
    let shape = |name: &str| st.tensor(name).ok().map(|t| t.shape().to_vec());
    let need =
        |name: &str| shape(name).ok_or_else(|| ckpt_err(path, format!("missing tensor {name}")));
    // A one-encoder (unimodal) checkpoint says its modality by the encoder it holds; one
    // written before unimodal networks held one encoder has both, and needs the metadata.
    let held = match (
        shape("audio_net.conv1.weight").is_some(),
        shape("visual_net.conv1.weight").is_some(),
    ) {
        (true, false) => Some(Modality::Audio),
        (false, true) => Some(Modality::Visual),
        _ => None,
    };
    let (conv1_name, head_name) = match held {
        Some(Modality::Visual) => ("visual_net.conv1.weight", "fusion_module.y_out.weight"),
        _ => ("audio_net.conv1.weight", "fusion_module.x_out.weight"),
    };
    let conv1 = need(conv1_name)?;
    let head = need(head_name)?;
    if conv1.len() != 4 || head.len() != 2 {
        return Err(ckpt_err(
            path,
            format!("{conv1_name} / {head_name} have the wrong rank"),
        ));
    }
    let (width, classes) = (conv1[0], head[0]);
    let unimodal = held.or(meta.modality);
    let d = 8 * width;
    let (fusion, modality) =
        if shape("fusion_module.fc.weight").is_some() {
            (Fusion::Film, Modality::AudioVisual)
        } else if shape("fusion_module.fc_x.weight").is_some() {
            if shape("fusion_module.fc_out.weight").is_some() {
                (Fusion::Gated, Modality::AudioVisual)
            } else {
                (Fusion::Sum, Modality::AudioVisual)
            }
        } else {
            let fc_out = need("fusion_module.fc_out.weight")?;
            match fc_out.get(1) {
                Some(&n) if n == 2 * d => (Fusion::Concat, Modality::AudioVisual),
                Some(&n) if n == d => match unimodal {
                    Some(m @ (Modality::Audio | Modality::Visual)) => (Fusion::Film, m),
                    _ => return Err(ckpt_err(
                        path,
                        "unimodal layout (fused head fed by one modality) without mmcl metadata; \
                         say which modality (audio or visual) explicitly",
                    )),
                },
                _ => {
                    return Err(ckpt_err(
                        path,
                        format!("fusion_module.fc_out.weight has unexpected shape {fc_out:?}"),
                    ))
                }
            }
        };
    Ok(AvNetConfig {
        width,
        classes,
        fusion,
        modality,
        frames: meta.frames.unwrap_or(4),
    })
}

/// One state_dict entry, owned, ready to serialise.
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Entry {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn f32_entry(t: &Tensor) -> Result<Entry> {
    let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(Entry {
        dtype: Dtype::F32,
        shape: t.dims().to_vec(),
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    })
}

impl AvNet {
    /// The state_dict as candle tensors: parameters and running statistics (f32) and
    /// `num_batches_tracked` (i64 scalars), keyed by their PyTorch names.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out: Vec<(String, Tensor)> = self
            .named_trainable_vars()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        for (prefix, stats) in self.buffers() {
            let s = lock(stats);
            out.push((format!("{prefix}.running_mean"), s.running_mean.clone()));
            out.push((format!("{prefix}.running_var"), s.running_var.clone()));
            out.push((
                format!("{prefix}.num_batches_tracked"),
                Tensor::new(s.num_batches_tracked, self.device())?,
            ));
        }
        Ok(out)
    }

    /// Writes the checkpoint (atomically) with mmcl header metadata.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut entries = Vec::new();
        for (name, t) in self.state_tensors()? {
            let entry = if t.dtype() == DType::I64 {
                let v = t.to_scalar::<i64>()?;
                Entry {
                    dtype: Dtype::I64,
                    shape: vec![],
                    data: v.to_le_bytes().to_vec(),
                }
            } else {
                f32_entry(&t)?
            };
            entries.push((name, entry));
        }
        let json = serde_json::to_string(self.config())
            .map_err(|e| ckpt_err(path, format!("cannot encode the config: {e}")))?;
        let meta = HashMap::from([(META_KEY.to_string(), json)]);
        let bytes =
            mmcl_io::safetensors_bytes(entries.iter().map(|(k, e)| (k.as_str(), e)), Some(meta))
                .map_err(|e| ckpt_err(path, format!("cannot encode: {e}")))?;
        mmcl_io::write_atomic(path, &bytes).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// An independent copy (own variables and statistics), e.g. a frozen snapshot or a
    /// teacher. `clone()` instead shares the variables.
    pub fn duplicate(&self) -> Result<Self> {
        let net = Self::seeded(*self.config(), self.device(), 0)?;
        let state: HashMap<String, Tensor> = self.state_tensors()?.into_iter().collect();
        net.load_state_tensors(&state, Path::new("<in-memory copy>"))?;
        Ok(net)
    }

    /// Builds the network a checkpoint describes ([`infer_config`]) and loads it strictly.
    pub fn from_checkpoint(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let cfg = infer_config(path.as_ref())?;
        Self::from_checkpoint_with(cfg, path, device)
    }

    /// Builds a network with `cfg` and loads the checkpoint into it strictly.
    pub fn from_checkpoint_with(
        cfg: AvNetConfig,
        path: impl AsRef<Path>,
        device: &Device,
    ) -> Result<Self> {
        // The values drawn here are all overwritten by the load.
        let net = Self::seeded(cfg, device, 0)?;
        net.load(path)?;
        Ok(net)
    }

    /// Loads a checkpoint into this network, like PyTorch's `load_state_dict(strict=True)`:
    /// every tensor must be present with the right shape and dtype, and no other tensor
    /// may be present, except that a unimodal network ignores the other encoder's tensors
    /// and head (`visual_net.*` and `fusion_module.y_out.*` for an audio network), which
    /// checkpoints written before unimodal networks held one encoder carry. On error the
    /// network is left unchanged.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| ckpt_err(path, format!("not a safetensors file: {e}")))?;
        let tensors: HashMap<String, Tensor> = st
            .iter()
            .map(|(name, view)| {
                Ok((
                    name.to_string(),
                    view_to_tensor(path, name, &view, self.device())?,
                ))
            })
            .collect::<Result<_>>()?;
        self.load_state_tensors(&tensors, path)
    }

    /// Strict load from in-memory tensors (e.g. embedded in a larger checkpoint);
    /// `source` names the origin in error messages.
    pub fn load_state_tensors(
        &self,
        tensors: &HashMap<String, Tensor>,
        source: &Path,
    ) -> Result<()> {
        let expected = self.state_tensors()?;
        let expected_names: BTreeSet<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
        let missing: Vec<&str> = expected_names
            .iter()
            .copied()
            .filter(|k| !tensors.contains_key(*k))
            .collect();
        let ignored = absent_prefixes(self.config().modality);
        let unexpected: Vec<&str> = tensors
            .keys()
            .map(String::as_str)
            .filter(|k| !expected_names.contains(k))
            .filter(|k| !ignored.iter().any(|p| k.starts_with(p)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(ckpt_err(
                source,
                format!(
                    "does not match the {} network: missing {} tensor(s) {}; unexpected {} tensor(s) {}",
                    describe(self.config()),
                    missing.len(),
                    preview(&missing),
                    unexpected.len(),
                    preview(&unexpected)
                ),
            ));
        }
        for (name, want) in &expected {
            let got = &tensors[name];
            if got.dims() != want.dims() || got.dtype() != want.dtype() {
                return Err(ckpt_err(
                    source,
                    format!(
                        "tensor {name}: expected {:?} {:?}, found {:?} {:?} (checkpoint is for a different architecture?)",
                        want.dtype(),
                        want.dims(),
                        got.dtype(),
                        got.dims()
                    ),
                ));
            }
        }
        // Everything checked: now commit.
        for (name, var) in self.named_trainable_vars() {
            var.set(&tensors[name].to_device(self.device())?.contiguous()?)?;
        }
        for (prefix, stats) in self.buffers() {
            let mut s = lock(stats);
            s.running_mean = tensors[&format!("{prefix}.running_mean")].to_device(self.device())?;
            s.running_var = tensors[&format!("{prefix}.running_var")].to_device(self.device())?;
            s.num_batches_tracked =
                tensors[&format!("{prefix}.num_batches_tracked")].to_scalar::<i64>()?;
        }
        Ok(())
    }
}

/// State_dict prefixes of the encoder and head a network of `modality` does not hold.
fn absent_prefixes(modality: Modality) -> &'static [&'static str] {
    match modality {
        Modality::Audio => &["visual_net.", "fusion_module.y_out."],
        Modality::Visual => &["audio_net.", "fusion_module.x_out."],
        Modality::AudioVisual => &[],
    }
}

fn describe(cfg: &AvNetConfig) -> String {
    format!(
        "width {} / {} classes / {} / {}",
        cfg.width, cfg.classes, cfg.fusion, cfg.modality
    )
}

fn preview(names: &[&str]) -> String {
    let mut s = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        s.push_str(", ...");
    }
    format!("[{s}]")
}

fn view_to_tensor(
    path: &Path,
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
    device: &Device,
) -> Result<Tensor> {
    let data = view.data();
    let shape = view.shape().to_vec();
    match view.dtype() {
        Dtype::F32 => {
            let v: Vec<f32> = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(Tensor::from_vec(v, shape, device)?)
        }
        Dtype::I64 => {
            let v: Vec<i64> = data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8-byte chunk")))
                .collect();
            Ok(Tensor::from_vec(v, shape, device)?)
        }
        other => Err(ckpt_err(
            path,
            format!(
                "tensor {name} has dtype {other:?}; expected F32 (or I64 for num_batches_tracked)"
            ),
        )),
    }
}
