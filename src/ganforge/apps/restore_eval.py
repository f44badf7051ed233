"""Score a restorer on a test set: PSNR and SSIM on RGB and on luma, per image and mean.

The protocol (docs/RESTORATION.md), in order, for image i of the test set:

1. degrade (``degrade_example``):
   sr       gt = mod_crop(hr, s); input = sr_degrade(gt, s) (MATLAB bicubic, 8-bit LR)
   denoise  input = gt + N(0, (sigma/255)^2), unclipped, unquantized
   inpaint  mask = make_mask(kind); input = gt with the holes set to 0
   Noise and masks come from a generator seeded with (seed, i), so image i gets the same
   degradation whatever --max-images is, and every method sees the same input.
2. restore: out = restorer(input) (or restorer(input, mask)); for inpainting the known pixels are
   composited back from the input (idempotent for a restorer that already does this).
3. score (``score_pair``): out is quantized to 8 bits (clip, round, as the literature scores uint8
   images); PSNR and SSIM (ganforge.metrics.fullref: MSE over all channels; 11x11 Gaussian SSIM)
   on RGB and on luma, after cropping ``scale`` pixels off each side for SR (0 otherwise).
   Luma is BT.601 as MATLAB rgb2ycbcr (16..235). For a single-channel source image (Set14's
   bridge) the SR literature's scripts skip rgb2ycbcr and score the grey values (0..255) directly;
   we score the full-range luma 0.299 R + 0.587 G + 0.114 B, which equals the grey value when
   R = G = B. (This is worth 0.09 dB of Set14's mean; see docs/RESTORATION.md.)
The mean is the mean of the per-image values (PSNR averaged in dB, as the literature does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganforge.provenance import provenance
from ganforge.apps.degrade import MASK_KINDS, SR_SCALES, TASKS, add_noise, make_mask, mod_crop, quantize, sr_degrade
from ganforge.apps.testsets import TestImage
from ganforge.config import check_seed
from ganforge.errors import UsageError
from ganforge.io import check_can_write, save_png
from ganforge.metrics.fullref import SSIM_WIN_SIZE, psnr, rgb_to_y, ssim

RestoreFn = Callable[..., Tensor]  # restore(degraded, mask=None) -> (1, 3, H, W) in [0, 1]

METRICS = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
RESIZE_KERNEL = "MATLAB imresize bicubic (Keys a=-0.5, antialiased when shrinking), LR rounded to 8 bits"
HOLE_FILL = 0.0  # value of the missing pixels in an inpainting input
STRIP_GAP = 4  # white pixels between the panels of a comparison strip
_FULL_RANGE_LUMA = (0.299, 0.587, 0.114)  # BT.601 weights 65.481, 128.553, 24.966 divided by 219


def check_task_args(task: str, *, scale: int | None, sigma: float | None, mask: str | None) -> None:
    """Reject a task without its one parameter, or with another task's parameter."""
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    given = {"scale": scale, "sigma": sigma, "mask": mask}
    wanted = {"sr": "scale", "denoise": "sigma", "inpaint": "mask"}[task]
    for name, value in given.items():
        if name != wanted and value is not None:
            raise UsageError(f"{name} does not apply to {task}; {task} takes only {wanted}")
    if task == "sr" and (isinstance(scale, bool) or scale not in SR_SCALES):
        raise UsageError(f"SR scale must be one of {', '.join(map(str, SR_SCALES))}, got {scale!r}")
    if task == "denoise":
        # at most 255, as training (degrade.sigma) and apply (--sigma) take: past it the "noise level" is no
        # level of an 8-bit image, and eval printed a table of scores for sigma 1e+300 as for any other
        ok = isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and math.isfinite(sigma) and 0 <= sigma <= 255
        if not ok:
            raise UsageError(f"noise sigma must be a number from 0 to 255 (the 0..255 scale), got {sigma!r}")
    if task == "inpaint" and mask not in MASK_KINDS:
        raise UsageError(f"mask must be one of: {', '.join(MASK_KINDS)}, got {mask!r}")


def example_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator for image ``index``'s noise or mask, independent across (seed, index)."""
    state = int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(state)


def degrade_example(
    task: str, image: Tensor, *, scale: int | None, sigma: float | None, mask: str | None, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(ground truth, degraded input, mask or None) for one (1, 3, H, W) image; see the module docstring."""
    if task == "sr":
        gt = mod_crop(image, scale)
        return gt, sr_degrade(gt, scale), None
    if task == "denoise":
        return image, add_noise(image, float(sigma), generator), None
    m = make_mask(mask, 1, image.shape[-2], image.shape[-1], generator).to(image.device, image.dtype)
    return image, image * (1 - m) + HOLE_FILL * m, m


def score_pair(pred: Tensor, gt: Tensor, *, crop: int = 0, grey: bool = False) -> dict[str, float]:
    """PSNR/SSIM on RGB and luma of one (1, 3, H, W) pair in [0, 1]; pred is quantized to 8 bits first."""
    # Both on the 8-bit grid in float64 (gt already is: this only makes k/255 the same double on
    # both sides, so identical images give exactly PSNR = inf).
    pred = quantize(pred.detach().to("cpu", torch.float64))
    gt = quantize(gt.detach().to("cpu", torch.float64))
    if grey:
        w = torch.tensor(_FULL_RANGE_LUMA, dtype=torch.float64).view(1, 3, 1, 1)
        pred_y, gt_y = (pred * w).sum(1, keepdim=True), (gt * w).sum(1, keepdim=True)
    else:
        pred_y, gt_y = rgb_to_y(pred), rgb_to_y(gt)
    return {
        "psnr_rgb": float(psnr(pred, gt, data_range=1.0, crop=crop)[0]),
        "psnr_y": float(psnr(pred_y, gt_y, data_range=1.0, crop=crop)[0]),
        "ssim_rgb": float(ssim(pred, gt, data_range=1.0, crop=crop)[0]),
        "ssim_y": float(ssim(pred_y, gt_y, data_range=1.0, crop=crop)[0]),
    }


def evaluate_restoration(
    task: str,
    restorer: RestoreFn,
    images: Sequence[TestImage | Tensor | tuple[str, Tensor]],
    *,
    scale: int | None = None,
    sigma: float | None = None,
    mask: str | None = None,
    seed: int = 0,
    strips_dir: str | Path | None = None,
    method: str | None = None,
    data: str = "",
    compare: tuple[str, RestoreFn] | None = None,
) -> dict:
    """Degrade, restore and score every image; optionally against a second (classical) method.

    Returns {"mean": {psnr_rgb, psnr_y, ssim_rgb, ssim_y}, "per_image": [{"name", metrics...,
    "seconds"}], "protocol": {...}, "seconds": total restore time} and, with ``compare=(name,
    restorer)``, a "compare" entry holding the same for that method. Identical images score
    PSNR = inf (kept as float inf; ``json_safe`` turns it into the string "inf").
    strips_dir: write one PNG per image, input | compare | restorer | ground truth (SR input
    enlarged nearest-neighbour); refuses a folder that already holds files.
    """
    check_task_args(task, scale=scale, sigma=sigma, mask=mask)
    check_seed("seed", seed)  # numpy's SeedSequence refuses a negative one with a traceback
    images = [_as_test_image(item, i) for i, item in enumerate(images)]
    if not images:
        raise UsageError("the test set is empty")
    method = method or getattr(restorer, "name", None) or "restorer"
    strips = _strips_folder(strips_dir) if strips_dir is not None else None
    crop = scale if task == "sr" else 0
    _check_sizes(images, task, scale, crop)
    if compare is not None and compare[0] == method:
        raise UsageError(f"--compare {compare[0]} is the method being evaluated; compare with another one")
    runs = [(method, restorer)] + ([compare] if compare is not None else [])
    per_image: dict[str, list[dict]] = {name: [] for name, _ in runs}
    seconds = {name: 0.0 for name, _ in runs}
    for i, item in enumerate(images):
        gt, degraded, m = degrade_example(
            task, item.image, scale=scale, sigma=sigma, mask=mask, generator=example_generator(seed, i)
        )
        outputs = {}
        for name, fn in runs:
            start = time.perf_counter()
            out = fn(degraded) if m is None else fn(degraded, m)
            elapsed = time.perf_counter() - start
            out = _check_output(out, gt, name, item.name)
            if m is not None:
                out = m * out + (1 - m) * gt  # known pixels are the input's (== ground truth there)
            outputs[name] = out
            seconds[name] += elapsed
            row = {"name": item.name, **score_pair(out, gt, crop=crop, grey=item.grey), "seconds": elapsed}
            if getattr(fn, "work_scale", None) == "auto":  # the factor this image's hole was filled at
                row["work_scale"] = round(fn.last_work_scale, 4)
            per_image[name].append(row)
        if strips is not None:
            panels = [_show_input(task, degraded, gt, scale)]
            panels += [outputs[name] for name, _ in reversed(runs)]  # compare (classical) before ours
            _write_strip(strips / f"{i:04d}-{_safe_stem(item.name)}.png", panels + [gt])

    protocol = _protocol(task, method, data, len(images), scale, sigma, mask, seed, crop)
    if getattr(restorer, "work_scale", 1.0) != 1.0:  # inpainted at a reduced scale (Restorer.work_scale)
        protocol["work_scale"] = restorer.work_scale
        if restorer.work_scale == "auto":  # per image in per_image; this is the depth they are relative to
            protocol["trained_hole_depth"] = restorer.trained_depth
    if getattr(restorer, "self_ensemble", False):  # the mean over the 8 rotations / flips (2 flips: upright nets)
        protocol["self_ensemble"] = restorer.ensemble_size
    if hasattr(restorer, "precision"):  # a model: fp32, or bf16 (Restorer's precision, as it ran)
        protocol["precision"] = restorer.precision
    if hasattr(restorer, "tile_for"):  # a model's tiling: "auto" (only images too large to run whole), 0, or a side
        protocol["tile"], protocol["overlap"] = restorer.tile, restorer.overlap
    result = {"mean": _mean(per_image[method]), "per_image": per_image[method], "protocol": protocol}
    result["seconds"] = seconds[method]
    if compare is not None:
        name = compare[0]
        protocol["compare"] = name
        result["compare"] = {"method": name, "mean": _mean(per_image[name]), "per_image": per_image[name]}
        result["compare"]["seconds"] = seconds[name]
    return result


def _check_sizes(images: list[TestImage], task: str, scale: int | None, crop: int) -> None:
    """Every image large enough to be scored, checked before any method runs (a classical method may
    fail on a tiny image in its own way, BM3D even with a segfault at 8 px): SSIM's window must fit
    what is left after SR's mod-crop to a multiple of the scale and its border crop."""
    step = scale if task == "sr" else 1
    need = -(-(SSIM_WIN_SIZE + 2 * crop) // step) * step  # the smallest side that leaves a whole window
    for item in images:
        h, w = item.image.shape[-2:]
        if min(h - h % step, w - w % step) - 2 * crop < SSIM_WIN_SIZE:
            why = f" (SSIM's {SSIM_WIN_SIZE} px window after the x{scale} mod-crop and {crop} px border crop)" if crop else \
                  f" (SSIM's {SSIM_WIN_SIZE} px window)"
            raise UsageError(f"test image {item.name} is {w}x{h} pixels: {task} evaluation needs at least {need}x{need}"
                             f"{why}; leave it out of --data or raise --crop")


def json_safe(obj):
    """Replace float inf/nan (not valid JSON) by the strings "inf", "-inf", "nan", recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _mean(rows: list[dict]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRICS}


def _protocol(task, method, data, n, scale, sigma, mask, seed, crop) -> dict:
    p = {"task": task, "method": method, "data": data, "n_images": n}
    if task == "sr":
        p.update(scale=scale, resize_kernel=RESIZE_KERNEL)
    elif task == "denoise":
        p.update(sigma=float(sigma), noise="additive white Gaussian, sigma/255 on [0, 1] images, unclipped")
    else:
        p.update(mask=mask, hole_fill=HOLE_FILL, composite="known pixels taken from the input")
    p.update(
        border_crop=crop,
        quantized="outputs rounded to 8 bits before scoring",
        y_channel="BT.601 rgb2ycbcr (16..235); single-channel sources scored on their grey values",
        seed=seed,
        **provenance(),
    )
    return p


def _as_test_image(item, index: int) -> TestImage:
    """Accept TestImage, a bare (1, 3, H, W) tensor, or a (name, tensor) pair."""
    if isinstance(item, TestImage):
        return item
    if isinstance(item, Tensor):
        return TestImage(f"{index:04d}", item, False)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor):
        return TestImage(str(item[0]), item[1], False)
    raise UsageError(f"test image {index} must be a TestImage, a tensor or a (name, tensor) pair")


def _check_output(out: Tensor, gt: Tensor, method: str, name: str) -> Tensor:
    if not isinstance(out, Tensor) or tuple(out.shape) != tuple(gt.shape):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise UsageError(f"{method} returned {got} for {name}; expected {tuple(gt.shape)}")
    if not out.is_floating_point() or not torch.isfinite(out).all():
        raise UsageError(f"{method} returned non-finite or non-float values for {name}")
    return out.to(gt.device, gt.dtype)


def _show_input(task: str, degraded: Tensor, gt: Tensor, scale: int | None) -> Tensor:
    """The degraded input at the ground truth's size (SR: nearest-neighbour enlargement)."""
    if task == "sr":
        degraded = degraded.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    return degraded[..., : gt.shape[-2], : gt.shape[-1]].clamp(0, 1)


def _strips_folder(strips_dir: str | Path) -> Path:
    folder = Path(strips_dir)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"strips folder {folder} already exists and is not empty; give a new or empty folder")
    # before the first image is restored: a strips folder under a file or in /proc failed only at its first strip
    return check_can_write(folder, f"strips folder {folder}")


def _write_strip(path: Path, panels: list[Tensor]) -> None:
    """Panels (1, 3, H, W) in [0, 1] side by side with white gaps, as an 8-bit PNG."""
    if path.exists():
        raise UsageError(f"refusing to overwrite {path}")
    gap = torch.ones(1, 3, panels[0].shape[-2], STRIP_GAP, dtype=torch.float64)
    row = []
    for k, p in enumerate(panels):
        row += ([gap] if k else []) + [quantize(p.detach().to("cpu", torch.float64))]
    strip = torch.cat(row, dim=-1)[0]  # (3, H, W_total)
    save_png((strip * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), path)


def _safe_stem(name: str) -> str:
    stem = Path(name).stem if "/" not in name else name.rsplit(".", 1)[0].replace("/", "_")
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
