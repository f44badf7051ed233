"""The ``cifar10-clf`` evaluator: a compact ResNet for 32x32 CIFAR-10 images whose 128-d pooled
features and 10-way softmax score generated CIFAR-like images, and the training run that fits it.

The shipped weights (``ganforge/weights/cifar10-clf.safetensors`` + ``.json``) came from

    ganforge evaluator fit cifar10-clf --data ../shared/data/cifar10-train20k.zip \
        --test-data ../shared/data/cifar10-test10k.zip --epochs 40

on one CPU thread (85 min, 2026-11-23): 86.0% on the 10k CIFAR-10 test images with the evaluator's
flip-averaged features (84.8% from a single view). The same command with ``--device cuda`` (or
``--out PATH``) re-makes them; docs/EVALUATION.md has the details.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UsageError
from ganforge.evaluators.common import accuracy, check_fit_args, fit_epochs, save_with_sidecar

ARCH = "cifar-resnet14-w32-v1"  # bump when the layers below change: the sidecar records it and loading checks it
RESOLUTION = 32
CHANNELS = 3
NUM_CLASSES = 10
FEATURE_DIM = 128  # width of the last stage = the pooled feature vector
FIT_COMMAND = "ganforge evaluator fit cifar10-clf --data PATH"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class BasicBlock(nn.Module):
    """ResNet v1 block: conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 conv + BN when the shape changes), ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x), inplace=True)


class Cifar10Classifier(nn.Module):
    """stem conv32 -> 3 stages of 2 blocks (32, 64, 128 channels; 32, 16, 8 px) -> global average
    pool -> 128-d features -> dropout -> linear 10 (~0.70M parameters, 14 weight layers)."""

    name = "cifar10-clf"
    resolution = RESOLUTION
    channels = CHANNELS
    num_classes = NUM_CLASSES
    feature_dim = FEATURE_DIM
    default_reference = None  # no CIFAR-10 ships with ganforge: evaluations name --ref

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(
            BasicBlock(32, 32, 1), BasicBlock(32, 32, 1),  # (N, 32, 32, 32)
            BasicBlock(32, 64, 2), BasicBlock(64, 64, 1),  # (N, 64, 16, 16)
            BasicBlock(64, 128, 2), BasicBlock(128, 128, 1),  # (N, 128, 8, 8)
        )
        self.dropout = nn.Dropout(dropout)  # active only in train mode
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """(N, 3, 32, 32) in [-1, 1] -> (N, 128) globally pooled activations of the last stage.

        In eval mode (the evaluator) the features are averaged over the image and its mirror
        image: CIFAR-10's classes are left-right symmetric, and the flip average lifts test
        accuracy from 84.8% to 86.0% for the shipped weights (docs/EVALUATION.md). Training
        (train mode) sees single views, flipped at random by the augmentation."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (CHANNELS, RESOLUTION, RESOLUTION):
            raise UsageError(f"{self.name} expects images (N, 3, 32, 32) in [-1, 1], got shape {tuple(x.shape)}")
        if self.training:
            return self.stages(self.stem(x)).mean(dim=(2, 3))
        both = self.stages(self.stem(torch.cat([x, x.flip(3)]))).mean(dim=(2, 3))  # (2N, 128)
        return 0.5 * (both[: len(x)] + both[len(x):])

    def logits(self, x: Tensor) -> Tensor:
        """(N, 3, 32, 32) -> (N, 10) unnormalised class scores."""
        return self.head(self.dropout(self.features(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)


def random_crop_flip(x: Tensor, gen: torch.Generator, *, pad_px: int) -> Tensor:
    """Standard CIFAR augmentation of a batch (N, C, H, W): reflect-pad by ``pad_px``, take a
    random HxW crop per image, flip half of them horizontally. All draws come from ``gen``."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad_px,) * 4, mode="reflect")  # (N, C, H + 2p, W + 2p)
    dy = torch.randint(0, 2 * pad_px + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad_px + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, x.shape[1], h, w + 2 * pad_px)
    out = padded.gather(2, rows.to(x.device))  # (N, C, H, W + 2p)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, cols.to(x.device))


def _labelled(source: str | Path, what: str, max_images: int | None):
    from ganforge.data import load_images

    data = load_images(str(source), resolution=RESOLUTION, channels=CHANNELS, max_images=max_images)
    if data.labels is None or data.num_classes != NUM_CLASSES:
        raise UsageError(
            f"{what} {source}: cifar10-clf trains on 10 labelled classes (class sub-folders, or an .npz with "
            f"'labels'), found {data.num_classes or 'no'} classes"
        )
    return data


def check_same_classes(train_names: list[str], test_names: list[str], data, test_data) -> None:
    """Labels are indices into each set's own alphabetical folder list, so differently named test
    folders (e.g. 'plane' for 'airplane') silently reorder the labels and give a wrong accuracy:
    refuse before any training time is spent."""
    if list(train_names) != list(test_names):
        raise UsageError(
            f"--test-data {test_data} has classes {list(test_names)} but --data {data} has {list(train_names)}; "
            f"name the test set's class folders as the training set's"
        )


def fit_cifar10_clf(
    out_path: str | Path,
    *,
    data: str | Path,  # training images: folder / .zip with 10 class sub-folders, or .npz with labels
    epochs: int = 40,  # passes over the training images
    seed: int = 0,  # seeds weight init, batch order, augmentation and dropout
    batch_size: int = 128,  # images per optimiser step
    lr_max: float = 0.1,  # peak learning rate of the one-cycle schedule (SGD, Nesterov momentum 0.9)
    weight_decay: float = 5e-4,  # L2 weight decay
    label_smoothing: float = 0.0,  # cross-entropy label smoothing
    pad_px: int = 4,  # augmentation: random-crop padding in pixels (plus horizontal flips)
    max_images: int | None = None,  # train on the first N (class-balanced) images only: for tests
    test_data: str | Path | None = None,  # held-out set for the accuracy in the sidecar
    device: str | torch.device = "cpu",
    command: str | None = None,  # the command line recorded in the sidecar (default: this call)
    log=print,  # progress lines go here (None: silent)
) -> dict:
    """Train the cifar10-clf ResNet; write ``out_path`` (safetensors) and its ``.json`` sidecar; return the sidecar.

    Deterministic for a given seed, torch version, device and thread count (the caller's global
    RNG is left untouched). Class indices follow the alphabetical class-folder names, which for
    CIFAR-10 are its official label order.
    """
    from ganforge.data import to_float

    out_path = check_fit_args("fit_cifar10_clf", out_path, epochs, batch_size)
    log = log or (lambda *_: None)
    device = torch.device(device)
    train = _labelled(data, "--data", max_images)
    test = _labelled(test_data, "--test-data", None) if test_data is not None else None
    if test is not None:
        check_same_classes(train.class_names, test.class_names, data, test_data)
    if tuple(train.class_names) != CIFAR10_CLASSES:
        log(f"note: class folders {train.class_names} are not CIFAR-10's; label i is the i-th folder alphabetically")
    x_all, y_all = train.images, train.labels  # uint8 (N, 3, 32, 32), int64 (N,)
    steps_per_epoch = math.ceil(len(x_all) / batch_size)
    hparams = dict(batch_size=batch_size, lr_max=lr_max, weight_decay=weight_decay,
                   label_smoothing=label_smoothing, pad_px=pad_px)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # weight init and dropout
        gen = torch.Generator().manual_seed(seed + 1)  # batch order and augmentation
        model = Cifar10Classifier().to(device)
        opt = torch.optim.SGD(model.parameters(), lr=lr_max, momentum=0.9, nesterov=True, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr_max, total_steps=epochs * steps_per_epoch)
        fit_epochs(
            model, x_all, y_all, opt=opt, sched=sched, epochs=epochs, batch_size=batch_size, gen=gen,
            augment=lambda x: random_crop_flip(to_float(x), gen, pad_px=pad_px),  # (B, 3, 32, 32) in [-1, 1]
            label_smoothing=label_smoothing, test=(test.images, test.labels) if test is not None else None, log=log,
        )
    train_seconds = time.perf_counter() - start
    model.eval()
    test_acc = round(accuracy(model, test.images, test.labels), 4) if test is not None else None
    meta = save_with_sidecar(out_path, model, ARCH, {
        "training_command": command or f"fit_cifar10_clf({str(out_path)!r}, data={str(data)!r}, epochs={epochs}, seed={seed})",
        "seed": seed,
        "epochs": epochs,
        "train_data": train.source,
        "train_images": len(x_all),
        "class_names": train.class_names,
        "hyperparameters": hparams,
        "test_data": test.source if test is not None else None,
        "test_images": len(test.images) if test is not None else None,
        "test_accuracy": test_acc,
        "train_seconds": round(train_seconds, 1),
        "device": str(device),
    })
    log(json.dumps({k: meta[k] for k in ("test_accuracy", "train_seconds", "weights_bytes", "sha256")}))
    return meta
