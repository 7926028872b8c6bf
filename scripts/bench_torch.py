#!/usr/bin/env python3
"""The PyTorch side of `npm run bench`: the course's U-Net (lib/models/unet.ts) rebuilt layer by layer in PyTorch, timed
on the CPU with the same training step (ε-MSE, Adam, gradient clipping, EMA) so that tfjs / PyTorch ratios mean something.

  /usr/bin/python3 scripts/bench_torch.py [--config cfg.json] [--threads 2,1] [--batch 64] [--steps 5] [--warmup 2]
                                          [--device cpu|cuda]

--device cuda times the same step on the GPU (scripts/gpu-check.sh's device run, next to tfjs' webgpu backend): one run
in this process, each timed step ending in a read-back (loss.item()), so queued GPU work is inside the time; in plain
fp32 like tfjs (TF32 off: PyTorch's default would run the convolutions in TF32); CUDA is touched only when asked for. Without CUDA it prints {"skipped": …}.

Prints ONE JSON object on stdout (progress goes to stderr). Without torch (Debian: `apt-get install python3-torch`) it
prints {"skipped": "<why>"} and exits 0, so the benchmark goes on without the comparison.
Each thread count is measured in a fresh subprocess, so that its peak RSS is its own.
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

# The reference U-Net of issue 7: must equal REFERENCE_UNET in lib/models/unet.ts (param counts are compared).
REFERENCE = {
    "kind": "unet", "imageSize": 28, "channels": 1, "widths": [32, 64, 128], "blocksPerLevel": 1,
    "attentionResolutions": [7], "groups": 8, "embDim": 128, "timeSinDim": 32, "midBlocks": 1, "numClasses": 10,
}


def build(cfg):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class ResBlock(nn.Module):
        # h = conv1(SiLU(GN(x))) + Dense(SiLU(emb)); h = conv2(SiLU(GN(h))); out = skip(x) + h  (lib/nn/blocks.ts)
        def __init__(self, cin, cout, emb, groups):
            super().__init__()
            self.norm1 = nn.GroupNorm(groups, cin, eps=1e-5)
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.emb = nn.Linear(emb, cout)
            self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

        def forward(self, x, emb):
            h = self.conv1(F.silu(self.norm1(x))) + self.emb(F.silu(emb))[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return (self.skip(x) if self.skip is not None else x) + h

    class Attention(nn.Module):
        # single head over H·W tokens: x + proj(softmax(q kᵀ/√C) v), q k v from one dense on GN(x)
        def __init__(self, c, groups):
            super().__init__()
            self.norm = nn.GroupNorm(groups, c, eps=1e-5)
            self.qkv = nn.Linear(c, 3 * c)
            self.proj = nn.Linear(c, c)
            self.c = c

        def forward(self, x):
            b, c, h, w = x.shape
            t = self.norm(x).flatten(2).transpose(1, 2)  # [B, HW, C]
            q, k, v = self.qkv(t).chunk(3, dim=2)
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=2)
            out = self.proj(a @ v).transpose(1, 2).reshape(b, c, h, w)
            return x + out

    class UNet(nn.Module):
        def __init__(self, c):
            super().__init__()
            widths, g, e = c["widths"], c["groups"], c["embDim"]
            self.sin_dim = c.get("timeSinDim") or widths[0]
            self.fc1 = nn.Linear(self.sin_dim, e)
            self.fc2 = nn.Linear(e, e)
            self.num_classes = c.get("numClasses") or 0
            # learned table of numClasses + 1 rows (the last is the null class), no bias: lib/nn/embedding.ts
            self.class_table = nn.Parameter(torch.randn(self.num_classes + 1, e)) if self.num_classes > 0 else None
            self.conv_in = nn.Conv2d(c["channels"], widths[0], 3, padding=1)
            attn_at = set(c["attentionResolutions"])
            res, ch, skip_ch = c["imageSize"], widths[0], []
            self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
            for i, w in enumerate(widths):
                blocks = nn.ModuleList()
                for _ in range(c["blocksPerLevel"]):
                    blocks.append(ResBlock(ch, w, e, g))
                    ch = w
                    blocks.append(Attention(ch, g) if res in attn_at else nn.Identity())
                self.down.append(blocks)
                skip_ch.append(ch)
                if i < len(widths) - 1:
                    self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                    res //= 2
            self.mid = nn.ModuleList([ResBlock(ch, ch, e, g) for _ in range(c.get("midBlocks", 1))])
            self.upsample, self.up = nn.ModuleList(), nn.ModuleList()
            for i in range(len(widths) - 2, -1, -1):
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
                res *= 2
                blocks = nn.ModuleList()
                for b in range(c["blocksPerLevel"]):
                    cin = ch + skip_ch[i] if b == 0 else ch
                    blocks.append(ResBlock(cin, widths[i], e, g))
                    ch = widths[i]
                    blocks.append(Attention(ch, g) if res in attn_at else nn.Identity())
                self.up.append(blocks)
            self.norm_out = nn.GroupNorm(g, ch, eps=1e-5)
            self.conv_out = nn.Conv2d(ch, c["channels"], 3, padding=1)

        def embed(self, t, classes):
            half = self.sin_dim // 2
            freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
            args = t.float()[:, None] * freqs[None]
            emb = self.fc2(F.silu(self.fc1(torch.cat([torch.sin(args), torch.cos(args)], 1))))
            if self.class_table is not None:
                emb = emb + self.class_table[classes]
            return emb

        def run(self, blocks, h, emb):
            for k in range(0, len(blocks), 2):
                h = blocks[k](h, emb)
                h = blocks[k + 1](h)
            return h

        def forward(self, x, t, classes):
            emb = self.embed(t, classes)
            h = self.conv_in(x)
            skips = []
            for i, blocks in enumerate(self.down):
                h = self.run(blocks, h, emb)
                skips.append(h)
                if i < len(self.downsample):
                    h = self.downsample[i](h)
            for block in self.mid:
                h = block(h, emb)
            for j, blocks in enumerate(self.up):
                i = len(self.down) - 2 - j
                h = self.upsample[j](F.interpolate(h, scale_factor=2, mode="nearest"))
                h = torch.cat([h, skips[i]], 1)
                h = self.run(blocks, h, emb)
            return self.conv_out(F.silu(self.norm_out(h)))

    return UNet(cfg)


def median_ms(fn, steps, warmup):
    """Median wall ms, all wall ms, and median CPU ms of the process (all threads; what an idle machine would show
    for one thread when the machine is shared)."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(steps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), times, statistics.median(cpu)


def measure_one(cfg, threads, batch, steps, warmup, device="cpu"):
    """Runs in its own process (cpu) or in this one (cuda): ms per train step and per forward pass, peak memory."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if device == "cuda":
        # plain fp32, as tfjs computes: PyTorch's default runs cuDNN convolutions in TF32 on tensor cores (10-bit mantissa)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    model = build(cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    T = 1000
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0).float().to(device)
    size, ch = cfg["imageSize"], cfg["channels"]
    ncls = cfg.get("numClasses") or 0
    x0 = torch.rand(batch, ch, size, size, device=device) * 2 - 1

    def train_step():
        # the same work as lib/train Trainer.trainStep: draw t/noise/labels, ε-MSE, backward, clip, Adam, EMA
        t = torch.randint(0, T, (batch,), device=device)
        noise = torch.randn_like(x0)
        a = abar[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        classes = torch.randint(0, ncls + 1, (batch,), device=device) if ncls > 0 else None
        loss = F.mse_loss(model(xt, t, classes), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, model.parameters()):
                e.mul_(0.999).add_(p.detach(), alpha=0.001)
        return loss.item()

    train_ms, train_all, train_cpu = median_ms(train_step, steps, warmup)

    @torch.no_grad()
    def forward():
        t = torch.randint(0, T, (batch,), device=device)
        classes = torch.full((batch,), ncls, dtype=torch.long, device=device) if ncls > 0 else None
        model(x0, t, classes).sum().item()

    model.eval()
    fwd_ms, fwd_all, fwd_cpu = median_ms(forward, steps, warmup)
    result = {
        "device": device, "threads": threads, "params": params, "batch": batch,
        "trainStepMs": train_ms, "trainStepMsAll": train_all, "trainStepCpuMs": train_cpu,
        "imagesPerSec": batch * 1000 / train_ms,
        "forwardMs": fwd_ms, "forwardMsAll": fwd_all, "forwardCpuMs": fwd_cpu,
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device == "cuda":
        result["gpu"] = torch.cuda.get_device_name(0)
        result["precision"] = "fp32 (TF32 off for cuDNN and matmul)"
        result["peakGpuMB"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="U-Net config JSON file (default: the reference U-Net)")
    ap.add_argument("--threads", default="2,1", help="comma-separated thread counts (default 2,1)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="timed steps; the median is reported")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cpu (default: one subprocess per thread count) or cuda (one run on GPU 0)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: measure one thread count here
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        ap.error("--steps and --batch must be ≥ 1, --warmup ≥ 0")

    try:
        import torch
    except ImportError as e:
        print(json.dumps({"skipped": f"PyTorch is not installed ({e}); on Debian: apt-get install python3-torch"}))
        return 0

    cfg = dict(REFERENCE)
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
        if cfg.get("kind") != "unet":
            print(json.dumps({"skipped": f"config {args.config} is not a U-Net (kind {cfg.get('kind')!r})"}))
            return 0

    if args.one:
        print(json.dumps(measure_one(cfg, int(args.threads), args.batch, args.steps, args.warmup)))
        return 0

    if args.device == "cuda":
        if not torch.cuda.is_available():
            print(json.dumps({"skipped": f"--device cuda: torch {torch.__version__} sees no CUDA GPU "
                                         f"(built for CUDA {torch.version.cuda}; driver missing or no GPU)"}))
            return 0
        print(f"[bench_torch] cuda ({torch.cuda.get_device_name(0)}), batch {args.batch} …", file=sys.stderr)
        run = measure_one(cfg, 1, args.batch, args.steps, args.warmup, device="cuda")
        print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "config": cfg, "runs": [run]}))
        return 0

    runs = []
    for n in [int(s) for s in args.threads.split(",") if s.strip()]:
        print(f"[bench_torch] {n} thread(s), batch {args.batch} …", file=sys.stderr)
        cmd = [sys.executable, os.path.abspath(__file__), "--one", "--threads", str(n), "--batch", str(args.batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
        if args.config:
            cmd += ["--config", args.config]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps({"torch": torch.__version__, "cpuCount": os.cpu_count(), "config": cfg, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
