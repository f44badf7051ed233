"""Training-step speed of a restoration preset in four layouts: fp32 / bf16 autocast x NCHW / channels-last.

Times the pixel-loss step that `ganforge sr|denoise|inpaint train` runs (make_pixel_step: forward,
fp32 loss, backward, Adam) on synthetic patches of the preset's shape, the variants interleaved
round by round so machine noise hits them alike, and reports the median ms/step of each with its
ratio to fp32 NCHW (the plain PyTorch way). This is the measurement behind the restoration
trainer's channels-last default on CPU (docs/RESTORATION_training.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/restore_speed.py --preset denoise-s25 --patch 48 --batch 16
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/restore_speed.py --preset inpaint-center --patch 32 --batch 32 --set model.blocks=4
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from ganforge.apps.restore_config import apply_overrides, get_preset
from ganforge.apps.restore_data import Batch
from ganforge.apps.restore_models import build_restorer
from ganforge.apps.restore_train import make_pixel_step

VARIANTS = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]


def synthetic_batch(task: str, n: int, patch: int, scale: int, channels_last: bool) -> Batch:
    """A batch of the shapes the trainer feeds: (n, 3, patch, patch) targets, LR inputs for sr."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(n, 3, patch, patch, generator=g)
    side = patch // scale if task == "sr" else patch
    inp = torch.rand(n, 3, side, side, generator=g)
    mask = (torch.rand(n, 1, patch, patch, generator=g) > 0.75).float() if task == "inpaint" else None
    sigma = torch.full((n,), 25 / 255) if task == "denoise" else None
    if channels_last:
        inp, target = inp.contiguous(memory_format=torch.channels_last), target.contiguous(memory_format=torch.channels_last)
    return Batch(inp, target, mask, sigma)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds; each times every variant once")
    ap.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    cfg = apply_overrides(get_preset(args.preset), args.overrides)
    steps, batches = {}, {}
    for prec, cl in VARIANTS:
        torch.manual_seed(0)
        G = build_restorer(cfg)
        if cl:
            G = G.to(memory_format=torch.channels_last)
        autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if prec == "bf16" else contextlib.nullcontext
        steps[(prec, cl)] = make_pixel_step(cfg, G, autocast)[0]
        batches[(prec, cl)] = synthetic_batch(cfg.task, args.batch, args.patch, cfg.degrade.scale, cl)
        for _ in range(3):  # warm-up: oneDNN primitive creation, allocator
            steps[(prec, cl)](batches[(prec, cl)], 1.0)
    times = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for v in VARIANTS:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[v](batches[v], 1.0)
            times[v].append((time.perf_counter() - t0) / args.steps * 1000)
    base = statistics.median(times[("fp32", False)])
    rows = [{"precision": p, "channels_last": cl, "ms_per_step": round(statistics.median(times[(p, cl)]), 1),
             "speedup_vs_fp32_nchw": round(base / statistics.median(times[(p, cl)]), 3)} for p, cl in VARIANTS]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    print(json.dumps({"preset": args.preset, "task": cfg.task, "width": cfg.model.width, "blocks": cfg.model.blocks,
                      "patch": args.patch, "batch": args.batch, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                      "commit": commit, "date": datetime.date.today().isoformat(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
