"""Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training"): the same random, differentiable transforms are applied to
real and fake images before D, so D cannot tell them apart by the augmentation and G
receives gradients through it. Policies follow the paper's reference code: colour
(brightness, saturation, contrast), translation (up to 1/8 of the image) and cutout
(a square of half the image side).

All functions map (N, C, H, W) -> (N, C, H, W) and draw from torch's global RNG of the
tensor's device, whose state is saved in resumable checkpoints.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def color(x: Tensor) -> Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)  # brightness ±0.5
    if x.shape[1] > 1:  # saturation only means something for colour images
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean  # contrast


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # integer shifts in [-s, s] per sample; the vacated border is zero (after a 1-px zero pad)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    ty = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # (N, C, H+2, W+2)
    # gather (N, H, W) positions from the padded NHWC view, then back to NCHW
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij"
    )
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


AUGMENTATIONS: dict[str, Callable[[Tensor], Tensor]] = {"color": color, "translation": translation, "cutout": cutout}


def make_augment(policy: str) -> Callable[[Tensor], Tensor] | None:
    """'translation,cutout' -> a function applying them in the paper's order (colour first)."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:  # a misspelt name ("colour") would otherwise train without that augmentation
        raise ValueError(f"augmentation policy {policy!r}: {unknown[0]!r} is unknown: use a comma list of "
                         f"{', '.join(AUGMENTATIONS)}")
    if not names:
        return None
    ordered = [AUGMENTATIONS[k] for k in ("color", "translation", "cutout") if k in names]

    def augment(x: Tensor) -> Tensor:
        for fn in ordered:
            x = fn(x)
        return x

    return augment
