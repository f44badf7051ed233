"""Collect `ganforge modes --json` results into the markdown table of docs/MODE_COLLAPSE.md.

    python benchmarks/modes_table.py RESULTS_DIR   # every *.json written by `ganforge modes --json`

Runs of the same (benchmark, method, steps) with disjoint seeds (e.g. `--seed 0 --trials 5` and
`--seed 5 --trials 5`) are merged exactly: n, mean and standard error determine Σx and Σx².
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

K = {"ring8": 8, "grid25": 25}


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    n1, n2 = a["trials"], b["trials"]
    n = n1 + n2
    for key in ("modes", "hq", "kl"):
        sums, squares = 0.0, 0.0
        for r, ni in ((a, n1), (b, n2)):
            m, se = r[f"{key}_mean"], r[f"{key}_se"]
            var = se * se * ni  # sample variance (n-1 denominator); 0 for a single trial
            sums += ni * m
            squares += (ni - 1) * var + ni * m * m
        mean = sums / n
        var = max(squares - n * mean * mean, 0.0) / (n - 1)
        out[f"{key}_mean"], out[f"{key}_se"] = mean, math.sqrt(var / n)
    out["trials"] = n
    out["seconds_per_trial"] = (n1 * a["seconds_per_trial"] + n2 * b["seconds_per_trial"]) / n
    return out


def row(r: dict) -> str:
    return (
        f"| {r['benchmark']} | {r['method']} | {r['modes_mean']:.1f} ± {r['modes_se']:.1f} / {K[r['benchmark']]} "
        f"| {100 * r['hq_mean']:.1f} ± {100 * r['hq_se']:.1f} | {r['kl_mean']:.3f} ± {r['kl_se']:.3f} "
        f"| {r['trials']} | {r['steps']} | {r['seconds_per_trial']:.0f} |"
    )


def main(folder: str) -> None:
    merged: dict[tuple, dict] = {}
    for p in sorted(Path(folder).glob("*.json")):
        text = p.read_text().strip()
        if not text:
            continue  # a run still in progress
        data = json.loads(text)
        for r in data if isinstance(data, list) else [data]:
            key = (r["benchmark"], r["method"], r["steps"])
            merged[key] = merge(merged[key], r) if key in merged else r
    order = ["vanilla", "pacgan", "mbstd", "msgan", "ttur", "wgan-gp", "r1", "wide-d", "best"]
    results = sorted(merged.values(), key=lambda r: (r["benchmark"] != "ring8", order.index(r["method"])))
    print("| benchmark | method | modes | high quality % | reverse KL | trials | steps | s/trial |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r))


if __name__ == "__main__":
    main(sys.argv[1])
