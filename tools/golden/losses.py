#!/usr/bin/env python3
"""Golden fixtures for mmcl-losses (and the SGD optimiser in mmcl-model).

Writes
  crates/mmcl-losses/tests/fixtures/losses.safetensors
  crates/mmcl-model/tests/fixtures/sgd.safetensors

Inputs are float32 values. Losses are evaluated with the SAMM reference formulas in float64
(value and gradient w.r.t. inputs), so the Rust tests can check the f64 path tightly and the
f32 path at rel 1e-4 against the same numbers. Two items are computed exactly as the reference
runs them, in float32: the torch-style ECE and the reference temperature fit (torch LBFGS,
lr 0.01, 50 iterations, from T = 1.5). SGD trajectories come from torch.optim.SGD (float32).

Run from the repository root:  python3 tools/golden/losses.py
"""
import math
import os

import numpy as np
import scipy.optimize
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_LOSSES = os.path.join(ROOT, "crates/mmcl-losses/tests/fixtures/losses.safetensors")
OUT_SGD = os.path.join(ROOT, "crates/mmcl-model/tests/fixtures/sgd.safetensors")

g = torch.Generator().manual_seed(20240502)
T = {}


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).float()


def labels(n, c):
    return torch.randint(0, c, (n,), generator=g)


def put(name, t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32):
        T[name] = t.numpy().astype(np.uint32)
    elif t.dtype == torch.float32:
        T[name] = t.numpy().astype(np.float32)
    else:
        T[name] = t.numpy().astype(np.float64)
    if T[name].ndim == 0:
        T[name] = T[name].reshape(1)


def leaf64(x):
    return x.double().clone().requires_grad_(True)


# ---------------------------------------------------------------- reference RKD (SAMM impl)
def distance_potential(x, inclusive):
    x_square = x.pow(2).sum(dim=-1)
    prod = x @ x.t()
    d = torch.sqrt(torch.clamp(x_square.unsqueeze(1) + x_square.unsqueeze(0) - 2 * prod, min=1e-12))
    if inclusive:  # [impl]: every entry is > 0 after the clamp, so the mean runs over N^2
        mu = d.sum() / torch.where(d > 0, torch.ones_like(d), torch.zeros_like(d)).sum()
        return d / (mu + 1e-8)
    d = d.clone()  # original RKD (Park et al.): zero diagonal, mean of positive entries
    d[range(len(x)), range(len(x))] = 0
    return d / d[d > 0].mean()


def angle_potential(x):
    e = x.unsqueeze(0) - x.unsqueeze(1)
    e = F.normalize(e, dim=2)
    return e @ e.transpose(-1, -2)


def prep(source, target):
    source = F.normalize(source.reshape(source.shape[0], -1), dim=1)
    target = F.normalize(target.reshape(target.shape[0], -1).detach(), dim=1)
    return source, target


def rkd_distance(source, target, inclusive=True):
    s, t = prep(source, target)
    return F.smooth_l1_loss(distance_potential(s, inclusive), distance_potential(t, inclusive))


def rkd_angle(source, target):
    s, t = prep(source, target)
    return F.smooth_l1_loss(angle_potential(s), angle_potential(t))


def select(cur, stored, y):
    """Dynamic logit selection: highest true-class prob among (audio, visual, fused), first on ties."""
    probs = torch.stack([F.softmax(c.detach(), 1).gather(1, y[:, None])[:, 0] for c in cur])  # [3, B]
    heads = torch.argmax(probs, dim=0)  # first maximal index on ties
    z = torch.stack(stored)[heads, torch.arange(len(y))]
    return heads, z.detach()


def supervised(a, v, av, y, lam, beta, inclusive=True, angle=0.0):
    def rkd(s, t):
        out = rkd_distance(s, t, inclusive)
        return out + angle * rkd_angle(s, t) if angle else out

    return F.cross_entropy(av, y) + lam * (
        F.cross_entropy(a, y) + beta * rkd(a, v.detach()) + F.cross_entropy(v, y) + beta * rkd(v, a.detach())
    )


def samm(cur, y, buf, stored, yb, lam=0.01, beta=25.0, gamma=1.0, inclusive=True, angle=0.0):
    l_cur = supervised(*cur, y, lam, beta, inclusive, angle)
    heads, z = select(buf, stored, yb)
    a_b, v_b, av_b = buf
    l_buf = gamma * (F.mse_loss(av_b, z) + lam * (F.mse_loss(a_b, z) + F.mse_loss(v_b, z))) + supervised(
        a_b, v_b, av_b, yb, lam, beta, inclusive, angle
    )
    return l_cur + l_buf, l_cur, l_buf, heads


def value_and_grad(name, fn, *inputs):
    xs = [leaf64(x) for x in inputs]
    out = fn(*xs)
    out.backward()
    put(f"{name}/value", out)
    for i, x in enumerate(xs):
        put(f"{name}/grad{i}", x.grad)


def main():
    # ---------------------------------------------------------------- cross-entropy
    ce_logits, ce_labels = randn(6, 5, scale=2.0), labels(6, 5)
    put("ce/logits", ce_logits)
    put("ce/labels", ce_labels)
    value_and_grad("ce", lambda x: F.cross_entropy(x, ce_labels), ce_logits)

    # ---------------------------------------------------------------- SmoothL1 (values on both sides of beta)
    sl_in, sl_tg = randn(4, 5, scale=1.5), randn(4, 5, scale=1.5)
    put("smooth_l1/input", sl_in)
    put("smooth_l1/target", sl_tg)
    value_and_grad("smooth_l1/beta1", lambda x: F.smooth_l1_loss(x, sl_tg.double(), beta=1.0), sl_in)
    value_and_grad("smooth_l1/beta0.5", lambda x: F.smooth_l1_loss(x, sl_tg.double(), beta=0.5), sl_in)

    # ---------------------------------------------------------------- RKD (student flattened from 3-D)
    rkd_s, rkd_t = randn(8, 3, 2), randn(8, 6)
    put("rkd/student", rkd_s)
    put("rkd/teacher", rkd_t)
    value_and_grad("rkd/inclusive", lambda s: rkd_distance(s, rkd_t.double(), True), rkd_s)
    value_and_grad("rkd/exclusive", lambda s: rkd_distance(s, rkd_t.double(), False), rkd_s)
    value_and_grad("rkd/angle", lambda s: rkd_angle(s, rkd_t.double()), rkd_s)

    # ---------------------------------------------------------------- consistency with selection (incl. ties)
    B, C = 6, 5
    sel_y = labels(B, C)
    sel_cur = [randn(B, C, scale=2.0) for _ in range(3)]
    sel_cur[1][0] = sel_cur[0][0]  # sample 0: audio == visual (tie at the top -> audio)
    sel_cur[0][0, sel_y[0]] = 9.0
    sel_cur[1][0, sel_y[0]] = 9.0
    sel_cur[2][1] = sel_cur[1][1]  # sample 1: visual == fused, both above audio -> visual
    sel_cur[1][1, sel_y[1]] = 9.0
    sel_cur[2][1, sel_y[1]] = 9.0
    sel_cur[2][2, sel_y[2]] = 12.0  # sample 2: fused wins clearly
    sel_stored = [randn(B, C, scale=2.0) for _ in range(3)]
    heads, z = select(sel_cur, sel_stored, sel_y)
    for n, x in zip(["audio", "visual", "fused"], sel_cur):
        put(f"select/current_{n}", x)
    for n, x in zip(["audio", "visual", "fused"], sel_stored):
        put(f"select/stored_{n}", x)
    put("select/labels", sel_y)
    put("select/heads", heads)
    put("select/targets", z.float())
    value_and_grad("select/mse_fused", lambda x: F.mse_loss(x, z.double()), sel_cur[2])

    # ---------------------------------------------------------------- ECE, torch-style (float32 as the reference runs it)
    ece_n, ece_c = 200, 10
    ece_logits = randn(ece_n, ece_c, scale=2.5)
    ece_labels = torch.where(torch.rand(ece_n, generator=g) < 0.6, ece_logits.argmax(1), labels(ece_n, ece_c))


    def torch_ece(logits, y, n_bins=15):
        sm = F.softmax(logits, dim=1)
        conf, pred = torch.max(sm, 1)
        acc = pred.eq(y)
        edges = torch.linspace(0, 1, n_bins + 1)
        ece = torch.zeros(1, device=logits.device)
        for lo, hi in zip(edges[:-1], edges[1:]):
            in_bin = conf.gt(lo.item()) * conf.le(hi.item())
            prop = in_bin.float().mean()
            if prop.item() > 0:
                ece += torch.abs(conf[in_bin].mean() - acc[in_bin].float().mean()) * prop
        return ece


    put("ece/logits", ece_logits)
    put("ece/labels", ece_labels)
    put("ece/value15", torch_ece(ece_logits, ece_labels, 15).double())
    put("ece/value10", torch_ece(ece_logits, ece_labels, 10).double())

    # ---------------------------------------------------------------- temperature scaling
    tn, tc = 64, 10
    temp_y = labels(tn, tc)
    temp_logits = []
    for scale in (3.0, 0.5, 1.5):  # over-confident, under-confident, in between
        x = randn(tn, tc)
        x[torch.arange(tn), temp_y] += 1.0
        temp_logits.append((x * scale).float())


    def exact_temperature(logits, y):
        l64, y64 = logits.double(), y

        def nll(log_t):
            return F.cross_entropy(l64 / math.exp(log_t), y64).item()

        r = scipy.optimize.minimize_scalar(nll, bounds=(math.log(0.01), math.log(100.0)), method="bounded",
                                           options={"xatol": 1e-12})
        return math.exp(r.x)


    def reference_lbfgs_temperature(logits, y):
        t = torch.nn.Parameter(torch.ones(1) * 1.5)
        opt = torch.optim.LBFGS([t], lr=0.01, max_iter=50)

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(logits / t, y)
            loss.backward()
            return loss

        opt.step(closure)
        return t.item()


    put("temperature/logits", torch.stack(temp_logits))
    put("temperature/labels", temp_y)
    put("temperature/exact", torch.tensor([exact_temperature(x, temp_y) for x in temp_logits], dtype=torch.float64))
    put("temperature/lbfgs", torch.tensor([reference_lbfgs_temperature(x, temp_y) for x in temp_logits], dtype=torch.float64))

    # ---------------------------------------------------------------- calibrated dynamic weighted ensemble
    ens_logits = torch.stack([randn(6, 5, scale=2.0) for _ in range(3)])
    ens_t = torch.tensor([1.7, 0.8, 1.2])
    scaled = ens_logits.double() / ens_t.double()[:, None, None]
    w = F.softmax(scaled, dim=2).max(dim=2, keepdim=True).values
    put("ensemble/logits", ens_logits)
    put("ensemble/temperatures", ens_t)
    put("ensemble/output", (w * scaled).sum(0))

    # ---------------------------------------------------------------- full SAMM objective
    B, C = 8, 5
    s_y, s_yb = labels(B, C), labels(B, C)
    s_cur = [randn(B, C, scale=1.5) for _ in range(3)]
    s_buf = [randn(B, C, scale=1.5) for _ in range(3)]
    s_buf[1][3] = s_buf[0][3]  # a tie between audio and visual on buffer sample 3
    s_buf[0][3, s_yb[3]] = 6.0
    s_buf[1][3, s_yb[3]] = 6.0
    s_stored = [randn(B, C, scale=1.5) for _ in range(3)]
    for n, x in zip(["audio", "visual", "fused"], s_cur):
        put(f"samm/current_{n}", x)
    for n, x in zip(["audio", "visual", "fused"], s_buf):
        put(f"samm/buffer_{n}", x)
    for n, x in zip(["audio", "visual", "fused"], s_stored):
        put(f"samm/stored_{n}", x)
    put("samm/labels", s_y)
    put("samm/buffer_labels", s_yb)
    for variant, kwargs in [("default", {}), ("exclusive_angle", {"inclusive": False, "angle": 1.0})]:
        xs = [leaf64(x) for x in s_cur + s_buf]
        total, l_cur, l_buf, heads = samm(xs[:3], s_y, xs[3:], [x.double() for x in s_stored], s_yb, **kwargs)
        total.backward()
        put(f"samm/{variant}/total", total)
        put(f"samm/{variant}/current", l_cur)
        put(f"samm/{variant}/buffer", l_buf)
        put(f"samm/{variant}/heads", heads)
        for i, x in enumerate(xs):
            put(f"samm/{variant}/grad{i}", x.grad)
        # the current-batch-only objective (empty buffer)
        xs = [leaf64(x) for x in s_cur]
        supervised(*xs, s_y, 0.01, 25.0, kwargs.get("inclusive", True), kwargs.get("angle", 0.0)).backward()
        for i, x in enumerate(xs):
            put(f"samm/{variant}/current_only_grad{i}", x.grad)

    os.makedirs(os.path.dirname(OUT_LOSSES), exist_ok=True)
    save_file(T, OUT_LOSSES)
    print(f"wrote {OUT_LOSSES} ({len(T)} tensors)")

    # ---------------------------------------------------------------- torch.optim.SGD trajectories
    S = {}
    p0, p1 = randn(3, 4), randn(5)
    grads = [(randn(3, 4), randn(5)) for _ in range(4)]
    S["init/p0"], S["init/p1"] = p0.numpy(), p1.numpy()
    for k, (a, b) in enumerate(grads):
        S[f"grad{k}/p0"], S[f"grad{k}/p1"] = a.numpy(), b.numpy()
    configs = {
        "momentum": dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False),
        "nesterov": dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
        "dampening": dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.0),
        "plain": dict(lr=0.1),
    }
    for name, cfg in configs.items():
        q0, q1 = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p1.clone())
        opt = torch.optim.SGD([q0, q1], **cfg)
        for k, (a, b) in enumerate(grads):
            q0.grad, q1.grad = a.clone(), (b.clone() if k != 2 else None)  # p1 has no grad at step 2
            opt.step()
            S[f"{name}/step{k}/p0"], S[f"{name}/step{k}/p1"] = q0.detach().numpy().copy(), q1.detach().numpy().copy()
    os.makedirs(os.path.dirname(OUT_SGD), exist_ok=True)
    save_file(S, OUT_SGD)
    print(f"wrote {OUT_SGD} ({len(S)} tensors)")


if __name__ == "__main__":
    main()
