//! The replay memory on real batches of the tiny cache: it keeps the loader's samples
//! themselves (no copy of audio or frames), and replayed items become exactly the model
//! inputs the loader makes of them.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use mmcl_buffer::SelectionPolicy;
use mmcl_data::cache::Cache;
use mmcl_data::loader::{Loader, LoaderConfig, Mode};
use mmcl_methods::er::Er;
use mmcl_methods::{compact_tensors, Method, Net, OptimConfig, Optimizer, StepEnv, TrainBatch};
use mmcl_model::{AvNet, AvNetConfig, Fusion, Modality};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn loader() -> Loader {
    let cache = Arc::new(Cache::open(mmcl_testkit::tiny_cache()).unwrap());
    let cfg = LoaderConfig {
        frames: 2,
        frame_size: 16,
        crop_seconds: Some(1.0),
        compact: true,
        ..LoaderConfig::default()
    };
    Loader::new(cache, cfg).unwrap()
}

fn train_batch(loader: &Loader, indices: &[usize]) -> TrainBatch {
    let b = loader.batch(indices, Mode::Train, 5, 0).unwrap();
    TrainBatch {
        audio: Tensor::from_vec(b.audio, &b.audio_shape[..], &Device::Cpu).unwrap(),
        video: Tensor::from_vec(b.video, &b.video_shape[..], &Device::Cpu).unwrap(),
        targets: b.labels,
        compact: b.compact,
    }
}

#[test]
fn the_memory_shares_the_batch_samples_and_replays_them_as_loaded() {
    let loader = loader();
    let classes = 1 + loader
        .cache()
        .records()
        .iter()
        .map(|r| r.label)
        .max()
        .unwrap() as usize;
    let model = AvNet::seeded(
        AvNetConfig {
            width: 2,
            classes,
            fusion: Fusion::Film,
            modality: Modality::AudioVisual,
            frames: 2,
        },
        &Device::Cpu,
        1,
    )
    .unwrap();
    let opt = Optimizer::new(
        model.named_trainable_vars().to_vec(),
        OptimConfig::default(),
    )
    .unwrap();
    let mut net = Net { model, opt };
    let mut er = Er::new(8, SelectionPolicy::Reservoir, 3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    let first = train_batch(&loader, &[0, 1, 2, 3]);
    let mut env = StepEnv {
        loader: &loader,
        rng: &mut rng,
    };
    er.observe(&mut net, &first, &mut env).unwrap();
    assert_eq!(er.memory().len(), 4);
    for (item, (sample, &target)) in er
        .memory()
        .iter()
        .zip(first.compact.iter().zip(&first.targets))
    {
        assert!(
            Arc::ptr_eq(&item.sample, sample),
            "the memory holds the batch's sample itself, not a copy"
        );
        assert_eq!(item.target, target);
    }

    // The second step replays from the memory; its items go straight into model inputs,
    // the same the loader makes of the samples.
    let second = train_batch(&loader, &[4, 5]);
    er.observe(&mut net, &second, &mut env).unwrap();
    let (audio, video) = compact_tensors(&loader, er.memory().all(), &Device::Cpu).unwrap();
    let direct = loader.compact_inputs(&first.compact).unwrap();
    let n = first.compact.len();
    let flat = |t: &Tensor| {
        t.narrow(0, 0, n)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(flat(&audio), direct.audio);
    assert_eq!(flat(&video), direct.video);
}
