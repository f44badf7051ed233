"""Image files in and out of ``ganforge sr|denoise|inpaint apply``.

The networks see RGB, but the output keeps what the input file was: a grey file is written grey
(ITU-R 601 luma of the restored RGB, the Y that SR scores), a 16-bit file is read and written
with 16 bits (PNG, TIFF; the networks were trained on 8-bit photos, but 8 bits would throw away
levels the file holds; 16-bit colour, with or without alpha, and grey+alpha go through OpenCV, as PIL
decodes them to 8 bits, and a 16-bit grey+alpha TIFF, which PIL cannot open, through tifffile:
restore_files16), an alpha channel is carried over (at 16 bits where the file has them; a PNG's tRNS
colour or grey level marked transparent becomes alpha too; for super-resolution resized with the same
MATLAB bicubic as the ``bicubic`` baseline), and an EXIF orientation is applied first, because the
output is written without EXIF and a phone photo would otherwise come out on its side. The output
format follows OUTPUT's suffix; an unknown suffix, or alpha for a format that cannot store it, is
refused before the network runs, as is a planar TIFF that would be misread (16-bit, or grey+alpha).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, features
from torch import Tensor

from ganforge.apps.restore_files16 import png_grey_alpha16, read16, tiff_grey_alpha16, tiff_with_shorts
from ganforge.data.decode import IMAGE_EXTENSIONS, BadImage, is_image_name, open_image
from ganforge.data.transforms import _ALPHA_MODES, _SIXTEEN_BIT_MODES, eight_bit_in_32, to_8bit, upright
from ganforge.errors import UsageError
from ganforge.io import atomic_write_bytes, check_can_write

log = logging.getLogger("ganforge.restore")

# suffix -> (PIL format, save options). JPEG at quality 95 without chroma subsampling (PIL's default,
# 75 with 4:2:0, would blur away much of what a restoration adds); WebP lossless.
OUTPUT_FORMATS = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
    ".webp": ("WEBP", {"lossless": True}),
}
_NO_ALPHA = {"JPEG", "BMP"}  # formats that cannot store an alpha channel (PIL's BMP writer: no LA)
_GREY_BANDS = {"1", "L", "I", "F"}  # bands of a single-channel (luminance) image, 8/16/32-bit or float
# formats with 16-bit grey ("I;16", PIL) and colour files, with or without alpha (OpenCV)
_SIXTEEN_BIT_FORMATS = {"PNG", "TIFF"}
# 16-bit grey+alpha: PNG colour type 4 (png_grey_alpha16). A 16-bit grey+alpha TIFF neither PIL nor
# OpenCV writes, so one is written with 8 bits and the warning for formats without 16.
_SIXTEEN_BIT_GREY_ALPHA_FORMATS = {"PNG"}


def _suffixes() -> list[str]:
    return [s for s, (fmt, _) in OUTPUT_FORMATS.items() if fmt != "WEBP" or features.check("webp")]


@dataclass
class ImageFile:
    """A decoded input file. rgb: (1, 3, H, W) float in [0, 1], upright (EXIF applied), the colour
    under the alpha channel unchanged (not composited); grey: the file has one colour channel;
    alpha: (H, W) uint8 (uint16 for a 16-bit file), or None for an opaque format; bits: 16 for a 16-bit
    grey or colour file, with or without alpha (its levels kept in ``rgb``, v / 65535), else 8."""

    rgb: Tensor
    grey: bool
    alpha: np.ndarray | None
    bits: int = 8


def _has_alpha(img: Image.Image) -> bool:
    # LAB's "A" band is a colour channel: alpha is known by the mode, not by the band name
    # a PNG's tRNS chunk: a palette's alpha, or one colour (RGB) or grey level (L) that is transparent
    return img.mode in _ALPHA_MODES or (img.mode in ("P", "RGB", "L") and "transparency" in img.info)


def _alpha_of(img: Image.Image) -> np.ndarray | None:
    """img's alpha channel, (H, W) uint8, or None for a mode without one."""
    return np.asarray(img.convert("RGBA"))[..., 3] if _has_alpha(img) else None


@dataclass(frozen=True)
class _Header:
    """What a file's header says, read once before it is decoded: PIL decodes a 16-bit PNG or TIFF to
    8 bits (and a loaded image has lost its tiles), so the raw mode, and for a TIFF its layout, come
    from here."""

    format: str | None
    mode: str
    rawmode: str  # the first tile's raw mode ("RGB;16B", "RGBA;16N", "LA;16B", ...), or ""
    planar: int = 1  # TIFF PlanarConfiguration (2: each channel stored apart)
    samples: int = 1  # TIFF SamplesPerPixel
    bits: int = 8  # TIFF BitsPerSample (the largest)


def image_header(h: Image.Image) -> _Header:
    """What PIL read of an opened image's header (a loaded one has lost its tiles: raw mode "")."""
    args = h.tile[0].args if h.tile else None
    rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else ""
    tags = h.tag_v2 if h.format == "TIFF" else {}
    bits = tags.get(258, 8)
    return _Header(h.format, h.mode, rawmode if isinstance(rawmode, str) else "", tags.get(284, 1),
                   tags.get(277, 1), max(bits) if isinstance(bits, tuple) else bits)


def _read_header(path: Path) -> _Header | None:
    """The header of ``path``, or None where PIL cannot open it (open_image then names what is wrong)."""
    try:
        with Image.open(path) as h:
            return image_header(h)
    except Exception:  # not an image, a bomb, a bad header
        return None


def _sixteen_bit_rawmode(header: _Header | None) -> str:
    """The raw mode of an RGB/RGBA PNG or TIFF that stores 16 bits per channel ("RGB;16B", "RGBA;16N",
    "LA;16B": a grey+alpha PNG, which PIL opens as RGBA), else ""."""
    if header is None or header.mode not in ("RGB", "RGBA") or header.format not in _SIXTEEN_BIT_FORMATS:
        return ""
    return header.rawmode if ";16" in header.rawmode else ""


def misread_planar(header: _Header | None) -> str:
    """What makes a planar TIFF (PlanarConfiguration 2: each channel stored whole, one after another) come
    out scrambled with exit 0, or "": 16 bits ("16-bit": PIL's raw reader takes each plane for 8-bit
    samples; OpenCV's reader of a compressed one interleaves the planes wrongly) or grey+alpha (PIL
    reads alpha 0 from a compressed one). PIL reads 8-bit planar RGB and RGBA right (measured with
    tifffile, uncompressed and zlib), so those pass."""
    h = header
    if h is not None and h.format == "TIFF" and h.planar == 2 and h.samples > 1 and (h.bits > 8 or h.samples == 2):
        return f"{h.bits}-bit" if h.bits > 8 else "grey+alpha"
    return ""


def refuse_planar_tiff(path: Path | str, header: _Header | None, role: str = "") -> None:
    """A UsageError for a planar TIFF that would be misread (``misread_planar``). ``role``: "mask " for
    a mask file."""
    what = misread_planar(header)
    if what:
        raise UsageError(f"cannot read {role}{path}: it is a planar TIFF ({what}, each channel stored apart), which "
                         "would be misread; save it as an interleaved (contiguous) TIFF or as PNG")


def _sixteen_bit_file(levels: np.ndarray, grey: bool) -> ImageFile:
    """(H, W, C) uint16 levels, upright -> an ImageFile of 16 bits: C = 3 RGB, 4 RGBA, 1 grey, 2 grey and
    alpha (``grey``); the alpha kept at 16 bits, the grey as three equal channels, as a 16-bit grey file."""
    alpha = levels[..., -1].copy() if levels.shape[2] in (2, 4) else None
    colour = levels[..., : 1 if grey else 3].astype(np.float32) / 65535.0  # (H, W, 1 | 3)
    x = torch.from_numpy(colour).permute(2, 0, 1)[None]  # (1, 1 | 3, H, W)
    return ImageFile(x.expand(1, 3, -1, -1).contiguous(), grey, alpha, bits=16)


def read_image_file(path: Path) -> ImageFile:
    """An image file -> ImageFile; an unreadable file is a UsageError naming it."""
    header = _read_header(path)  # once, before decoding: the planar check and the 16-bit raw mode
    if header is None:  # PIL cannot open it; of those a 16-bit grey+alpha TIFF is read, the rest refused below
        levels = tiff_grey_alpha16(path)  # (H, W, 1 | 2) uint16, upright | None
        if levels is not None:
            return _sixteen_bit_file(levels, grey=True)
    refuse_planar_tiff(path, header)
    try:
        with open(path, "rb") as f:
            raw = open_image(f)
            frames = getattr(raw, "n_frames", 1)  # an animated GIF / PNG / WebP, a multi-page TIFF
            if frames > 1:  # the output is one still image: the other frames would be dropped without a word
                log.warning("%s has %d frames (an animation or a multi-page file): only the first is restored; "
                            "split it into single images to restore every frame", path.name, frames)
                raw.seek(0)  # counting the frames moved the reader: the first one, decoded while the file is open
                raw.load()
            img = upright(raw)
        rawmode = _sixteen_bit_rawmode(header)
        grey_alpha = rawmode.startswith("LA")  # a 16-bit grey+alpha PNG, which PIL opens as 8-bit RGBA
        # a 16-bit RGB PNG's tRNS colour: PIL keeps its 16-bit (R, G, B) but matches it against 8-bit pixels
        key = raw.info.get("transparency") if rawmode.startswith("RGB;") else None
        if rawmode:
            levels = read16(path, raw.getexif().get(0x0112, 1), rawmode, key)  # (H, W, 2 | 3 | 4) | None
            if levels is not None and levels.shape[:2] == (img.height, img.width):
                return _sixteen_bit_file(levels, grey_alpha)
            import importlib.util

            why = ("without OpenCV (pip install opencv-python-headless)"
                   if importlib.util.find_spec("cv2") is None else "(OpenCV did not decode it)")
            lost = ", its transparent colour (PNG tRNS) dropped: 8 bits cannot match it" if key is not None else ""
            log.warning("%s has 16 bits per channel but is read with 8 %s%s", path.name, why, lost)
        has_alpha = _has_alpha(img) and key is None
        # a grey+alpha file read with 8 bits is still grey: PIL's RGBA of it has R = G = B
        grey = grey_alpha or set(img.getbands()) - ({"A", "a"} if has_alpha else set()) <= _GREY_BANDS
        if has_alpha:
            try:  # straight alpha: PIL un-premultiplies La / RGBa
                rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)  # (H, W, 4)
            except (ValueError, OSError) as exc:
                raise BadImage(f"cannot convert mode {img.mode} to RGBA ({exc})") from None
            rgb, alpha = rgba[..., :3], rgba[..., 3].copy()
        elif grey and img.mode in _SIXTEEN_BIT_MODES and not eight_bit_in_32(raw):  # 16-bit grey ("I": 16-bit PGM)
            values = np.clip(np.asarray(img, dtype=np.int64), 0, 65535).astype(np.uint16)[..., None]  # (H, W, 1)
            level = raw.info.get("transparency") if raw.format == "PNG" else None  # a tRNS grey level, of 16 bits
            if level is None:
                return _sixteen_bit_file(values, grey=True)
            alpha16 = np.where(values == level, 0, 65535).astype(np.uint16)  # exact: clear at that level, else opaque
            return _sixteen_bit_file(np.concatenate([values, alpha16], axis=-1), grey=True)  # (H, W, 2)
        else:
            rgb, alpha = np.asarray(to_8bit(img, 3, eight_bit=eight_bit_in_32(raw)), dtype=np.uint8), None  # (H, W, 3)
    except BadImage as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
    return ImageFile(x, grey, alpha)


def read_image(path: Path) -> Tensor:
    """An image file -> float (1, 3, H, W) in [0, 1] (grey files as three equal channels)."""
    return read_image_file(path).rgb


def read_mask(path: Path, shape: tuple[int, int]) -> Tensor:
    """A mask image -> (1, 1, H, W) of 0/1 (1 = missing); it must match the image size.

    White (luma >= 128, half the range at 16 bits) is missing. A mask with transparent pixels (alpha
    below half somewhere) is read by its alpha instead: what is painted (opaque) is missing, in any
    colour, so a hole painted in red on a transparent layer is not read as known because red is dark.
    A 16-bit mask is read as apply reads a 16-bit image (read_image_file): a 16-bit grey PNG's tRNS
    level is its transparency (PIL drops it, and a black hole painted on white marked clear came out
    inverted), and a 16-bit grey+alpha TIFF, which PIL cannot open, is read through tifffile. A mask
    that marks no pixel, or every pixel, is a UsageError: there would be nothing to fill, or nothing
    to fill from."""
    header = _read_header(path)
    refuse_planar_tiff(path, header, "mask ")
    hole = _hole16(path, header)  # (H, W) bool | None (not a 16-bit file)
    if hole is None:
        try:
            with open(path, "rb") as f:
                img = upright(open_image(f))
                alpha = _alpha_of(img)  # (H, W) uint8 | None
                grey = np.asarray(to_8bit(img, 1))  # (H, W) uint8
        except (BadImage, OSError, ValueError) as exc:
            raise UsageError(f"cannot read mask {path}: {exc}") from None
        hole = alpha >= 128 if alpha is not None and (alpha < 128).any() else grey >= 128
    if hole.shape != shape:
        raise UsageError(f"mask {path} is {hole.shape[1]}x{hole.shape[0]} but the image is {shape[1]}x{shape[0]}: they must match")
    if not hole.any() or hole.all():
        what = "no pixel as missing" if not hole.any() else "every pixel as missing (nothing is left to fill from)"
        raise UsageError(f"mask {path} marks {what}: white (or, on a transparent mask, painted) = missing")
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def _hole16(path: Path, header: _Header | None) -> np.ndarray | None:
    """read_mask's (H, W) bool hole of a 16-bit mask (one PIL cannot open, or whose header says 16 bits),
    from read_image_file's 16-bit levels: by the alpha where some pixel is below half of 65535, else by
    the ITU-R 601 luma at half the range (as 8-bit luma >= 128 is v / 257 rounded >= 128); None for an
    8-bit file, which read_mask reads with PIL as before."""
    if header is not None and not _sixteen_bit_rawmode(header) and header.mode not in _SIXTEEN_BIT_MODES:
        return None
    try:
        img = read_image_file(path)
    except UsageError as exc:  # "cannot read PATH: why" -> "cannot read mask PATH: why"
        raise UsageError(str(exc).replace(f"cannot read {path}", f"cannot read mask {path}", 1)) from None
    if img.bits != 16:  # an 8-bit picture in a 32-bit TIFF, or no OpenCV: PIL's 8-bit reading
        return None
    if img.alpha is not None and (img.alpha < 32768).any():
        return img.alpha >= 32768
    r, g, b = img.rgb[0].double()  # (H, W) each, v / 65535
    return ((0.299 * r + 0.587 * g + 0.114 * b) >= 0.5).numpy()


def mask_from_alpha(alpha: np.ndarray | None, path: Path) -> Tensor:
    """The hole an image editor leaves: every pixel that is not fully opaque (alpha < 255, or 65535 at
    16 bits) is missing. alpha: (H, W) uint8 or uint16 -> (1, 1, H, W) of 0/1. A soft-edged eraser
    leaves partial alpha at the rim; those pixels are refilled too rather than kept half-erased. No
    alpha channel, no pixel below opaque or none at it is a UsageError naming the file (nothing to
    fill, or nothing to fill from)."""
    if alpha is None:
        raise UsageError(f"--mask-kind alpha: {path} has no alpha channel; erase the region to fill in an image "
                         "editor and save it as PNG (or TIFF, WebP), or give --mask MASK.png")
    hole = alpha < np.iinfo(alpha.dtype).max
    if not hole.any():
        raise UsageError(f"--mask-kind alpha: {path} is fully opaque, so there is nothing to fill; "
                         "erase the region to fill (make it transparent) or give --mask MASK.png")
    if hole.all():  # as read_mask: no known pixel is left to fill from
        raise UsageError(f"--mask-kind alpha: {path} has no fully opaque pixel, so nothing is left to fill from; "
                         "erase only the region to fill, or give --mask MASK.png")
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """(H, W) uint8 or uint16 -> (scale H, scale W) of the same type by MATLAB bicubic
    (ganforge.apps.degrade.imresize)."""
    from ganforge.apps.degrade import imresize

    top = float(np.iinfo(alpha.dtype).max)  # 255 | 65535
    a = torch.from_numpy(alpha.astype(np.float64) / top)[None, None]  # (1, 1, H, W)
    return (imresize(a, scale)[0, 0].clamp(0, 1) * top).round().numpy().astype(alpha.dtype)


def check_output(out: Path, src: Path | None = None, *, alpha: bool = False, grey: bool = False, bits: int = 8) -> None:
    """Refuse an output suffix we cannot write, or alpha (from ``src``) for a format without it; the
    formats advised instead keep what ``src`` holds (``grey``, ``bits``: sixteen_bits_kept)."""
    if out.suffix.lower() not in _suffixes():
        what = f"{out.suffix!r} is not an image type ganforge writes" if out.suffix else "a name without a suffix has no image type"
        raise UsageError(f"output {out}: {what}; "
                         f"end it with one of {', '.join(_suffixes())}")
    fmt = OUTPUT_FORMATS[out.suffix.lower()][0]
    if alpha and fmt in _NO_ALPHA:
        # PNG first (always written); at 16 bits only those that keep them (sixteen_bits_kept): WebP has 8,
        # and a grey+alpha TIFF is written with 8
        sixteen = _SIXTEEN_BIT_GREY_ALPHA_FORMATS if grey else _SIXTEEN_BIT_FORMATS
        keep = [suffix for suffix in (".png", ".tif", ".webp")
                if suffix in _suffixes() and (bits != 16 or OUTPUT_FORMATS[suffix][0] in sixteen)]
        others = f" (or {', '.join(keep[1:])})" if keep[1:] else ""
        raise UsageError(f"input {src} has an alpha channel, which {fmt} cannot store: write {out.with_suffix(keep[0])}"
                         f"{others} instead" + (" to keep its 16 bits" if bits == 16 else ""))


def sixteen_bits_kept(path: Path, *, grey: bool = False, alpha: bool = False) -> bool:
    """Whether a 16-bit image written to ``path`` keeps its 16 bits (PNG, TIFF; a ``grey`` image with
    ``alpha``, PNG only)."""
    kept = _SIXTEEN_BIT_GREY_ALPHA_FORMATS if grey and alpha else _SIXTEEN_BIT_FORMATS
    return OUTPUT_FORMATS[path.suffix.lower()][0] in kept


def write_image(x: Tensor, path: Path, *, grey: bool = False, alpha: np.ndarray | None = None,
                bits: int = 8) -> None:
    """(1, 3, H, W) in [0, 1] -> a file in the format of its suffix, atomically; ``grey`` writes
    luma, ``alpha`` ((H, W) uint8, or uint16 from a 16-bit file) is attached; ``bits=16`` writes 16-bit
    levels (grey through PIL, colour with or without alpha through OpenCV, grey+alpha as PNG by
    ``png_grey_alpha16``) where the format has them (``sixteen_bits_kept``), 8-bit otherwise."""
    check_output(path, alpha=alpha is not None)
    if alpha is not None and alpha.shape != tuple(x.shape[-2:]):
        raise ValueError(f"alpha of shape {alpha.shape} for an image of {tuple(x.shape[-2:])}")
    # at 16 bits, an 8-bit alpha a is 257 a (255 -> 65535)
    alpha16 = None if alpha is None else alpha if alpha.dtype == np.uint16 else alpha.astype(np.uint16) * 257
    if not grey and bits == 16 and sixteen_bits_kept(path):
        import cv2  # a 16-bit colour input was read through it (read16)

        rgb = (x[0].double().clamp(0, 1) * 65535).round().to(torch.int32).permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
        bgr = rgb[..., ::-1].astype(np.uint16)
        bgra = bgr if alpha16 is None else np.concatenate([bgr, alpha16[..., None]], axis=-1)  # (H, W, 3 | 4)
        ok, encoded = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(bgra))
        if not ok:
            raise OSError(f"OpenCV could not encode {path.name}")
        tiff = alpha is not None and OUTPUT_FORMATS[path.suffix.lower()][0] == "TIFF"
        atomic_write_bytes(path, tiff_with_shorts(encoded.tobytes(), {338: 2}) if tiff else encoded.tobytes())
        return
    if grey and bits == 16 and sixteen_bits_kept(path, grey=True, alpha=alpha is not None):
        r, g, b = x[0].double().clamp(0, 1)  # (H, W) each; luma in float, then rounded once to 16 bits
        luma = ((0.299 * r + 0.587 * g + 0.114 * b) * 65535).round().clamp(0, 65535)
        luma16 = luma.to(torch.int32).cpu().numpy().astype(np.uint16)  # (H, W)
        if alpha16 is not None:
            atomic_write_bytes(path, png_grey_alpha16(luma16, alpha16))
            return
        img = Image.fromarray(luma16)  # mode I;16
        fmt, options = OUTPUT_FORMATS[path.suffix.lower()]
        buf = io.BytesIO()
        img.save(buf, format=fmt, **options)
        atomic_write_bytes(path, buf.getvalue())
        return
    # one float copy, then in place: each temporary is the output's size (1 GiB a copy for 4000 x 3000 x4 SR)
    arr = x[0].clamp(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    img = Image.fromarray(arr)
    if grey:
        img = img.convert("L")  # 0.299 R + 0.587 G + 0.114 B, rounded
    if alpha is not None:
        if alpha.dtype == np.uint16:  # a 16-bit input with alpha written to a format of 8 bits
            alpha = ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(a / 257)
        img.putalpha(Image.fromarray(alpha))  # L -> LA, RGB -> RGBA
    fmt, options = OUTPUT_FORMATS[path.suffix.lower()]
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    atomic_write_bytes(path, buf.getvalue())


def _check_input_file(inp: Path) -> None:
    """A single INPUT must be an image: a file without an image suffix (a .zip of photos, notes.txt) is
    refused by what it is, before OUTPUT's name is judged, so the error names the real problem. A file
    with no image suffix that PIL still recognises (a PNG saved as "scan") is accepted."""
    if is_image_name(inp.name):
        return
    try:
        with Image.open(inp):  # reads the header only
            return
    except (OSError, ValueError):
        pass
    kind = f"a {inp.suffix} file" if inp.suffix else "a file without an image suffix"
    raise UsageError(f"input {inp} is {kind}, which apply does not read: give an image file "
                     f"({', '.join(IMAGE_EXTENSIONS)}) or a folder of images")


def _folder_pairs(inp: Path, out: Path, *, say: bool) -> list[tuple[Path, Path]]:
    """(image, output) pairs of a folder INPUT: the same relative names with .png in ``out``. An ``out``
    inside ``inp`` (photos/restored) is left out of the inputs, so a second run does not restore its
    own earlier results; two inputs that would write one output (rgb.png, rgb.jpg) are refused."""
    odir, idir = out.resolve(), inp.resolve()
    if odir == idir:  # a.jpg -> a.png beside it: originals and results mixed, and a.png would replace an input a.png
        raise UsageError(f"output folder {out} is the input folder: the restored images would mix with (or replace) "
                         f"the originals; give another folder, e.g. {out / 'restored'}")
    files = sorted(p for p in inp.rglob("*") if p.is_file() and is_image_name(p.name) and not p.name.startswith("."))
    nested = odir.is_relative_to(idir)
    if nested:
        kept = [p for p in files if not p.resolve().is_relative_to(odir)]
        if len(kept) < len(files) and say:
            log.info("left out %d image(s) inside the output folder %s: they are earlier results, not inputs",
                     len(files) - len(kept), out)
        files = kept
    if not files:
        raise UsageError(f"no images found in {inp}" + (f" outside the output folder {out}" if nested else ""))
    pairs = [(p, out / p.relative_to(inp).with_suffix(".png")) for p in files]
    first: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst in first:  # the second would silently replace the first
            raise UsageError(f"inputs {first[dst]} and {src} would both be written to {dst}: rename one of them "
                             "(outputs are named by the input's name with .png)")
        first[dst] = src
    for src, dst in pairs:  # photos/a.jpg -> out/a.png and photos/a.png/x.jpg -> out/a.png/x.png: a file and a folder
        for folder in dst.relative_to(out).parents:
            here = out / folder
            if here in first or (here.exists() and not here.is_dir()):
                why = f"{first[here]} is written there" if here in first else "it is a file"
                raise UsageError(f"output {dst} (of {src}) needs the folder {here}, but {why}: rename one of them")
    return pairs


def _check_not_mask(pairs: list[tuple[Path, Path]], out: Path, mask: Path) -> None:
    """A mask is an input too: no output may replace it, even with --force (inpainting's --mask)."""
    if mask.is_dir() and out.exists() and out.resolve() == mask.resolve():
        raise UsageError(f"output {out} is the --mask folder: the filled images would replace or mix with the masks; "
                         "write them elsewhere")
    masks = {mask.resolve()} if mask.is_file() else set()
    for _, o in pairs:
        if o.exists() and (o.resolve() in masks or (mask.is_dir() and o.resolve().is_relative_to(mask.resolve()))):
            raise UsageError(f"output {o} is a mask (--mask {mask}): the filled image would replace it; "
                             "write it elsewhere")


def plan_outputs(inp: Path, out: Path, *, force: bool, mask: Path | None = None, say: bool = True) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs: a file -> a file; a folder -> the same names (.png) in ``out``
    (an ``out`` inside the folder is left out of the inputs: ``_folder_pairs``). Refuses, before
    anything is written, when an output file exists and ``force`` is not given, when an output is one
    of the inputs or the ``mask`` (inpainting's --mask file or folder; even with ``force``), when two
    inputs would write one output, or when a single output's suffix is not a format we write.
    ``say``: log what is left out (the CLI's early check passes False, so it is said once)."""
    if not inp.exists():
        raise UsageError(f"input {inp} does not exist: give an image file or a folder of images")
    if inp.is_dir():
        if out.exists() and not out.is_dir():
            raise UsageError(f"output {out} is a file but the input {inp} is a folder: give an output folder")
        pairs = _folder_pairs(inp, out, say=say)
    else:
        _check_input_file(inp)
        if out.is_dir():
            raise UsageError(f"output {out} is a folder: give an output file name (e.g. {out / (inp.stem + '.png')})")
        check_output(out)
        pairs = [(inp, out)]
    for i, o in pairs:  # even with --force: the original would be lost
        if o.exists() and o.resolve() == i.resolve():
            raise UsageError(f"output {o} is the input itself: the restored image would replace the original; "
                             "write it elsewhere")
        if o.is_dir() and inp.is_dir():  # --force replaces files, not folders: the write failed after the restore
            raise UsageError(f"output {o} (of {i}) is a folder: move it away, or write elsewhere")
    if mask is not None and mask.exists():  # a missing mask is _mask_files' error
        _check_not_mask(pairs, out, mask)
    if not force:
        for _, o in pairs:
            if o.exists():
                raise UsageError(f"output {o} already exists: choose another output or pass --force to overwrite it")
    # a file in the way or a folder that takes no files: now, not after the first image's network pass (which
    # failed as "could not write out.png/x.png: File exists" or "... No such file or directory" under /proc)
    check_can_write(out if inp.is_dir() else out.parent, f"output {out}")
    return pairs
