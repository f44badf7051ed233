"""Full-reference image metrics: PSNR, SSIM, MS-SSIM, and the luma conversion used with them.

Every function takes two batches ``pred`` and ``target`` of shape (N, C, H, W), on any device,
in float32 or float64 (integer inputs are converted to float64 first, so uint8 never wraps;
float16/bfloat16 to float32), and returns one value per image, shape (N,), in that floating
dtype. ``data_range`` is the span of valid pixel values (1.0 for [0, 1] images, 255.0 for
[0, 255]); it is required, because guessing it from the data is a classic source of wrong SSIM
numbers. ``target`` must lie in [0, data_range] (a float ``pred`` may overshoot it, as an
unclamped network output does, but by less than half a data_range, so a [-1, 1] pred against a
[0, 1] target is refused), both must be integers or both floats, float images that all lie in
[0, 1] need data_range=1.0 (not 255), and NaN is refused: a wrong scale is refused rather than scored.

Options shared by all metrics:
  y_channel: compare only the BT.601 luma of RGB input (the super-resolution convention).
  crop:      drop a border of this many pixels on each side before comparing (SR papers crop
             ``scale`` pixels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import UsageError, is_int

SSIM_WIN_SIZE = 11  # Gaussian window side in pixels (Wang et al. 2004)
SSIM_SIGMA = 1.5  # Gaussian window standard deviation in pixels
SSIM_K1 = 0.01  # luminance stabiliser: C1 = (K1 * data_range)^2
SSIM_K2 = 0.03  # contrast stabiliser: C2 = (K2 * data_range)^2
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # per-scale exponents (Wang et al. 2003)
# Smallest side MS-SSIM accepts: after 4 halvings (odd sides rounded up) the last scale must
# still hold one 11x11 window, i.e. min(H, W) > (11 - 1) * 2^4 = 160.
MS_SSIM_MIN_SIZE = (SSIM_WIN_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1

# ITU-R BT.601 luma on the 0..255 scale for R, G, B in [0, 1], as MATLAB rgb2ycbcr.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def rgb_to_y(x: Tensor, *, data_range: float = 1.0) -> Tensor:
    """ITU-R BT.601 luma of RGB images, as MATLAB ``rgb2ycbcr`` (the super-resolution convention).

    x: (N, 3, H, W) with R, G, B in [0, data_range]. Returns (N, 1, H, W) on the same scale:
    Y = (16 + 65.481 R' + 128.553 G' + 24.966 B') * data_range / 255 with R' = R / data_range.
    So for data_range=255 black is 16 and white is 235; for data_range=1 they are 16/255 and
    235/255. No rounding is applied (MATLAB rounds for uint8 input).
    """
    x = torch.as_tensor(x)
    if x.dim() != 4 or x.shape[1] != 3:
        raise UsageError(f"rgb_to_y needs RGB images of shape (N, 3, H, W), got {tuple(x.shape)}")
    _check_data_range(data_range)
    data_range = float(data_range)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    w = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (x * w).sum(dim=1, keepdim=True) + _Y_OFFSET * data_range  # (N, 1, H, W), 0..255 * range
    return y / 255.0


def psnr(
    pred: Tensor, target: Tensor, *, data_range: float, y_channel: bool = False, crop: int = 0
) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: 10 log10(data_range^2 / MSE) -> (N,).

    The MSE is taken over all channels and pixels of each image (as skimage's
    ``peak_signal_noise_ratio``); identical images give +inf.
    """
    pred, target = _prepare(pred, target, data_range=data_range, y_channel=y_channel, crop=crop)
    mse = (pred - target).pow(2).flatten(1).mean(dim=1)  # (N,)
    return 10.0 * torch.log10(float(data_range) ** 2 / mse)


def ssim(
    pred: Tensor, target: Tensor, *, data_range: float, y_channel: bool = False, crop: int = 0
) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image, averaged over channels -> (N,).

    11x11 Gaussian window with sigma 1.5, K1=0.01, K2=0.03, population (co)variances, and a
    valid convolution (the SSIM map is only evaluated where the window fits). This equals
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=...)`` per channel, averaged over channels.
    Needs min(H, W) >= 11 after cropping.
    """
    pred, target = _prepare(pred, target, data_range=data_range, y_channel=y_channel, crop=crop)
    _check_min_size(pred, SSIM_WIN_SIZE, "ssim")
    ssim_nc, _ = _ssim_and_cs(pred, target, data_range)  # (N, C)
    return ssim_nc.mean(dim=1)


def ms_ssim(
    pred: Tensor,
    target: Tensor,
    *,
    data_range: float,
    y_channel: bool = False,
    crop: int = 0,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) per image -> (N,).

    Follows the ``pytorch_msssim`` implementation: at scales 1..4 the contrast-structure term
    cs is kept, at the last scale the full SSIM; between scales a 2x2 average pooling halves the
    image (an odd side is zero-padded by one pixel on both ends, padding counted in the average,
    so it rounds up). Each term is clamped at 0 (ReLU), raised to its weight, the product taken
    per channel, and the channels averaged. ``tf.image.ssim_multiscale`` computes the same terms
    and differs only for odd sides (it pads symmetrically at the end before pooling).
    Needs min(H, W) >= 161 after cropping (``MS_SSIM_MIN_SIZE``, for the default 5 scales).
    """
    weights = _check_weights(weights)
    pred, target = _prepare(pred, target, data_range=data_range, y_channel=y_channel, crop=crop)
    min_size = (SSIM_WIN_SIZE - 1) * 2 ** (len(weights) - 1) + 1
    if min(pred.shape[-2:]) < min_size:
        raise UsageError(
            f"ms_ssim needs images of at least {min_size}x{min_size} pixels "
            f"(after crop={crop}) for {len(weights)} scales with an {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE} "
            f"window, got {tuple(pred.shape[-2:])}; use ssim for smaller images{_channels_last_hint(pred)}"
        )
    terms = []  # one (N, C) tensor per scale
    for scale in range(len(weights)):
        ssim_nc, cs_nc = _ssim_and_cs(pred, target, data_range)
        if scale < len(weights) - 1:
            terms.append(torch.relu(cs_nc))
            padding = [s % 2 for s in pred.shape[-2:]]
            pred = F.avg_pool2d(pred, kernel_size=2, padding=padding)
            target = F.avg_pool2d(target, kernel_size=2, padding=padding)
    terms.append(torch.relu(ssim_nc))
    w = torch.tensor(list(weights), dtype=pred.dtype, device=pred.device).view(-1, 1, 1)
    per_channel = torch.prod(torch.stack(terms) ** w, dim=0)  # (N, C)
    return per_channel.mean(dim=1)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    coords = torch.arange(SSIM_WIN_SIZE, dtype=torch.float64) - SSIM_WIN_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).to(dtype=dtype, device=device)  # (win,)


def _ssim_and_cs(x: Tensor, y: Tensor, data_range: float) -> tuple[Tensor, Tensor]:
    """Mean SSIM and mean contrast-structure term per image and channel: two (N, C) tensors."""
    n, c, h, w = x.shape
    g = _gaussian_window(x.dtype, x.device)
    # Filter the five moment images of every (image, channel) in one separable valid convolution.
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=2).reshape(n * c * 5, 1, h, w)
    stack = F.conv2d(stack, g.view(1, 1, -1, 1))  # along H
    stack = F.conv2d(stack, g.view(1, 1, 1, -1))  # along W
    mu_x, mu_y, e_xx, e_yy, e_xy = stack.reshape(n, c, 5, *stack.shape[-2:]).unbind(dim=2)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov_xy = e_xy - mu_x * mu_y
    c1 = (SSIM_K1 * float(data_range)) ** 2
    c2 = (SSIM_K2 * float(data_range)) ** 2
    cs_map = (2 * cov_xy + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs_map
    return ssim_map.flatten(2).mean(dim=2), cs_map.flatten(2).mean(dim=2)


def _check_weights(weights) -> tuple[float, ...]:
    """MS-SSIM's per-scale exponents: one or more finite numbers > 0 (a negative one inverts a scale's
    term and lifts the product above 1; a string would be read as its characters)."""
    try:
        ok = not isinstance(weights, (str, bytes)) and len(weights) >= 1
        values = tuple(float(w) for w in weights) if ok else ()
    except (TypeError, ValueError):
        ok, values = False, ()
    if not ok or any(isinstance(w, bool) for w in weights) or not all(math.isfinite(w) and w > 0 for w in values):
        raise UsageError(f"ms_ssim weights must be one or more finite numbers > 0, one per scale (default "
                         f"{MS_SSIM_WEIGHTS}), got {weights!r}")
    return values


def _check_data_range(data_range: float) -> None:
    try:
        ok = not isinstance(data_range, bool) and math.isfinite(float(data_range)) and float(data_range) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"data_range must be a positive number (1.0 or 255.0), got {data_range!r}")


def check_crop(crop) -> int:
    """crop: a non-negative int (numpy integers too; not a bool, where True would mean 1) -> int."""
    if not is_int(crop) or crop < 0:
        raise UsageError(f"crop must be a non-negative integer, got {crop!r}")
    return int(crop)


# float rounding (x / 255 and back; float16's step near 1 is 1e-3) may leave a value this far
# (times data_range) outside [0, data_range]; the mistakes refused are far larger: 0..255 images
# with data_range=1, or [-1, 1] images
_RANGE_TOLERANCE = 1e-3
# How far (times data_range) a float pred may overshoot [0, data_range]: an unclamped network output
# strays a few percent; a [-1, 1] pred against a [0, 1] target reaches -1 and scored 1.7 dB, not ~30.
_PRED_OVERSHOOT = 0.5


def _check_values(pred: Tensor, target: Tensor, data_range: float, *, pred_is_float: bool) -> None:
    """target (N, C, H, W) must lie in [0, data_range]; pred too when it came as integers, while a float
    pred (an unclamped network output) may overshoot by less than half a data_range either side.
    NaN is refused (it would score NaN, or drag a mean to NaN), and so are float images that all lie
    in [0, 1] with a data_range of 2 or more: [0, 1] images scored with data_range=255 gain 48 dB."""
    tol = _RANGE_TOLERANCE * data_range
    for what, x in (("target", target), ("pred", pred)):
        if x.numel() and (nan := torch.isnan(x).flatten(1).any(dim=1)).any():
            raise UsageError(f"{what} holds NaN values (in {int(nan.sum())} of its {len(x)} images, the first is "
                             f"image {int(nan.nonzero()[0, 0])}): PSNR/SSIM of NaN pixels is NaN")
    slack = _PRED_OVERSHOOT * data_range if pred_is_float else tol
    for what, x, slack in (("target", target, tol), ("pred", pred, slack)):
        if x.numel() == 0:
            continue
        lo, hi = x.min().item(), x.max().item()
        if lo < -slack or hi > data_range + slack:
            raise UsageError(f"{what} values span [{lo:.4g}, {hi:.4g}] but data_range={data_range:g}: give images "
                             f"in [0, {data_range:g}] (uint8 images: data_range=255; [0, 1] floats: data_range=1.0; "
                             "[-1, 1] floats: map them with (x + 1) / 2)")
    if pred_is_float and data_range >= 2 and target.numel():
        t_hi, p_hi = target.max().item(), pred.max().item()
        if 0 < t_hi <= 1 + _RANGE_TOLERANCE and p_hi <= 1 + _PRED_OVERSHOOT:
            raise UsageError(f"data_range={data_range:g} but every value lies in [0, 1] (target up to {t_hi:.4g}, "
                             f"pred up to {p_hi:.4g}): [0, 1] images need data_range=1.0 (or scale them by "
                             f"{data_range:g} first)")


def _check_min_size(x: Tensor, size: int, name: str) -> None:
    if min(x.shape[-2:]) < size:
        raise UsageError(
            f"{name} needs images of at least {size}x{size} pixels, got {tuple(x.shape[-2:])}{_channels_last_hint(x)}"
        )


def _channels_last_hint(x: Tensor) -> str:
    # (N, H, W, C) given for (N, C, H, W) leaves (W, C) as the image size: say so
    return "; channels last? give (N, C, H, W)" if x.shape[-1] in (1, 3, 4) else ""


def _prepare(
    pred: Tensor, target: Tensor, *, data_range: float, y_channel: bool, crop: int
) -> tuple[Tensor, Tensor]:
    """Validate, promote to a common float dtype, crop the border and optionally take luma."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise UsageError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.dim() != 4:
        raise UsageError(f"images must have shape (N, C, H, W), got {tuple(pred.shape)}")
    _check_data_range(data_range)
    crop = check_crop(crop)
    if not isinstance(y_channel, (bool, np.bool_)):
        raise UsageError(f"y_channel must be True or False, got {y_channel!r}")
    for what, x in (("pred", pred), ("target", target)):
        if x.is_complex():
            raise UsageError(f"{what} is {x.dtype}: give real images, integers (0..255) or floats (e.g. [0, 1])")
    if pred.is_floating_point() != target.is_floating_point():
        raise UsageError(f"pred is {pred.dtype} and target {target.dtype}: give both on one scale, both integers "
                         f"(0..255, data_range=255) or both floats (e.g. [0, 1], data_range=1.0)")
    dtype = torch.promote_types(pred.dtype, target.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    elif dtype in (torch.float16, torch.bfloat16):  # half precision loses SSIM's variances (bf16: 0.9961 for 0.9965)
        dtype = torch.float32
    pred_is_float = pred.is_floating_point()
    pred, target = pred.to(dtype), target.to(dtype)
    _check_values(pred, target, float(data_range), pred_is_float=pred_is_float)
    if crop:
        h, w = pred.shape[-2:]
        if 2 * crop >= min(h, w):
            raise UsageError(f"crop={crop} removes the whole {h}x{w} image")
        pred = pred[..., crop : h - crop, crop : w - crop]
        target = target[..., crop : h - crop, crop : w - crop]
    if y_channel:
        if pred.shape[1] != 3:
            raise UsageError(f"y_channel=True needs RGB images (C=3), got C={pred.shape[1]}")
        pred = rgb_to_y(pred, data_range=data_range)
        target = rgb_to_y(target, data_range=data_range)
    return pred, target
