//! safetensors bytes that depend only on the tensors and metadata, not on hash order.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use safetensors::{SafeTensorError, View};
use serde_json::Value;

/// `safetensors::serialize`, with the header rewritten in sorted key order (see
/// [`canonical_safetensors`]): the same tensors and metadata always give the same bytes.
pub fn safetensors_bytes<S, V, I>(
    data: I,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, SafeTensorError>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
{
    canonical_safetensors(safetensors::serialize(data, metadata)?)
}

/// Rewrite a safetensors file's JSON header with every object's keys sorted (the tensor
/// entries and the `__metadata__` map; safetensors writes the latter in `HashMap` order).
/// Tensor data and offsets are unchanged (offsets count from the end of the header), and
/// readers locate tensors by their offsets, so the file means exactly what it meant.
pub fn canonical_safetensors(bytes: Vec<u8>) -> Result<Vec<u8>, SafeTensorError> {
    if bytes.len() < 8 {
        return Err(SafeTensorError::HeaderTooSmall);
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let end = 8usize
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .ok_or(SafeTensorError::InvalidHeaderLength)?;
    let header: Value = serde_json::from_slice(&bytes[8..end])
        .map_err(SafeTensorError::InvalidHeaderDeserialization)?;
    let mut json = serde_json::to_vec(&sorted(header)).map_err(SafeTensorError::JsonError)?;
    // safetensors pads the header with spaces to a multiple of 8 bytes.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - end);
    out.extend((json.len() as u64).to_le_bytes());
    out.extend(json);
    out.extend(&bytes[end..]);
    Ok(out)
}

/// A JSON value whose objects serialise with sorted keys, whatever serde_json's
/// `preserve_order` feature says.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Sorted {
    Object(BTreeMap<String, Sorted>),
    Array(Vec<Sorted>),
    Leaf(Value),
}

fn sorted(v: Value) -> Sorted {
    match v {
        Value::Object(m) => Sorted::Object(m.into_iter().map(|(k, v)| (k, sorted(v))).collect()),
        Value::Array(a) => Sorted::Array(a.into_iter().map(sorted).collect()),
        leaf => Sorted::Leaf(leaf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::{Dtype, SafeTensors};

    fn write(meta_keys: &[&str]) -> Vec<u8> {
        let a = [1u8, 2, 3, 4];
        let b = [9u8; 8];
        let views = vec![
            (
                "zeta",
                safetensors::tensor::TensorView::new(Dtype::U8, vec![4], &a).unwrap(),
            ),
            (
                "alpha",
                safetensors::tensor::TensorView::new(Dtype::U8, vec![2, 4], &b).unwrap(),
            ),
        ];
        // Insertion order differs between calls; HashMap's per-instance seed does the rest.
        let meta: HashMap<String, String> = meta_keys
            .iter()
            .map(|k| (k.to_string(), format!("value of {k}")))
            .collect();
        safetensors_bytes(views, Some(meta)).unwrap()
    }

    #[test]
    fn the_same_content_gives_the_same_bytes_and_still_reads_back() {
        let keys: Vec<String> = (0..24).map(|i| format!("key{i}")).collect();
        let fwd: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
        let rev: Vec<&str> = fwd.iter().rev().copied().collect();
        let first = write(&fwd);
        for _ in 0..8 {
            assert_eq!(write(&rev), first);
        }
        let st = SafeTensors::deserialize(&first).unwrap();
        assert_eq!(st.tensor("zeta").unwrap().data(), &[1, 2, 3, 4]);
        assert_eq!(st.tensor("alpha").unwrap().shape(), &[2, 4]);
        let (_, meta) = SafeTensors::read_metadata(&first).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["key7"], "value of key7");
        assert_eq!(u64::from_le_bytes(first[..8].try_into().unwrap()) % 8, 0);
    }

    #[test]
    fn a_truncated_file_is_an_error_not_a_panic() {
        assert!(canonical_safetensors(vec![1, 2]).is_err());
        assert!(canonical_safetensors(vec![200, 0, 0, 0, 0, 0, 0, 0, b'{']).is_err());
    }
}
