"""Choose DRS's γ percentile on selection trials, report it on held-out ones (docs/MODE_COLLAPSE.md).

    python benchmarks/drs_gamma.py --select state-5 state-7 state-8 state-9 \
        --holdout state-0 state-1 state-2 state-3 state-4 state-6 [--percentiles 50,60,70,80,90] [--json]

Each STATE folder is a `ganforge modes ... --save STATE` run (usually one trial). Every folder is
rescored at every percentile (`ganforge.modes.saved.rescore_trials`: same samples' seeds, no
training). The rule, fixed before the ring8 runs: among the percentiles where every selection
trial captures all modes and the selection trials' mean reverse KL is at most --max-kl, take the
one with the highest selection mean HQ (ties: the smaller percentile). It is then reported on the
held-out trials alone and on all trials, beside every other percentile.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ganforge.errors import UsageError
from ganforge.modes.bench import mean_se
from ganforge.modes.saved import load_trials, rescore_trials
from ganforge.modes.toy import BENCHMARKS


def score(folders: list[Path], percentiles: list[float]) -> dict[float, list[dict]]:
    """{percentile: [per-trial {seed, modes, hq, kl, acceptance}] over all folders' trials}."""
    out: dict[float, list[dict]] = {p: [] for p in percentiles}
    for folder in folders:
        seeds = load_trials(folder)[0]["seeds"]
        for p in percentiles:
            r = rescore_trials(folder, {"drs_percentile": p})
            for s, t, a in zip(seeds, r.trials, r.drs_acceptance):
                out[p].append({"seed": s, "modes": t.modes, "hq": t.hq, "kl": t.kl, "acceptance": a})
    return out


def summarise(trials: list[dict]) -> dict:
    out = {"trials": len(trials), "seeds": [t["seed"] for t in trials],
           "all_modes_min": min(t["modes"] for t in trials)}
    for key in ("modes", "hq", "kl", "acceptance"):
        out[f"{key}_mean"], out[f"{key}_se"] = mean_se([float(t[key]) for t in trials])
    return out


def choose(select: dict[float, list[dict]], k: int, max_kl: float) -> float | None:
    stats = {p: summarise(ts) for p, ts in select.items()}
    ok = [p for p, ts in select.items() if all(t["modes"] == k for t in ts) and stats[p]["kl_mean"] <= max_kl]
    if not ok:
        return None
    best = max(stats[p]["hq_mean"] for p in ok)
    return min(p for p in ok if stats[p]["hq_mean"] == best)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--select", nargs="+", type=Path, required=True, help="--save folders of the selection trials")
    ap.add_argument("--holdout", nargs="+", type=Path, required=True, help="--save folders of the held-out trials")
    ap.add_argument("--percentiles", default="50,60,70,80,90", help="comma-separated drs_percentile values")
    ap.add_argument("--max-kl", type=float, default=0.05, help="largest selection mean reverse KL allowed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        percentiles = [float(x) for x in args.percentiles.split(",")]
    except ValueError:
        print(f"drs_gamma: error: --percentiles {args.percentiles!r}: give numbers in [0, 100) separated by commas", file=sys.stderr)
        return 2
    try:
        metas = [load_trials(f)[0] for f in [*args.select, *args.holdout]]
        if len({m["benchmark"] for m in metas}) != 1:
            raise UsageError("the folders hold different benchmarks")
        k = len(BENCHMARKS[metas[0]["benchmark"]].means)
        select, holdout = score(args.select, percentiles), score(args.holdout, percentiles)
    except UsageError as exc:
        print(f"drs_gamma: error: {exc}", file=sys.stderr)
        return 2
    chosen = choose(select, k, args.max_kl)
    report = {"benchmark": metas[0]["benchmark"], "method": metas[0]["method"], "chosen_percentile": chosen,
              "rule": f"all {k} modes in every selection trial, selection mean rKL <= {args.max_kl}, highest selection mean HQ",
              "by_percentile": {str(p): {"select": summarise(select[p]), "holdout": summarise(holdout[p]),
                                         "all": summarise(select[p] + holdout[p]),
                                         "per_trial": sorted(select[p] + holdout[p], key=lambda t: t["seed"])}
                                for p in percentiles}}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"chosen drs_percentile: {chosen} ({report['rule']})\n")
    print("| percentile | trials | modes (min) | HQ % | rKL | acceptance % |\n|---|---|---|---|---|---|")
    for p in percentiles:
        for part in ("select", "holdout", "all"):
            s = report["by_percentile"][str(p)][part]
            print(f"| {p:g} ({part}) | {s['trials']} | {s['modes_mean']:.1f} ({s['all_modes_min']}) "
                  f"| {100 * s['hq_mean']:.1f} ± {100 * s['hq_se']:.1f} | {s['kl_mean']:.4f} ± {s['kl_se']:.4f} "
                  f"| {100 * s['acceptance_mean']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
