"""Train one preset variant and score it with the mnist-clf evaluator (how dcgan-mnist's
hyper-parameters were chosen; docs/BENCHMARKS.md).

    python benchmarks/preset_sweep.py NAME [--preset dcgan-mnist] [KEY=VALUE ...]

Prints one JSON line: training seconds and FID / precision / recall / classes covered /
classifier score of 2000 samples against the 5000 mnist5k digits, in mnist-clf feature space.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ganforge.config import apply_overrides
from ganforge.evaluators import load_evaluator, score_generator_images
from ganforge.presets import get_preset
from ganforge.sampling import generate
from ganforge.training import load_generator, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--preset", default="dcgan-mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = apply_overrides(get_preset(args.preset), ["train.progress=false", "train.sample_every=0",
                                                     f"train.threads={args.threads}", "checkpoint.every_steps=0", *args.overrides])
    ev = load_evaluator("mnist-clf")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        run = train(cfg, out=Path(tmp) / "run")
        seconds = time.time() - t0
        images, _ = generate(load_generator(run), 2000, seed=1)
    s = score_generator_images(images, ev)
    keys = ("fid", "precision", "recall", "classes_covered", "classifier_score")
    print(json.dumps({"name": args.name, "overrides": args.overrides, "train_s": round(seconds), **{k: round(s[k], 3) for k in keys}}))


if __name__ == "__main__":
    main()
