#!/usr/bin/env python3
"""PyTorch baseline for `cargo run -p mmcl-losses --example samm_loss_bench`: the SAMM objective
(the reference formulas of losses.py), forward + backward on the logits, B=32+32, C=100, f32 CPU.
Median of 200 runs after 20 warm-up runs."""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from losses import samm  # noqa: E402

B, C = 32, 100
xs = [(torch.randn(B, C) * (1 + 0.2 * k)).requires_grad_(True) for k in range(6)]
stored = [torch.randn(B, C) for _ in range(3)]
y = torch.tensor([(i * 7) % C for i in range(B)])
times = []
for i in range(220):
    t0 = time.perf_counter()
    for x in xs:
        x.grad = None
    total, _, _, _ = samm(xs[:3], y, xs[3:], stored, y)
    total.backward()
    if i >= 20:
        times.append((time.perf_counter() - t0) * 1e3)
print(f"torch samm loss fwd+bwd, B=32+32, C=100, f32 CPU ({torch.get_num_threads()} threads): "
      f"median {statistics.median(times):.3f} ms over {len(times)} runs")
