"""Open one image file safely: refuse decompression bombs before decoding, detect truncation.

Every way a file can be unusable becomes `BadImage(reason)`, where the reason is the short
phrase shown to the user (by `load_images` and by `check_images` / `ganforge data check`).
"""

from __future__ import annotations

import re
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

# Lower-case suffixes we treat as images when scanning folders and zips.
# Netpbm (.pgm .ppm .pnm) and .jfif (a JPEG) are decoded by Pillow too; other suffixes are
# left out with a logged count when listing.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".jfif")

# Largest width * height we decode: PIL's own default (a 3-byte-per-pixel 256 MiB image).
# We check it ourselves after reading the header, so the limit is a parameter, not global state.
DEFAULT_MAX_PIXELS = 89_478_485

# Modes that we convert to L / RGB with a well-defined meaning. Anything else still loads
# (best effort through PIL) but `check_images` reports it as "unusual mode X".
USUAL_MODES = frozenset(
    {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I;16", "I;16L", "I;16B", "I;16N", "I"}
)


class BadImage(Exception):
    """A file that cannot be used as a training image; str(exc) is the reason for the user."""


def is_image_name(name: str) -> bool:
    """True for file names with an image suffix (case-insensitive), e.g. 'a/B.JPG'."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def open_image(
    fp: BinaryIO,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft: tuple[str | None, int] | None = None,
) -> Image.Image:
    """Open and fully decode one image, or raise BadImage.

    `draft=(mode, size)` lets JPEG decode at 1/2, 1/4 or 1/8 scale while both sides stay
    >= size (libjpeg's DCT scaling; what `Image.thumbnail` does): a large photo headed for
    64x64 decodes several times faster. Callers that only validate pass no draft.
    """
    try:
        img = Image.open(fp)
    except UnidentifiedImageError:
        raise BadImage("not an image (cannot identify format)") from None
    except Image.DecompressionBombError as exc:
        # PIL refuses at 2x its global limit before we see the size; keep its pixel count.
        match = re.search(r"\((\d+) pixels\)", str(exc))
        raise BadImage(f"decompression bomb ({match.group(1) if match else '?'} pixels)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImage(_decode_reason(exc)) from None

    # Refuse before load() allocates anything: the header alone tells the size.
    width, height = img.size
    if width * height > max_pixels:
        raise BadImage(f"decompression bomb ({width} x {height} pixels)")
    if width == 0 or height == 0:
        raise BadImage(f"empty image ({width} x {height} pixels)")

    if draft is not None and img.format == "JPEG":
        mode, size = draft
        img.draft(mode, (size, size))
    try:
        # load() decodes the whole (first) frame; a short file raises here, because we
        # never set ImageFile.LOAD_TRUNCATED_IMAGES (it would pad the missing part with grey).
        img.load()
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure means "this file is bad"
        raise BadImage(_decode_reason(exc)) from None
    return img


def _decode_reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, EOFError) or "truncated" in text.lower() or "end of file" in text.lower():
        return "truncated image"
    return f"corrupt image ({type(exc).__name__}: {text})" if text else f"corrupt image ({type(exc).__name__})"


def unusual_mode_reason(img: Image.Image) -> str | None:
    """The check_images reason for an image whose mode we only convert best-effort."""
    return None if img.mode in USUAL_MODES else f"unusual mode {img.mode}"
