"""The 16-bit files of the restoration apps (ganforge.apps.restore_files), read and written past PIL.

PIL decodes an RGB or RGBA PNG or TIFF of 16 bits per channel, and a 16-bit grey+alpha PNG, to 8 bits,
and cannot open a 16-bit grey+alpha TIFF at all; it writes none of these. So the colour files and the
grey+alpha PNG are read through OpenCV (``read16``), a PNG's tRNS colour made an alpha channel by an
exact 16-bit match; a grey+alpha TIFF is read through tifffile (``tiff_grey_alpha16``: OpenCV decodes
it to 8-bit grey, without the alpha); and a grey+alpha PNG is written here (``png_grey_alpha16``), as
neither library writes one. Everything here is numpy in, numpy out: restore_files makes the ImageFile.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

from ganforge.data.decode import DEFAULT_MAX_PIXELS
from ganforge.errors import UsageError

# EXIF orientation -> the numpy equivalent of PIL's ImageOps.exif_transpose on an (H, W, C) array
ORIENT = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # PIL TRANSPOSE
    6: lambda a: np.rot90(a, -1),  # PIL ROTATE_270: 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # PIL TRANSVERSE
    8: lambda a: np.rot90(a, 1),  # PIL ROTATE_90: 90 degrees anticlockwise
}

# the bands of a 16-bit raw mode (before ";16") -> the channels taken, in order, from OpenCV's BGR(A)
_RAW16_CHANNELS = {
    "RGB": [2, 1, 0],
    "RGBX": [2, 1, 0],  # a TIFF's 4th sample of no stated meaning (ExtraSamples 0), which PIL drops too
    "RGBA": [2, 1, 0, 3],
    "RGBa": [2, 1, 0, 3],  # a TIFF's premultiplied ("associated") alpha
    "LA": [0, 3],  # a grey+alpha PNG: OpenCV decodes it to BGRA with B = G = R
}


def _straight(arr: np.ndarray) -> np.ndarray:
    """Premultiplied (H, W, C) uint16 colour and alpha (the last channel) -> straight, as PIL divides it
    out at 8 bits: c' = c a / 65535 stored, so c = c' 65535 / a, rounded; 0 where a = 0."""
    a = arr[..., -1:].astype(np.float64)  # (H, W, 1)
    colour = np.where(a > 0, np.minimum(arr[..., :-1] * 65535.0 / np.maximum(a, 1), 65535), 0)
    return np.concatenate([np.rint(colour).astype(np.uint16), arr[..., -1:]], axis=-1)


def read16(path: Path, orientation: int, rawmode: str, key: tuple[int, int, int] | None = None) -> np.ndarray | None:
    """A 16-bit file's levels, uint16 upright, through OpenCV, by its raw mode: (H, W, 3) RGB, (H, W, 4)
    RGBA (straight: premultiplied "RGBa" is divided out, as PIL does at 8 bits) or (H, W, 2) grey and
    alpha. ``key``: a PNG's tRNS colour (16-bit R, G, B): RGBA, the alpha 0 where a pixel is that
    colour exactly and 65535 elsewhere. None where OpenCV (the restore extra) is missing or reads
    something else. ``orientation``: the EXIF orientation to apply. OpenCV ignores a PNG's; a TIFF's it
    applies itself, and PIL drops that tag as it loads (and turns) the file, so for a TIFF it is 1."""
    try:
        import cv2
    except ImportError:
        return None
    bands = rawmode.split(";")[0]
    take = _RAW16_CHANNELS.get(bands)
    # silenced: libtiff warns on stderr that an RGBA TIFF without ExtraSamples (OpenCV writes none) has
    # a 4th sample of no stated meaning, which _RAW16_CHANNELS already settles; a failure is None, said by the caller
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        arr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)  # BGR(A)
    finally:
        cv2.utils.logging.setLogLevel(level)
    # with a tRNS colour libpng adds an alpha of its own (OpenCV 4 and 5 ask it to): dropped, and made below
    channels = (3, 4) if key is not None else (3,) if bands == "RGB" else (4,)
    if take is None or arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in channels:
        return None
    arr = arr[..., take]  # -> RGB | RGBA | grey, alpha
    if key is not None:  # exact in 16 bits: a level off the key is opaque, as libpng and PIL (at 8 bits) match it
        clear = (arr == np.asarray(key, np.uint16)).all(axis=-1)  # (H, W)
        arr = np.concatenate([arr, np.where(clear, 0, 65535).astype(np.uint16)[..., None]], axis=-1)  # (H, W, 4)
    elif bands == "RGBa":
        arr = _straight(arr)
    return np.ascontiguousarray(ORIENT.get(orientation, lambda a: a)(arr))  # upright


def _first_ifd(tiff: bytes) -> tuple[str, int, int, dict[int, bytes]] | None:
    """(byte order, offset, entry count, tag -> its 12-byte entry) of a classic TIFF's first IFD; None
    for anything else (not a TIFF, a BigTIFF, a file cut short)."""
    e = "<" if tiff[:2] == b"II" else ">"
    if tiff[:2] not in (b"II", b"MM") or len(tiff) < 8 or struct.unpack(e + "H", tiff[2:4])[0] != 42:
        return None
    (start,) = struct.unpack(e + "I", tiff[4:8])
    if start + 2 > len(tiff):
        return None
    (n,) = struct.unpack(e + "H", tiff[start:start + 2])
    if start + 6 + 12 * n > len(tiff):  # the entries and the next IFD's offset
        return None
    entries = {struct.unpack(e + "H", tiff[i:i + 2])[0]: tiff[i:i + 12] for i in range(start + 2, start + 2 + 12 * n, 12)}
    return e, start, n, entries


def _tiff_numbers(tiff: bytes) -> dict[int, tuple[int, ...]]:
    """tag -> values of the SHORT and LONG tags of a TIFF's first IFD whose values fit in the entry (4
    bytes: every tag that says what a pixel is); {} for a file that is not a classic TIFF."""
    ifd = _first_ifd(tiff)
    if ifd is None:
        return {}
    e, _, _, entries = ifd
    out = {}
    for tag, entry in entries.items():
        kind, count = struct.unpack(e + "HI", entry[2:8])
        size = {3: 2, 4: 4}.get(kind, 0)  # SHORT, LONG
        if size and 0 < count * size <= 4:
            out[tag] = struct.unpack(e + ("H" if size == 2 else "I") * count, entry[8:8 + count * size])
    return out


def tiff_grey_alpha16(path: Path) -> np.ndarray | None:
    """A 16-bit grey+alpha TIFF (BlackIsZero, unsigned), which PIL cannot open, read through tifffile,
    planar or interleaved: (H, W, 2) uint16 grey and straight alpha (a premultiplied one divided out),
    upright by its Orientation tag, or (H, W, 1) grey where the 2nd sample has no stated meaning
    (ExtraSamples 0; PIL drops it from RGBX too). None where ``path`` is no such TIFF (the caller says
    what is wrong); a UsageError naming it where it is one that cannot be read."""
    try:
        with open(path, "rb") as f:
            if f.read(4) not in TIFF_MAGIC:  # not read whole unless it is a TIFF
                return None
            f.seek(0)
            data = f.read()
    except OSError:  # missing, a folder, unreadable: the caller's own read says which
        return None
    return grey_alpha16_of(data, path)


TIFF_MAGIC = (b"II*\0", b"MM\0*")  # a classic TIFF's first 4 bytes, little- and big-endian


def grey_alpha16_of(data: bytes, name: Path | str) -> np.ndarray | None:
    """tiff_grey_alpha16 of a file's bytes (a training photo may be a zip member); ``name`` is what the
    errors call it."""
    tags = _tiff_numbers(data)
    if (tags.get(262), tags.get(277)) != ((1,), (2,)) or set(tags.get(258, ())) != {16} or set(tags.get(339, (1,))) != {1}:
        return None
    width, height = tags.get(256, (0,))[0], tags.get(257, (0,))[0]
    if not 0 < width * height <= DEFAULT_MAX_PIXELS:  # refused before decoding, as open_image refuses what PIL opens
        raise UsageError(f"cannot read {name}: a 16-bit grey+alpha TIFF of {width} x {height} pixels (at most "
                         f"{DEFAULT_MAX_PIXELS} are read)")
    try:
        import tifffile  # comes with scikit-image (the restore extra)
    except ImportError:
        raise UsageError(f"cannot read {name}: it is a 16-bit grey+alpha TIFF, which PIL cannot open; pip install "
                         "tifffile to read it, or save it as a 16-bit grey+alpha PNG") from None
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            arr = np.moveaxis(page.asarray(), page.axes.index("S"), -1)  # (H, W, 2), planar or not
    except Exception as exc:  # a compression tifffile decodes only with imagecodecs (LZW), a damaged file
        raise UsageError(f"cannot read {name}: tifffile cannot decode this 16-bit grey+alpha TIFF "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); save it as a 16-bit "
                         "grey+alpha PNG") from None
    if arr.ndim != 3 or arr.shape[-1] != 2 or arr.dtype != np.uint16:
        raise UsageError(f"cannot read {name}: tifffile reads its 16-bit grey+alpha as {arr.dtype} {arr.shape}; "
                         "save it as a 16-bit grey+alpha PNG")
    extra = tags.get(338, (2,))[0]  # ExtraSamples: 0 no stated meaning, 1 premultiplied, 2 straight; none: alpha
    arr = arr[..., :1] if extra == 0 else _straight(arr) if extra == 1 else arr
    return np.ascontiguousarray(ORIENT.get(tags.get(274, (1,))[0], lambda a: a)(arr))  # upright


def tiff_with_shorts(tiff: bytes, shorts: dict[int, int]) -> bytes:
    """A TIFF with tags of one SHORT value (tag -> value) set in its first IFD. write_image sets
    ExtraSamples (338) = 2, which says that an RGBA TIFF's 4th sample is straight alpha: OpenCV leaves
    the tag out, and libtiff's RGBA reader then takes the 4th sample for premultiplied alpha. The IFD
    is rewritten, with the tags, at the end of the file and the header pointed at it; no byte moves,
    so the offsets in it stay right. A file that is not a classic TIFF (a BigTIFF) is returned as it is."""
    ifd = _first_ifd(tiff)
    if ifd is None:
        return tiff
    e, start, n, entries = ifd
    for tag, value in shorts.items():  # 12 bytes: tag, type 3 (SHORT), count 1, the value left-justified in 4
        entries[tag] = struct.pack(e + "HHIHH", tag, 3, 1, value, 0)
    after = tiff[start + 2 + 12 * n:start + 6 + 12 * n]  # the next IFD's offset
    pad = b"\0" * (len(tiff) % 2)  # an IFD starts on a word boundary
    body = struct.pack(e + "H", len(entries)) + b"".join(entries[t] for t in sorted(entries)) + after
    return tiff[:4] + struct.pack(e + "I", len(tiff) + len(pad)) + tiff[8:] + pad + body


def png_grey_alpha16(grey: np.ndarray, alpha: np.ndarray) -> bytes:
    """A 16-bit grey+alpha PNG (colour type 4) of (H, W) uint16 grey and alpha. Written here because
    neither PIL (no 16-bit LA mode) nor OpenCV (no 2-channel PNG) writes one; each row is stored with
    the "Up" filter (the bytes minus the row above), which compresses smooth images well."""
    h, w = grey.shape
    rows = np.stack([grey, alpha], axis=-1).astype(">u2").view(np.uint8).reshape(h, w * 4)  # big-endian bytes
    up = np.diff(rows, axis=0, prepend=np.zeros((1, w * 4), np.uint8))  # uint8: wraps mod 256, as PNG wants
    data = np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1).tobytes()  # filter type 2 per row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)  # 16 bits, grey+alpha, deflate, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data, 6)) + chunk(b"IEND", b"")
