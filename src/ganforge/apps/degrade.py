"""Degradations for image restoration, used identically for training and for evaluation.

All images are float tensors (N, C, H, W) with values in [0, 1] unless stated.

  imresize(x, scale)            MATLAB ``imresize(x, scale, 'bicubic')`` (the SR field's resize)
  mod_crop(x, scale)            crop H and W down to multiples of ``scale`` (MATLAB ``modcrop``)
  quantize(x)                   round to the 8-bit grid like MATLAB ``im2uint8``
  sr_degrade(hr, scale)         the LR image: quantize(imresize(mod_crop(hr), 1 / scale))
  add_noise(x, sigma, gen)      additive white Gaussian noise, sigma on the 0..255 scale, unclipped
  make_mask(kind, n, h, w, gen) inpainting masks (N, 1, H, W), 1 = missing pixel
"""

from __future__ import annotations

import math

import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch.nn import functional as F

from ganforge.errors import UsageError

MASK_KINDS = ("center", "boxes", "strokes", "square")
APPLY_MASK_KINDS = (*MASK_KINDS, "alpha")  # `inpaint apply --mask-kind`: also the input's own transparent pixels
TASKS = ("sr", "denoise", "inpaint")  # the restoration tasks, each with its degradation here
SR_SCALES = (2, 3, 4, 8)  # super-resolution factors the protocol (mod-crop, border crop = scale) supports
CENTER_MASK_AREA = 0.25  # fraction of the image the centre square covers

# ---------------------------------------------------------------------------------------------
# MATLAB-compatible bicubic resize


def _cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic'), support [-2, 2]."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_matrix(in_len: int, out_len: int, scale: float) -> Tensor:
    """The (out_len, in_len) float64 matrix M with ``out = M @ in`` along one axis, built as MATLAB's
    ``imresize`` builds its contributions (``contributions`` in imresize.m):

    * output pixel k (1-based) maps to input coordinate u = k / scale + 0.5 (1 - 1 / scale);
    * it reads P = ceil(kernel_width) + 2 input pixels starting at floor(u - kernel_width / 2);
    * when shrinking, the kernel is stretched by 1 / scale (antialiasing: h(x) = scale cubic(scale x),
      kernel_width = 4 / scale);
    * each row of weights is normalised to sum to 1;
    * indices outside 1..in_len are mirrored with the edge pixel repeated ("symmetric" padding:
      aux = [1..in_len, in_len..1], index = aux(mod(i - 1, 2 in_len) + 1)).
    """
    kernel_width = 4.0
    shrink = scale < 1
    if shrink:
        kernel_width /= scale
    k = torch.arange(1, out_len + 1, dtype=torch.float64)  # (out,)
    u = k / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    p = math.ceil(kernel_width) + 2
    idx = left[:, None] + torch.arange(p, dtype=torch.float64)[None, :]  # (out, P), 1-based
    dist = u[:, None] - idx
    weights = scale * _cubic(dist * scale) if shrink else _cubic(dist)  # (out, P)
    weights = weights / weights.sum(dim=1, keepdim=True)
    aux = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])  # (2 in,), 0-based
    cols = aux[torch.remainder(idx.long() - 1, 2 * in_len)]  # (out, P) 0-based input columns
    rows = torch.arange(out_len)[:, None].expand(out_len, p)
    m = torch.zeros(out_len, in_len, dtype=torch.float64)
    m.index_put_((rows.reshape(-1), cols.reshape(-1)), weights.reshape(-1), accumulate=True)
    return m


def output_size(in_len: int, scale: float) -> int:
    """MATLAB's ``ceil(scale * in_len)``; the tiny tolerance keeps e.g. 255 * (1/3) at 85."""
    return max(1, math.ceil(in_len * scale - 1e-9))


def imresize(x: Tensor, scale: float) -> Tensor:
    """Resize (N, C, H, W) by ``scale`` like MATLAB ``imresize(x, scale, 'bicubic')`` on double input.

    Output (N, C, ceil(scale H), ceil(scale W)) in x's float dtype, not clamped and not rounded
    (MATLAB rounds only for uint8 input; call ``quantize`` for that). The resize is separable:
    out = M_h @ x @ M_w^T with float64 matrices from ``resize_matrix``; MATLAB resizes one axis
    after the other, which is the same linear map.
    """
    _check_image(x, "imresize")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
        raise UsageError(f"imresize scale must be a positive number, got {scale!r}")
    scale = float(scale)
    if scale == 1.0:
        return x.clone()
    h, w = x.shape[-2:]
    m_h = resize_matrix(h, output_size(h, scale), scale).to(x.device, x.dtype)  # (h', h)
    m_w = resize_matrix(w, output_size(w, scale), scale).to(x.device, x.dtype)  # (w', w)
    return m_h @ x @ m_w.T  # (N, C, h', w')


# ---------------------------------------------------------------------------------------------
# SR degradation


def mod_crop(x: Tensor, scale: int) -> Tensor:
    """Crop the bottom/right of (N, C, H, W) so H and W are multiples of ``scale`` (MATLAB modcrop)."""
    _check_image(x, "mod_crop")
    scale = _positive_int(scale, "scale")
    h, w = x.shape[-2:]
    if h < scale or w < scale:
        raise UsageError(f"image of {h}x{w} pixels is smaller than the scale {scale}")
    return x[..., : h - h % scale, : w - w % scale]


def quantize(x: Tensor) -> Tensor:
    """Round [0, 1] floats to the 8-bit grid as MATLAB ``im2uint8``: clip to [0, 1], x 255, round
    half away from zero, / 255. Same shape and dtype."""
    v = x.clamp(0, 1) * 255
    return torch.floor(v + 0.5) / 255


def sr_degrade(hr: Tensor, scale: int) -> Tensor:
    """The LR image for x``scale`` SR: quantize(imresize(mod_crop(hr, scale), 1 / scale)).

    This is the MATLAB protocol of the SR literature (SRCNN, VDSR, EDSR's test sets): bicubic
    with antialiasing on an uint8 image, rounded to uint8. (N, C, H, W) -> (N, C, H//s, W//s).
    """
    scale = _positive_int(scale, "scale")
    return quantize(imresize(mod_crop(hr, scale), 1.0 / scale))


# ---------------------------------------------------------------------------------------------
# Noise


def add_noise(x: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """x + N(0, (sigma / 255)^2) per pixel and channel; sigma on the 0..255 scale (25 -> 25/255).

    Not clipped and not quantized, on purpose: that is the benchmark protocol of BM3D, DnCNN and
    FFDNet (the noise is exactly Gaussian with a known sigma, which BM3D and NL-means assume), so
    noisy values lie outside [0, 1]. The classical methods and our networks get the same input.
    The noise is drawn on the generator's device in x's dtype, then moved to x's device.
    """
    _check_image(x, "add_noise")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
        raise UsageError(f"noise sigma must be a non-negative number on the 0..255 scale, got {sigma!r}")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device)
    return x + noise.to(x.device) * (float(sigma) / 255.0)


# ---------------------------------------------------------------------------------------------
# Inpainting masks


def make_mask(kind: str, n: int, h: int, w: int, generator: torch.Generator) -> Tensor:
    """(n, 1, h, w) float32 masks on the CPU, 1 = missing pixel, 0 = known.

    center:  a centred square covering 25% of the area (side round(sqrt(h w) / 2), at most
             min(h, w)); the same for every image and independent of the generator.
    boxes:   1 to 4 axis-aligned rectangles per image, each side uniform in [side / 8, side / 2].
    strokes: free-form brush strokes as DeepFill v2's generator (Yu et al. 2019,
             ``brush_stroke_mask`` in JiahuiYu/generative_inpainting): 1-3 strokes of 4-11 vertices,
             segment length ~ N(r, r / 2) clipped to [0, 2 r] with r = sqrt(h^2 + w^2) / 8, angles
             around 2 pi / 5 alternating direction, width uniform in [12, 40] pixels at 256 x 256
             (scaled by min(h, w) / 256 here, so small images are not covered completely), round
             joints, then random horizontal/vertical flips.
    square:  one square near the centre: side uniform in [3/4, 5/4] of the centre square's, offset
             from centred by up to a quarter of that side each way. Training on these instead of
             ``center`` gives a centre-hole net that does not depend on the exact hole size and
             position (a net trained on ``center`` alone loses 3.6-7.4 dB when the hole grows by 1-4 px,
             docs/RESTORATION_training.md).
    All randomness comes from ``generator`` (CPU), so a seed gives the same masks everywhere.
    """
    if kind not in MASK_KINDS:
        raise UsageError(f"unknown mask kind {kind!r}; choose one of: {', '.join(MASK_KINDS)}")
    n, h, w = _positive_int(n, "n"), _positive_int(h, "mask height"), _positive_int(w, "mask width")
    masks = torch.zeros(n, 1, h, w)
    for i in range(n):
        if kind == "center":
            side = min(h, w, round(math.sqrt(h * w * CENTER_MASK_AREA)))
            top, left = (h - side) // 2, (w - side) // 2
            masks[i, 0, top : top + side, left : left + side] = 1
        elif kind == "square":
            base = math.sqrt(h * w * CENTER_MASK_AREA)
            side = max(1, min(h, w, round(base * _uniform(generator, 0.75, 1.25))))
            shift = int(base / 4)
            top = min(max((h - side) // 2 + _randint(generator, -shift, shift + 1), 0), h - side)
            left = min(max((w - side) // 2 + _randint(generator, -shift, shift + 1), 0), w - side)
            masks[i, 0, top : top + side, left : left + side] = 1
        elif kind == "boxes":
            for _ in range(_randint(generator, 1, 5)):
                bh = _randint(generator, max(1, h // 8), max(1, h // 2) + 1)
                bw = _randint(generator, max(1, w // 8), max(1, w // 2) + 1)
                top, left = _randint(generator, 0, h - bh + 1), _randint(generator, 0, w - bw + 1)
                masks[i, 0, top : top + bh, left : left + bw] = 1
        else:
            masks[i, 0] = _stroke_mask(h, w, generator)
    return masks


def hole_depth(mask: Tensor, max_side: int = 512) -> float:
    """How deep the holes of one mask reach: the number of 3 x 3 erosions its last missing pixel
    survives, i.e. the largest chessboard distance from a missing pixel to a known one (a 16 x 16
    square: 8; a 5-px-wide stroke: 3; no hole: 0). The image border gives no context, so a hole
    that touches it is eroded from inside only. mask: (H, W) or (1, H, W), 1 = missing. A mask
    with a side over ``max_side`` is measured shrunk by f = ceil(side / max_side) (a small pixel is
    missing when any of its f x f pixels is, as ``Restorer(work_scale=...)`` shrinks) and the depth
    scaled back by f, so a 12 MP mask costs what a 512 px one does. No known pixel at all: the
    longer side."""
    hole = (mask.reshape(1, 1, *mask.shape[-2:]) > 0.5).float()  # (1, 1, H, W)
    h, w = hole.shape[-2:]
    f = math.ceil(max(h, w) / max_side)
    if f > 1:
        hole = F.max_pool2d(hole, f, ceil_mode=True)
    if hole.min() > 0:
        return float(max(h, w))
    depth = 0
    while hole.max() > 0:  # max_pool pads with -inf: outside the image is not known
        hole = 1 - F.max_pool2d(1 - hole, 3, stride=1, padding=1)
        depth += 1
    return float(depth * f)


def trained_hole_depth(kinds: tuple[str, ...], patch: int, *, n: int = 256, quantile: float = 0.9, seed: int = 0) -> float:
    """The hole depth (``hole_depth``) a net trained on ``kinds`` masks of ``patch`` x ``patch``
    crops has learned to fill: the ``quantile`` of the depths of ``n`` masks drawn as training
    draws them (kinds in turn, one generator). The 0.9 quantile: the large end of the trained
    range, so a hole shrunk to it is one the net has seen, with as little shrinking as that allows."""
    g = torch.Generator().manual_seed(seed)
    depths = torch.tensor([hole_depth(make_mask(kinds[i % len(kinds)], 1, patch, patch, g)[0]) for i in range(n)])
    return float(torch.quantile(depths, quantile))


def _stroke_mask(h: int, w: int, g: torch.Generator) -> Tensor:
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    width_scale = min(h, w) / 256
    min_width, max_width = 12 * width_scale, 40 * width_scale
    radius = math.sqrt(h * h + w * w) / 8
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(_randint(g, 1, 4)):
        num_vertex = _randint(g, 4, 12)
        angle_min = mean_angle - _uniform(g, 0, angle_range)
        angle_max = mean_angle + _uniform(g, 0, angle_range)
        angles = [
            2 * math.pi - _uniform(g, angle_min, angle_max) if j % 2 == 0 else _uniform(g, angle_min, angle_max)
            for j in range(num_vertex)
        ]
        vertices = [(_randint(g, 0, w), _randint(g, 0, h))]
        for angle in angles:
            r = min(max(radius + (radius / 2) * float(torch.randn((), generator=g)), 0.0), 2 * radius)
            x = min(max(vertices[-1][0] + r * math.cos(angle), 0), w)
            y = min(max(vertices[-1][1] + r * math.sin(angle), 0), h)
            vertices.append((int(x), int(y)))
        width = max(1, int(_uniform(g, min_width, max_width)))
        draw.line(vertices, fill=1, width=width)
        for vx, vy in vertices:  # round joints
            draw.ellipse((vx - width // 2, vy - width // 2, vx + width // 2, vy + width // 2), fill=1)
    mask = torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8).reshape(h, w).float()
    if float(torch.randn((), generator=g)) > 0:
        mask = mask.flip(1)
    if float(torch.randn((), generator=g)) > 0:
        mask = mask.flip(0)
    return mask


def _randint(g: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in [low, high) from ``g``."""
    return int(torch.randint(low, high, (), generator=g))


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g, dtype=torch.float64))


def _positive_int(v: int, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise UsageError(f"{name} must be a positive integer, got {v!r}")
    return v


def _check_image(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise UsageError(f"{name} needs a float tensor of shape (N, C, H, W), got {got}")
