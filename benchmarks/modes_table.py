"""Collect `ganforge modes --json` results into the markdown table of docs/MODE_COLLAPSE.md.

    python benchmarks/modes_table.py RESULTS_DIR   # every *.json written by `ganforge modes --json`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

K = {"ring8": 8, "grid25": 25}


def row(r: dict) -> str:
    return (
        f"| {r['benchmark']} | {r['method']} | {r['modes_mean']:.1f} ± {r['modes_se']:.1f} / {K[r['benchmark']]} "
        f"| {100 * r['hq_mean']:.1f} ± {100 * r['hq_se']:.1f} | {r['kl_mean']:.3f} ± {r['kl_se']:.3f} "
        f"| {r['trials']} | {r['steps']} | {r['seconds_per_trial']:.0f} |"
    )


def main(folder: str) -> None:
    results = []
    for p in sorted(Path(folder).glob("*.json")):
        data = json.loads(p.read_text())
        results += data if isinstance(data, list) else [data]
    results.sort(key=lambda r: (r["benchmark"] != "ring8", r["method"] != "vanilla", r["method"]))
    print("| benchmark | method | modes | high quality % | reverse KL | trials | steps | s/trial |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r))


if __name__ == "__main__":
    main(sys.argv[1])
