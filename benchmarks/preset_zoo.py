"""Every MNIST preset, and the losses at equal steps, under one protocol with training-seed error bars.

Trains each ENTRY (a preset, optionally with --set overrides) once per training seed, one thread per
run and --jobs runs at a time, skipping runs that already finished (a re-run resumes the study, it
never retrains or overwrites); then scores every entry as a group of its runs with `ganforge compare`
(10,000 images per run against the 5000 training digits, mnist-clf, evaluation seeds 0, 1, 2) and
writes OUT/compare-NAME.json and a markdown table.

    OMP_NUM_THREADS=1 python benchmarks/preset_zoo.py --out runs/zoo --study presets --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/preset_zoo.py --out runs/zoo --study losses --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/preset_zoo.py --out runs/zoo --study presets --only mlp-mnist,dcgan-mnist --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/preset_zoo.py --out runs/faces --study faces --jobs 1 --metrics fid,kid,pr

The run folder of an entry is OUT/LABEL-sSEED; each run's wall time is in OUT/LABEL-sSEED.time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# label -> (preset, overrides)
STUDIES = {
    # every MNIST preset as shipped: its own steps, optimiser and schedule
    "presets": {
        "mlp-mnist": ("mlp-mnist", []),
        "keras-dcgan-mnist": ("keras-dcgan-mnist", []),
        "dcgan-mnist": ("dcgan-mnist", []),
        "sagan-mnist": ("sagan-mnist", []),
        "lsgan-mnist": ("lsgan-mnist", []),
        "wgan-mnist": ("wgan-mnist", []),
        "wgan-gp-mnist": ("wgan-gp-mnist", []),
        "cgan-mnist": ("cgan-mnist", []),
    },
    # the faces preset (100 LFW crops) as shipped, with DiffAugment, and with augmentation off: what the
    # augmentation is for. Scored by the runs' own evaluator (auto: mnist-clf for grey images, its features
    # on their own scale; cifar10-clf reads colour only) against the 100 faces: KID, as FID from 100
    # reference images in 128 dimensions is cautioned.
    "faces": {
        "faces-lfw": ("faces-lfw", []),
        "faces-lfw-noaug": ("faces-lfw", ["train.augment="]),
        # the same two, 10,000 steps: where D, seeing 100 faces over and over, would start to overfit
        "faces-lfw-10k": ("faces-lfw", ["train.total_steps=10000"]),
        "faces-lfw-noaug-10k": ("faces-lfw", ["train.augment=", "train.total_steps=10000"]),
    },
    # the demo's DCGAN, nets, optimiser and 8000 steps unchanged, with only the loss swapped: the losses
    # that need no other change (WGAN needs clipping or a penalty and its own optimiser: the presets above)
    "losses": {
        "dcgan-mnist": ("dcgan-mnist", []),  # loss.kind=ns
        "dcgan-minimax": ("dcgan-mnist", ["loss.kind=minimax"]),
        "dcgan-lsgan": ("dcgan-mnist", ["loss.kind=lsgan"]),
        "dcgan-hinge": ("dcgan-mnist", ["loss.kind=hinge"]),
    },
}


def _train(out: Path, label: str, preset: str, sets: list[str], seed: int) -> tuple[str, float]:
    run = out / f"{label}-s{seed}"
    if (run / "model" / "config.json").is_file():
        return str(run), 0.0
    if run.exists():
        sys.exit(f"{run} exists but did not finish: resume it (ganforge train --resume {run}) or move it away")
    cmd = [sys.executable, "-m", "ganforge", "train", "--preset", preset, "--out", str(run),
           "--set", f"train.seed={seed}", "--set", "train.threads=1", "--set", "train.progress=false"]
    for s in sets:
        cmd += ["--set", s]
    started = time.perf_counter()
    with open(out / f"{label}-s{seed}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    wall = time.perf_counter() - started
    (out / f"{label}-s{seed}.time").write_text(f"{wall:.1f}\n")
    print(f"{run}: {wall:.0f} s ({' '.join(cmd[2:])})", flush=True)
    return str(run), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--study", choices=sorted(STUDIES), required=True)
    ap.add_argument("--seeds", default="0,1,2", help="training seeds")
    ap.add_argument("--eval-seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--metrics", default="fid,kid,pr,classes")
    ap.add_argument("--only", default=None, help="comma list of the study's entries to train and compare (default: all)")
    ap.add_argument("--evaluator", default=None, help="compare's --evaluator (default: the runs' own)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    entries = STUDIES[args.study]
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(entries))
        if unknown:
            sys.exit(f"--only: {', '.join(unknown)} not in the {args.study} study ({', '.join(entries)})")
        entries = {k: v for k, v in entries.items() if k in args.only.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(label, p, sets, s) for label, (p, sets) in entries.items() for s in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda j: _train(args.out, *j), jobs))

    groups = [",".join(str(args.out / f"{label}-s{s}") for s in seeds) for label in entries]
    cmd = [sys.executable, "-m", "ganforge", "compare", *groups, "--metrics", args.metrics,
           "--seeds", args.eval_seeds, "--json"] + (["--evaluator", args.evaluator] if args.evaluator else [])
    started = time.perf_counter()
    res = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": str(args.jobs)})
    result = json.loads(res.stdout)
    result["command"] = " ".join(["ganforge"] + cmd[3:])
    result["compare_seconds"] = round(time.perf_counter() - started, 1)
    result["train_seconds"] = {f"{label}-s{s}": _seconds((args.out / f"{label}-s{s}.time").read_text())
                               for label in entries for s in seeds if (args.out / f"{label}-s{s}.time").is_file()}
    name = args.study + (f"-{args.only.replace(',', '+')}" if args.only else "")
    (args.out / f"compare-{name}.json").write_text(json.dumps(result, indent=1))
    print(table(result, list(entries)))


def _seconds(text: str) -> float | str:
    """A run's .time file: its wall seconds, or a note (a run resumed by hand: "resumed: 1283 s after step 341")."""
    try:
        return float(text)
    except ValueError:
        return text.strip()


def _fmt(cell: dict, digits: int) -> str:
    s = f"{cell['mean']:.{digits}f}" + (f" ± {cell['se']:.{digits}f}" if cell.get("se") is not None else "")
    if "diff_mean" in cell:
        s += f" ({cell['diff_mean']:+.{digits}f}" + (f" ± {cell['diff_se']:.{digits}f}" if cell.get("diff_se") is not None else "") + ")"
    return s


def table(result: dict, labels: list[str]) -> str:
    cols = [("fid", "FID", 2), ("kid", "KID", 3), ("precision", "precision", 3), ("recall", "recall", 3),
            ("classes_covered", "classes", 2)]
    lines = ["| entry (runs) | " + " | ".join(c[1] for c in cols) + " | per-run FID |",
             "|---" * (len(cols) + 2) + "|"]
    for label, row in zip(labels, result["rows"]):
        cells = [_fmt(row[k], d) if k in row else "" for k, _, d in cols]
        per_run = ", ".join(f"{v:.2f}" for v in row["fid"]["values"])
        lines.append(f"| `{label}` | " + " | ".join(cells) + f" | {per_run} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
