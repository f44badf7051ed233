"""CPU time per training step of the 2D benchmark: per-trial trainer vs the batched ensemble.

    OMP_NUM_THREADS=1 python benchmarks/modes_speed.py STEPS T ["OVERRIDES"]
    python benchmarks/modes_speed.py 100 0            # toy.train_toy, one trial
    python benchmarks/modes_speed.py 30 10            # ensemble.train_ensemble, 10 trials at once
    python benchmarks/modes_speed.py 20 2 "{'unroll_steps': 5}"

T = 0 times the per-trial trainer. A 3-step warm-up run first pays the one-time costs (imports,
first kernel calls). Process CPU time is reported beside wall time: on a shared machine the wall
time mostly measures the other jobs.
"""

import ast
import sys
import time
from dataclasses import replace

import torch

from ganforge.modes.ensemble import train_ensemble
from ganforge.modes.toy import GRID25, ToyConfig, train_toy


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    steps, t = int(argv[0]), int(argv[1])
    over = ast.literal_eval(argv[2]) if len(argv) > 2 else {}
    cfg = replace(ToyConfig(steps=3), **over)
    train_ensemble(GRID25, cfg, list(range(max(t, 1))))  # warm-up
    cfg = replace(cfg, steps=steps)
    c0, w0 = time.process_time(), time.perf_counter()
    train_toy(GRID25, cfg, 0) if t == 0 else train_ensemble(GRID25, cfg, list(range(t)))
    c, w = time.process_time() - c0, time.perf_counter() - w0
    print(f"T={t} {over}: CPU {1000 * c / steps:.1f} ms/step = {1000 * c / steps / max(t, 1):.1f} ms/trial-step; "
          f"wall {1000 * w / steps:.1f} ms/step")


if __name__ == "__main__":
    main(sys.argv[1:])
