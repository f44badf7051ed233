"""16-bit colour (with or without alpha) and grey+alpha files in `ganforge sr|denoise apply`
(ganforge.apps.restore_files): PIL decodes an RGB or RGBA PNG or TIFF of 16 bits per channel, or a
grey+alpha PNG, to its high bytes, so such a file is read through OpenCV (and written through it, or for
grey+alpha as a 16-bit grey+alpha PNG), upright by its EXIF orientation as PIL would turn it; without
OpenCV it is read with 8 bits and a warning says so."""

import builtins
import logging
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps, features

from ganforge.apps.restore_files import read_image_file, resize_alpha
from ganforge.apps.restore_files16 import ORIENT, tiff_with_shorts
from test_restore_files import models, smooth  # noqa: F401  (module fixture: tiny saved nets)
from test_restore_models import one_thread  # noqa: F401
from test_restore_train import _cli

cv2 = pytest.importorskip("cv2")  # the restore extra; it reads and writes 16-bit colour


def rgb16(h, w):
    """(h, w, 3) uint16 levels between the 8-bit ones: 257 * v8 plus a ramp that the high byte drops."""
    return smooth(h, w).astype(np.uint16) * 257 + (np.arange(w, dtype=np.uint16)[None, :, None] * 5 % 251)


def write16(path, rgb):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV writes BGR


def grey_alpha16(h, w):
    """(h, w) uint16 grey and alpha, neither of 8-bit levels (1234 = 4.8 * 257); alpha fades, opaque at the right."""
    grey = rgb16(h, w)[..., 1]
    alpha = np.tile(np.linspace(1234, 65535, w).round().astype(np.uint16), (h, 1))
    return grey, alpha


def png_grey_alpha16(grey, alpha, exif=b""):
    """A 16-bit grey+alpha PNG (colour type 4), which neither PIL nor OpenCV writes; rows unfiltered."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w = grey.shape
    rows = np.stack([grey, alpha], axis=-1).astype(">u2").reshape(h, -1)
    data = b"".join(b"\x00" + row.tobytes() for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
            + (chunk(b"eXIf", exif) if exif else b"") + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


def rgba16(h, w):
    """(h, w, 4) uint16: rgb16's colour under grey_alpha16's alpha (1234 ... 65535, opaque at the right)."""
    return np.concatenate([rgb16(h, w), grey_alpha16(h, w)[1][..., None]], axis=-1)


def write_rgba16(path, rgba, extra_samples=2, orientation=None):
    """RGBA through OpenCV (as BGRA). A .tif gets the tags OpenCV leaves out: ExtraSamples (338; 2 =
    straight alpha, 1 = premultiplied, 0 = a 4th sample of no stated meaning, None = no tag, as OpenCV
    writes it) and an orientation (274); a .png's orientation goes in an eXIf chunk after IHDR."""
    data = cv2.imencode(path.suffix, np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))[1].tobytes()
    if path.suffix == ".tif":
        tags = ({} if extra_samples is None else {338: extra_samples}) | ({} if orientation is None else {274: orientation})
        data = tiff_with_shorts(data, tags)
    elif orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        body = exif.tobytes()
        chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
        data = data[:33] + chunk + data[33:]  # 8-byte signature + 25-byte IHDR chunk
    path.write_bytes(data)


def read_rgba16(path):
    """A written 16-bit RGBA PNG or TIFF -> (H, W, 4) uint16 RGBA, checking that it is one (and that a
    TIFF says its alpha is straight)."""
    with Image.open(path) as pil:
        rawmode = pil.tile[0].args if pil.format == "PNG" else pil.tile[0].args[0]
        assert rawmode.startswith("RGBA;16") and (pil.format == "PNG" or pil.tag_v2.get(338) == (2,))
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgra.dtype == np.uint16 and bgra.shape[2] == 4
    return bgra[..., [2, 1, 0, 3]]


def hide(monkeypatch, module):
    """``module`` neither imports nor is found, as without the extra that brings it."""
    import importlib.util

    real_import, real_find = builtins.__import__, importlib.util.find_spec
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == module else real_import(name, *a, **k))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real_find(name, *a))


@pytest.fixture
def no_opencv(monkeypatch):
    """cv2 neither imports nor is found, as without the restore extra."""
    hide(monkeypatch, "cv2")


def read_grey_alpha16(path):
    """A written 16-bit grey+alpha PNG -> (grey, alpha), (H, W) uint16 each, checking that it is one."""
    with Image.open(path) as pil:
        assert pil.format == "PNG" and pil.tile[0].args == "LA;16B"  # grey+alpha, 16 bits, not RGBA
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # OpenCV reads grey+alpha as BGRA, B = G = R
    assert bgra.dtype == np.uint16 and (bgra[..., 0] == bgra[..., 2]).all()
    return bgra[..., 0], bgra[..., 3]


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_16_bit_colour_file_is_restored_and_written_with_16_bits(tmp_path, capsys, caplog, models, suffix):  # noqa: F811
    levels = rgb16(20, 24)
    write16(tmp_path / f"c{suffix}", levels)
    with Image.open(tmp_path / f"c{suffix}") as pil:
        assert pil.mode == "RGB"  # what PIL alone would give: 8 bits
    x = torch.from_numpy(levels.astype(np.float32) / 65535).permute(2, 0, 1)[None]  # (1, 3, H, W)
    for task in ("sr", "denoise"):
        out = tmp_path / f"{task}{suffix}"
        code, _, err = _cli(capsys, task, "apply", str(models[task][0]), str(tmp_path / f"c{suffix}"), str(out))
        assert code == 0, err
        got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.int64)  # (H', W', 3)
        want = (models[task][1](x)[0].double().clamp(0, 1) * 65535).round().permute(1, 2, 0).numpy()
        assert got.shape == want.shape and np.abs(got - want).max() <= 1  # float32 vs the CLI's tiling order
        assert len(np.unique(got % 257)) > 10  # not 8-bit levels scaled up

    mask = np.zeros((20, 24), np.uint8)
    mask[6:14, 8:16] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / f"c{suffix}"),
                        str(tmp_path / f"i{suffix}"), "--mask", str(tmp_path / "m.png"))
    assert code == 0, err
    got = cv2.imread(str(tmp_path / f"i{suffix}"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert got.dtype == np.uint16 and np.array_equal(got[mask == 0], levels[mask == 0])  # known pixels bit-exact

    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / f"c{suffix}"),
                        str(tmp_path / "d.jpg"))
    assert code == 0 and "has 16 bits per channel but .jpg stores 8" in caplog.text, err


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_exif_orientation_turns_16_bit_colour_as_pil_turns_its_8_bit_reading(tmp_path, orientation):
    levels = rgb16(6, 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    png = cv2.imencode(".png", np.ascontiguousarray(levels[..., ::-1]))[1].tobytes()
    # a phone's EXIF block as an eXIf chunk after IHDR (8-byte signature + 25-byte IHDR chunk)
    data = exif.tobytes()
    chunk = struct.pack(">I", len(data)) + b"eXIf" + data + struct.pack(">I", zlib.crc32(b"eXIf" + data))
    (tmp_path / "turned.png").write_bytes(png[:33] + chunk + png[33:])
    img = read_image_file(tmp_path / "turned.png")
    assert img.bits == 16
    got16 = (img.rgb[0].permute(1, 2, 0).numpy().astype(np.float64) * 65535).round().astype(np.int64)
    with Image.open(tmp_path / "turned.png") as pil:
        want8 = np.asarray(ImageOps.exif_transpose(pil))  # PIL: the high byte of each level, upright
    assert got16.shape == want8.shape and np.array_equal(got16 >> 8, want8)
    assert orientation == 1 or (orientation in ORIENT and not np.array_equal(got16, levels))  # it was turned


def test_without_opencv_a_16_bit_colour_file_is_read_with_8_bits_and_says_so(tmp_path, caplog, no_opencv):
    levels = rgb16(6, 10)
    write16(tmp_path / "c.png", levels)
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / "c.png")
    assert img.bits == 8 and "c.png has 16 bits per channel but is read with 8 without OpenCV" in caplog.text
    assert np.array_equal((img.rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int64), levels >> 8)

    rgba = rgba16(6, 10)  # with alpha: 8 bits too, the alpha's high bytes
    (tmp_path / "a.png").write_bytes(cv2.imencode(".png", np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))[1].tobytes())
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / "a.png")
    assert img.bits == 8 and not img.grey and "a.png has 16 bits per channel but is read with 8 without" in caplog.text
    assert img.alpha.dtype == np.uint8 and np.array_equal(img.alpha, rgba[..., 3] >> 8)

    grey, alpha = grey_alpha16(6, 10)  # grey+alpha without OpenCV: 8 bits, but still grey
    (tmp_path / "ga.png").write_bytes(png_grey_alpha16(grey, alpha))
    img = read_image_file(tmp_path / "ga.png")
    assert img.bits == 8 and img.grey and np.array_equal(img.alpha, alpha >> 8)


def test_a_folder_warns_once_per_file_though_it_is_read_twice(tmp_path, capsys, caplog, models, no_opencv):  # noqa: F811
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.png"):  # 16 bits without OpenCV: read with 8, and said so
        (tmp_path / "in" / name).write_bytes(cv2.imencode(".png", rgb16(20, 24)[..., ::-1].copy())[1].tobytes())
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in"), str(tmp_path / "out"))
    assert code == 0, err
    assert caplog.text.count("a.png has 16 bits per channel but is read with 8") == 1
    assert caplog.text.count("b.png has 16 bits per channel but is read with 8") == 1


def test_a_16_bit_grey_alpha_png_is_restored_as_16_bit_grey_and_its_alpha_kept(tmp_path, capsys, caplog, models):  # noqa: F811
    grey, alpha = grey_alpha16(20, 24)
    (tmp_path / "ga.png").write_bytes(png_grey_alpha16(grey, alpha))
    with Image.open(tmp_path / "ga.png") as pil:
        assert pil.mode == "RGBA"  # what PIL alone would give: 8 bits, grey turned colour
    img = read_image_file(tmp_path / "ga.png")
    assert img.bits == 16 and img.grey and img.alpha.dtype == np.uint16 and np.array_equal(img.alpha, alpha)
    assert np.array_equal((img.rgb[0] * 65535).round().to(torch.int64).numpy(), np.broadcast_to(grey, (3, 20, 24)))

    Image.fromarray(grey).save(tmp_path / "g.png")  # the same grey without alpha: mode I;16
    for task in ("sr", "denoise"):
        for name in ("ga", "g"):
            code, _, err = _cli(capsys, task, "apply", str(models[task][0]), str(tmp_path / f"{name}.png"),
                                str(tmp_path / f"{task}-{name}.png"))
            assert code == 0, err
        got, got_alpha = read_grey_alpha16(tmp_path / f"{task}-ga.png")
        want = np.asarray(Image.open(tmp_path / f"{task}-g.png"))  # the 16-bit grey path
        assert want.dtype == np.uint16 and np.array_equal(got, want)  # the grey restored as 16-bit grey is
        assert np.array_equal(got_alpha, alpha if task == "denoise" else resize_alpha(alpha, 2))
    (tmp_path / "in").mkdir()  # a folder: the same file, the same output
    (tmp_path / "in" / "ga.png").write_bytes((tmp_path / "ga.png").read_bytes())
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in"), str(tmp_path / "out"))
    assert code == 0, err
    assert (tmp_path / "out" / "ga.png").read_bytes() == (tmp_path / "denoise-ga.png").read_bytes()

    mask = np.zeros((20, 24), np.uint8)
    mask[6:14, 8:16] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "ga.png"),
                        str(tmp_path / "i.png"), "--mask", str(tmp_path / "m.png"))
    assert code == 0, err
    got, got_alpha = read_grey_alpha16(tmp_path / "i.png")
    assert np.array_equal(got[mask == 0], grey[mask == 0]) and np.array_equal(got_alpha, alpha)  # bit-exact
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "ga.png"),
                        str(tmp_path / "hole.png"), "--mask-kind", "alpha")  # all but the opaque column filled
    assert code == 0, err
    got = np.asarray(Image.open(tmp_path / "hole.png"))  # filled, so opaque: 16-bit grey
    assert got.dtype == np.uint16 and np.array_equal(got[:, -1], grey[:, -1])

    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "ga.png"),
                        str(tmp_path / "d.tif"))  # no 16-bit grey+alpha TIFF writer: 8-bit LA, and said so
    assert code == 0 and "ga.png has 16 bits per channel but .tif stores 8 with alpha: write .png" in caplog.text
    with Image.open(tmp_path / "d.tif") as tif:
        assert tif.mode == "LA" and np.array_equal(np.asarray(tif)[..., 1], ((alpha + 128.0) // 257).astype(np.uint8))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_exif_orientation_turns_16_bit_grey_alpha_as_pil_turns_its_8_bit_reading(tmp_path, orientation):
    grey, alpha = grey_alpha16(6, 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    (tmp_path / "turned.png").write_bytes(png_grey_alpha16(grey, alpha, exif.tobytes()))
    img = read_image_file(tmp_path / "turned.png")
    assert img.bits == 16 and img.grey
    got16 = (img.rgb[0, 0].numpy().astype(np.float64) * 65535).round().astype(np.int64)  # (H', W')
    with Image.open(tmp_path / "turned.png") as pil:
        want8 = np.asarray(ImageOps.exif_transpose(pil))  # RGBA: the high bytes, upright
    assert got16.shape == want8.shape[:2] and np.array_equal(got16 >> 8, want8[..., 0])
    assert np.array_equal(img.alpha >> 8, want8[..., 3])
    assert orientation == 1 or not np.array_equal(got16, grey)  # it was turned


@pytest.mark.parametrize("name, extra_samples", [("a.png", 2), ("a.tif", 2), ("a.tif", None)])  # None: as OpenCV writes it
def test_a_16_bit_rgba_file_is_read_with_16_bit_colour_and_alpha(tmp_path, caplog, name, extra_samples):
    rgba = rgba16(6, 10)
    write_rgba16(tmp_path / name, rgba, extra_samples)
    with Image.open(tmp_path / name) as pil:
        assert pil.mode == "RGBA"  # what PIL alone would give: 8 bits
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / name)
    assert img.bits == 16 and not img.grey and "read with 8" not in caplog.text
    assert img.alpha.dtype == np.uint16 and np.array_equal(img.alpha, rgba[..., 3])  # 1234, not 4 * 257
    assert np.array_equal((img.rgb[0] * 65535).round().to(torch.int64).permute(1, 2, 0).numpy(), rgba[..., :3])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_16_bit_rgba_file_is_restored_as_16_bit_colour_and_its_alpha_kept(tmp_path, capsys, caplog, models, suffix):  # noqa: F811
    rgba = rgba16(20, 24)
    alpha = rgba[..., 3]
    write_rgba16(tmp_path / f"ca{suffix}", rgba)
    write16(tmp_path / f"c{suffix}", rgba[..., :3])  # the same colour, opaque: the 16-bit RGB path
    for task in ("sr", "denoise"):
        for name in ("ca", "c"):
            code, _, err = _cli(capsys, task, "apply", str(models[task][0]), str(tmp_path / f"{name}{suffix}"),
                                str(tmp_path / f"{task}-{name}{suffix}"))
            assert code == 0, err
        got = read_rgba16(tmp_path / f"{task}-ca{suffix}")
        want = cv2.imread(str(tmp_path / f"{task}-c{suffix}"), cv2.IMREAD_UNCHANGED)[..., ::-1]
        assert want.dtype == np.uint16 and np.array_equal(got[..., :3], want)  # the net saw the colour unchanged
        assert np.array_equal(got[..., 3], alpha if task == "denoise" else resize_alpha(alpha, 2))

    mask = np.zeros((20, 24), np.uint8)
    mask[6:14, 8:16] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / f"ca{suffix}"),
                        str(tmp_path / f"i{suffix}"), "--mask", str(tmp_path / "m.png"))
    assert code == 0, err
    got = read_rgba16(tmp_path / f"i{suffix}")
    assert np.array_equal(got[mask == 0], rgba[mask == 0]) and np.array_equal(got[..., 3], alpha)  # bit-exact
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / f"ca{suffix}"),
                        str(tmp_path / f"hole{suffix}"), "--mask-kind", "alpha")  # all but the opaque column filled
    assert code == 0, err
    got = cv2.imread(str(tmp_path / f"hole{suffix}"), cv2.IMREAD_UNCHANGED)[..., ::-1]  # filled, so opaque: 16-bit RGB
    assert got.dtype == np.uint16 and got.shape == (20, 24, 3) and np.array_equal(got[:, -1], rgba[:, -1, :3])
    assert "bits per channel" not in caplog.text  # nothing read or written with 8


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_16_bit_rgba_to_webp_is_written_with_8_bits_and_says_so(tmp_path, capsys, caplog, models):  # noqa: F811
    rgba = rgba16(20, 24)
    write_rgba16(tmp_path / "ca.png", rgba)
    for out in ("d.png", "d.webp"):
        code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "ca.png"), str(tmp_path / out))
        assert code == 0, err
    assert "ca.png has 16 bits per channel but .webp stores 8 with alpha: write .png or .tif to keep 16" in caplog.text
    with Image.open(tmp_path / "d.webp") as webp:
        got = np.asarray(webp.convert("RGBA")).astype(np.int64)  # (H, W, 4) uint8 levels
    want16 = read_rgba16(tmp_path / "d.png").astype(np.int64)
    assert np.array_equal(got[..., 3], (rgba[..., 3].astype(np.int64) + 128) // 257)  # round(a / 257)
    assert np.abs(got[..., :3] - (want16[..., :3] + 128) // 257).max() <= 1  # rounded from the float, not the 16 bits


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("orientation", [2, 5, 6, 8])
def test_the_exif_orientation_turns_16_bit_rgba_as_pil_turns_its_8_bit_reading(tmp_path, suffix, orientation):
    rgba = rgba16(6, 10)
    write_rgba16(tmp_path / f"turned{suffix}", rgba, orientation=orientation)
    img = read_image_file(tmp_path / f"turned{suffix}")
    assert img.bits == 16 and img.alpha.dtype == np.uint16
    got16 = np.concatenate([(img.rgb[0].permute(1, 2, 0).numpy().astype(np.float64) * 65535).round().astype(np.int64),
                            img.alpha[..., None]], axis=-1)  # (H', W', 4)
    with Image.open(tmp_path / f"turned{suffix}") as pil:
        want8 = np.asarray(ImageOps.exif_transpose(pil))  # RGBA: the high bytes, upright
    assert got16.shape == want8.shape and np.array_equal(got16 >> 8, want8)
    assert np.array_equal(got16, ORIENT[orientation](rgba))  # turned once: the 16 bits kept


def test_a_16_bit_tiff_with_premultiplied_alpha_or_an_unnamed_4th_sample_is_read_as_pil_reads_it(tmp_path):
    rgba = rgba16(6, 10)
    a = rgba[..., 3:].astype(np.float64)  # (H, W, 1)
    premultiplied = np.concatenate([np.rint(rgba[..., :3] * a / 65535), a], axis=-1).astype(np.uint16)
    write_rgba16(tmp_path / "pre.tif", premultiplied, extra_samples=1)
    with Image.open(tmp_path / "pre.tif") as pil:
        assert pil.tile[0].args[0].startswith("RGBa;16")  # PIL divides the alpha out, at 8 bits
        want8 = np.asarray(pil)
    img = read_image_file(tmp_path / "pre.tif")
    got = (img.rgb[0].permute(1, 2, 0).numpy().astype(np.float64) * 65535).round()  # (H, W, 3)
    assert img.bits == 16 and np.array_equal(img.alpha, rgba[..., 3])
    # straight again, to within the premultiplied file's rounding (half a level, times 65535 / a)
    assert (np.abs(got - rgba[..., :3]) <= 0.5 * 65535 / a + 0.5).all()
    opaque = rgba[..., 3] == 65535
    assert np.array_equal(got[opaque], rgba[..., :3][opaque]) and np.array_equal(got[opaque].astype(np.int64) >> 8, want8[opaque][:, :3])

    write_rgba16(tmp_path / "x.tif", rgba, extra_samples=0)  # a 4th sample of no stated meaning: PIL drops it
    with Image.open(tmp_path / "x.tif") as pil:
        assert pil.mode == "RGB"
    img = read_image_file(tmp_path / "x.tif")
    assert img.bits == 16 and img.alpha is None
    assert np.array_equal((img.rgb[0] * 65535).round().to(torch.int64).permute(1, 2, 0).numpy(), rgba[..., :3])


def test_a_16_bit_rgba_tiff_as_opencv_writes_it_reads_without_opencv_warnings(tmp_path, capfd, models):  # noqa: F811
    # no ExtraSamples tag, as cv2.imencode writes it: libtiff warns about the 4th sample on stderr
    (tmp_path / "in").mkdir()
    for name in ("a.tif", "b.tif"):
        write_rgba16(tmp_path / "in" / name, rgba16(20, 24), extra_samples=None)
    capfd.readouterr()
    level = cv2.utils.logging.getLogLevel()
    img = read_image_file(tmp_path / "in" / "a.tif")
    assert img.bits == 16 and np.array_equal(img.alpha, rgba16(20, 24)[..., 3])
    assert capfd.readouterr().err == "" and cv2.utils.logging.getLogLevel() == level  # silenced, then restored
    code, _, err = _cli(capfd, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in"), str(tmp_path / "out"))
    assert code == 0 and "TIFFReadDirectory" not in err and "WARN" not in err, err  # each file read twice


@pytest.mark.parametrize("make, advice", [
    ("grey+alpha", "write {out}.png instead to keep its 16 bits"),  # a grey+alpha .tif or .webp is written with 8
    ("rgba", "write {out}.png (or .tif) instead to keep its 16 bits"),  # WebP has 8 bits
])
def test_16_bit_alpha_to_jpeg_is_refused_advising_only_formats_that_keep_16_bits(tmp_path, capsys, models, make, advice):  # noqa: F811
    if make == "rgba":
        write_rgba16(tmp_path / "in.png", rgba16(20, 24))
    else:
        (tmp_path / "in.png").write_bytes(png_grey_alpha16(*grey_alpha16(20, 24)))
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in.png"),
                        str(tmp_path / "out.jpg"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and advice.format(out=tmp_path / "out") in lines[0], err
    assert "which JPEG cannot store" in lines[0] and not (tmp_path / "out.jpg").exists()


@pytest.mark.parametrize("compression", [None, "zlib"])  # misread by PIL's raw reader / by OpenCV
@pytest.mark.parametrize("channels", [3, 4])
def test_a_planar_16_bit_tiff_is_refused_not_scrambled(tmp_path, capsys, models, compression, channels):  # noqa: F811
    tifffile = pytest.importorskip("tifffile", reason="tifffile writes the planar TIFF")
    planes = rgba16(20, 24)[..., :channels].transpose(2, 0, 1)  # (C, H, W): each channel stored whole
    tifffile.imwrite(tmp_path / "p.tif", planes, photometric="rgb", planarconfig="separate", compression=compression,
                     extrasamples=[2] if channels == 4 else None)
    with Image.open(tmp_path / "p.tif") as pil:
        assert pil.tag_v2.get(284) == 2  # PlanarConfiguration: separate
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "p.tif"),
                        str(tmp_path / "o.png"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and f"cannot read {tmp_path / 'p.tif'}: it is a planar TIFF (16-bit" in lines[0], err
    assert "save it as an interleaved (contiguous) TIFF or as PNG" in lines[0] and not (tmp_path / "o.png").exists()
    # the same levels interleaved are read, with 16 bits
    tifffile.imwrite(tmp_path / "c.tif", planes.transpose(1, 2, 0), photometric="rgb", compression=compression,
                     extrasamples=[2] if channels == 4 else None)
    img = read_image_file(tmp_path / "c.tif")
    assert img.bits == 16 and np.array_equal((img.rgb[0] * 65535).round().to(torch.int64).numpy(), planes[:3])
