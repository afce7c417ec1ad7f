//! `cargo bench -p mmcl-scheduler --bench step`: the training step (forward, three-head
//! cross-entropy, backward, SGD) at the tiny and mini scales on the CPU, one JSON line each,
//! the same figures as `mmcl bench step --scale tiny|mini` (compare with
//! `python3 tools/bench/torch_step.py tiny|mini`).
use mmcl_model::Modality;
use mmcl_scheduler::bench::{step, StepBench, StepScale};

fn main() {
    for scale in [StepScale::Tiny, StepScale::Mini] {
        let report = step(&StepBench {
            scale,
            steps: 5,
            warmup: 2,
            seed: 0,
            profile: false,
            device: "cpu".into(),
            modality: Modality::AudioVisual,
        })
        .unwrap_or_else(|e| panic!("step benchmark {scale:?}: {e}"));
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serialises")
        );
    }
}
