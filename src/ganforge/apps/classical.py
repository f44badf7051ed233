"""Classical restoration baselines as *restorers*, the interface every restoration method shares:

    restore(degraded: Tensor, mask: Tensor | None = None) -> Tensor

degraded is (1, 3, h, w) (the LR image for SR, the noisy image for denoising, the image with holes
for inpainting, with ``mask`` (1, 1, H, W), 1 = missing); the result is (1, 3, H, W) in [0, 1].

  bicubic  sr       MATLAB-style bicubic upscaling (degrade.imresize), the SR baseline
  nlmeans  denoise  scikit-image non-local means with the true sigma
  bm3d     denoise  the ``bm3d`` package's colour BM3D (bm3d_rgb) with the true sigma
  telea    inpaint  OpenCV cv2.inpaint, INPAINT_TELEA
  ns       inpaint  OpenCV cv2.inpaint, INPAINT_NS (Navier-Stokes)
  input    denoise, inpaint   the degraded input unchanged (the "do nothing" row of a table)

scikit-image, OpenCV and bm3d are optional (``pip install 'ganforge[restore]'``); they are
imported when a restorer is built, and a missing one is a UsageError naming the extra.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from ganforge.apps.degrade import imresize, quantize
from ganforge.errors import UsageError

EXTRA = "restore"  # the pip extra that brings scikit-image, opencv-python-headless and bm3d

# Parameters, declared once (docs/RESTORATION.md names them).
NLMEANS_PATCH_SIZE = 5  # pixels; scikit-image's denoising gallery example
NLMEANS_PATCH_DISTANCE = 6  # search radius in pixels; same example
NLMEANS_H_PER_SIGMA = 0.8  # h = 0.8 sigma: scikit-image's advice for fast_mode with sigma given
BM3D_PROFILE = "np"  # bm3d's default ("normal profile")
BM3D_COLORSPACE = "opp"  # bm3d_rgb's default opponent colour transform
INPAINT_RADIUS = 3  # pixels considered around each hole pixel (the OpenCV tutorial's value)


@dataclass(frozen=True)
class Restorer:
    """A named restoration method bound to its task parameters; call it like a function."""

    name: str
    task: str
    fn: Callable[[Tensor, Tensor | None], Tensor]
    scale: int | None = None  # SR factor
    sigma: float | None = None  # noise sigma on the 0..255 scale

    def __call__(self, degraded: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.fn(degraded, mask)


@dataclass(frozen=True)
class ClassicalMethod:
    tasks: tuple[str, ...]
    description: str
    build: Callable[..., Callable[[Tensor, Tensor | None], Tensor]]  # (scale=, sigma=) -> fn


def make_classical(name: str, task: str, *, scale: int | None = None, sigma: float | None = None) -> Restorer:
    """The classical method ``name`` as a restorer for ``task`` (scale for SR, sigma for denoising)."""
    if name not in CLASSICAL:
        raise UsageError(f"unknown classical method {name!r}; choose one of: {', '.join(CLASSICAL)}")
    method = CLASSICAL[name]
    if task not in method.tasks:
        fits = [n for n, m in CLASSICAL.items() if task in m.tasks]
        raise UsageError(
            f"{name!r} is a {'/'.join(method.tasks)} method, not for {task}; for {task} use: {', '.join(fits)}"
        )
    if task == "sr" and scale is None:
        raise UsageError(f"{name} needs the SR scale")
    if task == "denoise" and name != "input" and sigma is None:
        raise UsageError(f"{name} needs the noise sigma")
    return Restorer(name, task, method.build(scale=scale, sigma=sigma), scale=scale, sigma=sigma)


def _optional(module: str, pip_name: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"this method needs {pip_name}; install it with: pip install 'ganforge[{EXTRA}]'"
        ) from None


def _to_hwc(x: Tensor) -> np.ndarray:
    """(1, C, H, W) tensor -> (H, W, C) float64 array."""
    return x[0].detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()


def _from_hwc(a: np.ndarray, like: Tensor) -> Tensor:
    """(H, W, C) array -> (1, C, H, W) tensor with like's dtype and device, clipped to [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
    return t.to(like.device, like.dtype).clamp(0, 1)


def _build_input(**_: object) -> Callable[[Tensor, Tensor | None], Tensor]:
    return lambda degraded, mask=None: degraded.clamp(0, 1)


def _build_bicubic(*, scale: int | None, **_: object) -> Callable[[Tensor, Tensor | None], Tensor]:
    def fn(lr: Tensor, mask: Tensor | None = None) -> Tensor:
        return imresize(lr, float(scale)).clamp(0, 1)  # (1, 3, s h, s w)

    return fn


def _build_nlmeans(*, sigma: float | None, **_: object) -> Callable[[Tensor, Tensor | None], Tensor]:
    restoration = _optional("skimage.restoration", "scikit-image")
    s = float(sigma) / 255.0

    def fn(noisy: Tensor, mask: Tensor | None = None) -> Tensor:
        out = restoration.denoise_nl_means(
            _to_hwc(noisy),
            h=NLMEANS_H_PER_SIGMA * s,
            sigma=s,
            fast_mode=True,
            patch_size=NLMEANS_PATCH_SIZE,
            patch_distance=NLMEANS_PATCH_DISTANCE,
            channel_axis=-1,
            preserve_range=True,  # noisy values lie outside [0, 1]; keep them as they are
        )
        return _from_hwc(out, noisy)

    return fn


def _build_bm3d(*, sigma: float | None, **_: object) -> Callable[[Tensor, Tensor | None], Tensor]:
    bm3d = _optional("bm3d", "bm3d")
    s = float(sigma) / 255.0

    def fn(noisy: Tensor, mask: Tensor | None = None) -> Tensor:
        if noisy.shape[1] != 3:
            raise UsageError(f"bm3d_rgb needs RGB images, got {noisy.shape[1]} channels")
        out = bm3d.bm3d_rgb(_to_hwc(noisy), s, profile=BM3D_PROFILE, colorspace=BM3D_COLORSPACE)
        return _from_hwc(out, noisy)

    return fn


def _build_cv2(flag_name: str) -> Callable[..., Callable[[Tensor, Tensor | None], Tensor]]:
    def build(**_: object) -> Callable[[Tensor, Tensor | None], Tensor]:
        cv2 = _optional("cv2", "opencv-python-headless")
        flag = getattr(cv2, flag_name)

        def fn(image: Tensor, mask: Tensor | None = None) -> Tensor:
            if mask is None:
                raise UsageError("inpainting needs a mask (1 = missing pixel)")
            # OpenCV works on 8-bit images; the channels are filled independently, so RGB order is fine.
            img8 = (quantize(image.clamp(0, 1)) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()
            m8 = (mask[0, 0] > 0.5).to(torch.uint8).cpu().numpy()  # (H, W), nonzero = inpaint
            out = cv2.inpaint(np.ascontiguousarray(img8), m8, INPAINT_RADIUS, flag).astype(np.float64) / 255.0
            restored = _from_hwc(out, image)
            m = mask.to(image.dtype)
            return m * restored + (1 - m) * image  # known pixels untouched

        return fn

    return build


CLASSICAL: dict[str, ClassicalMethod] = {
    "bicubic": ClassicalMethod(("sr",), "MATLAB-style bicubic upscaling", _build_bicubic),
    "nlmeans": ClassicalMethod(("denoise",), "scikit-image non-local means, true sigma", _build_nlmeans),
    "bm3d": ClassicalMethod(("denoise",), "bm3d package, colour BM3D (bm3d_rgb), true sigma", _build_bm3d),
    "telea": ClassicalMethod(("inpaint",), "OpenCV inpainting, Telea's fast marching", _build_cv2("INPAINT_TELEA")),
    "ns": ClassicalMethod(("inpaint",), "OpenCV inpainting, Navier-Stokes", _build_cv2("INPAINT_NS")),
    "input": ClassicalMethod(("denoise", "inpaint"), "the degraded input itself (no restoration)", _build_input),
}
