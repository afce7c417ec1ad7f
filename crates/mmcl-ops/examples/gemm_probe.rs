//! Probe: `gemm` time for conv-like shapes under every operand layout (row- or column-major
//! dst, lhs, rhs), single-threaded: which layouts the conv kernels should produce.
//!
//! `cargo run -p mmcl-ops --example gemm_probe`
use std::time::Instant;

fn main() {
    // (label, m, n, k): fwd = (Cout, N*P, K); bwd-weight = (Cout, K, N*P); bwd-input = (K, N*P, Cout).
    let shapes = [
        ("fwd tiny l1", 8usize, 8192usize, 72usize),
        ("bww tiny l1", 8, 72, 8192),
        ("bwi tiny l1", 72, 8192, 8),
        ("fwd tiny stem", 8, 16384, 147),
        ("fwd paper l1", 64, 3136, 576),
        ("bww paper l1", 64, 576, 3136),
        ("bwi paper l1", 576, 3136, 64),
    ];
    for (label, m, n, k) in shapes {
        let a = vec![1.0f32; m * k];
        let b = vec![1.0f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let mut line = format!("{label:<14} {m}x{n}x{k}:");
        for code in 0..8 {
            let (dst_rm, lhs_rm, rhs_rm) = (code & 4 != 0, code & 2 != 0, code & 1 != 0);
            let (drs, dcs) = if dst_rm {
                (n as isize, 1)
            } else {
                (1, m as isize)
            };
            let (lrs, lcs) = if lhs_rm {
                (k as isize, 1)
            } else {
                (1, m as isize)
            };
            let (rrs, rcs) = if rhs_rm {
                (n as isize, 1)
            } else {
                (1, k as isize)
            };
            let mut best = f64::MAX;
            for _ in 0..4 {
                let t0 = Instant::now();
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        dcs,
                        drs,
                        false,
                        a.as_ptr(),
                        lcs,
                        lrs,
                        b.as_ptr(),
                        rcs,
                        rrs,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                best = best.min(t0.elapsed().as_secs_f64());
            }
            let tag = |rm: bool| if rm { 'r' } else { 'c' };
            line += &format!(
                " {}{}{}={:.0}",
                tag(dst_rm),
                tag(lhs_rm),
                tag(rhs_rm),
                2.0 * (m * n * k) as f64 / best / 1e9
            );
        }
        println!("{line}  (GFLOP/s; dst,lhs,rhs r=row-major c=col-major)");
    }
}
