"""Training data for restoration: photos kept in memory as uint8, random patches, and the
degradation synthesised on the fly with ganforge.apps.degrade (the same functions evaluation uses).

    photos = load_photos("skimage")                   # list of uint8 (3, H, W) tensors, native size
    sampler = PatchSampler(photos, cfg, seed=0)       # cfg: a RestoreConfig
    batch = sampler.sample()                          # Batch(inp, target, mask, sigma), all on the CPU

One seed gives the same batches (crops, flips, noise, masks) on every run: all randomness comes
from one torch.Generator owned by the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganforge.apps.degrade import add_noise, make_mask, sr_degrade
from ganforge.apps.restore_config import SKIMAGE_SOURCE, RestoreConfig, mask_kinds
from ganforge.apps.restore_models import fill_holes
from ganforge.data.decode import DEFAULT_MAX_PIXELS
from ganforge.data.files import ImageFiles, decode_entries
from ganforge.data.transforms import to_8bit
from ganforge.errors import UsageError

# scikit-image's bundled colour/grey photos (no download needed): the default training set.
SKIMAGE_PHOTOS = (
    "astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "motorcycle_left", "brick",
    "camera", "chelsea", "gravel", "grass",
)


def _skimage_photos() -> list[np.ndarray]:
    try:
        import skimage.data
    except ImportError:
        raise UsageError(
            "the default restoration photos come from scikit-image: pip install scikit-image, "
            "or give your own photos with --data PATH (a folder or .zip)"
        ) from None
    out = []
    for name in SKIMAGE_PHOTOS:
        try:
            arr = np.asarray(skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)())
        except Exception:  # a sample missing from this scikit-image version (some need pooch)
            continue
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.dtype != np.uint8:
            arr = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
        out.append(np.ascontiguousarray(arr[..., :3]))
    if not out:
        raise UsageError("scikit-image provided none of its sample photos; give your own photos with --data PATH")
    return out


def _file_photos(path: Path, max_images: int) -> list[np.ndarray]:
    files = ImageFiles(path)
    with files:
        entries = files.entries[: max_images or None]
        if not entries:
            raise UsageError(f"no images found in {path} (png, jpg, jpeg, bmp, ... in sub-folders too)")
        out: list[np.ndarray | None] = [None] * len(entries)

        def keep(i: int, img: Image.Image) -> None:  # runs in a worker thread, writes its own slot
            out[i] = np.array(to_8bit(img, 3), dtype=np.uint8)  # (H, W, 3), writable

        bad = decode_entries(files, entries, keep, max_pixels=DEFAULT_MAX_PIXELS, stop_at_first_bad=True)
    if bad:
        i, reason = bad[0]
        raise UsageError(f"bad image {entries[i].display}: {reason}; fix or delete it (`ganforge data check {path}` lists every bad file)")
    return out  # type: ignore[return-value]


def load_photos(source: str, *, max_images: int = 0) -> list[Tensor]:
    """Photos at their native size as uint8 (3, H, W) tensors, in a deterministic order.

    source: "skimage" (scikit-image's sample photos) or a folder (recursive) / .zip of images."""
    if source == SKIMAGE_SOURCE:
        arrays = _skimage_photos()[: max_images or None]
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise UsageError(f"--data {source!r} does not exist: give a folder or .zip of photos, or leave it out for scikit-image's samples")
        if not (path.is_dir() or path.suffix.lower() == ".zip"):
            raise UsageError(f"--data {source!r} is not a folder or a .zip of photos")
        arrays = _file_photos(path, max_images)
    return [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]  # (3, H, W) uint8


def split_photos(photos: list[Tensor], val_images: int, min_side: int) -> tuple[list[Tensor], list[Tensor]]:
    """(train, val): the last ``val_images`` photos are held out. Photos smaller than a training
    patch cannot be cropped and are refused with the count."""
    if val_images >= len(photos):
        raise UsageError(f"data.val_images={val_images} leaves no training photos out of {len(photos)}: lower it")
    train, val = photos[: len(photos) - val_images], photos[len(photos) - val_images :]
    small = [p for p in train if min(p.shape[-2:]) < min_side]
    if small:
        raise UsageError(f"{len(small)} training photo(s) are smaller than data.patch_size={min_side} (e.g. {tuple(small[0].shape[-2:])}): lower data.patch_size")
    return train, val


@dataclass
class Batch:
    """One training batch, on the CPU (the loop moves it)."""

    inp: Tensor  # the network input (N, 3, h, w) in [0, 1] (noisy inputs are unclipped): LR / noisy / holed
    target: Tensor  # the clean patch (N, 3, H, W) in [0, 1]
    mask: Tensor | None  # inpaint: (N, 1, H, W), 1 = missing; else None
    sigma: Tensor | None  # denoise: (N,) noise std on the 0..1 scale; else None

    def to(self, device: torch.device) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.inp), move(self.target), move(self.mask), move(self.sigma))


def degrade_batch(target: Tensor, cfg: RestoreConfig, g: torch.Generator) -> Batch:
    """The degradation of cfg.task applied to clean patches (N, 3, H, W) in [0, 1]."""
    d = cfg.degrade
    if cfg.task == "sr":
        return Batch(sr_degrade(target, d.scale), target, None, None)
    if cfg.task == "denoise":
        if d.blind:  # one level per image, sigma ~ U(sigma_min, sigma)
            sig = d.sigma_min + (d.sigma - d.sigma_min) * torch.rand(target.shape[0], generator=g, dtype=torch.float64)
        else:
            sig = torch.full((target.shape[0],), float(d.sigma), dtype=torch.float64)
        noisy = torch.cat([add_noise(target[i : i + 1], float(s), g) for i, s in enumerate(sig.tolist())])
        return Batch(noisy, target, None, (sig / 255.0).float())
    n, _, h, w = target.shape
    kinds = mask_kinds(cfg)
    picks = torch.randint(len(kinds), (n,), generator=g).tolist() if len(kinds) > 1 else [0] * n
    mask = torch.cat([make_mask(kinds[k], 1, h, w, g) for k in picks])  # (N, 1, H, W)
    return Batch(fill_holes(target, mask, "zero"), target, mask, None)  # holes hold no information


class PatchSampler:
    """Random patches of ``patch_size`` from uint8 photos, augmented with flips and 90-degree
    rotations (flips only with data.rotate=false), then degraded for the task. ``sample()`` -> Batch on the CPU."""

    def __init__(self, photos: list[Tensor], cfg: RestoreConfig, *, seed: int = 0):
        if not photos:
            raise UsageError("no training photos")
        self.photos = photos
        self.cfg = cfg
        self.size = cfg.data.patch_size
        self.batch_size = cfg.train.batch_size
        self.augment = cfg.data.augment
        self.rotate = cfg.data.rotate
        self.g = torch.Generator().manual_seed(seed)
        # Same-sized photos (e.g. CIFAR) stack into one (N, 3, H, W) tensor: one gather per batch.
        same = len({tuple(p.shape) for p in photos}) == 1
        self.stack = torch.stack(photos) if same else None

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (), generator=self.g))

    def patches(self) -> Tensor:
        """(N, 3, P, P) float in [0, 1]."""
        n, p = self.batch_size, self.size
        out = torch.empty(n, 3, p, p, dtype=torch.uint8)
        for i in range(n):
            photo = self.photos[self._randint(len(self.photos))] if self.stack is None else self.stack[self._randint(len(self.stack))]
            h, w = photo.shape[-2:]
            top, left = self._randint(h - p + 1), self._randint(w - p + 1)
            patch = photo[:, top : top + p, left : left + p]
            if self.augment:
                flip, rot = self._randint(2), self._randint(4)  # both drawn either way: same stream
                patch = patch.flip(-1) if flip else patch
                patch = torch.rot90(patch, rot, dims=(-2, -1)) if self.rotate else patch
            out[i] = patch
        return out.float() / 255.0

    def sample(self) -> Batch:
        return degrade_batch(self.patches(), self.cfg, self.g)


def validation_set(photos: list[Tensor], cfg: RestoreConfig, *, seed: int = 1234) -> list[Batch]:
    """Held-out photos as single-image batches: the centre crop of side data.val_crop (or the
    whole photo), degraded once with a fixed seed, so every validation pass sees the same inputs."""
    g = torch.Generator().manual_seed(seed)
    crop, scale = cfg.data.val_crop, cfg.degrade.scale if cfg.task == "sr" else 1
    out = []
    for photo in photos:
        h, w = photo.shape[-2:]
        ch, cw = (min(crop, h), min(crop, w)) if crop else (h, w)
        ch, cw = ch - ch % (4 * scale), cw - cw % (4 * scale)  # whole LR pixels; inpaint nets like /4
        top, left = (h - ch) // 2, (w - cw) // 2
        clean = photo[None, :, top : top + ch, left : left + cw].float() / 255.0
        out.append(degrade_batch(clean, cfg, g))
    return out
