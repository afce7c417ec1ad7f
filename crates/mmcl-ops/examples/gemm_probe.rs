//! Probe: raw `gemm` throughput for a few conv-like shapes, single- and multi-threaded.
use std::time::Instant;
fn main() {
    for &(m, n, k) in &[
        (64usize, 192usize, 576usize),
        (8, 8192, 72),
        (64, 3136, 576),
        (512, 512, 512),
        (8, 16384, 147),
    ] {
        let a = vec![1.0f32; m * k];
        let b = vec![1.0f32; k * n];
        let mut c = vec![0.0f32; m * n];
        for par in [gemm::Parallelism::None, gemm::Parallelism::Rayon(2)] {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t0 = Instant::now();
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        par,
                    );
                }
                best = best.min(t0.elapsed().as_secs_f64());
            }
            println!(
                "{m}x{n}x{k} {par:?}: {:.3} ms, {:.1} GFLOP/s",
                best * 1e3,
                2.0 * (m * n * k) as f64 / best / 1e9
            );
        }
    }
}
