"""Topping up a long tail with a conditional GAN: does a classifier learn the rare classes better?

The training set is fake_labels_longtail.py's long-tailed MNIST: the embedded 5000 digits cut so class
k keeps round(500 * 0.6**k) (500, 300, ..., 8, 5: 1242 digits). The generators are that study's
cgan-mnist runs on it (OUT/ARM-sSEED, trained with train.fake_labels=ARM). A classifier (mnist-clf's
CNN, random affine augmentation, --clf-steps AdamW steps, apps/augment.fit_classifier) trains, per
classifier seed, on:
- `real`: the 1242 digits as they are;
- `real, oversampled`: every class's digits repeated up to --to (500: the classical remedy, 5000 images);
- `real + GAN top-up (RUN)`: the 1242 digits plus, per class, max(0, TO - n_k) images the generator
  draws for that class (`ganforge sample RUN --top-up TO`, seed 0; to 500: 3758 images, 5000 in all).
Each is scored on the 10,000 MNIST test digits: accuracy, and recall per class (the share of test
digits of class k it reads as k), whose mean over classes 7, 8, 9 (14, 8 and 5 training digits) is
the tail recall.

    OMP_NUM_THREADS=1 python benchmarks/longtail_topup.py --runs runs/longtail --generators sqrt-s0,uniform-s0 \\
        --test ../shared/data/mnist-test10k.npz --seeds 0,1,2 --out runs/longtail/topup.json
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
from ganforge.apps.augment import ClassifierRecipe, fit_classifier
from ganforge.provenance import source_commit
from ganforge.sampling import generate, top_up_counts

sys.path.insert(0, str(Path(__file__).parent))
from fake_labels_longtail import TAIL, longtail  # noqa: E402

TO = 500  # images per class after topping up (--to): the commonest class's count
TAIL_CLASSES = (7, 8, 9)


@torch.no_grad()
def recalls(model, images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Per-class recall (K,) of ``model`` on uint8 (N, 1, 28, 28) test digits."""
    from ganforge.data import to_float

    pred = torch.cat([model.logits(to_float(images[i:i + 1000])).argmax(1) for i in range(0, len(images), 1000)])
    return [float((pred[labels == k] == k).double().mean()) for k in range(10)]


def score(model, test) -> dict:
    r = recalls(model, *test)
    counts = torch.bincount(test[1], minlength=10).double()
    return {"accuracy": float((torch.tensor(r, dtype=torch.float64) * counts).sum() / counts.sum()),
            "tail_recall": float(np.mean([r[k] for k in TAIL_CLASSES])), "recall": r}


def oversampled(real: tuple[torch.Tensor, torch.Tensor], to: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every class's images repeated (cycled) up to ``to`` (a class with more keeps all of them)."""
    idx = []
    for k in range(10):
        rows = torch.nonzero(real[1] == k).flatten()
        idx.append(rows[torch.arange(max(to, len(rows))) % len(rows)])
    idx = torch.cat(idx)
    return real[0][idx], real[1][idx]


def topped_up(run: Path, real: tuple[torch.Tensor, torch.Tensor], to: int) -> tuple[tuple[torch.Tensor, torch.Tensor], list[int]]:
    need = top_up_counts(torch.bincount(real[1], minlength=10).tolist(), to)  # (10,)
    images, labels = generate(load_generator(run), int(need.sum()), seed=0, class_weights=need)
    syn = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels).long()
    return (torch.cat([real[0], syn[0]]), torch.cat([real[1], syn[1]])), need.tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, required=True, help="fake_labels_longtail.py's --out")
    ap.add_argument("--generators", default="sqrt-s0", help="comma-separated run names under --runs")
    ap.add_argument("--test", type=Path, required=True, help="MNIST test .npz (images uint8 NHW, labels)")
    ap.add_argument("--seeds", default="0,1,2", help="classifier seeds")
    ap.add_argument("--clf-steps", type=int, default=1000)
    ap.add_argument("--to", type=int, default=TO, help="images per class after topping up or oversampling")
    ap.add_argument("--out", type=Path, required=True, help="result JSON (written after every condition)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = longtail()
    real = data.images, data.labels
    assert torch.bincount(real[1], minlength=10).tolist() == TAIL
    with np.load(args.test) as z:
        test = torch.from_numpy(z["images"]).unsqueeze(1), torch.from_numpy(z["labels"]).long()
    recipe = ClassifierRecipe(steps=args.clf_steps)
    seeds = [int(s) for s in args.seeds.split(",")]
    to = "" if args.to == TO else f" to {args.to}"  # the default's conditions keep their plain names
    sets = {"real": real, f"real, oversampled{to}": oversampled(real, args.to)}
    result = {"tail": TAIL, "clf_steps": args.clf_steps, "seeds": seeds, "commit": source_commit(),
              "command": " ".join(["python"] + sys.argv), "threads": 1, "conditions": {}}
    if args.out.is_file():  # resume: keep what was scored
        result["conditions"] = json.loads(args.out.read_text())["conditions"]
    for name in args.generators.split(","):
        sets[f"real + GAN top-up{to} ({name})"], _ = topped_up(args.runs / name, real, args.to)
    for cond, (x, y) in sets.items():
        if cond in result["conditions"]:
            continue
        t0 = time.perf_counter()
        runs = [score(fit_classifier(x, y, seed=s, recipe=recipe), test) for s in seeds]
        result["conditions"][cond] = {
            "command": " ".join(["python"] + sys.argv), "n": len(x), "runs": runs,
            "seconds": round(time.perf_counter() - t0, 1),
            "accuracy": float(np.mean([r["accuracy"] for r in runs])),
            "tail_recall": float(np.mean([r["tail_recall"] for r in runs]))}
        print(f"{cond:<36} n={len(x)} accuracy {result['conditions'][cond]['accuracy']:.4f} "
              f"tail recall {result['conditions'][cond]['tail_recall']:.4f}", flush=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
