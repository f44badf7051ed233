"""Tiled inference: run an image-to-image network over a large image one tile at a time.

The input is cut into a grid of non-overlapping *core* tiles of ``tile`` x ``tile`` pixels. Each
core is run with ``overlap`` extra pixels of context on every side (fewer where the image ends),
and only the core of the result is kept ("keep the centre"). For a network whose receptive field
reaches at most ``overlap`` input pixels from the output pixel, every kept output pixel sees
exactly the input it would see untiled, including the image borders (a tile that touches the
image border has the network's own padding there, as the whole image would), so the result is
*identical* to untiled inference and there are no seams. Networks with a larger (or global)
receptive field differ only by what lies more than ``overlap`` pixels away.

Peak memory is one tile's activations plus the input and the output; never a full-size
intermediate per layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganforge.errors import UsageError


# The smallest core tile side a caller (Restorer, the CLI's --tile) should accept. Each core is run with
# ``overlap`` pixels of context on every side, so a core far below the overlap spends almost every call
# on context: (tile + 2 overlap)^2 / tile^2 input pixels per kept one, 4225 at tile 1 and overlap 32
# (QA: ~40x slower than untiled on a 64 x 48 image). At a quarter of the overlap it is 81, and every
# core of 8 px or more keeps the per-call cost from dominating. ``tiled`` itself takes any tile >= 0.
MIN_TILE = 8


def min_tile(overlap: int) -> int:
    """The smallest core tile side worth running with ``overlap`` pixels of context: max(8, ceil(overlap / 4))."""
    return max(MIN_TILE, -(-overlap // 4))


def check_tile(tile: int | str, overlap: int) -> None:
    """Refuse a core tile side (an int > 0; 0 and "auto" pass) below ``min_tile(overlap)``, naming --tile."""
    low = min_tile(overlap)
    if tile != "auto" and 0 < tile < low:
        raise UsageError(f"--tile {tile} is below the minimum {low} for an overlap of {overlap} px: each tile runs "
                         "with the overlap as context on every side, so a smaller one is mostly context; "
                         f"use --tile {low} or more, 0 (the whole image) or auto (or a smaller --overlap)")


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of the core tiles along one axis: 0, tile, 2 tile, ... (the last may be short)."""
    return list(range(0, length, tile))


def tile_count(h: int, w: int, tile: int) -> int:
    """How many calls ``tiled`` makes for an h x w input (1 when untiled)."""
    if tile == 0 or (tile >= h and tile >= w):
        return 1
    return len(tile_starts(h, tile)) * len(tile_starts(w, tile))


@torch.no_grad()
def tiled(fn: Callable[[Tensor], Tensor], x: Tensor, *, tile: int, overlap: int, scale: int = 1) -> Tensor:
    """``fn(x)`` computed tile by tile; ``fn`` maps (N, C, h, w) -> (N, C', scale h, scale w).

    x: (N, C, H, W), usually N = 1. tile: core tile side in input pixels (0 = untiled, one call).
    overlap: context pixels added on each side of a core (choose >= the network's receptive-field
    radius for an exact result). scale: the network's upscaling factor (1 for denoising and
    inpainting). Returns (N, C', scale H, scale W) on x's device, in the dtype fn returns.
    Runs under ``torch.no_grad``. Tiles are passed to fn on x's device; fn may move them.
    """
    if x.dim() != 4:
        raise UsageError(f"tiled inference needs an image batch (N, C, H, W), got {tuple(x.shape)}")
    for name, v, low in (("tile", tile, 0), ("overlap", overlap, 0), ("scale", scale, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise UsageError(f"{name} must be an integer >= {low}, got {v!r}")
    h, w = x.shape[-2:]
    if tile == 0 or (tile >= h and tile >= w):
        return _checked(fn(x), x, scale, h, w).to(x.device)
    out: Tensor | None = None
    for top in tile_starts(h, tile):
        for left in tile_starts(w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)  # core, input pixels
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)  # core + context
            t1, l1 = min(bottom + overlap, h), min(right + overlap, w)
            y = _checked(fn(x[..., t0:t1, l0:l1]), x, scale, t1 - t0, l1 - l0)  # (N, C', s h_t, s w_t)
            if out is None:
                out = torch.empty(x.shape[0], y.shape[1], scale * h, scale * w, dtype=y.dtype, device=x.device)
            core = y[..., scale * (top - t0) : scale * (bottom - t0), scale * (left - l0) : scale * (right - l0)]
            out[..., scale * top : scale * bottom, scale * left : scale * right] = core.to(x.device)
    assert out is not None  # h, w >= 1 gives at least one tile
    return out


def _checked(y: Tensor, x: Tensor, scale: int, h: int, w: int) -> Tensor:
    if y.dim() != 4 or y.shape[0] != x.shape[0] or tuple(y.shape[-2:]) != (scale * h, scale * w):
        raise UsageError(
            f"the network turned a {h}x{w} input into {tuple(y.shape)}; with scale={scale} "
            f"tiled inference needs (N, C, {scale * h}, {scale * w})"
        )
    return y
