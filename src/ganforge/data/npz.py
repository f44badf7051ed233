"""Images stored as numpy arrays in an .npz file.

Expected keys: `images` uint8 (N, H, W) or (N, H, W, C) with C in 1..4 (channels last, as
PIL and most datasets store them), optional `labels` integer (N,): class ids 0..K-1 with
K <= MAX_CLASSES.
Loaded with allow_pickle=False: an .npz can never run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .builtin import RawArrays

# Class names, label embeddings and per-class counts are all sized by the largest label, so one stray
# id like 10**9 would exhaust memory even for an unconditional run. 100k is well above real datasets
# (ImageNet-21k has ~22k classes).
MAX_CLASSES = 100_000

EXPECTED = "expected key 'images' uint8 (N, H, W) or (N, H, W, C) with C in 1..4, optional 'labels' integer (N,)"


def load_npz(path: Path) -> RawArrays:
    """Read and validate an .npz -> (images uint8 (N, H, W, C), labels int64 (N,) | None, class_names | None)."""
    try:
        # np.load treats anything without a zip or .npy header as a pickle and then blames
        # allow_pickle, which misleads for a text file or image renamed to .npz.
        with open(path, "rb") as f:
            head = f.read(6)
        if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
            raise UsageError(f"{path} is not an .npz archive (no zip header; a renamed file?); {EXPECTED}")
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # a plain .npy renamed to .npz
            raise UsageError(f"{path} is a single .npy array, not an .npz archive; {EXPECTED}")
        with archive:
            if "images" not in archive.files:
                keys = ", ".join(archive.files) or "none"
                raise UsageError(f"{path} has no 'images' array (keys: {keys}); {EXPECTED}")
            images = archive["images"]
            labels = archive["labels"] if "labels" in archive.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # ValueError also covers object (pickled) arrays refused by allow_pickle=False.
        raise UsageError(f"cannot read {path} as .npz ({exc}); {EXPECTED}") from None

    if images.dtype != np.uint8:
        raise UsageError(f"{path}: 'images' has dtype {images.dtype}; {EXPECTED}")
    if images.ndim == 3:
        images = images[..., None]  # (N, H, W) -> (N, H, W, 1)
    if images.ndim != 4 or not 1 <= images.shape[3] <= 4:
        hint = " (channels first? transpose to N, H, W, C)" if images.ndim == 4 and images.shape[1] in (1, 3) else ""
        raise UsageError(f"{path}: 'images' has shape {images.shape}{hint}; {EXPECTED}")
    if min(images.shape[:3]) == 0:
        raise UsageError(f"{path}: 'images' is empty (shape {images.shape}); {EXPECTED}")

    if labels is None:
        return images, None, None
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (images.shape[0],):
        raise UsageError(
            f"{path}: 'labels' has dtype {labels.dtype} shape {labels.shape}; "
            f"expected integers with shape ({images.shape[0]},), one per image"
        )
    if labels.min() < 0:
        raise UsageError(f"{path}: 'labels' contains {labels.min()}; class indices must be >= 0")
    if labels.max() >= MAX_CLASSES:
        raise UsageError(
            f"{path}: 'labels' go up to {labels.max()}; class ids must be 0..K-1 with K at most {MAX_CLASSES}"
        )
    labels = labels.astype(np.int64)
    return images, labels, [str(i) for i in range(int(labels.max()) + 1)]
