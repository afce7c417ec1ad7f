#!/usr/bin/env python3
"""The project's PyTorch baseline for `mmcl bench step`: the same network, shapes and step.

A step: the audio-visual classifier of tools/golden/model.py (two ResNet-18 encoders, FiLM
fusion, audio / visual / fused heads; the reference's module tree) in training mode, forward
on one random batch, loss = the three heads' cross-entropies summed, backward, plain SGD
update (lr 0.01), the loss read back to the host. Shapes per scale are those of
`mmcl bench step --scale S` (batch, base width, frames, frame side, spectrogram bins and
frames, classes).

Usage:  python3 tools/bench/torch_step.py {tiny|mini|paper} [--steps N] [--warmup K]
                                          [--device cpu|cuda]
Prints one JSON line with the median milliseconds per step. Needs only torch; the model
file is found beside this script (the GPU pack copies both) or in ../golden/.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "golden")]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model import AVNet  # noqa: E402

# scale -> (batch, width, frames, frame side, spectrogram bins, spectrogram frames, classes)
SHAPES = {
    "tiny": (32, 8, 2, 32, 65, 63, 100),
    "mini": (32, 16, 2, 64, 129, 126, 100),
    "paper": (8, 64, 4, 224, 129, 626, 100),
}


def median_step_ms(scale, steps, warmup, device):
    batch, width, frames, side, bins, tframes, classes = SHAPES[scale]
    dev = torch.device(device)
    wait = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    net = AVNet(width, classes).to(dev).train()
    sgd = torch.optim.SGD(net.parameters(), lr=0.01)
    audio = torch.randn(batch, 1, bins, tframes, device=dev)
    video = torch.randn(batch, 3, frames, side, side, device=dev)
    y = torch.randint(0, classes, (batch,), device=dev)
    timings = []
    for k in range(warmup + steps):
        wait()
        start = time.perf_counter()
        heads = net(audio, video)
        loss = sum(F.cross_entropy(logits, y) for logits in heads)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()
        float(loss.detach())
        wait()
        if k >= warmup:
            timings.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(timings), sum(p.numel() for p in net.parameters())


def main():
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("scale", choices=sorted(SHAPES))
    cli.add_argument("--steps", type=int, default=5)
    cli.add_argument("--warmup", type=int, default=2)
    cli.add_argument("--device", default="cpu", help="cpu or cuda")
    a = cli.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    ms, params = median_step_ms(a.scale, a.steps, a.warmup, a.device)
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "device": a.device,
        "threads": torch.get_num_threads(), "scale": a.scale, "steps": a.steps,
        "parameters": params, "ms_per_step_median": round(ms, 2),
    }))


if __name__ == "__main__":
    main()
