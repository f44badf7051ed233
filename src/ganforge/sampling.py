"""Drawing images from a trained generator and writing them as .npz, a PNG grid or PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.io import atomic_write, image_grid, save_png


def truncated_noise(n: int, z_dim: int, psi: float | None, gen: torch.Generator) -> torch.Tensor:
    """z (n, z_dim) from N(0, 1); with ``psi``, every entry with |z| > psi is drawn again until none is
    (the truncation trick, Brock et al. 2019: a smaller psi trades variety for typical, cleaner
    images). Same generator state, same z; psi=None draws exactly what plain sampling draws."""
    z = torch.randn(n, z_dim, generator=gen)
    if psi is None:
        return z
    while True:
        out = z.abs() > psi  # (n, z_dim) bool
        count = int(out.sum())
        if not count:
            return z
        z[out] = torch.randn(count, generator=gen)


def check_truncation(psi: float | None) -> None:
    if psi is not None and not (psi > 0 and math.isfinite(psi)):
        raise UsageError(f"--truncation {psi}: the threshold must be a number > 0 (|z| above it is redrawn; "
                         "0.5 to 1 is usual), or leave it out for plain N(0, 1) noise")


@torch.no_grad()
def generate(
    G: torch.nn.Module, n: int, *, seed: int = 0, class_index: int | None = None, batch_size: int = 256, device=None,
    truncation: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """n images as uint8 NHWC (n, H, W, C), and their labels (n,) for conditional models.

    Noise comes from a CPU generator seeded with ``seed`` so the same call gives the same images
    on any device; ``truncation`` redraws noise entries beyond it (``truncated_noise``).
    Unconditional: labels None. Conditional: ``class_index`` or classes cycling 0..K-1."""
    if n <= 0:
        raise UsageError(f"--n {n}: the number of images must be > 0")
    check_truncation(truncation)
    k = getattr(G, "num_classes", 0)
    if class_index is not None:
        if not k:
            raise UsageError(f"--class {class_index}: this generator is unconditional (no classes)")
        if not 0 <= class_index < k:
            raise UsageError(f"--class {class_index} is out of range: this generator has classes 0..{k - 1}")
    device = device or next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = truncated_noise(n, G.z_dim, truncation, gen)  # (n, z_dim)
    labels = None
    if k:
        labels = torch.full((n,), class_index) if class_index is not None else torch.arange(n) % k
    out = []
    for i in range(0, n, batch_size):
        y = labels[i : i + batch_size].to(device) if labels is not None else None
        x = G(z[i : i + batch_size].to(device), y)  # (b, C, H, W) in [-1, 1]
        out.append(((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu())
    images = torch.cat(out).numpy()
    return images, (labels.numpy() if labels is not None else None)


def save_samples(images: np.ndarray, labels: np.ndarray | None, out: str | Path, *, overwrite: bool = False,
                 class_dirs: list[str] | None = None) -> Path:
    """``out`` ending in .npz: uint8 NHWC ``images`` (+ ``labels``); .png: one grid; else a folder of PNGs,
    named ``{i}_class{k}.png``, or with ``class_dirs`` (one folder name per class) ``{class_dirs[k]}/{i}.png``:
    the class-folder layout that ``--data`` (and torchvision's ImageFolder) read as labels."""
    out = Path(out)
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise UsageError(f"--out {out} already exists: choose another path or pass --overwrite")
    suffix = out.suffix.lower()
    if suffix == ".npz":
        arrays = {"images": images} if labels is None else {"images": images, "labels": labels.astype(np.int64)}
        atomic_write(out, lambda f: np.savez_compressed(f, **arrays))
    elif suffix == ".png":
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        nrow = None
        if labels is not None and len(set(labels.tolist())) > 1:
            nrow = int(labels.max()) + 1
        save_png(image_grid(x, nrow=nrow), out)
    elif suffix == "":
        out.mkdir(parents=True, exist_ok=True)
        width = len(str(len(images) - 1))
        by_class = class_dirs is not None and labels is not None
        for name in class_dirs if by_class else []:
            (out / name).mkdir(exist_ok=True)
        for i, img in enumerate(images):
            if by_class:
                save_png(img, out / class_dirs[int(labels[i])] / f"{i:0{width}d}.png")
                continue
            tag = f"_class{int(labels[i])}" if labels is not None else ""
            save_png(img, out / f"{i:0{width}d}{tag}.png")
    else:
        raise UsageError(f"--out {out}: use a .npz file, a .png grid, or a folder name without a suffix")
    return out
