"""``evaluate_pairs``: full-reference metrics (PSNR, SSIM, MS-SSIM) of predicted images against
ground truth, per image and averaged, with the protocol that produced them.

    r = evaluate_pairs("out/", "Set5/", metrics="psnr,ssim", y_channel=True, crop=4)
    r.per_image   # {"baby": {"psnr": 33.1, "ssim": 0.91}, ...}
    r.mean        # {"psnr": ..., "ssim": ...}: the plain mean of the per-image values (the SR-paper convention)

PRED and GT are two image files, two folders (or .zip) matched by relative path without the
file suffix (``a/b.png`` pairs with ``a/b.jpg``; every file needs its partner), two .npz files
with ``images`` of the same shape, or two uint8 arrays. Each pair is compared at its own size;
sizes and channel counts must match within a pair.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganforge.provenance import provenance
from ganforge.errors import UsageError
from ganforge.metrics.evaluation import parse_names
from ganforge.metrics.fullref import check_crop, ms_ssim, psnr, ssim
from ganforge.metrics.imagesets import as_nchw_uint8, decode_file

log = logging.getLogger("ganforge.eval")

PAIR_METRICS = {"psnr": psnr, "ssim": ssim, "ms_ssim": ms_ssim}


@dataclass(frozen=True)
class PairResult:
    per_image: dict[str, dict[str, float]]  # image name -> metric -> value
    mean: dict[str, float]  # metric -> mean over images
    protocol: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.mean, "per_image": self.per_image, "protocol": self.protocol}


def evaluate_pairs(
    pred,
    gt,
    *,
    metrics="psnr,ssim",  # names from PAIR_METRICS; None: the default
    y_channel: bool = False,  # compare the BT.601 luma of RGB images (super-resolution convention)
    crop: int = 0,  # border pixels dropped on each side before comparing
    data_range: float = 255.0,  # span of pixel values: always 255, for the uint8 images loaded here
) -> PairResult:
    """Per-image and mean full-reference metrics of ``pred`` against ``gt`` (see the module docstring)."""
    metrics = parse_names("psnr,ssim" if metrics is None else metrics, PAIR_METRICS)
    crop = check_crop(crop)
    if data_range != 255:  # images are loaded as uint8: any other span misstates every value
        raise UsageError(f"data_range={data_range!r}: evaluate_pairs loads images as uint8 (0..255), so data_range "
                         "is 255; for float images call ganforge.metrics.psnr/ssim with their data_range")
    names, pairs, kind, deep = _pairs(pred, gt)
    if deep:  # without a word, 16-bit files scored their 8-bit rounding: 57.3 dB for a pair 65.6 dB apart
        log.warning("%d image file(s) (e.g. %s) have 16 bits per channel, but evaluate_pairs reads every image at "
                    "8 bits (0..255, data_range 255): PSNR above about 50 dB then mostly measures that rounding, "
                    "and differences below 1/255 vanish", len(deep), deep[0])
    per_image: dict[str, dict[str, float]] = {}
    for name, (p, g) in zip(names, pairs):
        if p.shape != g.shape:
            raise UsageError(
                f"PRED and GT differ for {name}: {_shape(p)} vs {_shape(g)}; pairs must have the same size and channels"
            )
        # uint8 (1, C, H, W) as they are: the metrics compute integers in float64, and judge their range as
        # integers (a dark pair whose pixels are all 0 or 1 is not taken for [0, 1] floats)
        per_image[name] = {m: float(PAIR_METRICS[m](p[None], g[None], data_range=data_range, y_channel=y_channel,
                                                    crop=crop)[0])
                           for m in metrics}
    mean = {m: float(np.mean([v[m] for v in per_image.values()])) for m in metrics}
    protocol = {
        "metrics": list(metrics), "n_pairs": len(per_image), "pairing": kind, "y_channel": y_channel,
        "crop": crop, "data_range": data_range, "averaging": "mean of per-image values",
        "ssim_window": "11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, valid convolution",
        "pred": _ident(pred), "gt": _ident(gt), "bits": 8, **({"files_over_8_bits": len(deep)} if deep else {}),
        **provenance(),
    }
    return PairResult(per_image, mean, protocol)


def _shape(x: Tensor) -> str:
    return f"{x.shape[2]}x{x.shape[1]} with {x.shape[0]} channel(s)"


def _ident(source) -> str:
    return str(Path(source).resolve()) if isinstance(source, (str, os.PathLike)) else type(source).__name__


def _more_than_8_bits(fp) -> bool:
    """Whether the image file ``fp`` stores more than 8 bits per channel (16-bit grey, RGB or RGBA PNG/TIFF,
    32-bit or float TIFF), read from its header: decoding drops that (PIL gives 16-bit RGB as 8-bit RGB)."""
    from ganforge.data.transforms import eight_bit_in_32

    try:
        with Image.open(fp) as img:
            raw = img.tile[0][3] if img.tile else ""
            raw = raw[0] if isinstance(raw, tuple) and raw else raw
            if img.mode == "I":  # a 32-bit TIFF of 0..255 values is an 8-bit picture (as decoding reads it)
                return not eight_bit_in_32(img)
            return img.mode == "F" or img.mode.startswith("I;16") or ";16" in str(raw)
    except Exception:  # not an image: the decoder names it
        return False


def _pairs(pred, gt) -> tuple[list[str], list[tuple[Tensor, Tensor]], str, list[str]]:
    """-> (names, [(pred (C, H, W), gt (C, H, W)) uint8], how they were paired, files with more than 8 bits)."""
    arrays = [isinstance(x, (np.ndarray, Tensor)) for x in (pred, gt)]
    paths = [isinstance(x, (str, os.PathLike)) for x in (pred, gt)]
    if not (all(arrays) or all(paths)):
        raise UsageError(f"PRED is a {type(pred).__name__} and GT a {type(gt).__name__}: give both of one kind, two "
                         "paths (image files, folders/.zip or .npz) or two uint8 arrays/tensors")
    if all(arrays):
        a, b = as_nchw_uint8(pred, "PRED"), as_nchw_uint8(gt, "GT")
        return (*_by_index(a, b, "arrays"), [])
    p, g = Path(pred).expanduser(), Path(gt).expanduser()
    for what, path in (("PRED", p), ("GT", g)):
        if not path.exists():
            raise UsageError(f"{what} {path} does not exist")
    if p.is_file() and g.is_file() and p.suffix.lower() == g.suffix.lower() == ".npz":
        from ganforge.data.npz import load_npz

        a, b = (as_nchw_uint8(load_npz(x)[0], str(x)) for x in (p, g))
        return (*_by_index(a, b, "npz index"), [])
    is_set = [x.is_dir() or x.suffix.lower() == ".zip" for x in (p, g)]
    if all(is_set):
        return _by_name(p, g)
    if not any(is_set) and p.suffix.lower() != ".npz" and g.suffix.lower() != ".npz":
        a, b = decode_file(p), decode_file(g)  # (H, W, C)
        deep = [str(x) for x in (p, g) if _more_than_8_bits(x)]
        return [p.stem], [(torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1))], "two files", deep
    raise UsageError(f"PRED {p} and GT {g} must be of one kind: two image files, two folders/.zip or two .npz")


def _by_index(a: Tensor, b: Tensor, kind: str) -> tuple[list[str], list[tuple[Tensor, Tensor]], str]:
    if a.shape != b.shape:
        raise UsageError(f"PRED and GT differ: {tuple(a.shape)} vs {tuple(b.shape)} (N, C, H, W); they must match")
    return [str(i) for i in range(len(a))], list(zip(a, b)), kind


def _by_name(p: Path, g: Path) -> tuple[list[str], list[tuple[Tensor, Tensor]], str]:
    from ganforge.data.decode import BadImage, open_image
    from ganforge.data.files import ImageFiles
    from ganforge.metrics.imagesets import decoded_to_array

    with ImageFiles(p) as fp, ImageFiles(g) as fg:
        listed = []
        for what, files in (("PRED", fp), ("GT", fg)):
            keyed: dict[str, object] = {}
            for e in files.entries:
                key = str(Path(*e.parts).with_suffix(""))
                if key in keyed:
                    raise UsageError(f"{what} has two images named {key} (different suffixes); keep one")
                keyed[key] = e
            listed.append(keyed)
        kp, kg = listed
        if not kp or set(kp) != set(kg):
            only_p, only_g = sorted(set(kp) - set(kg)), sorted(set(kg) - set(kp))
            detail = f"only in PRED: {', '.join(only_p[:3])}" if only_p else f"only in GT: {', '.join(only_g[:3])}"
            raise UsageError(f"PRED {p} and GT {g} do not hold the same image names ({detail if kp else 'no images'})")

        deep: list[str] = []

        def read(files: ImageFiles, entry) -> Tensor:
            try:
                with files.open(entry) as f:
                    if _more_than_8_bits(f):
                        deep.append(entry.display)
                    f.seek(0)
                    arr = decoded_to_array(open_image(f))
            except (BadImage, OSError) as exc:
                raise UsageError(f"bad image {entry.display}: {exc}") from None
            arr = arr[..., None] if arr.ndim == 2 else arr
            return torch.from_numpy(arr).permute(2, 0, 1)  # (C, H, W)

        names = sorted(kp)
        pairs = [(read(fp, kp[k]), read(fg, kg[k])) for k in names]
        return names, pairs, "file name (suffix ignored)", deep
