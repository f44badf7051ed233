"""Restoration test sets: full-size 8-bit images from a folder or a .zip, in a fixed order.

Unlike ``ganforge.data.load_images`` (which crops and resizes everything to one training
resolution), restoration is scored on each image at its own size, so images are kept as they are
(optionally centre-cropped to a square). The listing, class-interleaved order, safe decoding and
mode conversion are ganforge.data's: for a class-folder archive such as the CIFAR-10 test zip the
first N images are class-balanced, exactly as ``load_images(..., max_images=N)`` would pick them.

Grey images: an image stored with one channel (Set14's ``bridge.png``) is replicated into R = G = B
(PIL's convert("RGB"), MATLAB's cat(3, im, im, im)) and flagged ``grey``. The SR literature's
MATLAB scripts call rgb2ycbcr only on 3-channel images and score a 1-channel image on its grey
values directly; restore_eval does the same for flagged images (see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganforge.data.decode import DEFAULT_MAX_PIXELS, BadImage, open_image
from ganforge.data.files import ImageFiles, folder_labels
from ganforge.data.image_data import interleave_classes
from ganforge.data.transforms import to_8bit
from ganforge.errors import UsageError

# PIL modes holding one grey channel (with or without alpha).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass(frozen=True)
class TestImage:
    """One ground-truth image of a test set."""

    name: str  # path inside the folder/zip, e.g. "baby.png" or "test/airplane/0001.jpg"
    image: Tensor  # float32 (1, 3, H, W), 8-bit values / 255
    grey: bool  # stored with a single channel; scored on its grey values (see module docstring)

    __test__ = False  # not a pytest test class despite the name


def load_test_images(source: str | Path, *, max_images: int | None = None, crop: int | None = None) -> list[TestImage]:
    """All images of a folder or .zip (sub-folders included), in ganforge.data's deterministic order.

    max_images: keep the first N (class-balanced for class folders). crop: centre-crop each image to
    crop x crop pixels (an image smaller than that is an error naming it).
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"test data {str(source)!r} does not exist; give an image folder or a .zip of images")
    if not (path.is_dir() or path.suffix.lower() == ".zip"):
        raise UsageError(f"test data {path} is not a folder or a .zip of images")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
        raise UsageError(f"max_images must be a positive integer, got {max_images!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
        raise UsageError(f"crop must be a positive number of pixels, got {crop!r}")
    with ImageFiles(path) as files:
        entries = files.entries
        if not entries:
            raise UsageError(f"no images found in {path}")
        labels, _ = folder_labels(entries, path)
        order = interleave_classes(np.array(labels)) if labels is not None else np.arange(len(entries))
        out = []
        for i in order[:max_images]:
            entry = entries[i]
            try:
                with files.open(entry) as fp:
                    img = open_image(fp, max_pixels=DEFAULT_MAX_PIXELS)
                    grey = img.mode in GREY_MODES
                    rgb = np.asarray(to_8bit(img, 3), dtype=np.uint8)  # (H, W, 3)
            except (BadImage, OSError) as exc:
                raise UsageError(f"bad image {entry.display}: {exc}") from None
            if crop is not None:
                rgb = _center_crop(rgb, crop, entry.display)
            image = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None].float() / 255  # (1, 3, H, W)
            out.append(TestImage("/".join(entry.parts), image, grey))
    return out


def _center_crop(rgb: np.ndarray, size: int, name: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h < size or w < size:
        raise UsageError(f"{name} is {w}x{h} pixels, smaller than the crop {size}x{size}")
    top, left = (h - size) // 2, (w - size) // 2
    return rgb[top : top + size, left : left + size]

