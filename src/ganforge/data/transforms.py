"""Bring one decoded image (or a stack of arrays) to the training format.

Pipeline per image: center-crop to a square -> convert to 8-bit L or RGB -> resize to
`resolution` (LANCZOS when shrinking, BICUBIC when enlarging, untouched when equal).
Output is a uint8 numpy array (resolution, resolution, channels); callers stack them.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageOps

from .decode import BadImage
from .memory import MEMORY_FIX, allocate

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_ARRAY_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channels of an HWC array -> PIL mode


def center_crop_square(img: Image.Image) -> Image.Image:
    """Largest centred square; for a 200x100 image that is x in [50, 150), all rows."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if side == width == height:
        return img
    return img.crop((left, top, left + side, top + side))


def to_8bit(img: Image.Image, channels: int, *, eight_bit: bool | None = None) -> Image.Image:
    """Convert any PIL mode to "L" (channels=1) or "RGB" (channels=3). ``eight_bit``: whether a mode "I"
    image holds 8-bit values (``eight_bit_in_32`` of the file as opened: a crop or turn drops the
    format it reads); None asks ``img`` itself."""
    target = "L" if channels == 1 else "RGB"
    mode = img.mode
    if mode == target:
        return img
    if mode in _SIXTEEN_BIT_MODES:
        # PIL's convert("L") clips 16-bit values at 255 (almost every pixel turns white);
        # scale the full 0..65535 range instead. "I" (32-bit) comes from 16-bit PPM/PGM in
        # practice (Pillow stretches any maxval to 0..65535), so it is read as 16-bit too,
        # unless it is a 32-bit TIFF with no value above 255: an 8-bit picture written from
        # int32, which /257 would turn black.
        values = np.asarray(img, dtype=np.float32)  # (H, W)
        if not (eight_bit_in_32(img) if eight_bit is None else eight_bit):
            values = values / 257.0
        gray = np.clip(values, 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray).convert(target)
    if mode == "F":
        # Float images: [0, 1] data is scaled by 255, anything else taken as 0..255.
        values = np.asarray(img, dtype=np.float32)
        if values.size and np.nanmax(values) <= 1.0:
            values = values * 255.0
        gray = np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray).convert(target)
    if mode == "P" and "transparency" in img.info:
        mode = "PA"  # palette with a transparent index: composite like any alpha image
    if mode in _ALPHA_MODES:
        rgb = Image.fromarray(_on_black(np.asarray(img if img.mode == "RGBA" else _convert(img, "RGBA"))))
        return rgb if target == "RGB" else rgb.convert(target)  # (convert copies even to its own mode)
    if target == "L" and mode not in ("1", "P"):
        # CMYK, YCbCr, LAB, HSV, ...: go through RGB so "L" always means ITU-R 601 luma of RGB.
        img = _convert(img, "RGB")
    return _convert(img, target)


def _on_black(rgba: np.ndarray, rows: int = 512) -> np.ndarray:
    """Composite on black: rgb * alpha / 255, rounded; uint8 (H, W, 4) -> (H, W, 3). Computed in uint16 (no
    overflow) a band of rows at a time: over the whole image at once the temporaries took 27 bytes a pixel,
    2.2 GB for one 9000 x 9000 RGBA PNG (under the decompression-bomb limit), and one per decoding thread."""
    out = np.empty((*rgba.shape[:2], 3), dtype=np.uint8)
    for top in range(0, rgba.shape[0], rows):
        band = rgba[top : top + rows].astype(np.uint16)  # (rows, W, 4)
        out[top : top + rows] = (band[..., :3] * band[..., 3:] + 127) // 255
    return out


def eight_bit_in_32(img: Image.Image) -> bool:
    """True for a 32-bit integer TIFF whose values all fit 0..255: an 8-bit picture, not 16-bit. Other
    mode "I" files are 16-bit (a 16-bit PGM: Pillow stretches its maxval to 0..65535), however dark."""
    if img.mode != "I" or img.format != "TIFF":
        return False
    lo, hi = img.getextrema()
    return hi <= 255


def _convert(img: Image.Image, mode: str) -> Image.Image:
    try:
        return img.convert(mode)
    except (ValueError, OSError) as exc:
        raise BadImage(f"cannot convert mode {img.mode} to {mode} ({exc})") from None


def resize_square(img: Image.Image, resolution: int) -> Image.Image:
    """Resize a square image to resolution x resolution (LANCZOS down, BICUBIC up)."""
    side = img.size[0]
    if side == resolution:
        return img
    resample = Image.Resampling.LANCZOS if side > resolution else Image.Resampling.BICUBIC
    return img.resize((resolution, resolution), resample)


def upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation: phone photos store their rotation there, so faces and objects
    come out upright. (Gated on an EXIF block being present: parsing it costs ~10% on tiny images.)"""
    if "exif" in img.info or img.format in ("TIFF", "MPO"):
        try:
            return ImageOps.exif_transpose(img)
        except MemoryError:
            raise
        except Exception as exc:  # a damaged EXIF block: Pillow raises SyntaxError ("not a TIFF file"), struct.error, ...
            # which way is up is then unknown; a bad file like any other (listed by `data check`, skipped on request)
            raise BadImage(f"corrupt EXIF block, so its orientation is unknown ({type(exc).__name__}: {exc})") from None
    return img


def image_to_array(img: Image.Image, resolution: int, channels: int, *, exif: bool = True) -> np.ndarray:
    """Decoded PIL image -> uint8 (resolution, resolution, channels)."""
    eight_bit = eight_bit_in_32(img)  # before the turn and crop, which drop the file's format
    if exif:
        img = upright(img)
    img = resize_square(to_8bit(center_crop_square(img), channels, eight_bit=eight_bit), resolution)
    array = np.asarray(img, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array  # (H, W) -> (H, W, 1)


def arrays_to_tensor(images: np.ndarray, resolution: int, channels: int, *, what: str = "images") -> torch.Tensor:
    """uint8 (N, H, W, C) with C in 1..4 -> uint8 tensor (N, channels, resolution, resolution).

    Fast path: already square at the target size with the right channels (e.g. MNIST 28 -> 28)
    is a plain transpose without PIL; grey -> RGB at the target size is a channel repeat
    (exactly what PIL does). Everything else goes through the same per-image PIL pipeline
    as files, so an .npz and a folder of the same pictures give the same tensors.
    """
    n, height, width, in_channels = images.shape
    if height == width == resolution and in_channels == channels:
        out = images
    elif height == width == resolution and in_channels == 1 and channels == 3:
        out = np.repeat(images, 3, axis=3)
    else:
        mode = _ARRAY_MODES[in_channels]
        out = allocate((n, resolution, resolution, channels), what, MEMORY_FIX)  # refused before resizing if too large
        for i in range(n):
            pixels = images[i, :, :, 0] if in_channels == 1 else images[i]
            img = Image.fromarray(np.ascontiguousarray(pixels))
            if img.mode != mode:  # fromarray infers L/LA/RGB/RGBA from the shape
                raise ValueError(f"array with {in_channels} channels decoded as mode {img.mode}")
            out[i] = image_to_array(img, resolution, channels, exif=False)
    # (N, H, W, C) -> (N, C, H, W), contiguous so the Batcher's indexing is fast.
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
