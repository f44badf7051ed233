"""Collect `ganforge modes --json` results into the markdown table of docs/MODE_COLLAPSE.md.

    python benchmarks/modes_table.py RESULTS_DIR   # every *.json written by `ganforge modes --json`

Runs of the same (benchmark, method, steps, overrides) with disjoint seeds (e.g. `--seed 0
--trials 5` and `--seed 5 --trials 5`) are merged exactly: n, mean and standard error determine
Σx and Σx². Stacked MNIST rows have no high-quality fraction (`hq_mean` is null).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

K = {"ring8": 8, "grid25": 25, "stacked-mnist": 1000}
ORDER = ["vanilla", "pacgan", "mbstd", "msgan", "ttur", "wgan-gp", "r1", "wide-d", "unrolled", "decay", "ttur-decay", "best-pack", "best"]


def merge_stats(a: dict, b: dict, n1: int, n2: int, keys=("modes", "hq", "kl")) -> dict:
    """a's `{key}_mean` / `{key}_se` over n1 trials merged with b's over n2: the pooled values."""
    out = dict(a)
    n = n1 + n2
    for key in keys:
        if a.get(f"{key}_mean") is None:
            continue  # Stacked MNIST has no HQ fraction
        sums, squares = 0.0, 0.0
        for r, ni in ((a, n1), (b, n2)):
            m, se = r[f"{key}_mean"], r[f"{key}_se"]
            var = se * se * ni  # sample variance (n-1 denominator); 0 for a single trial
            sums += ni * m
            squares += (ni - 1) * var + ni * m * m
        mean = sums / n
        var = max(squares - n * mean * mean, 0.0) / (n - 1)
        out[f"{key}_mean"], out[f"{key}_se"] = mean, math.sqrt(var / n)
    return out


def merge(a: dict, b: dict) -> dict:
    n1, n2 = a["trials"], b["trials"]
    n = n1 + n2
    out = merge_stats(a, b, n1, n2, ("modes", "hq", "kl", "drs_acceptance"))
    if "before_drs" in a and "before_drs" in b:  # discriminator rejection sampling: G's own samples too
        out["before_drs"] = merge_stats(a["before_drs"], b["before_drs"], n1, n2)
    out["trials"] = n
    for key in ("seconds_per_trial",):
        out[key] = (n1 * a[key] + n2 * b[key]) / n
    for key in ("seconds", "cpu_seconds"):
        if key in a and key in b:
            out[key] = a[key] + b[key]
    return out


def _method(r: dict) -> str:
    over = r.get("overrides") or {}
    return r["method"] + (" (" + ", ".join(f"{k}={v}" for k, v in over.items()) + ")" if over else "")


def row(r: dict) -> str:
    hq = "–" if r.get("hq_mean") is None else f"{100 * r['hq_mean']:.1f} ± {100 * r['hq_se']:.1f}"
    cpu = r.get("cpu_seconds")
    cpu_txt = "–" if cpu is None else f"{cpu / r['trials']:.0f}"
    return (
        f"| {r['benchmark']} | {_method(r)} | {r['modes_mean']:.1f} ± {r['modes_se']:.1f} / {K[r['benchmark']]} "
        f"| {hq} | {r['kl_mean']:.3f} ± {r['kl_se']:.3f} | {r['trials']} | {r['steps']} | {cpu_txt} |"
    )


def main(folder: str) -> None:
    merged: dict[tuple, dict] = {}
    for p in sorted(Path(folder).glob("*.json")):
        text = p.read_text().strip()
        if not text:
            continue  # a run still in progress
        data = json.loads(text)
        for r in data if isinstance(data, list) else [data]:
            key = (r["benchmark"], r["method"], r["steps"], json.dumps(r.get("overrides") or {}, sort_keys=True))
            merged[key] = merge(merged[key], r) if key in merged else r
    rank = {m: i for i, m in enumerate(ORDER)}
    results = sorted(
        merged.values(),
        key=lambda r: (list(K).index(r["benchmark"]), r["steps"], rank.get(r["method"], len(ORDER)), _method(r)),
    )
    print("| benchmark | method | modes | high quality % | reverse KL | trials | steps | CPU s/trial |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "before_drs" in r:  # the same G without DRS first, then with it
            print(row({**r, **r["before_drs"], "overrides": None, "cpu_seconds": None}).replace(
                f"| {r['method']} |", f"| {r['method']} (the same G, without DRS) |"))
        print(row(r))


if __name__ == "__main__":
    main(sys.argv[1])
