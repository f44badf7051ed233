"""Learning curve of a 2D mode-collapse run: modes, HQ fraction and reverse KL of every trial
every EVERY steps (the scores that `ganforge modes` reports at the end).

    python benchmarks/modes_curve.py BENCH STEPS TRIALS "OVERRIDES" [EVERY]
    python benchmarks/modes_curve.py grid25 10000 3 "{'lr_d': 4e-4, 'lr_decay_frac': 0.3}" 1000

Prints one JSON line per evaluation: step, wall seconds, and per-trial modes / hq / kl. Trials
use seeds 0..TRIALS-1 and evaluation seeds 10000 + seed, as `ganforge modes --seed 0`.
"""

import ast
import json
import sys
import time
from dataclasses import replace

import torch

from ganforge.modes.ensemble import generate_ensemble, train_ensemble
from ganforge.modes.metrics import mode_stats
from ganforge.modes.toy import BENCHMARKS, ToyConfig


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    bench, steps, trials = BENCHMARKS[argv[0]], int(argv[1]), int(argv[2])
    cfg = replace(ToyConfig(steps=steps), **ast.literal_eval(argv[3]))
    every = int(argv[4]) if len(argv) > 4 else 1000
    seeds, t0 = list(range(trials)), time.perf_counter()

    def report(step, ens):
        x = generate_ensemble(ens, 2500, [10_000 + s for s in seeds])  # (T, 2500, 2)
        st = [mode_stats(xi, bench) for xi in x]
        print(json.dumps({"step": step, "t": round(time.perf_counter() - t0), "modes": [s.modes for s in st],
                          "hq": [round(s.hq, 3) for s in st], "kl": [round(s.kl, 3) for s in st]}), flush=True)

    report(steps, train_ensemble(bench, cfg, seeds, monitor=report, monitor_every=every))


if __name__ == "__main__":
    main(sys.argv[1:])
