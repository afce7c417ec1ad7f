#!/usr/bin/env python3
"""PyTorch reference for `mmcl-model`: golden fixtures and checkpoint interchange checks.

The network below mirrors the reference implementation's module tree (so its state_dict
names are the reference's): two ResNet-18 encoders `audio_net` / `visual_net` and a
`fusion_module` holding the fusion layers plus the heads `x_out` (audio) and `y_out`
(visual). A unimodal network (modality audio or visual) holds only its own encoder and the
head on it, plus the fused head `fc_out`, as mmcl's. Fusion semantics are those of the OGM-GE modules the reference forked.

Subcommands:
  fixtures [--out DIR]          write the small golden fixtures the Rust tests read
                                (default crates/mmcl-model/tests/fixtures)
  step-fixture --out-dir DIR   the same fixture at any size (default width 8, 129x626 audio,
                                2 frames of 64x64, batch 4), for the ignored `golden_external`
                                Rust test (MMCL_GOLDEN_DIR=DIR MMCL_GOLDEN_NAME=case)
  check-load CKPT               load an mmcl checkpoint into PyTorch with strict=True
  make-checkpoint --out-dir DIR write a PyTorch checkpoint (random weights, trained-mode BN
                                statistics), an input file and the float64 eval-mode logits
                                (paper scale by default: width 64, 129x626 audio, 4x224x224)
  compare GOT EXPECTED          relative error of a_logits/v_logits/av_logits
Needs torch, safetensors.
"""
import argparse, copy, os, sys

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # only the fixture and checkpoint commands need it (tools/bench/torch_step.py does not)
    from safetensors.torch import load_file, save_file
except ImportError:  # pragma: no cover
    def _needs_safetensors(*_args, **_kwargs):
        sys.exit("this command needs safetensors: pip install safetensors")
    load_file = save_file = _needs_safetensors


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self, cin, width):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        c = width
        for i, (mult, stride) in enumerate(((1, 1), (2, 2), (4, 2), (8, 2))):
            setattr(self, f"layer{i + 1}", nn.Sequential(Block(c, width * mult, stride), Block(width * mult, width * mult, 1)))
            c = width * mult

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class Fusion(nn.Module):
    """OGM-GE fusion semantics + the reference's unimodal heads x_out (audio), y_out (visual)."""

    def __init__(self, kind, modality, d, classes):
        super().__init__()
        self.kind, self.modality, self.d = kind, modality, d
        if modality != "audio-visual":
            self.fc_out = nn.Linear(d, classes)
        elif kind == "film":
            self.fc = nn.Linear(d, 2 * d)
            self.fc_out = nn.Linear(d, classes)
        elif kind == "sum":
            self.fc_x, self.fc_y = nn.Linear(d, classes), nn.Linear(d, classes)
        elif kind == "concat":
            self.fc_out = nn.Linear(2 * d, classes)
        elif kind == "gated":
            self.fc_x, self.fc_y = nn.Linear(d, d), nn.Linear(d, d)
            self.fc_out = nn.Linear(d, classes)
        else:
            raise ValueError(kind)
        # A unimodal network has one encoder, so only the head on it (mmcl's layout).
        self.x_out = nn.Linear(d, classes) if modality != "visual" else None
        self.y_out = nn.Linear(d, classes) if modality != "audio" else None

    def forward(self, a, v):
        if self.modality == "audio":
            av = self.fc_out(a)
        elif self.modality == "visual":
            av = self.fc_out(v)
        elif self.kind == "film":
            gamma, beta = self.fc(a).split(self.d, 1)
            av = self.fc_out(gamma * v + beta)
        elif self.kind == "sum":
            av = self.fc_x(a) + self.fc_y(v)
        elif self.kind == "concat":
            av = self.fc_out(torch.cat((a, v), 1))
        else:  # gated, x_gate=True: the audio branch gates the visual branch
            av = self.fc_out(torch.sigmoid(self.fc_x(a)) * self.fc_y(v))
        return (None if self.x_out is None else self.x_out(a),
                None if self.y_out is None else self.y_out(v), av)


class AVNet(nn.Module):
    def __init__(self, width, classes, fusion="film", modality="audio-visual"):
        super().__init__()
        self.d = width * 8
        # A unimodal network holds, runs and saves only its own encoder.
        self.audio_net = ResNet18(1, width) if modality != "visual" else None
        self.visual_net = ResNet18(3, width) if modality != "audio" else None
        self.fusion_module = Fusion(fusion, modality, self.d, classes)

    def forward(self, audio, video):
        b, c, t, h, w = video.shape
        a = v = None
        if self.audio_net is not None:
            a = self.audio_net(audio).mean((2, 3))
        if self.visual_net is not None:
            v = self.visual_net(video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
            v = v.reshape(b, t, self.d, v.shape[-2], v.shape[-1]).mean((1, 3, 4))
        return self.fusion_module(a, v)


def reference_init(net):
    """The reference's init; values differ from mmcl's (different RNG), the law is the same."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def randomise_bn(net, gen):
    """Non-trivial affine BN parameters so the tests see more than the identity."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def warm_bn(net, audio_shape, video_shape, gen, steps=2):
    """Trained-mode BN statistics: a few training-mode forwards on random data."""
    net.train()
    with torch.no_grad():
        for _ in range(steps):
            net(torch.randn(audio_shape, generator=gen) * 2 + 0.5, torch.randn(video_shape, generator=gen) * 2 - 0.3)


def infer(sd, modality=None):
    if "audio_net.conv1.weight" not in sd:  # one-encoder visual checkpoint
        return sd["visual_net.conv1.weight"].shape[0], sd["fusion_module.y_out.weight"].shape[0], "film", "visual"
    width = sd["audio_net.conv1.weight"].shape[0]
    classes = sd["fusion_module.x_out.weight"].shape[0]
    if "visual_net.conv1.weight" not in sd:  # one-encoder audio checkpoint
        return width, classes, "film", "audio"
    if "fusion_module.fc.weight" in sd:
        return width, classes, "film", "audio-visual"
    if "fusion_module.fc_x.weight" in sd:
        return width, classes, ("gated" if "fusion_module.fc_out.weight" in sd else "sum"), "audio-visual"
    if sd["fusion_module.fc_out.weight"].shape[1] == 16 * width:
        return width, classes, "concat", "audio-visual"
    if modality is None:
        sys.exit("unimodal checkpoint: pass --modality")
    return width, classes, "film", modality


def write_fixture(out_dir, name, width, classes, fusion, modality, seed,
                  batch=3, fbins=33, tframes=63, frames=2, height=23, width_px=29):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    audio_shape, video_shape = (batch, 1, fbins, tframes), (batch, 3, frames, height, width_px)
    net = AVNet(width, classes, fusion, modality)
    reference_init(net)
    randomise_bn(net, gen)
    warm_bn(net, audio_shape, video_shape, gen)
    weights = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    save_file(weights, os.path.join(out_dir, f"{name}_weights.safetensors"),
              metadata={"note": "written by tools/golden/model.py (PyTorch state_dict)"})

    audio = torch.randn(audio_shape, generator=gen)
    video = torch.randn(video_shape, generator=gen)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    # Reference values in float64 so the only rounding error compared is mmcl's own.
    net64 = copy.deepcopy(net).double()
    a64, v64 = audio.double(), video.double()
    out = {"audio": audio, "video": video, "labels": labels}
    net64.eval()
    with torch.no_grad():
        for k, t in zip(("a_logits", "v_logits", "av_logits"), net64(a64, v64)):
            if t is not None:
                out[f"eval.{k}"] = t
    net64.train()
    logits = net64(a64, v64)
    for k, t in zip(("a_logits", "v_logits", "av_logits"), logits):
        if t is not None:
            out[f"train.{k}"] = t.detach()
    logits = [t for t in logits if t is not None]
    loss = sum(F.cross_entropy(t, labels) for t in logits)
    loss.backward()
    out["train.loss"] = loss.detach().reshape(1)
    for k, p in net64.named_parameters():
        out[f"grad.{k}"] = p.grad
    for k, b in net64.named_buffers():
        out[f"after.{k}"] = b
    out = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in out.items()}
    save_file(out, os.path.join(out_dir, f"{name}_io.safetensors"),
              metadata={"width": str(width), "classes": str(classes), "fusion": fusion, "modality": modality})
    n = sum(p.numel() for p in net.parameters())
    print(f"{name}: width {width}, {classes} classes, {fusion}/{modality}, {n} parameters, loss {loss.item():.6f}")


def cmd_fixtures(args):
    os.makedirs(args.out, exist_ok=True)
    write_fixture(args.out, "film", 4, 7, "film", "audio-visual", 1)
    write_fixture(args.out, "gated", 2, 5, "gated", "audio-visual", 2)
    write_fixture(args.out, "sum", 2, 5, "sum", "audio-visual", 3)
    write_fixture(args.out, "concat", 2, 5, "concat", "audio-visual", 4)
    write_fixture(args.out, "audio_only", 2, 5, "film", "audio", 5)


def cmd_step_fixture(args):
    """A fixture of any size, for one-off checks beyond the committed ones (see golden.rs)."""
    os.makedirs(args.out_dir, exist_ok=True)
    write_fixture(args.out_dir, args.name, args.width, args.classes, args.fusion, "audio-visual", args.seed,
                  args.batch, args.fbins, args.tframes, args.frames, args.side, args.side)


def cmd_check_load(args):
    sd = load_file(args.ckpt)
    width, classes, fusion, modality = infer(sd, args.modality)
    net = AVNet(width, classes, fusion, modality)
    # Unimodal checkpoints written before mmcl's held one encoder carry the other
    # encoder and its head; mmcl ignores them on load, and so does this check.
    absent = {"audio": ("visual_net.", "fusion_module.y_out."), "visual": ("audio_net.", "fusion_module.x_out.")}
    sd = {k: v for k, v in sd.items() if not k.startswith(absent.get(modality, ()))}
    net.load_state_dict(sd, strict=True)
    n = sum(p.numel() for p in net.parameters())
    net.eval()
    with torch.no_grad():
        a, v, av = net(torch.randn(2, 1, 33, 63), torch.randn(2, 3, 2, 32, 32))
    print(f"strict load OK: {args.ckpt}: width {width}, {classes} classes, {fusion}/{modality}, "
          f"{n} parameters, {len(sd)} tensors; eval forward finite: {bool(torch.isfinite(av).all())}")


def cmd_make_checkpoint(args):
    os.makedirs(args.out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    net = AVNet(args.width, args.classes, args.fusion)
    reference_init(net)
    randomise_bn(net, gen)
    warm_bn(net, (2, 1, args.fbins, args.tframes), (2, 3, args.frames, args.side, args.side), gen)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(args.out_dir, "weights.safetensors"))
    audio = torch.randn(args.batch, 1, args.fbins, args.tframes, generator=gen)
    video = torch.randn(args.batch, 3, args.frames, args.side, args.side, generator=gen)
    save_file({"audio": audio, "video": video}, os.path.join(args.out_dir, "input.safetensors"))
    net64 = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        a, v, av = net64(audio.double(), video.double())
    save_file({"a_logits": a.float(), "v_logits": v.float(), "av_logits": av.float()},
              os.path.join(args.out_dir, "expected.safetensors"))
    print(f"wrote {args.out_dir}/weights.safetensors ({sum(p.numel() for p in net.parameters())} parameters), "
          f"input.safetensors, expected.safetensors")


def cmd_compare(args):
    got, exp = load_file(args.got), load_file(args.expected)
    worst = 0.0
    for k in ("a_logits", "v_logits", "av_logits"):
        g, e = got[k].double(), exp[k].double()
        rel = ((g - e).abs().max() / e.abs().max()).item()
        worst = max(worst, rel)
        print(f"{k}: shape {tuple(g.shape)}, max |diff| / max |expected| = {rel:.3e}")
    print(f"worst {worst:.3e} ({'OK' if worst <= args.tol else 'FAIL'} at tol {args.tol})")
    sys.exit(0 if worst <= args.tol else 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../crates/mmcl-model/tests/fixtures"))
    s = sub.add_parser("step-fixture")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--name", default="case")
    s.add_argument("--width", type=int, default=8)
    s.add_argument("--classes", type=int, default=100)
    s.add_argument("--fusion", default="film", choices=("film", "sum", "concat", "gated"))
    s.add_argument("--batch", type=int, default=4)
    s.add_argument("--frames", type=int, default=2)
    s.add_argument("--side", type=int, default=64)
    s.add_argument("--fbins", type=int, default=129)
    s.add_argument("--tframes", type=int, default=626)
    s.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("check-load")
    c.add_argument("ckpt")
    c.add_argument("--modality", choices=("audio", "visual"))
    m = sub.add_parser("make-checkpoint")
    m.add_argument("--out-dir", required=True)
    m.add_argument("--width", type=int, default=64)
    m.add_argument("--classes", type=int, default=100)
    m.add_argument("--fusion", default="film", choices=("film", "sum", "concat", "gated"))
    m.add_argument("--batch", type=int, default=2)
    m.add_argument("--frames", type=int, default=4)
    m.add_argument("--side", type=int, default=224)
    m.add_argument("--fbins", type=int, default=129)
    m.add_argument("--tframes", type=int, default=626)
    m.add_argument("--seed", type=int, default=0)
    k = sub.add_parser("compare")
    k.add_argument("got")
    k.add_argument("expected")
    k.add_argument("--tol", type=float, default=1e-4)
    args = p.parse_args()
    {"fixtures": cmd_fixtures, "step-fixture": cmd_step_fixture, "check-load": cmd_check_load, "make-checkpoint": cmd_make_checkpoint,
     "compare": cmd_compare}[args.cmd](args)


if __name__ == "__main__":
    main()
