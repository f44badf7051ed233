"""Does class-conditional synthesis enlarge a small labelled dataset usefully? (ganforge.apps.augment)

    OMP_NUM_THREADS=2 python benchmarks/augment_mnist.py --per-class 20 --synthetic-per-class 200 \\
        --gan-steps 3000 --clf-steps 1000 --seeds 0 1 2 --test ../shared/data/mnist-test10k.npz --out augment-run

1. ``--per-class`` digits of each class drawn (seed 0) from the 5000 mnist5k digits: the small real set.
2. The cgan-mnist preset trained on that set alone for ``--gan-steps`` (a normal ganforge run folder
   under ``--out``), then ``--synthetic-per-class`` labelled digits per class drawn from its EMA generator
   (the same as ``ganforge sample RUN --per-class M``).
3. mnist-clf's CNN trained for ``--clf-steps`` steps on real, real + synthetic and synthetic, per seed,
   scored on the MNIST test set (10,000 digits no part of the pipeline saw). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--synthetic-per-class", type=int, default=200)
    ap.add_argument("--gan-steps", type=int, default=3000)
    ap.add_argument("--gan-set", action="append", default=[], metavar="KEY=VALUE",
                    help="an override of the cgan-mnist run (e.g. train.augment=translation,cutout for small data)")
    ap.add_argument("--clf-steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--test", help="MNIST test .npz (images uint8 NHW, labels)")
    ap.add_argument("--out", type=Path, help="new folder: the small set, the cGAN run, the result JSON")
    ap.add_argument("--table", type=Path, help="only print the table of an earlier run's result.json")
    ap.add_argument("--agreement", type=Path, metavar="RUN", help="only print the label agreement of a cGAN run's "
                    "synthetic set (the same draw: --synthetic-per-class per class, seed 1)")
    ap.add_argument("--truncation", type=float, default=None, help="draw the synthetic digits with the truncation trick "
                    "(ganforge sample --truncation): noise entries beyond it are redrawn")
    ap.add_argument("--gan-run", type=Path, help="use this finished cGAN run (trained on the same real set: its "
                    "small.npz) instead of training one; --gan-set and --gan-steps are then read from it")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.table:
        record = json.loads(args.table.read_text())
        print_table(record, record.get("argv", []))
        return
    if args.agreement:
        from ganforge.apps.augment import label_agreement
        from ganforge.sampling import generate
        from ganforge.training.checkpoint import load_generator

        G = load_generator(args.agreement, ema=True)
        images, labels = generate(G, args.synthetic_per_class * G.num_classes, seed=1, truncation=args.truncation)
        a = label_agreement(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels).long())
        trunc = f" (truncation {args.truncation})" if args.truncation else ""
        print(f"{args.agreement}: mnist-clf reads the conditioning label on {100 * a:.1f} % of {len(labels)} synthetic digits{trunc}")
        return
    if not args.test or not args.out:
        ap.error("--test and --out are required (or --table RESULT.json)")
    torch.set_num_threads(args.threads)

    from ganforge.apps.augment import ClassifierRecipe, augmentation_study, label_agreement, small_labelled_subset
    from ganforge.config import apply_overrides
    from ganforge.data import load_images
    from ganforge.evaluators.mnist_clf import load_mnist_npz
    from ganforge.presets import get_preset
    from ganforge.sampling import generate
    from ganforge.training import train
    from ganforge.training.checkpoint import load_generator

    if args.out.exists():
        sys.exit(f"--out {args.out} exists: give a new folder")
    # read at the start: the code that runs is the code of this commit
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    args.out.mkdir(parents=True)
    started = time.perf_counter()
    data = load_images("mnist5k", resolution=28, channels=1)
    real = small_labelled_subset(data.images, data.labels, args.per_class, seed=0)  # (K m, 1, 28, 28), (K m,)
    np.savez(args.out / "small.npz", images=real[0][:, 0].numpy(), labels=real[1].numpy())

    gan_start = time.perf_counter()
    if args.gan_run:  # a finished cGAN run: it must have trained on this very real set
        run_cfg = json.loads((args.gan_run / "config.json").read_text())["run"]
        if not np.array_equal(np.load(run_cfg["data"]["source"])["images"], real[0][:, 0].numpy()):
            sys.exit(f"--gan-run {args.gan_run} was trained on another real set than --per-class {args.per_class}")
        run, args.gan_steps = args.gan_run, run_cfg["train"]["total_steps"]
        args.gan_set = [f"(as {args.gan_run}/config.json)"]
        gan_seconds = [json.loads(line) for line in (args.gan_run / "metrics.jsonl").open()][-1]["elapsed_s"]
    else:
        cfg = apply_overrides(get_preset("cgan-mnist"), [f"data.source={args.out / 'small.npz'}",
                                                          f"train.total_steps={args.gan_steps}", "train.progress=false",
                                                          f"train.threads={args.threads}", "checkpoint.every_steps=0",
                                                          *args.gan_set])
        run = train(cfg, out=args.out / "cgan")
        gan_seconds = time.perf_counter() - gan_start
    G = load_generator(run, ema=True)
    images, labels = generate(G, args.synthetic_per_class * G.num_classes, seed=1, truncation=args.truncation)  # (n, 28, 28, 1) uint8
    synthetic = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels).long())
    agreement = label_agreement(*synthetic)  # how often mnist-clf reads the class the cGAN was asked for
    test = load_mnist_npz(args.test)

    recipe = ClassifierRecipe(steps=args.clf_steps)
    r = augmentation_study(real, synthetic, test, seeds=args.seeds, recipe=recipe)
    record = {"accuracy": r.accuracy, "summary": r.summary, "seeds": r.seeds, "n_real": r.n_real,
              "n_synthetic": r.n_synthetic, "n_test": r.n_test, "recipe": asdict(r.recipe),
              "label_agreement": round(agreement, 4), "truncation": args.truncation,
              "gan_run": str(args.gan_run) if args.gan_run else None, "gan_steps": args.gan_steps, "gan_set": args.gan_set, "gan_seconds": round(gan_seconds, 1),
              "total_seconds": round(time.perf_counter() - started, 1), "commit": commit,
              "date": datetime.date.today().isoformat(), "threads": args.threads, "torch": torch.__version__,
              "argv": sys.argv[1:]}
    (args.out / "result.json").write_text(json.dumps(record, indent=1))

    print_table(record, sys.argv[1:])


def print_table(record: dict, argv: list[str]) -> None:
    """The markdown table of a result.json record (also: --table RESULT.json, to print it again)."""
    n_real, n_syn, per_class = record["n_real"], record["n_synthetic"], record["n_real"] // 10
    print(f"| training set (test accuracy on {record['n_test']} MNIST test digits) | mean ± s.e. over "
          f"{len(record['seeds'])} seeds | per seed | vs real alone (paired) |")
    print("|---|---|---|---|")
    names = {"real": f"real: {n_real} digits ({per_class} per class)", "real+synthetic": f"real + {n_syn} synthetic (union)",
             "real+synthetic 1:1": f"real + {n_syn} synthetic, 1:1 in every batch", "synthetic": f"synthetic only ({n_syn})"}
    for c, s in record["summary"].items():
        diff = "-" if c == "real" else f"{100 * s['diff_vs_real']:+.2f} ± {100 * s['diff_se']:.2f} points"
        per_seed = ", ".join(f"{100 * a:.2f}" for a in record["accuracy"][c])
        print(f"| {names.get(c, c)} | {100 * s['mean']:.2f} % ± {100 * s['se']:.2f} | {per_seed} | {diff} |")
    cmd = shlex.join(["python", "benchmarks/augment_mnist.py", *argv])
    r = record["recipe"]
    print(f"\nCommand: `OMP_NUM_THREADS={record['threads']} {cmd}`  ")
    reused = f" (the cGAN of {record['gan_run']})" if record.get("gan_run") else ""
    trunc = f"; synthetic digits drawn with --truncation {record['truncation']}" if record.get("truncation") else ""
    print(f"cGAN: cgan-mnist{''.join(' --set ' + s for s in record['gan_set'])}, {record['gan_steps']} steps on the real set "
          f"({record['gan_seconds']:.0f} s){reused}{trunc}; classifier: mnist-clf's CNN, {r['steps']} steps of batch {r['batch_size']} "
          f"per condition; total {record['total_seconds']:.0f} s; commit {record['commit']}; {record['date']}; "
          f"torch {record['torch']}, {record['threads']} threads")
    if "label_agreement" in record:
        print(f"The shipped mnist-clf reads the conditioning label on {100 * record['label_agreement']:.1f} % of the "
              "synthetic digits.")


if __name__ == "__main__":
    main()
