//! Behaviour of the replay buffer: selection policies, sampling, exact resume.

use std::collections::HashSet;

use std::sync::Arc;

use mmcl_buffer::*;

fn ids(buf: &ReplayBuffer<(u32, u32)>) -> Vec<u32> {
    buf.iter().map(|x| x.0).collect()
}

#[test]
fn zero_capacity_is_an_error() {
    assert!(ReplayBuffer::<(u32, u32)>::new(0, SelectionPolicy::Reservoir, 1).is_err());
}

#[test]
fn reservoir_is_uniform_over_the_stream() {
    // Every item of a 1000-item stream should be kept with probability 100/1000.
    let (stream, cap, runs) = (1000u32, 100usize, 300u64);
    let mut kept = vec![0u32; stream as usize];
    for seed in 0..runs {
        let mut buf = ReplayBuffer::new(cap, SelectionPolicy::Reservoir, seed).unwrap();
        for i in 0..stream {
            buf.observe((i, i % 10));
        }
        assert_eq!(buf.len(), cap);
        assert_eq!(buf.seen(), stream as u64);
        for &(i, _) in buf.all() {
            kept[i as usize] += 1;
        }
    }
    let rate = |r: std::ops::Range<usize>| {
        kept[r.clone()].iter().sum::<u32>() as f64 / (r.len() as f64 * runs as f64)
    };
    // 30,000 trials per window: std of the rate ~0.0017.
    for window in [0..100, 450..550, 900..1000] {
        let r = rate(window.clone());
        assert!((r - 0.1).abs() < 0.01, "window {window:?}: rate {r}");
    }
}

#[test]
fn same_seed_same_buffer_different_seed_different_buffer() {
    let run = |seed| {
        let mut buf = ReplayBuffer::new(10, SelectionPolicy::Reservoir, seed).unwrap();
        for i in 0..200u32 {
            buf.observe((i, 0));
        }
        let s: Vec<u32> = buf.sample(5).into_iter().map(|x| x.0).collect();
        (ids(&buf), s)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn ring_overwrites_oldest() {
    let mut buf = ReplayBuffer::new(4, SelectionPolicy::Ring, 0).unwrap();
    let mut ins = vec![];
    for i in 0..10u32 {
        ins.push(buf.observe((i, 0)));
    }
    assert_eq!(ids(&buf), vec![8, 9, 6, 7]);
    assert_eq!(ins[3], Insertion::Appended(3));
    assert_eq!(ins[9], Insertion::Replaced(1));
}

#[test]
fn class_balanced_evens_out_an_imbalanced_stream() {
    let mut balanced = ReplayBuffer::new(40, SelectionPolicy::ClassBalanced, 3).unwrap();
    let mut reservoir = ReplayBuffer::new(40, SelectionPolicy::Reservoir, 3).unwrap();
    // Class 0: 900 items, classes 1..=3: 40 each.
    for i in 0..1020u32 {
        let label = if i % 17 < 14 && i < 960 { 0 } else { 1 + i % 3 };
        balanced.observe((i, label));
        reservoir.observe((i, label));
    }
    let b = balanced.class_counts();
    let r = reservoir.class_counts();
    assert_eq!(balanced.len(), 40);
    assert!(b[&0] <= 13, "class-balanced kept {b:?}");
    assert!(r[&0] > b[&0], "reservoir {r:?} vs balanced {b:?}");
    let min = *b.values().min().unwrap();
    let max = *b.values().max().unwrap();
    assert!(max - min <= 1, "{b:?}");
}

#[test]
fn sampling_is_without_replacement_and_capped() {
    let mut buf = ReplayBuffer::new(50, SelectionPolicy::Reservoir, 9).unwrap();
    for i in 0..30u32 {
        buf.observe((i, 0));
    }
    for _ in 0..20 {
        let idx = buf.sample_indices(16);
        assert_eq!(idx.len(), 16);
        assert_eq!(idx.iter().collect::<HashSet<_>>().len(), 16);
        assert!(idx.iter().all(|&i| i < 30));
    }
    assert_eq!(buf.sample(100).len(), 30);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    let before = buf.meta();
    assert_eq!(buf.sample_with(5, &mut rng).len(), 5);
    assert_eq!(
        buf.meta(),
        before,
        "an external generator leaves the buffer's untouched"
    );
}

fn sample(i: u32, logits: bool) -> MemoryItem {
    let logits = logits.then(|| StoredLogits {
        audio: vec![i as f32, 0.5, -1.0],
        visual: vec![0.25, i as f32 * 2.0, 3.0],
        fused: vec![-0.5, 1.5, i as f32],
    });
    let sample = mmcl_testkit::compact_sample(1000 + i as usize, [2, 3, 4], 5 + i as usize % 3);
    MemoryItem::new(Arc::new(sample), i % 4, logits).unwrap()
}

#[test]
fn save_load_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.safetensors");
    for policy in [
        SelectionPolicy::Reservoir,
        SelectionPolicy::Ring,
        SelectionPolicy::ClassBalanced,
    ] {
        let mut a = ReplayBuffer::new(6, policy, 11).unwrap();
        for i in 0..20 {
            a.observe(sample(i, i % 5 != 0));
        }
        a.sample_indices(3);
        a.save(&path).unwrap();
        let mut b = ReplayBuffer::<MemoryItem>::load(&path).unwrap();
        assert_eq!(a.all(), b.all());
        assert_eq!(a.meta(), b.meta());
        for i in 20..60 {
            assert_eq!(a.observe(sample(i, true)), b.observe(sample(i, true)));
            assert_eq!(a.sample_indices(4), b.sample_indices(4));
        }
        assert_eq!(a.all(), b.all());
    }
}

#[test]
fn empty_buffer_roundtrips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    let a = ReplayBuffer::<MemoryItem>::new(3, SelectionPolicy::Reservoir, 0).unwrap();
    a.save(&path).unwrap();
    let b = ReplayBuffer::<MemoryItem>::load(&path).unwrap();
    assert!(b.is_empty());
    assert_eq!(b.capacity(), 3);
}

#[test]
fn bad_files_are_typed_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.safetensors");
    assert!(matches!(
        ReplayBuffer::<MemoryItem>::load(&missing),
        Err(BufferError::Io { .. })
    ));
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"garbage").unwrap();
    let err = ReplayBuffer::<MemoryItem>::load(&junk).unwrap_err();
    assert!(err.to_string().contains("junk.safetensors"), "{err}");
    // A valid safetensors file that is not a buffer.
    let other = dir.path().join("other.safetensors");
    let t =
        candle_core::Tensor::zeros(2, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(&[("x".to_string(), t)].into_iter().collect(), &other).unwrap();
    assert!(matches!(
        ReplayBuffer::<MemoryItem>::load(&other),
        Err(BufferError::State { .. })
    ));
}

#[test]
fn logits_tensors_stack_stored_logits() {
    let s: Vec<MemoryItem> = (0..3).map(|i| sample(i, true)).collect();
    let refs: Vec<&MemoryItem> = s.iter().collect();
    let [a, v, f] = logits_tensors(&refs, &candle_core::Device::Cpu).unwrap();
    assert_eq!(a.dims(), &[3, 3]);
    assert_eq!(v.to_vec2::<f32>().unwrap()[2], vec![0.25, 4.0, 3.0]);
    assert_eq!(f.to_vec2::<f32>().unwrap()[1], vec![-0.5, 1.5, 1.0]);
    let labels = labels_tensor(&refs, &candle_core::Device::Cpu).unwrap();
    assert_eq!(labels.to_vec1::<u32>().unwrap(), vec![0, 1, 2]);
    let no_logits = sample(0, false);
    assert!(logits_tensors(&[&no_logits], &candle_core::Device::Cpu).is_err());
}

#[test]
fn other_format_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.safetensors");
    let zero = [0u8; 4];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::U32, vec![1], &zero).unwrap();
    let metadata = [("format", "mmcl-replay-buffer"), ("version", "1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let bytes = safetensors::serialize(vec![("label", view)], Some(metadata)).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let err = ReplayBuffer::<MemoryItem>::load(&path).unwrap_err();
    assert!(matches!(err, BufferError::State { .. }), "{err}");
    assert!(err.to_string().contains("version 1"), "{err}");
}
