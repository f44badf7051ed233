"""CPU/GPU training speed of a preset: G steps per second and real images per second.

Runs the real training loop (ganforge.train) for --steps G steps with sampling and checkpoints
off, and reports the median rate over the log intervals after the first (warm-up) one.

    python benchmarks/train_speed.py --preset dcgan-mnist --steps 300
    python benchmarks/train_speed.py --preset sngan-cifar10 --data ../shared/data/cifar10-train20k.zip --steps 30
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from ganforge.config import apply_overrides
from ganforge.presets import get_preset
from ganforge.training import train
from ganforge.training.logger import read_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--data", default=None)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--intervals", type=int, default=6, help="number of timed log intervals")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    cfg = get_preset(args.preset)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    every = max(1, args.steps // args.intervals)
    cfg = apply_overrides(cfg, [f"train.total_steps={args.steps}", f"train.log_every={every}", "train.sample_every=0",
                                "checkpoint.every_steps=0", "train.progress=false", *args.overrides])
    with tempfile.TemporaryDirectory() as tmp:
        run = train(cfg, out=Path(tmp) / "run")
        rows = read_metrics(run / "metrics.jsonl")
        resolved = json.loads((run / "config.json").read_text()).get("resolved", {})
    timed = rows[1:] if len(rows) > 1 else rows  # the first interval includes warm-up
    img_s = statistics.median(r["img_per_s"] for r in timed)
    imgs_per_step = cfg.train.batch_size * (cfg.train.n_critic if cfg.train.update == "alternating" else 1)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    print(json.dumps({
        "preset": args.preset, "batch": cfg.train.batch_size, "n_critic": cfg.train.n_critic,
        "steps_per_s": round(img_s / imgs_per_step, 3), "img_per_s": round(img_s, 1),
        "precision": cfg.perf.precision, "precision_used": resolved.get("precision"), "device": "cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu",
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "cores": os.cpu_count(),
        "torch": torch.__version__, "commit": commit, "date": datetime.date.today().isoformat(),
    }))


if __name__ == "__main__":
    main()
