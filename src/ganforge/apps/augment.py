"""Class-conditional synthesis for data augmentation: does a conditional GAN trained on a small
labelled set make a classifier trained on that set better?

The protocol (``augmentation_study``), for MNIST-shaped data (28 x 28 grey, 10 classes):

1. ``real``: a small labelled training set, uint8 (N, 1, 28, 28) and labels (N,).
2. ``synthetic``: images drawn from a conditional generator trained on ``real`` only (never on the
   test set), class-balanced (``ganforge sample RUN --per-class M``).
3. For each seed, the same classifier (mnist-clf's CNN, random affine augmentation, AdamW with a
   one-cycle schedule) is trained for the same number of optimiser steps on ``real`` alone, on
   ``real`` + ``synthetic`` (a batch draws from the union uniformly), on the two mixed 1:1 (half of
   every batch from each) and on ``synthetic`` alone, then scored on the test set. Same steps per condition: the comparison is data, not compute.
4. Report each condition's mean accuracy and the per-seed paired difference against real alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ganforge.errors import UsageError, is_int

# real+synthetic: batches drawn from the union (synthetic images dominate when there are more of them);
# real+synthetic 1:1: every batch half real, half synthetic, whatever the sizes
CONDITIONS = ("real", "real+synthetic", "real+synthetic 1:1", "synthetic")


@dataclass
class ClassifierRecipe:
    """How each classifier of the study trains (mnist-clf's fit recipe, counted in steps)."""

    steps: int = 2000  # optimiser steps, the same for every condition
    batch_size: int = 64
    lr_max: float = 3e-3  # one-cycle peak (AdamW)
    weight_decay: float = 1e-4
    shift_px: float = 2.0  # random affine augmentation of every batch, real or synthetic
    rotate_deg: float = 12.0
    scale: float = 0.1
    shear_deg: float = 10.0


@dataclass
class StudyResult:
    accuracy: dict[str, list[float]]  # condition -> accuracy per seed, in seed order
    seeds: list[int]
    n_real: int
    n_synthetic: int
    n_test: int
    recipe: ClassifierRecipe
    summary: dict[str, dict[str, float]] = field(default_factory=dict)  # condition -> mean, se, diff vs real (mean, se)


def _check(images: Tensor, labels: Tensor, what: str) -> None:
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
        raise UsageError(f"{what}: expected torch tensors, got {type(images).__name__} and {type(labels).__name__} "
                         "(torch.from_numpy converts arrays)")
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise UsageError(f"{what}: expected uint8 images (N, 1, 28, 28), got {images.dtype} {tuple(images.shape)}")
    # cross_entropy takes int64 class indices only: a float or bool label would be an error deep in training
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise UsageError(f"{what}: expected integer labels (class indices 0..9), got {labels.dtype}")
    if labels.shape != (len(images),):
        raise UsageError(f"{what}: expected one label per image ({len(images)},), got shape {tuple(labels.shape)}")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < 10):
        raise UsageError(f"{what}: labels must be in 0..9, got {int(labels.min())}..{int(labels.max())}")


def _check_recipe(r: ClassifierRecipe) -> None:
    for name, low in (("steps", 1), ("batch_size", 2)):
        value = getattr(r, name)
        if not is_int(value) or value < low:
            raise UsageError(f"classifier {name}={value!r} must be an integer >= {low}")


class _Passes:
    """Index batches of one set from successive shuffled passes (no repeats within a pass)."""

    def __init__(self, n: int, gen: torch.Generator) -> None:
        self.n, self.gen = n, gen
        self.order, self.pos = torch.randperm(n, generator=gen), 0

    def take(self, k: int) -> Tensor:
        if self.pos + k > self.n:  # a new pass (a set smaller than k repeats within the batch)
            self.order = torch.cat([self.order[self.pos:], torch.randperm(self.n, generator=self.gen)])
            self.pos = 0
            while len(self.order) < k:
                self.order = torch.cat([self.order, torch.randperm(self.n, generator=self.gen)])
        idx = self.order[self.pos : self.pos + k]
        self.pos += k
        return idx


def fit_classifier(images: Tensor, labels: Tensor, *, seed: int, recipe: ClassifierRecipe | None = None,
                   device: str | torch.device = "cpu", mix: tuple[Tensor, Tensor] | None = None):
    """Train mnist-clf's CNN on uint8 (N, 1, 28, 28) ``images`` and int ``labels`` (N,) for
    ``recipe.steps`` steps, batches from shuffled passes; with ``mix`` (a second labelled set) every
    batch is half from each. Returns the model in eval mode. Deterministic for a seed, torch version
    and thread count; the global RNG is forked."""
    from ganforge.data import to_float
    from ganforge.device import resolve_device
    from ganforge.evaluators.mnist_clf import MnistClassifier, random_affine

    r = recipe or ClassifierRecipe()
    _check(images, labels, "classifier training set")
    if mix is not None:
        _check(*mix, "classifier mixed-in set")
    if not len(images) or (mix is not None and not len(mix[0])):  # _Passes would draw from it forever
        raise UsageError(f"the classifier {'training' if not len(images) else 'mixed-in'} set is empty")
    _check_recipe(r)
    device = resolve_device(str(device), "device")  # "gpu" or a missing CUDA: one line, not torch's RuntimeError
    labels = labels.long()  # any integer dtype (an .npz's int32, uint8) -> the int64 cross_entropy takes
    if mix is not None:
        mix = (mix[0], mix[1].long())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weight init and dropout
        gen = torch.Generator().manual_seed(seed + 1)  # batch order and augmentation
        model = MnistClassifier().to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=r.lr_max, weight_decay=r.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr_max, total_steps=r.steps)
        model.train()
        first = _Passes(len(images), gen)
        second = _Passes(len(mix[0]), gen) if mix is not None else None
        half = r.batch_size // 2
        for _ in range(r.steps):
            if second is None:
                idx = first.take(r.batch_size)
                xb, yb = images[idx], labels[idx]
            else:
                i, j = first.take(r.batch_size - half), second.take(half)
                xb, yb = torch.cat([images[i], mix[0][j]]), torch.cat([labels[i], mix[1][j]])
            x = random_affine(to_float(xb), gen, shift_px=r.shift_px, rotate_deg=r.rotate_deg,
                              scale=r.scale, shear_deg=r.shear_deg)  # (B, 1, 28, 28) in [-1, 1]
            loss = F.cross_entropy(model.logits(x.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def augmentation_study(real: tuple[Tensor, Tensor], synthetic: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], *,
                       seeds=(0, 1, 2), recipe: ClassifierRecipe | None = None, device: str | torch.device = "cpu",
                       log=print) -> StudyResult:
    """Test accuracy of the same classifier trained on real, real + synthetic and synthetic data
    (each a (uint8 (N, 1, 28, 28), int64 (N,)) pair), for each seed. See the module docstring."""
    from ganforge.evaluators.common import accuracy

    r = recipe or ClassifierRecipe()
    _check_recipe(r)
    seeds = list(seeds)
    if not seeds or not all(is_int(seed) for seed in seeds):  # no seed: every mean would be NaN
        raise UsageError(f"seeds must be one or more integers, got {seeds!r}")
    for (x, y), what in ((real, "real"), (synthetic, "synthetic"), (test, "test")):
        _check(x, y, f"the {what} set")
        if not len(x):
            raise UsageError(f"the {what} set is empty")
    real, synthetic = (real[0], real[1].long()), (synthetic[0], synthetic[1].long())  # one dtype for torch.cat
    data = {"real": (real, None), "synthetic": (synthetic, None), "real+synthetic 1:1": (real, synthetic),
            "real+synthetic": ((torch.cat([real[0], synthetic[0]]), torch.cat([real[1], synthetic[1]])), None)}
    acc: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    log = log or (lambda *_: None)
    for seed in seeds:
        for c in CONDITIONS:
            train_set, mix = data[c]
            model = fit_classifier(*train_set, seed=seed, recipe=r, device=device, mix=mix)
            acc[c].append(accuracy(model, *test))
            log(f"seed {seed} {c:<15} test accuracy {acc[c][-1]:.4f}")
    out = StudyResult(acc, list(seeds), len(real[0]), len(synthetic[0]), len(test[0]), r)
    for c in CONDITIONS:
        a = np.array(acc[c])
        d = a - np.array(acc["real"])
        out.summary[c] = {"mean": float(a.mean()), "se": _se(a), "diff_vs_real": float(d.mean()), "diff_se": _se(d)}
    return out


def label_agreement(images: Tensor, labels: Tensor) -> float:
    """The share of labelled digits (uint8 (N, 1, 28, 28), labels (N,)) that the shipped mnist-clf
    (99.4 % on the MNIST test set) assigns to their label: for synthetic digits, how often the
    generator drew the class it was asked for."""
    from ganforge.evaluators import load_evaluator
    from ganforge.evaluators.common import accuracy

    _check(images, labels, "labelled digits")
    return accuracy(load_evaluator("mnist-clf"), images, labels)


def _se(a: np.ndarray) -> float:
    return float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")


def small_labelled_subset(images: Tensor, labels: Tensor, per_class: int, seed: int) -> tuple[Tensor, Tensor]:
    """``per_class`` images of each class drawn at random (seeded) from a labelled set; the classes
    interleaved 0, 1, ..., 9, 0, 1, ... so any prefix stays balanced."""
    if not is_int(per_class) or per_class < 1:  # a negative count would slice off the end of each class instead
        raise UsageError(f"--per-class {per_class!r} must be a positive integer")
    if not isinstance(labels, Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dim() != 1:
        raise UsageError(f"labels must be a 1-D integer tensor, got {getattr(labels, 'dtype', type(labels).__name__)} "
                         f"{tuple(getattr(labels, 'shape', ()))}")
    if len(labels) != len(images) or not len(labels) or int(labels.min()) < 0:
        raise UsageError(f"expected one class index >= 0 per image: {len(images)} images, {len(labels)} labels"
                         + (f", smallest {int(labels.min())}" if len(labels) else ""))
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for k in range(int(labels.max()) + 1):
        idx = torch.nonzero(labels == k).flatten()
        if len(idx) < per_class:
            raise UsageError(f"class {k} has {len(idx)} images, fewer than --per-class {per_class}")
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    order = torch.stack(picks, dim=1).flatten()  # (per_class * K,) class-interleaved
    return images[order], labels[order]
