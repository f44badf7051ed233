"""Image sets as evaluation sees them: decoded as they are (never resized or cropped here), one
size and channel count per set, and an identity that a result's protocol can record.

    s = load_image_set("../shared/data/mnist-test10k.npz")   # .npz, image folder, .zip or built-in name
    s.images    # uint8 (N, C, H, W)
    s.identity  # {"kind": "npz", "path": ..., "bytes": ..., "mtime_ns": ..., "pixels_sha256": ..., "n": ..., "total": ...}

Resizing to the evaluator's input is the extractor's job (its resize method is in the protocol);
a set with images of several sizes is refused, because silently resizing some of them would
make the numbers depend on a choice nobody recorded. Greyscale files in a colour folder are
expanded to RGB (lossless); alpha is composited on black, as in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganforge.data.image_data import pixels_sha256
from ganforge.errors import UsageError

log = logging.getLogger(__name__)

MAX_IMAGES = 1_000_000  # more than this in one set is almost surely a mistake (and > 3 GB at 32x32 RGB)
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass(frozen=True)
class ImageSet:
    images: Tensor  # uint8 (N, C, H, W), C in {1, 3}
    identity: dict  # what the protocol records about where the images came from
    labels: Tensor | None = None  # int64 (N,): the class a conditional generator was asked for, or a
    #   labelled set's own classes (an .npz's labels, class sub-folders, a built-in labelled set)
    class_names: list[str] | None = None  # the generator's class names where its run kept them, or the set's


def as_nchw_uint8(array, what: str) -> Tensor:
    """uint8 numpy/torch (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} -> uint8 torch (N, C, H, W)."""
    x = torch.as_tensor(np.asarray(array)) if not isinstance(array, Tensor) else array.detach().cpu()
    if x.dtype != torch.uint8:
        raise UsageError(f"{what}: images must be uint8 in [0, 255], got {x.dtype} (floats in [-1, 1]: ganforge.data.to_uint8)")
    if x.ndim == 3 and x.shape[2] in (3, 4):
        # (32, 32, 3) is one HWC colour image far more often than 32 grey images 3 px wide: read as
        # the latter it scored 32 "pairs" of colour columns (PSNR inf for a noisy image).
        raise UsageError(
            f"{what}: shape {tuple(x.shape)} is ambiguous: one colour image (H, W, C) or {x.shape[0]} grey images "
            f"{x.shape[2]} pixels wide; give one image as x[None] (1, H, W, C), grey images as (N, H, W, 1)"
        )
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise UsageError(
            f"{what}: expected greyscale or RGB images (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3, "
            f"got shape {tuple(array.shape)}"
        )
    if len(x) == 0:
        raise UsageError(f"{what}: no images")
    return x.contiguous()


def subset(images: Tensor, n: int | None, seed: int, what: str) -> tuple[Tensor, str]:
    """All images (n None or n == N), or n of them drawn without replacement with np.random.RandomState(seed),
    kept in their original order -> (images, description)."""
    total = len(images)
    if n is None or n == total:
        return images, f"all {total}"
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"{what}: the number of images must be a positive integer, got {n!r}")
    if n > total:
        raise UsageError(f"{what}: {n} images requested but it holds only {total}; lower the count to at most {total}")
    idx = np.sort(np.random.RandomState(seed).choice(total, n, replace=False))
    return images[torch.from_numpy(idx)], f"random {n} of {total} (seed {seed})"


def from_array(array, what: str, *, n: int | None = None, seed: int = 0) -> ImageSet:
    images, how = subset(as_nchw_uint8(array, what), n, seed, what)
    return ImageSet(images, {"kind": "array", "subset": how, **_content(images)})


def _refuse_run(path: Path, what: str) -> None:
    """A run folder or saved generator is not an image folder: its images are the sample grids, and
    scoring them would print a meaningless number with exit code 0. A finished one (model/config.json,
    or a saved generator) is a generator: sample it first. One stopped before its model/ is unfinished."""
    from ganforge.metrics.run_defaults import is_generator_dir  # run_defaults imports this module

    if is_generator_dir(path):
        raise UsageError(f"{what} {path} is a generator, not a set of images: draw images from it first "
                         f"(`ganforge sample {path} --n 10000 --out ref.npz`, and give {what} ref.npz), "
                         "or score it as the target")
    if not (path.is_dir() and (path / "config.json").is_file()
            and ((path / "metrics.jsonl").is_file() or (path / "checkpoints").is_dir())):
        return
    from ganforge.training.checkpoint import STATE_DIR, list_states, state_step

    states = list_states(path / STATE_DIR)
    at = f" (its last checkpoint is step {state_step(states[-1])})" if states else ""
    best = f", or score its best snapshot {path / 'best'}" if (path / "best" / "config.json").is_file() else ""
    raise UsageError(f"{what} {path} is a training run that has no generator yet{at}: finish it with "
                     f"`ganforge train --resume {path}`{best}")


def load_image_set(source: str | Path, *, n: int | None = None, seed: int = 0, what: str = "images") -> ImageSet:
    """Decode a built-in dataset name, an .npz (``images`` uint8 NHW/NHWC), an image folder or a .zip, as is.

    n: keep n images drawn at random with ``seed`` (see ``subset``); None keeps all.
    """
    from ganforge.data import NAMED_SOURCES

    source = str(source)
    # labels (N,) and class names where the set has them: an .npz's `labels` (a `sample --per-class`
    # file's asked-for classes), class sub-folders, a labelled built-in set. A reference's labels set
    # the class mix a conditional generator is scored with (metrics.classmix).
    labels = class_names = None
    if source in NAMED_SOURCES:
        named = NAMED_SOURCES[source]
        raw, labels, class_names = named.load()  # uint8 (N, H, W, C), (N,) | None, names | None
        ident = {"kind": "builtin", "name": source, "provider": named.provider}
        images = as_nchw_uint8(_composite_alpha(raw, source), source)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise UsageError(
                f"{what} {source!r} does not exist; give a run folder, an .npz, an image folder, a .zip, "
                f"or one of: {', '.join(NAMED_SOURCES)}"
            )
        stat = path.stat()
        if path.is_file() and path.suffix.lower() == ".npz":
            from ganforge.data.npz import load_npz

            # labels: e.g. `ganforge sample --per-class`, the class each image was drawn for; an .npz names no
            # classes (load_npz's "0".."max" are made up for training), so they are matched by index
            raw, labels, _ = load_npz(path)
            images = as_nchw_uint8(_composite_alpha(raw, str(path)), str(path))
            ident = {"kind": "npz", "path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            if labels is not None:
                ident["labels"] = "the file's labels"
        elif path.is_dir() or path.suffix.lower() == ".zip":
            _refuse_run(path, what)
            images, ident, labels, class_names = _decode_files(path)
        else:
            raise UsageError(f"{what} {path} is not an .npz, an image folder or a .zip")
    images, how = subset(images, n, seed, f"{what} {source}")
    if labels is not None:  # the same draw (subset depends only on the count, n and seed): pairs stay together
        labels, _ = subset(torch.from_numpy(np.asarray(labels)).long(), n, seed, f"{what} {source}")
    return ImageSet(images, {**ident, "subset": how, **_content(images)}, labels=labels,
                    class_names=list(class_names) if labels is not None and class_names is not None else None)


def _content(images: Tensor) -> dict:
    return {"n": len(images), "image_shape": list(images.shape[1:]), "pixels_sha256": pixels_sha256(images)}


def _composite_alpha(raw: np.ndarray, where: str) -> np.ndarray:
    """uint8 (N, H, W, C): with C 2 (grey + alpha) or 4 (RGBA), the colour composited on black
    (c * alpha / 255, rounded), as training (data.transforms.to_8bit) and image files here do, so an
    .npz scores as the folder of the same pictures and as the run trained on it saw them."""
    if raw.shape[-1] not in (2, 4):
        return raw
    log.info("%s: images have an alpha channel; composited on black, as training does", where)
    alpha = raw[..., -1:].astype(np.uint16)
    return ((raw[..., :-1].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)


def _decode_files(path: Path) -> tuple[Tensor, dict, np.ndarray | None, list[str] | None]:
    """Decode every image of a folder or zip (listing order) at its own size -> (uint8 (N, C, H, W), identity,
    class index per image (N,) and class names from class sub-folders as training reads them, or None, None)."""
    from ganforge.data.decode import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS
    from ganforge.data.files import ImageFiles, decode_entries, folder_labels

    with ImageFiles(path) as files:
        entries = files.entries
        if not entries:
            raise UsageError(f"no images found in {path} (looked for {' '.join(IMAGE_EXTENSIONS)})")
        if len(entries) > MAX_IMAGES:
            raise UsageError(f"{path} holds {len(entries)} images; evaluation takes at most {MAX_IMAGES}")
        decoded: list[np.ndarray | None] = [None] * len(entries)

        def keep(i: int, img: Image.Image) -> None:  # worker thread: distinct slots, no locking
            decoded[i] = decoded_to_array(img)  # (H, W) or (H, W, 3)

        bad = decode_entries(files, entries, keep, max_pixels=DEFAULT_MAX_PIXELS, stop_at_first_bad=True)
        if bad:
            i, reason = bad[0]
            raise UsageError(f"bad image {entries[i].display}: {reason}; fix or delete it (`ganforge data check {path}`)")
        sizes = {a.shape[:2] for a in decoded}
        if len(sizes) > 1:
            first = decoded[0].shape[:2]
            j = next(k for k, a in enumerate(decoded) if a.shape[:2] != first)
            raise UsageError(
                f"images of mixed sizes in {path}: {entries[0].display} is {first[1]}x{first[0]} but "
                f"{entries[j].display} is {decoded[j].shape[1]}x{decoded[j].shape[0]}; evaluation compares images "
                f"as they are, so bring them to one size first"
            )
        colour = any(a.ndim == 3 for a in decoded)
        arrays = [np.repeat(a[..., None], 3 if colour else 1, axis=2) if a.ndim == 2 else a for a in decoded]
        # (N, H, W, C) -> (N, C, H, W) here, where the layout is known: as_nchw_uint8 would refuse 3 px
        # wide grey images as ambiguous and take 3 px tall ones for channels-first.
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        total_bytes = sum(max(e.size, 0) for e in entries)
        stat = path.stat()
        kind = "folder" if path.is_dir() else "zip"
        ident = {"kind": kind, "path": str(path.resolve()), "files": len(entries), "bytes": total_bytes if kind == "folder" else stat.st_size}
        if kind == "zip":
            ident["mtime_ns"] = stat.st_mtime_ns
        labels, class_names = folder_labels(entries, path)
        if labels is not None:
            ident["labels"] = "class sub-folders"
    return images, ident, None if labels is None else np.asarray(labels, dtype=np.int64), class_names


def decoded_to_array(img: Image.Image) -> np.ndarray:
    """A decoded image as uint8 (H, W) for grey modes (incl. all-grey palettes) or (H, W, 3)."""
    from ganforge.data.transforms import to_8bit

    grey = img.mode in _GREY_MODES
    if img.mode == "P":
        pal = img.getpalette() or []
        grey = bool(pal) and all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))
    return np.array(to_8bit(img, 1 if grey else 3))  # a writable copy


def decode_file(path: Path) -> np.ndarray:
    """One image file as uint8 (H, W, C), C 1 (grey modes) or 3; errors name the file."""
    from ganforge.data.decode import BadImage, open_image

    try:
        with open(path, "rb") as fp:
            img = open_image(fp)
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except BadImage as exc:
        raise UsageError(f"bad image {path}: {exc}") from None
    arr = decoded_to_array(img)
    return arr[..., None] if arr.ndim == 2 else arr
