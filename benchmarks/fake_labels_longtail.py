"""Fake labels in the training frequencies vs uniform, on a long-tailed MNIST: does it matter?

The training set: the embedded 5000 digits cut to a long tail, class k keeping round(500 * 0.6**k)
digits (500, 300, 180, 108, 65, 39, 23, 14, 8, 5: 1242 in all). `cgan-mnist` (its nets, losses and
optimiser) trains on it for --steps G steps (LR decay from the half) once per arm and training seed:
- `frequencies`: fake labels drawn in the training labels' frequencies (train.fake_labels=data);
- `uniform`: fake labels uniform over the 10 classes (train.fake_labels=uniform, ganforge's default,
  as BigGAN and StudioGAN);
- `sqrt` (with --arms): fake labels in the square roots of the training frequencies (train.fake_labels=sqrt);
- `sqrt-diffaug` (with --arms): `sqrt` with DiffAugment (train.augment=translation,cutout).
Scored on 10,000 images: FID and KID against the 1242 training digits in their class mix (mnist-clf,
evaluation seeds 0, 1, 2), and each class's label agreement (the share of 500 images asked for class
k that mnist-clf reads as k): the tail is where uniform fake labels would hurt.

    OMP_NUM_THREADS=1 python benchmarks/fake_labels_longtail.py --out runs/longtail --steps 3000 --seeds 0,1
    OMP_NUM_THREADS=1 python benchmarks/fake_labels_longtail.py --out runs/longtail --steps 3000 --seeds 0,1 \
        --arms sqrt --result result-sqrt-s01.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ganforge import load_generator
from ganforge.metrics import evaluate
from ganforge.apps.augment import label_agreement
from ganforge.config import apply_overrides
from ganforge.data import ImageData, load_images
from ganforge.presets import get_preset
from ganforge.provenance import source_commit
from ganforge.sampling import generate
from ganforge.training import train

TAIL = [round(500 * 0.6**k) for k in range(10)]
ARMS = {"frequencies": "data", "uniform": "uniform", "sqrt": "sqrt"}  # arm -> train.fake_labels
# arms beyond the label mix: arm -> (train.fake_labels, more overrides)
EXTRA_ARMS = {"sqrt-diffaug": ("sqrt", ["train.augment=translation,cutout"])}


def longtail() -> ImageData:
    d = load_images("mnist5k", resolution=28, channels=1)
    keep = torch.cat([torch.nonzero(d.labels == k).flatten()[:n] for k, n in enumerate(TAIL)])
    keep = keep[torch.randperm(len(keep), generator=torch.Generator().manual_seed(0))]
    return ImageData(d.images[keep], d.labels[keep], d.class_names, "mnist5k long tail")


def train_arm(out: Path, arm: str, seed: int, steps: int, data: ImageData) -> Path:
    run = out / f"{arm}-s{seed}"
    if (run / "model" / "config.json").is_file():
        return run
    cfg = apply_overrides(get_preset("cgan-mnist"), [f"train.seed={seed}", f"train.total_steps={steps}",
                          f"optim.decay_start_step={steps // 2}", "train.progress=false", "train.threads=1",
                          "train.sample_every=0", f"train.fake_labels={ARMS.get(arm) or EXTRA_ARMS[arm][0]}",
                          *EXTRA_ARMS.get(arm, ("", []))[1]])
    t0 = time.perf_counter()
    train(cfg, out=run, data=data)
    (out / f"{arm}-s{seed}.time").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return run


def score(run: Path, data: ImageData, eval_seeds: list[int]) -> dict:
    from ganforge.metrics.imagesets import ImageSet

    ref_set = ImageSet(data.images, {"kind": "mnist5k long tail"}, labels=data.labels, class_names=data.class_names)
    fid, kid = [], []
    for s in eval_seeds:
        r = evaluate(str(run), metrics="fid,kid", evaluator="mnist-clf", ref=ref_set, n=10_000, seed=s)
        assert r.protocol["target"]["labels"] == "reference class frequencies"
        fid.append(r.values["fid"])
        kid.append(r.values["kid"])
    G = load_generator(run)
    per_class = []
    for k in range(10):
        images, labels = generate(G, 500, seed=100 + k, class_index=k)
        per_class.append(label_agreement(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                                         torch.from_numpy(labels).long()))
    return {"fid": fid, "kid": kid, "label_agreement_per_class": per_class,
            "tail_agreement": float(np.mean(per_class[5:])), "head_agreement": float(np.mean(per_class[:5]))}


COLLAPSED_FID = 50.0  # a run whose mean FID is above this drew one or two digits (the collapsed ones score 100 to 430)


def summarize(out: Path) -> None:
    """A markdown table of every OUT/result*.json: per arm, the runs that trained (mean FID under
    COLLAPSED_FID) and, over those, FID and the label agreement of classes 0-4, 5-9 and 7-9."""
    runs = {}
    for f in sorted(out.glob("result*.json")):
        runs.update(json.loads(f.read_text())["runs"])
    print("| arm | runs | trained | FID (trained) | agreement 0–4 | 5–9 | 7–9 (14, 8, 5 digits) |\n|---|---|---|---|---|---|---|")
    for arm in [*ARMS, *EXTRA_ARMS]:
        rows = {k: v for k, v in runs.items() if k.rsplit("-s", 1)[0] == arm}
        ok = [v for v in rows.values() if np.mean(v["fid"]) < COLLAPSED_FID]
        seeds = sorted(int(k.rsplit("-s", 1)[1]) for k, v in rows.items() if np.mean(v["fid"]) >= COLLAPSED_FID)
        if not rows:
            continue

        def mean_se(xs):
            return f"{np.mean(xs):.3f} ± {np.std(xs, ddof=1) / np.sqrt(len(xs)):.3f}" if len(xs) > 1 else f"{np.mean(xs):.3f}"
        fid = [np.mean(v["fid"]) for v in ok]
        agree = [[np.mean(v["label_agreement_per_class"][a:b]) for v in ok] for a, b in ((0, 5), (5, 10), (7, 10))]
        print(f"| {arm} | {len(rows)} | {len(ok)} (collapsed: seeds {', '.join(map(str, seeds)) or 'none'}) | "
              f"{np.mean(fid):.2f} ± {np.std(fid, ddof=1) / np.sqrt(len(fid)):.2f} | " + " | ".join(map(mean_se, agree)) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--eval-seeds", default="0,1,2")
    ap.add_argument("--arms", default="frequencies,uniform", help="comma-separated: frequencies, uniform, sqrt")
    ap.add_argument("--result", default="result.json", help="file name under --out")
    ap.add_argument("--summarize", action="store_true", help="print the table of every OUT/result*.json and stop")
    args = ap.parse_args()
    if args.summarize:
        return summarize(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    data = longtail()
    seeds = [int(s) for s in args.seeds.split(",")]
    eval_seeds = [int(s) for s in args.eval_seeds.split(",")]
    commit = source_commit()
    result = {"tail": TAIL, "steps": args.steps, "commit": commit, "command": " ".join(["python"] + sys.argv), "runs": {}}
    for seed in seeds:
        for arm in args.arms.split(","):
            run = train_arm(args.out, arm, seed, args.steps, data)
            result["runs"][run.name] = score(run, data, eval_seeds)
            print(run.name, json.dumps({k: (np.round(v, 4).tolist() if isinstance(v, list) else round(v, 4))
                                        for k, v in result["runs"][run.name].items()}), flush=True)
    (args.out / args.result).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
