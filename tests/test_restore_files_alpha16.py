"""16-bit transparency that PIL misses, in `ganforge sr|denoise|inpaint apply` (ganforge.apps.restore_files,
restore_files16): a 16-bit PNG's tRNS colour or grey level (PIL matches its 16-bit value against 8-bit
pixels) becomes a 16-bit alpha by an exact match, and a 16-bit grey+alpha TIFF (PIL cannot open one;
OpenCV reads it as 8-bit grey) is read through tifffile; both are written as other 16-bit files with
alpha are. The fixtures are written by hand (PNG) or with tifffile, as PIL writes neither."""

import logging
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.apps.restore_files import read_image_file, resize_alpha
from ganforge.apps.restore_files16 import ORIENT, tiff_with_shorts
from ganforge.errors import UsageError
from test_restore_files import models  # noqa: F401  (module fixture: tiny saved nets)
from test_restore_files16 import (grey_alpha16, hide, no_opencv, png_grey_alpha16, read_grey_alpha16,  # noqa: F401
                                  read_rgba16, rgb16, write16)
from test_restore_models import one_thread  # noqa: F401
from test_restore_train import _cli


def png16(levels, trns, orientation=1):
    """A 16-bit PNG of (H, W, 3) RGB (colour type 2) or (H, W) grey (type 0) uint16 levels, with a tRNS chunk
    marking ``trns`` (16-bit R, G, B, or a grey level) transparent and an eXIf orientation; rows unfiltered."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w = levels.shape[:2]
    rows = levels.astype(">u2").reshape(h, -1)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2 if levels.ndim == 3 else 0, 0, 0, 0))
            + (chunk(b"eXIf", exif.tobytes()) if orientation != 1 else b"")
            + chunk(b"tRNS", struct.pack(f">{np.size(trns)}H", *np.atleast_1d(trns)))
            + chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + row.tobytes() for row in rows))) + chunk(b"IEND", b""))


def keyed(levels):
    """(levels with the key at a 2nd pixel and a near miss at a 3rd, the key, (H, W) uint16 alpha: 0 exactly
    at the key, else 65535). The near miss differs in the low byte only: at 8 bits it would match."""
    levels = levels.copy()
    key = levels[0, 0].copy()
    levels[2, 3] = key
    levels[4, 5] = key + 1  # the key's low bytes are below 255 (128, 216, 132): its high bytes are the key's
    clear = (levels == key).all(axis=-1) if levels.ndim == 3 else levels == key
    return levels, key, np.where(clear, 0, 65535).astype(np.uint16)


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("kind", ["rgb", "grey"])
def test_a_16_bit_png_with_a_trns_colour_is_read_with_16_bits_and_that_colour_clear(tmp_path, caplog, kind, orientation):
    levels, key, alpha = keyed(rgb16(6, 10) if kind == "rgb" else rgb16(6, 10)[..., 1])
    (tmp_path / "t.png").write_bytes(png16(levels, key, orientation))
    with Image.open(tmp_path / "t.png") as pil:
        assert "transparency" in pil.info and pil.tile[0].args in ("RGB;16B", "I;16B")
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / "t.png")
    assert img.bits == 16 and img.grey == (kind == "grey") and "read with 8" not in caplog.text
    assert img.alpha.dtype == np.uint16 and (img.alpha == 0).sum() == 2  # the near miss stays opaque
    got = (img.rgb[0].permute(1, 2, 0).numpy().astype(np.float64) * 65535).round().astype(np.uint16)  # (H', W', 3)
    want = levels if kind == "rgb" else np.repeat(levels[..., None], 3, axis=-1)
    turn = ORIENT.get(orientation, lambda a: a)
    assert np.array_equal(got, turn(want)) and np.array_equal(img.alpha, turn(alpha[..., None])[..., 0])


def test_a_16_bit_png_with_a_trns_colour_is_restored_as_16_bit_with_its_alpha(tmp_path, capsys, caplog, models):  # noqa: F811
    levels, key, alpha = keyed(rgb16(20, 24))
    (tmp_path / "t.png").write_bytes(png16(levels, key))
    write16(tmp_path / "c.png", levels)  # the same colour, opaque: the 16-bit RGB path
    grey, grey_key, grey_alpha = keyed(rgb16(20, 24)[..., 1])
    (tmp_path / "gt.png").write_bytes(png16(grey, grey_key))
    Image.fromarray(grey).save(tmp_path / "g.png")  # the same grey, opaque: mode I;16
    run = lambda task, name, out, *extra: _cli(capsys, task, "apply", str(models[task][0]),  # noqa: E731
                                               str(tmp_path / name), str(tmp_path / out), *extra)
    for task in ("sr", "denoise"):
        for name in ("t.png", "c.png", "gt.png", "g.png"):
            code, _, err = run(task, name, f"{task}-{name}")
            assert code == 0, err
        got = read_rgba16(tmp_path / f"{task}-t.png")  # a 16-bit RGBA PNG, as a 16-bit RGBA input gives
        want = cv2_rgb(tmp_path / f"{task}-c.png")
        assert np.array_equal(got[..., :3], want)  # the net saw the colour under the key unchanged
        got_grey, got_alpha = read_grey_alpha16(tmp_path / f"{task}-gt.png")  # 16-bit grey+alpha
        assert np.array_equal(got_grey, np.asarray(Image.open(tmp_path / f"{task}-g.png")))
        for a, want_alpha in ((got[..., 3], alpha), (got_alpha, grey_alpha)):
            assert np.array_equal(a, want_alpha if task == "denoise" else resize_alpha(want_alpha, 2))
    code, _, err = run("denoise", "t.png", "d.tif")
    assert code == 0 and np.array_equal(read_rgba16(tmp_path / "d.tif"), read_rgba16(tmp_path / "denoise-t.png")), err
    code, _, err = run("inpaint", "t.png", "hole.png", "--mask-kind", "alpha")  # the keyed pixels are the hole
    assert code == 0, err
    filled = cv2_rgb(tmp_path / "hole.png")  # filled, so opaque: 16-bit RGB
    assert filled.dtype == np.uint16 and np.array_equal(filled[alpha > 0], levels[alpha > 0])
    assert "bits per channel" not in caplog.text  # nothing read or written with 8


def cv2_rgb(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]


def test_without_opencv_a_16_bit_trns_colour_is_dropped_and_said_so(tmp_path, caplog, no_opencv):  # noqa: F811
    levels, key, _ = keyed(rgb16(6, 10))
    (tmp_path / "t.png").write_bytes(png16(levels, key))
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / "t.png")
    assert img.bits == 8 and img.alpha is None  # not an alpha matched at 8 bits: none, or the wrong pixels
    assert ("t.png has 16 bits per channel but is read with 8 without OpenCV (pip install opencv-python-headless), "
            "its transparent colour (PNG tRNS) dropped: 8 bits cannot match it") in caplog.text


def tiff_grey_alpha(path, grey, alpha, planar="contig", **options):
    """A 16-bit grey+alpha TIFF through tifffile (``options``: compression, byteorder, extrasamples)."""
    tifffile = pytest.importorskip("tifffile", reason="tifffile writes the grey+alpha TIFF")
    data = np.stack([grey, alpha], axis=-1 if planar == "contig" else 0)
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig=planar, **({"extrasamples": [2]} | options))
    with pytest.raises(Exception, match="cannot identify"):
        Image.open(path)  # what PIL alone does with it


@pytest.mark.parametrize("planar,compression,byteorder", [
    ("contig", None, "<"), ("contig", "zlib", ">"), ("separate", None, ">"), ("separate", "zlib", "<"),
])
def test_a_16_bit_grey_alpha_tiff_is_read_with_16_bits_and_its_alpha(tmp_path, planar, compression, byteorder):
    grey, alpha = grey_alpha16(6, 10)
    tiff_grey_alpha(tmp_path / "ga.tif", grey, alpha, planar, compression=compression, byteorder=byteorder)
    img = read_image_file(tmp_path / "ga.tif")
    assert img.bits == 16 and img.grey and img.alpha.dtype == np.uint16 and np.array_equal(img.alpha, alpha)
    assert np.array_equal((img.rgb[0] * 65535).round().to(torch.int64).numpy(), np.broadcast_to(grey, (3, 6, 10)))


def test_a_16_bit_grey_alpha_tiff_is_read_premultiplied_unnamed_or_turned_as_its_tags_say(tmp_path):
    grey, alpha = grey_alpha16(6, 10)
    a = alpha.astype(np.float64)
    tiff_grey_alpha(tmp_path / "pre.tif", np.rint(grey * a / 65535).astype(np.uint16), alpha, extrasamples=[1])
    img = read_image_file(tmp_path / "pre.tif")  # premultiplied: divided out, as for 16-bit RGBa
    got = (img.rgb[0, 0].numpy().astype(np.float64) * 65535).round()
    assert np.array_equal(img.alpha, alpha) and (np.abs(got - grey) <= 0.5 * 65535 / a + 0.5).all()
    tiff_grey_alpha(tmp_path / "x.tif", grey, alpha, extrasamples=[0])  # a 2nd sample of no stated meaning
    img = read_image_file(tmp_path / "x.tif")
    assert img.bits == 16 and img.grey and img.alpha is None
    tiff_grey_alpha(tmp_path / "o.tif", grey, alpha)
    (tmp_path / "turned.tif").write_bytes(tiff_with_shorts((tmp_path / "o.tif").read_bytes(), {274: 6}))
    img = read_image_file(tmp_path / "turned.tif")  # Orientation 6: turned 90 degrees clockwise
    turned = ORIENT[6](np.stack([grey, alpha], axis=-1))  # (10, 6, 2)
    assert np.array_equal((img.rgb[0, 0] * 65535).round().to(torch.int64).numpy(), turned[..., 0])
    assert np.array_equal(img.alpha, turned[..., 1])


def test_a_16_bit_grey_alpha_tiff_is_restored_as_the_same_png_is(tmp_path, capsys, models):  # noqa: F811
    grey, alpha = grey_alpha16(20, 24)
    tiff_grey_alpha(tmp_path / "ga.tif", grey, alpha, "separate", compression="zlib")
    (tmp_path / "ga.png").write_bytes(png_grey_alpha16(grey, alpha))
    for task in ("sr", "denoise"):
        for name in ("ga.tif", "ga.png"):
            code, _, err = _cli(capsys, task, "apply", str(models[task][0]), str(tmp_path / name),
                                str(tmp_path / f"{task}-{name}.png"))
            assert code == 0, err
        assert (tmp_path / f"{task}-ga.tif.png").read_bytes() == (tmp_path / f"{task}-ga.png.png").read_bytes()
        assert np.array_equal(read_grey_alpha16(tmp_path / f"{task}-ga.tif.png")[1],
                              alpha if task == "denoise" else resize_alpha(alpha, 2))


@pytest.mark.parametrize("case,needle", [
    ("no tifffile", "it is a 16-bit grey+alpha TIFF, which PIL cannot open; pip install tifffile to read it, or save "
                    "it as a 16-bit grey+alpha PNG"),
    ("compression", "tifffile cannot decode this 16-bit grey+alpha TIFF ("),  # why, in tifffile's words
    ("bomb", "a 16-bit grey+alpha TIFF of 65535 x 65535 pixels (at most 89478485 are read)"),  # before decoding
])
def test_a_16_bit_grey_alpha_tiff_that_cannot_be_read_is_one_line_naming_it(tmp_path, capsys, monkeypatch, models,  # noqa: F811
                                                                            case, needle):
    tiff_grey_alpha(tmp_path / "o.tif", *grey_alpha16(20, 24))
    data = (tmp_path / "o.tif").read_bytes()
    # Compression 4242: no such scheme, as an LZW file is to tifffile without imagecodecs
    tags = {"compression": {259: 4242}, "bomb": {256: 65535, 257: 65535}}.get(case, {})
    (tmp_path / "ga.tif").write_bytes(tiff_with_shorts(data, tags))
    if case == "no tifffile":
        hide(monkeypatch, "tifffile")
    with pytest.raises(UsageError, match="16-bit grey\\+alpha TIFF"):
        read_image_file(tmp_path / "ga.tif")
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "ga.tif"),
                        str(tmp_path / "o.png"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and f"cannot read {tmp_path / 'ga.tif'}: " in lines[0] and needle in lines[0], err
    assert not (tmp_path / "o.png").exists()
