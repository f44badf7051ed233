"""Crash-safe file writing and image grids shared by training, sampling and metrics."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ganforge.errors import UsageError


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_can_write(folder: str | Path, what: str) -> Path:
    """Refuse, before any work, an output folder that cannot be created or written: an output is
    written after minutes (or hours) of training or fitting, and a mkdir that fails then loses them.
    ``folder``: the folder the output goes into (for a file, its parent), new or existing; ``what``:
    how the message names it ("--save runs/r8"). A file in the way is named; otherwise a temporary
    folder is made and removed in the nearest existing ancestor, which catches what permission bits
    do not (root, read-only mounts, /proc). Nothing is left behind. Returns ``folder`` as a Path."""
    folder = Path(folder)
    here = next((p for p in (folder, *folder.parents) if p.exists()), Path.cwd())
    if not here.is_dir():
        raise UsageError(f"{what} cannot be created: {here} is a file, not a folder; give a path in a writable folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ganforge-probe-", dir=here))
    except OSError as exc:
        raise UsageError(f"{what} cannot be written: {here} does not take new files ({exc.strerror or exc}); "
                         "give a path in a writable folder") from None
    return folder


TMP_SUFFIX = ".tmp"  # temporary files are ".<final name>.<random>.tmp" in the final folder


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(fileobj)`` so that readers see the old file or the whole
    new one, never a partial file: temporary file in the same folder, fsync, rename, fsync folder.
    A failed write (disk full, exception) leaves no temporary file; OSErrors become a one-line
    UsageError naming ``path``. A process killed mid-write (kill -9) leaves only a hidden
    ``.<name>.*.tmp`` file, never a partial file under the final name (see remove_stale_temps)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise UsageError(f"could not write {path}: {exc.strerror or exc}") from exc
    try:
        # mkstemp creates 0600 files; give the final file the permissions open() would (0666 & ~umask).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise UsageError(f"could not write {path}: {exc.strerror or exc}") from exc
        raise
    fsync_dir(path.parent)


def remove_stale_temps(folder: str | Path, name_prefix: str) -> list[Path]:
    """Delete temporary files that a killed writer left behind for files named ``name_prefix*``.

    Only call this where one process writes (a run's own folder)."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(f".{name_prefix}") and p.name.endswith(TMP_SUFFIX):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] -> one uint8 (H', W', C) tile image, ``nrow`` per row."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    grid = torch.zeros(c, rows * (h + pad) + pad, nrow * (w + pad) + pad, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid.permute(1, 2, 0).numpy()


def png_bytes(array_hwc: np.ndarray) -> bytes:
    """A uint8 (H, W, 1|3) array encoded as PNG (deterministic: the same pixels give the same bytes)."""
    arr = array_hwc[..., 0] if array_hwc.shape[-1] == 1 else array_hwc
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def save_png(array_hwc: np.ndarray, path: str | Path) -> None:
    """Save a uint8 (H, W, 1|3) array as PNG, atomically."""
    atomic_write_bytes(path, png_bytes(array_hwc))


def save_png_keeping(array_hwc: np.ndarray, path: str | Path, max_names: int = 9_999) -> Path:
    """Save as PNG at `path` unless a *different* image is there already: then at the first free
    `STEM-2.png`, ..., `STEM-{max_names}.png`. The same pixels at a name already taken are not written
    twice. Returns where the image is."""
    data, path = png_bytes(array_hwc), Path(path)
    for i in range(1, max_names + 1):
        cand = path if i == 1 else path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not cand.exists():
            atomic_write_bytes(cand, data)
            return cand
        if cand.is_file() and cand.read_bytes() == data:
            return cand
    raise UsageError(f"no free name for {str(path)!r}: {max_names} other images are there already; give another --out")
