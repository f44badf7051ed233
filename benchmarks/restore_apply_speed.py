"""Inference speed of a restoration model at `--precision fp32` and `bf16`, side by side.

Loads the model twice (``load_restorer(..., precision=P)``: bf16 is autocast with the net
channels-last), restores the same image with both, the two interleaved round by round so machine
noise hits them alike, and reports the median seconds of each, their ratio, and how far the bf16
result is from the fp32 one in 8-bit levels (what `apply` would write). This is the measurement
behind `--precision` in docs/RESTORATION.md ("bf16 inference").

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/restore_apply_speed.py sr-x4 --image photo.png --tile 512
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/restore_apply_speed.py denoise-s25 --size 512x384 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.apps.degrade import make_mask
from ganforge.apps.restore_apply import load_restorer

PRECISIONS = ("fp32", "bf16")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shipped model name (sr-x4, denoise-s25, inpaint-center) or a model / run folder")
    ap.add_argument("--image", default=None, help="the input image (LR for sr); default: a seeded random one of --size")
    ap.add_argument("--size", default="250x188", help="WxH of the random input when no --image is given")
    ap.add_argument("--tile", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds; each runs both precisions once")
    args = ap.parse_args()
    if args.image:
        rgb = np.asarray(Image.open(args.image).convert("RGB"))  # uint8 (H, W, 3)
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)  # (1, 3, H, W) in [0, 1]
    else:
        w, h = map(int, args.size.split("x"))
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    restorers = {p: load_restorer(args.model, tile=args.tile, precision=p) for p in PRECISIONS}
    ran = {p: r.precision for p, r in restorers.items()}  # bf16 falls back to fp32 where it is not native
    # inpainting: the benchmark's centre square (a quarter of the area; the generator is not used for it)
    mask = make_mask("center", 1, *x.shape[-2:], torch.Generator()) if restorers["fp32"].task == "inpaint" else None
    outputs, times = {}, {p: [] for p in PRECISIONS}
    for p in PRECISIONS:
        outputs[p] = restorers[p](x, mask)  # warm-up: oneDNN primitive creation, allocator
    for _ in range(args.rounds):
        for p in PRECISIONS:
            t0 = time.perf_counter()
            restorers[p](x, mask)
            times[p].append(time.perf_counter() - t0)
    levels = (outputs["bf16"].mul(255).round() - outputs["fp32"].mul(255).round()).abs()  # 8-bit levels
    median = {p: statistics.median(times[p]) for p in PRECISIONS}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    print(json.dumps({
        "model": args.model, "task": restorers["fp32"].task, "input": list(x.shape), "output": list(outputs["fp32"].shape),
        "tile": args.tile, "ran": ran, "seconds": {p: round(median[p], 3) for p in PRECISIONS},
        "all_seconds": {p: [round(t, 3) for t in times[p]] for p in PRECISIONS},
        "speedup_bf16": round(median["fp32"] / median["bf16"], 3),
        "levels_max": int(levels.max()), "levels_mean": round(float(levels.mean()), 5),
        "fraction_differing": round(float((levels > 0).float().mean()), 5),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "commit": commit, "date": datetime.date.today().isoformat()}, indent=1))


if __name__ == "__main__":
    main()
