"""Applying a Restorer to image files and folders (``ganforge sr|denoise|inpaint apply``): the
inpainting holes (mask files or folders, generated holes, an image's own transparent pixels),
every image checked before the first output is written, and each output written as its input was
(grey, 16-bit, alpha: ganforge.apps.restore_files).
"""

from __future__ import annotations

import logging
from glob import escape as glob_escape
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ganforge.apps.degrade import APPLY_MASK_KINDS, make_mask
from ganforge.apps.restore_config import RestoreConfig, mask_kinds
from ganforge.apps.restore_files import (check_output, mask_from_alpha, plan_outputs, read_image_file,
                                         read_mask, resize_alpha, sixteen_bits_kept, write_image)
from ganforge.config import check_seed
from ganforge.data.decode import is_image_name
from ganforge.errors import UsageError
from ganforge.logs import WarnOnce

if TYPE_CHECKING:  # restore_apply imports this module (apply_to_path is its API too)
    from ganforge.apps.restore_apply import Restorer

log = logging.getLogger("ganforge.restore")


def _warn_if_centre_only(cfg: RestoreConfig, mask_kind: str | None) -> None:
    """A net trained on centre holes alone fills other holes worse than OpenCV's Telea (the shipped
    inpaint-center on CIFAR: 23.4 vs 30.1 dB with strokes; docs/RESTORATION.md, "Free-form holes"),
    so any hole but a generated centre one gets a warning naming the model that does better."""
    if mask_kind in ("center", "square") or not set(mask_kinds(cfg)) <= {"center", "square"}:
        return
    hole = f"--mask-kind {mask_kind}" if mask_kind else "a mask file"
    log.warning("this model was trained on centre holes only (degrade.mask_kinds=%s): with %s, a hole that is not "
                "a centred square comes out worse than `telea`; use inpaint-free, trained on boxes and strokes",
                cfg.degrade.mask_kinds, hole)


def _mask_files(mask: Path, inp: Path, sources: list[Path]) -> dict[Path, Path]:
    """Each input image's mask file: ``mask`` itself for a single image; for a folder, the file at the
    same relative path in the folder ``mask``, or with the same stem and another image suffix
    (photo.jpg -> photo.png). All are found before anything runs; a missing or ambiguous one is a
    UsageError naming the image."""
    if not mask.exists():
        raise UsageError(f"--mask {mask} does not exist: give a mask image (white = missing) or, for a folder of "
                         "images, a folder of masks with the same names")
    if not inp.is_dir():
        if mask.is_dir():
            raise UsageError(f"--mask {mask} is a folder but the input {inp} is one image: give its mask image")
        if mask.resolve() == inp.resolve():  # as the input folder given as --mask: its bright pixels became the hole
            raise UsageError(f"--mask {mask} is the input image itself: give a mask image (white = missing), or "
                             "--mask-kind alpha to fill the input's transparent pixels")
        return {inp: mask}
    if not mask.is_dir():
        raise UsageError(f"--mask {mask} is one image but the input {inp} is a folder: give a folder of masks "
                         "with the images' names, or --mask-kind")
    found = {}
    for src in sources:
        rel = src.relative_to(inp)
        same = mask / rel
        cands = [same] if same.is_file() else sorted(
            p for p in (mask / rel.parent).glob(glob_escape(rel.stem) + ".*") if p.is_file() and is_image_name(p.name))
        if len(cands) != 1:
            what = "no mask" if not cands else f"{len(cands)} masks ({', '.join(p.name for p in cands)})"
            raise UsageError(f"{what} for {rel} in {mask}: each image needs one mask of the same name "
                             f"({rel.with_suffix('.png')})")
        found[src] = cands[0]
    return found


def _without_mask_folder(pairs: list[tuple[Path, Path]], mask: Path, inp: Path) -> list[tuple[Path, Path]]:
    """A folder of masks kept inside the input folder (photos/masks/) holds images too: they are
    masks, not photos to fill, so they are left out (and said so) instead of each wanting a mask."""
    if not (inp.is_dir() and mask.is_dir()):
        return pairs
    mdir = mask.resolve()
    if mdir == inp.resolve():
        raise UsageError(f"--mask {mask} is the input folder itself: keep the masks in a folder of their own "
                         "(the same names as the images)")
    kept = [(src, dst) for src, dst in pairs if not src.resolve().is_relative_to(mdir)]
    if len(kept) < len(pairs):
        log.info("left out %d image(s) inside the mask folder %s: they are masks, not photos", len(pairs) - len(kept), mask)
    return kept


def generated_mask(kind: str, src: Path, h: int, w: int, gen: torch.Generator) -> Tensor:
    """make_mask's (1, 1, h, w) hole of ``kind`` for the image ``src``, refused like a mask file
    (read_mask) when it marks no pixel or every pixel: on a tiny image a centre hole rounds to
    nothing (1x1) and strokes cover it all (3x1), and either output would be no inpainting."""
    mask = make_mask(kind, 1, h, w, gen)
    if not mask.any() or mask.all():
        what = "no pixel as missing" if not mask.any() else "every pixel as missing (nothing is left to fill from)"
        raise UsageError(f"--mask-kind {kind} on {src} ({w}x{h}) marks {what}: the image is too small for a "
                         "generated hole; give --mask MASK.png (white = missing)")
    return mask


def _check_folder(pairs: list[tuple[Path, Path]], masks: dict[Path, Path] | None, mask_kind: str | None,
                  seed: int = 0) -> None:
    """Every image of a folder is read (and its mask, or its alpha hole, or its generated hole drawn
    as apply will draw it, from ``seed``) before the first output is written, so a damaged photo or a
    mask of the wrong size is a UsageError naming it, not a stop half-way through with some outputs
    written. The images are decoded twice; a decode is a small share of a network pass (tens of ms
    against seconds for a photo on the CPU)."""
    gen = torch.Generator().manual_seed(seed)
    for src, dst in pairs:
        img = read_image_file(src)  # (1, 3, H, W) or UsageError "cannot read SRC: ..."
        if mask_kind == "alpha":
            mask_from_alpha(img.alpha, src)
        elif mask_kind is not None:
            generated_mask(mask_kind, src, *img.rgb.shape[-2:], gen)
        elif masks is not None:
            read_mask(masks[src], tuple(img.rgb.shape[-2:]))
        check_output(dst, src, alpha=img.alpha is not None and mask_kind != "alpha", grey=img.grey, bits=img.bits)
    log.info("checked all %d images%s before restoring any", len(pairs), " and their masks" if masks else "")


def apply_to_path(restorer: Restorer, inp: str | Path, out: str | Path, *, mask_path: str | Path | None = None,
                  mask_kind: str | None = None, seed: int = 0, force: bool = False, progress: bool = False) -> list[Path]:
    """Restore an image file or a folder of images into ``out``; returns the written files.
    Inpainting takes ``mask_path`` (white = missing; a mask image for a single image, a folder of
    masks named as the input folder's images for a folder: ``_mask_files``) or ``mask_kind``
    (center | boxes | strokes | square, drawn with ``seed``; or alpha: each image's own transparent
    pixels, the hole an image editor's eraser leaves): the masked pixels are treated as missing.
    Each output keeps its input's kind (grey, alpha; with alpha as the mask the filled output is
    opaque; ganforge.apps.restore_files). ``progress``: a
    bar of network calls per image on stderr, where stderr is a terminal."""
    check_seed("seed", seed)  # torch.Generator.manual_seed overflows past 64 bits, refuses some negatives
    pairs = plan_outputs(Path(inp), Path(out), force=force, mask=None if mask_path is None else Path(mask_path))
    if restorer.task == "inpaint":
        if (mask_path is None) == (mask_kind is None):
            raise UsageError("inpainting needs exactly one of --mask MASK.png (white = missing) or "
                             f"--mask-kind {'|'.join(APPLY_MASK_KINDS)}")
        if mask_path is not None:
            pairs = _without_mask_folder(pairs, Path(mask_path), Path(inp))
            masks = _mask_files(Path(mask_path), Path(inp), [src for src, _ in pairs])
    elif mask_path is not None or mask_kind is not None:
        raise UsageError(f"--mask and --mask-kind are for inpainting; this is a {restorer.task} model")
    once = WarnOnce()  # a folder is read twice (checked, then restored): each file's warnings once
    log.addFilter(once)
    try:
        if len(pairs) > 1:
            _check_folder(pairs, masks if mask_path is not None else None, mask_kind, seed)
        return _restore_pairs(restorer, pairs, masks if mask_path is not None else None, mask_path, mask_kind, seed,
                              progress)
    finally:
        log.removeFilter(once)


def _restore_pairs(restorer: Restorer, pairs: list[tuple[Path, Path]], masks: dict[Path, Path] | None,
                   mask_path, mask_kind: str | None, seed: int, progress: bool) -> list[Path]:
    """Restore each (input, output) pair in turn (apply_to_path has checked them) -> the written files."""
    gen = torch.Generator().manual_seed(seed)
    written = []
    for src, dst in pairs:
        img = read_image_file(src)
        x, mask, alpha = img.rgb, None, img.alpha  # x: (1, 3, H, W); alpha: (H, W) uint8 | None
        if restorer.task == "inpaint":
            h, w = x.shape[-2:]
            if mask_kind == "alpha":  # the transparent pixels are the hole; once filled, the image is opaque
                mask, alpha = mask_from_alpha(img.alpha, src), None
            elif mask_path is not None:
                mask = read_mask(masks[src], (h, w))
            else:
                mask = generated_mask(mask_kind, src, h, w, gen)
            x = x * (1 - mask)
        check_output(dst, src, alpha=alpha is not None, grey=img.grey, bits=img.bits)  # before the network runs
        if mask is not None and not written:  # once, when the first image is ready to run
            _warn_if_centre_only(restorer.config, mask_kind)
        if alpha is not None and restorer.task == "sr":
            alpha = resize_alpha(alpha, restorer.scale)
        calls = restorer.net_calls(*x.shape[-2:], mask)
        with tqdm(total=calls, desc=f"{len(written) + 1}/{len(pairs)} {src.name}", unit="tile", leave=False,
                  disable=None if progress else True) as bar:
            restorer.on_call = bar.update
            try:
                y = restorer(x, mask)
            finally:
                restorer.on_call = None
        if restorer.task == "inpaint" and restorer.work_scale == "auto":
            log.info("%s: filled at work scale %.3g", src.name, restorer.last_work_scale)
        if img.bits == 16 and not sixteen_bits_kept(dst, grey=img.grey, alpha=alpha is not None):
            grey_alpha = img.grey and alpha is not None  # 16-bit grey+alpha: PNG only (.tif stores it with 8)
            log.warning("%s has 16 bits per channel but %s stores 8%s: write %s to keep 16", src.name, dst.suffix,
                        " with alpha" if alpha is not None else "", ".png" if grey_alpha else ".png or .tif")
        write_image(y, dst, grey=img.grey, alpha=alpha, bits=img.bits)
        written.append(dst)
    return written
