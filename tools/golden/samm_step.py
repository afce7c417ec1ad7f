#!/usr/bin/env python3
"""Golden fixtures for a whole SAMM training step (issue 4): model + SAMM loss + SGD.

Run from the repository root:  python3 tools/golden/samm_step.py
(needs torch, safetensors; takes a few seconds), then
  cargo test -p mmcl-methods --test golden_samm_step      (needs no Python)
Writes, per fusion (FiLM and gated):

  crates/mmcl-methods/tests/fixtures/samm_<fusion>_weights.safetensors
      the initial PyTorch state_dict (reference names, trained-mode BN statistics), which
      mmcl loads strictly
  crates/mmcl-methods/tests/fixtures/samm_<fusion>_step<k>.safetensors   (k = 1, 2)
      inputs of step k: audio [B,1,33,63], video [B,3,2,15,19], labels (int64) and, for
      steps with a memory minibatch, buffer.audio / buffer.video / buffer.labels and
      buffer.stored.{audio,visual,fused} (the logits stored at insertion);
      results: loss.total, loss.current, loss.buffer, selected (dynamic logit selection,
      0 audio / 1 visual / 2 fused), grad.<param> (every trainable parameter),
      delta.<param> (the SGD update: weights after minus weights before), and
      after.<bn>.{running_mean,running_var,num_batches_tracked}.
  Metadata of each step file: fusion, width, classes, the SAMM weights and the SGD
  hyper-parameters used.

What a step is (what mmcl-methods' `samm_step` / `Samm::observe` do, docs/method.md):
training-mode forward of the current batch, then (when the memory is non-empty) of the
memory minibatch (two passes, so BatchNorm statistics update twice per step), the SAMM
objective with the defaults of mmcl's SammConfig (lambda 0.01, beta 25, gamma 1, RKD
distance with the reference's diagonal-inclusive mean on the audio/visual head logits, no
angle term, dynamic logit selection first-on-ties among audio, visual, fused), backward,
and torch.optim.SGD. SGD uses momentum 0.9 and weight decay 0.05 (our default is the
reference's plain SGD; non-zero values make both terms visible in the update: step 2 uses
the momentum buffer of step 1). FiLM: both steps with a memory minibatch; gated: step 1
with an empty memory (L_cur only, the first step of a run), step 2 with one.

Each step starts from float32 weights: step 1 from the checkpoint, step 2 from
float32(weights before) + float32(delta) added in float32 (the test puts exactly these into
mmcl before step 2; mmcl keeps its own momentum buffers). Without this re-synchronisation
step 2 would compare the amplification of step 1's rounding, not the code: at this scale
PyTorch's own float32 run departs from its float64 run by 2e-3 (max-normalised gradient
error) at step 1, 3e-2 at step 2 and 0.7 at step 3 (FiLM).

The loss formulas are those of tools/golden/losses.py (against which mmcl-losses is
verified); the network is tools/golden/model.py's. Everything is computed in float64 from
float32 inputs and weights and stored as float32, so the only rounding compared is mmcl's.
"""
import copy
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from losses import samm, select, supervised  # noqa: E402
from model import AVNet, randomise_bn, reference_init, warm_bn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates/mmcl-methods/tests/fixtures")

# mmcl-methods' SammConfig::default() (the paper's weights); the Rust test checks they agree.
SAMM = dict(lam=0.01, beta=25.0, gamma=1.0, inclusive=True, angle=0.0)
SGD = dict(lr=0.05, momentum=0.9, weight_decay=0.05, nesterov=False)
AUDIO = (1, 33, 63)  # odd, non-square, H and W of different parity
VIDEO = (3, 2, 15, 19)  # 2 frames, odd and non-square
BATCH, BUFFER_BATCH = 4, 3


def f32(t):
    return t.detach().float().contiguous()


def write_case(name, fusion, width, classes, seed, with_buffer):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = AVNet(width, classes, fusion)
    reference_init(net)
    randomise_bn(net, gen)
    warm_bn(net, (3,) + AUDIO, (3,) + VIDEO, gen)
    save_file({k: v.detach().clone().contiguous() for k, v in net.state_dict().items()},
              os.path.join(OUT, f"{name}_weights.safetensors"),
              metadata={"note": "written by tools/golden/samm_step.py (PyTorch state_dict)"})

    net64 = copy.deepcopy(net).double().train()
    opt = torch.optim.SGD(net64.parameters(), **SGD)
    meta = {"fusion": fusion, "width": str(width), "classes": str(classes),
            "reg_weight": str(SAMM["lam"]), "align_weight": str(SAMM["beta"]),
            "consistency_weight": str(SAMM["gamma"]), "rkd_mean": "inclusive",
            "angle_weight": str(SAMM["angle"]), **{k: str(v) for k, v in SGD.items()}}
    for k, buffered in enumerate(with_buffer, start=1):
        out = {"audio": torch.randn((BATCH,) + AUDIO, generator=gen),
               "video": torch.randn((BATCH,) + VIDEO, generator=gen),
               "labels": torch.randint(0, classes, (BATCH,), generator=gen)}
        if buffered:
            out["buffer.audio"] = torch.randn((BUFFER_BATCH,) + AUDIO, generator=gen)
            out["buffer.video"] = torch.randn((BUFFER_BATCH,) + VIDEO, generator=gen)
            out["buffer.labels"] = torch.randint(0, classes, (BUFFER_BATCH,), generator=gen)
            for h in ("audio", "visual", "fused"):
                out[f"buffer.stored.{h}"] = torch.randn(BUFFER_BATCH, classes, generator=gen) * 2

        opt.zero_grad(set_to_none=True)
        y = out["labels"]
        cur = net64(out["audio"].double(), out["video"].double())
        if buffered:
            yb = out["buffer.labels"]
            buf = net64(out["buffer.audio"].double(), out["buffer.video"].double())
            stored = [out[f"buffer.stored.{h}"].double() for h in ("audio", "visual", "fused")]
            total, l_cur, l_buf, heads = samm(list(cur), y, list(buf), stored, yb, **SAMM)
            # The selection is an argmax: make sure float32 cannot flip it.
            probs = torch.stack([torch.softmax(c.detach(), 1).gather(1, yb[:, None])[:, 0] for c in buf])
            top2 = probs.sort(0, descending=True).values[:2]
            margin = (top2[0] - top2[1]).min().item()
            assert margin > 1e-4, f"{name} step {k}: selection margin {margin:.2e} too small; change the seed"
            assert torch.equal(heads, select(list(buf), stored, yb)[0])
            out["loss.buffer"] = l_buf.reshape(1)
            out["selected"] = heads
        else:
            total = l_cur = supervised(*cur, y, SAMM["lam"], SAMM["beta"], SAMM["inclusive"], SAMM["angle"])
        out["loss.total"], out["loss.current"] = total.reshape(1), l_cur.reshape(1)
        total.backward()
        before = {n: p.detach().clone() for n, p in net64.named_parameters()}
        grad_norm = decay_norm = 0.0
        for n, p in net64.named_parameters():
            out[f"grad.{n}"] = p.grad
            grad_norm += p.grad.pow(2).sum().item()
            decay_norm += (SGD["weight_decay"] * p.detach()).pow(2).sum().item()
        opt.step()
        with torch.no_grad():
            for n, p in net64.named_parameters():
                delta = p - before[n]
                out[f"delta.{n}"] = delta
                # Re-synchronise: the next step starts from float32(before) + float32(delta),
                # added in float32, which the Rust test reproduces bit for bit.
                p.copy_((before[n].float() + delta.float()).double())
        for n, b in net64.named_buffers():
            out[f"after.{n}"] = b
        out = {n: (f32(t) if t.is_floating_point() else t.contiguous()) for n, t in out.items()}
        save_file(out, os.path.join(OUT, f"{name}_step{k}.safetensors"), metadata=meta)
        sel = out["selected"].tolist() if buffered else "-"
        print(f"{name} step {k}: loss {total.item():.6f} (current {l_cur.item():.6f}), selected {sel}, "
              f"|wd*p|/|grad| {(decay_norm / grad_norm) ** 0.5:.2f}"
              + (f", selection margin {margin:.2e}" if buffered else ""))


def main():
    os.makedirs(OUT, exist_ok=True)
    write_case("samm_film", "film", 2, 7, 11, [True, True])
    write_case("samm_gated", "gated", 2, 5, 12, [False, True])


if __name__ == "__main__":
    main()
