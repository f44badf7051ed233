"""Training data for restoration: photos kept in memory as uint8, random patches, and the
degradation synthesised on the fly with ganforge.apps.degrade (the same functions evaluation uses).

    photos = load_photos("skimage")                   # list of uint8 (3, H, W) tensors, native size
    sampler = PatchSampler(photos, cfg, seed=0, device="cuda")  # cfg: a RestoreConfig
    batch = sampler.sample()                          # Batch(inp, target, mask, sigma) on that device

One seed gives the same batches (crops, flips, noise, masks) on every run and every device: all
randomness comes from one CPU torch.Generator owned by the sampler. With data.on_device (the default)
the photos live on the training device and a batch is cut there in one gather, so a GPU is not
held up by the CPU cutting and degrading patches one at a time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ganforge.apps.degrade import imresize, make_mask, quantize, sr_degrade
from ganforge.apps.restore_config import SKIMAGE_SOURCE, RestoreConfig, mask_kinds, min_val_crop
from ganforge.apps.restore_files import image_header, refuse_planar_tiff
from ganforge.apps.restore_files16 import TIFF_MAGIC, grey_alpha16_of
from ganforge.apps.restore_models import fill_holes
from ganforge.data.decode import DEFAULT_MAX_PIXELS
from ganforge.data.files import Entry, ImageFiles, decode_entries
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
        refused: dict[int, str] = {}  # entry -> apply's refusal of a planar TIFF that PIL misreads

        def keep(i: int, img: Image.Image) -> str | None:  # runs in a worker thread, writes its own slot
            try:  # the tags PIL parsed as it opened the file, checked as apply checks them
                refuse_planar_tiff(entries[i].display, image_header(img))
            except UsageError as exc:
                refused[i] = str(exc)
                return "planar TIFF"  # a bad entry: the first one stops the loading
            out[i] = np.array(to_8bit(img, 3), dtype=np.uint8)  # (H, W, 3), writable
            return None

        todo = list(range(len(entries)))  # the entries not loaded yet
        while todo:  # one pass, unless a file that PIL cannot decode is one apply reads past PIL
            bad = decode_entries(files, [entries[i] for i in todo], lambda j, img: keep(todo[j], img),
                                 max_pixels=DEFAULT_MAX_PIXELS, stop_at_first_bad=True)
            if not bad:
                break
            i, reason = todo[bad[0][0]], bad[0][1]
            if i in refused:  # in apply's words: `ganforge data check` does not know this one
                raise UsageError(refused[i])
            out[i] = _read_past_pil(files, entries[i])
            if out[i] is None:
                raise UsageError(f"bad image {entries[i].display}: {reason}; fix or delete it "
                                 f"(`ganforge data check {path}` lists every bad file)")
            # the entries before i were all loaded (the first bad one is reported), some after it too
            todo = [k for k in todo if out[k] is None]
    return out  # type: ignore[return-value]


def _read_past_pil(files: ImageFiles, entry: Entry) -> np.ndarray | None:
    """A training photo that PIL failed to decode, read or refused as ``apply`` reads or refuses it
    (restore_files.read_image_file), or None where apply cannot read it either (the caller names it bad):
    a 16-bit grey+alpha TIFF, which PIL cannot open, through tifffile (restore_files16), and an
    uncompressed planar grey+alpha TIFF, whose decode PIL fails with "unknown raw mode", refused in
    apply's one line saying what to save it as. -> (H, W, 3) uint8: the 8-bit levels PIL reads from the
    same image saved as a 16-bit grey+alpha PNG (the high byte), composited on black as every
    photo with alpha is (to_8bit)."""
    try:
        with files.open(entry) as fp:
            magic = fp.read(4)
            if magic not in TIFF_MAGIC:  # read whole only if it is a TIFF
                return None
            data = magic + fp.read()
    except OSError:
        return None
    try:
        with Image.open(io.BytesIO(data)) as h:
            header = image_header(h)
    except Exception:  # PIL cannot open it at all (a 16-bit grey+alpha TIFF): read below, or bad
        header = None
    refuse_planar_tiff(entry.display, header)
    levels = grey_alpha16_of(data, entry.display)  # (H, W, 1 | 2) uint16 | None
    if levels is None:
        return None
    eight = (levels >> 8).astype(np.uint8)  # (H, W, 1 | 2)
    img = Image.fromarray(eight[..., 0] if eight.shape[2] == 1 else eight)  # mode L | LA
    return np.array(to_8bit(img, 3), dtype=np.uint8)  # (H, W, 3)


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


def shrink_photos(photos: list[Tensor], factor: float) -> list[Tensor]:
    """Each uint8 (3, H, W) photo scaled by ``factor`` <= 1 (MATLAB bicubic, antialiased), rounded
    back to uint8 (3, ceil(factor H), ceil(factor W)). The photos are returned as they are at 1.

    Why: a JPEG photo (the usual training folder; sun_hays80 is all 4:2:0) stores its chroma at half
    resolution and carries 8x8 block artefacts, so a denoiser trained on it at native size learns
    that colour has no detail finer than 2 px and smooths the colour of test images that do have it
    (Set14's ppt3, pepper, baboon). Shrunk by 2, every pixel's colour is real."""
    if factor == 1:
        return photos
    out = []
    for p in photos:
        x = imresize(p.unsqueeze(0).double() / 255, factor)  # (1, 3, h', w') float64, antialiased
        out.append((quantize(x)[0] * 255).round().to(torch.uint8).contiguous())
    return out


def split_photos(photos: list[Tensor], val_images: int, min_side: int) -> tuple[list[Tensor], list[Tensor]]:
    """(train, val): the last ``val_images`` photos are held out. Photos smaller than a training
    patch cannot be cropped and are refused with the count."""
    if val_images >= len(photos):
        raise UsageError(f"data.val_images={val_images} leaves no training photos out of {len(photos)}: lower it "
                         f"(--set data.val_images=N with N < {len(photos)}; 0 = no validation)")
    train, val = photos[: len(photos) - val_images], photos[len(photos) - val_images :]
    small = [p for p in train if min(p.shape[-2:]) < min_side]
    if small:
        raise UsageError(f"{len(small)} training photo(s) are smaller than data.patch_size={min_side} (e.g. {tuple(small[0].shape[-2:])}): lower data.patch_size (or raise data.shrink)")
    return train, val


def check_photos(photos) -> None:
    """Refuse ``photos`` that are not a non-empty list of uint8 (3, H, W) tensors, naming the first
    bad one: a float photo in [0, 1] would be taken as 0..255 (near black), a grey or an (H, W, 3)
    one would fail deep in the patch sampler."""
    if not isinstance(photos, (list, tuple)) or not photos:
        got = f"an empty {type(photos).__name__}" if isinstance(photos, (list, tuple)) else f"a {type(photos).__name__}"
        raise UsageError(f"photos must be a non-empty list of uint8 (3, H, W) tensors, got {got}")
    for i, p in enumerate(photos):
        if not isinstance(p, Tensor):
            raise UsageError(f"photos[{i}] is of type {type(p).__name__}, not a torch tensor: photos are uint8 (3, H, W) "
                             "tensors, e.g. torch.from_numpy(rgb).permute(2, 0, 1) for an (H, W, 3) uint8 array")
        if p.dtype != torch.uint8 or p.dim() != 3 or p.shape[0] != 3:
            raise UsageError(f"photos[{i}] is {p.dtype} of shape {tuple(p.shape)}: photos are uint8 (3, H, W) tensors (RGB, "
                             "0..255; float [0, 1] ones: (x * 255).round().to(torch.uint8); grey (1, H, W): .repeat(3, 1, 1))")


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


def to_device(t: Tensor, device: torch.device) -> Tensor:
    """A CPU tensor moved to ``device``. To CUDA through pinned memory without blocking: a pageable copy
    would make the host wait for every queued kernel each step, so it could never run ahead of the GPU."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def degrade_batch(target: Tensor, cfg: RestoreConfig, g: torch.Generator) -> Batch:
    """The degradation of cfg.task applied to clean patches (N, 3, H, W) in [0, 1], on target's device.

    The random draws come from the CPU generator ``g`` in a fixed order whatever the device (noise and
    masks are drawn on the CPU and moved once), so a seed gives the same batch on CPU and GPU."""
    d, dev = cfg.degrade, target.device
    if cfg.task == "sr":
        return Batch(sr_degrade(target, d.scale), target, None, None)
    if cfg.task == "denoise":
        if d.blind:  # one level per image, sigma ~ U(sigma_min, sigma)
            sig = d.sigma_min + (d.sigma - d.sigma_min) * torch.rand(target.shape[0], generator=g, dtype=torch.float64)
        else:
            sig = torch.full((target.shape[0],), float(d.sigma), dtype=torch.float64)
        # add_noise's draws, one image at a time (the stream of a batched randn differs for some sizes),
        # then one move: noisy = target + noise * sigma / 255, unclipped
        noise = torch.cat([torch.randn((1, *target.shape[1:]), generator=g, dtype=target.dtype) for _ in range(len(sig))])
        scale = to_device((sig / 255.0).to(target.dtype), dev)  # (N,)
        return Batch(target + to_device(noise, dev) * scale.view(-1, 1, 1, 1), target, None, scale)
    n, _, h, w = target.shape
    kinds = mask_kinds(cfg)
    picks = torch.randint(len(kinds), (n,), generator=g).tolist() if len(kinds) > 1 else [0] * n
    mask = to_device(torch.cat([make_mask(kinds[k], 1, h, w, g) for k in picks]), dev)  # (N, 1, H, W), drawn on the CPU
    return Batch(fill_holes(target, mask, "zero"), target, mask, None)  # holes hold no information


def _variant_grids(p: int) -> Tensor:
    """(8, 2, p, p) int64: for augmentation variant v = 4 flip + rot, the (row, col) in the crop that
    each output pixel reads. Built by applying the flip and rotation to a grid of coordinates, so a
    gathered patch equals ``rot90(flip(crop), rot)`` exactly."""
    grid = torch.stack(torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))  # (2, p, p)
    out = []
    for flip in (0, 1):
        for rot in range(4):
            v = grid.flip(-1) if flip else grid
            out.append(torch.rot90(v, rot, dims=(-2, -1)))
    return torch.stack(out)


# the 6 orders of the RGB channels, for data.channel_shuffle; row 0 is the identity
CHANNEL_ORDERS = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])


def pad_photos(photos: list[Tensor], pad: int) -> list[Tensor]:
    """Each uint8 (3, H, W) photo reflect-padded to (3, H + 2 pad, W + 2 pad) (mirror without
    repeating the edge pixel, as torch's "reflect"). A photo must be larger than ``pad``."""
    if pad == 0:
        return photos
    small = [tuple(p.shape[-2:]) for p in photos if min(p.shape[-2:]) <= pad]
    if small:
        raise UsageError(f"data.pad={pad} needs photos larger than {pad} px on each side (e.g. {small[0]}): lower data.pad")
    # reflect padding is not implemented for uint8; float32 holds 0..255 exactly
    return [F.pad(p[None].float(), (pad,) * 4, mode="reflect")[0].to(torch.uint8) for p in photos]


class PatchSampler:
    """Random patches of ``patch_size`` from uint8 photos, augmented with flips and 90-degree
    rotations (flips only with data.rotate=false), optionally translated (data.pad) and with their
    colour channels permuted (data.channel_shuffle), then degraded for the task. ``sample()`` ->
    Batch on ``device``.

    The photos are held as one (pixels, 3) uint8 table on ``device`` (no padding, so photos of any
    mix of sizes cost their own bytes; with data.pad the photos are padded first). Per patch five
    integers are drawn on the CPU generator (photo, top, left, flip, rotation, and a sixth, the
    channel order, with data.channel_shuffle: the same stream on every device); the batch is then
    one gather of pixel rows from the table, with the flip and rotation folded into the row index."""

    def __init__(self, photos: list[Tensor], cfg: RestoreConfig, *, seed: int = 0, device: str | torch.device = "cpu"):
        if not photos:
            raise UsageError("no training photos")
        self.cfg = cfg
        self.size = cfg.data.patch_size
        self.batch_size = cfg.train.batch_size
        self.augment = cfg.data.augment
        self.rotate = cfg.data.rotate
        self.channel_shuffle = cfg.data.channel_shuffle
        photos = pad_photos(photos, cfg.data.pad)
        self.g = torch.Generator().manual_seed(seed)
        self.device = torch.device(device)
        self.shapes = [tuple(p.shape[-2:]) for p in photos]  # (H, W) per photo, for the CPU draws
        pixels = torch.tensor([h * w for h, w in self.shapes])
        # (sum H W, 3) uint8: every photo's pixels in row-major order, one row per pixel
        self.pixels = torch.cat([p.permute(1, 2, 0).reshape(-1, 3) for p in photos]).to(self.device)
        self.first = (torch.cumsum(pixels, 0) - pixels).to(self.device)  # (n_photos,) row of each photo's first pixel
        self.widths = torch.tensor([w for _, w in self.shapes]).to(self.device)  # (n_photos,)
        self.grids = _variant_grids(self.size).to(self.device)  # (8, 2, P, P)
        self.orders = CHANNEL_ORDERS.to(self.device)  # (6, 3)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (), generator=self.g))

    def draws(self) -> Tensor:
        """(N, 5) int64 on the CPU: photo, top, left, variant (4 flip + rot), channel order of each patch.
        The channel order is drawn only with data.channel_shuffle, so the stream without it is unchanged."""
        p, rows = self.size, []
        for _ in range(self.batch_size):
            k = self._randint(len(self.shapes))
            h, w = self.shapes[k]
            top, left = self._randint(h - p + 1), self._randint(w - p + 1)
            variant = 0
            if self.augment:
                flip, rot = self._randint(2), self._randint(4)  # both drawn either way: same stream
                variant = 4 * flip + (rot if self.rotate else 0)
            order = self._randint(len(CHANNEL_ORDERS)) if self.channel_shuffle else 0
            rows.append((k, top, left, variant, order))
        return torch.tensor(rows, dtype=torch.int64)

    def patches(self) -> Tensor:
        """(N, 3, P, P) float in [0, 1] on the sampler's device."""
        n, p = self.batch_size, self.size
        k, top, left, variant, order = to_device(self.draws(), self.device).unbind(1)  # each (N,)
        grid = self.grids[variant]  # (N, 2, P, P): source (row, col) inside the crop
        width = self.widths[k].view(-1, 1, 1)
        corner = (self.first[k] + top * self.widths[k] + left).view(-1, 1, 1)  # (N, 1, 1) row of each crop's corner
        rows = (corner + grid[:, 0] * width + grid[:, 1]).view(-1)  # (N P P,)
        # index_select of whole 3-byte pixels: on the CPU as fast as the old per-patch loop (0.8-1.3x,
        # docs/BENCHMARKS.md), on a GPU one kernel instead of ~100 small copies
        crops = self.pixels.index_select(0, rows).view(n, p, p, 3)
        if self.channel_shuffle:  # output channel c of patch i reads input channel orders[order[i], c]
            crops = crops.gather(3, self.orders[order].view(n, 1, 1, 3).expand(n, p, p, 3))
        return crops.permute(0, 3, 1, 2).contiguous().float() / 255.0  # (N, 3, P, P)

    def sample(self) -> Batch:
        return degrade_batch(self.patches(), self.cfg, self.g)


def validation_set(photos: list[Tensor], cfg: RestoreConfig, *, seed: int = 1234) -> list[Batch]:
    """Held-out photos as single-image batches: the centre crop of side data.val_crop (or the
    whole photo), degraded once with a fixed seed, so every validation pass sees the same inputs."""
    g = torch.Generator().manual_seed(seed)
    crop, scale = cfg.data.val_crop, cfg.degrade.scale if cfg.task == "sr" else 1
    out = []
    for i, photo in enumerate(photos):
        h, w = photo.shape[-2:]
        if min(h, w) < min_val_crop(cfg):  # its crop would be 0 pixels (restore_config refuses such a val_crop)
            raise UsageError(f"validation photo {i + 1} of {len(photos)} (the source's last data.val_images) is {w}x{h}: "
                             f"validation needs at least {min_val_crop(cfg)} px a side for this task; remove it or set data.val_images=0")
        ch, cw = (min(crop, h), min(crop, w)) if crop else (h, w)
        ch, cw = ch - ch % (4 * scale), cw - cw % (4 * scale)  # whole LR pixels; inpaint nets like /4
        top, left = (h - ch) // 2, (w - cw) // 2
        clean = photo[None, :, top : top + ch, left : left + cw].float() / 255.0
        out.append(degrade_batch(clean, cfg, g))
    return out
