"""16-bit colour files in `ganforge sr|denoise apply` (ganforge.apps.restore_files): PIL decodes an RGB
PNG or TIFF of 16 bits per channel to its high bytes, so such a file is read (and written) through
OpenCV, upright by its EXIF orientation as PIL would turn it; without OpenCV, or with alpha, it is read
with 8 bits and a warning says so."""

import builtins
import logging
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from ganforge.apps.restore_files import _ORIENT, read_image_file
from test_restore_files import models, smooth  # noqa: F401  (module fixture: tiny saved nets)
from test_restore_models import one_thread  # noqa: F401
from test_restore_train import _cli

cv2 = pytest.importorskip("cv2")  # the restore extra; it reads and writes 16-bit colour


def rgb16(h, w):
    """(h, w, 3) uint16 levels between the 8-bit ones: 257 * v8 plus a ramp that the high byte drops."""
    return smooth(h, w).astype(np.uint16) * 257 + (np.arange(w, dtype=np.uint16)[None, :, None] * 5 % 251)


def write16(path, rgb):
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV writes BGR


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
    assert orientation == 1 or (orientation in _ORIENT and not np.array_equal(got16, levels))  # it was turned


def test_without_opencv_or_with_alpha_a_16_bit_colour_file_is_read_with_8_bits_and_says_so(tmp_path, caplog, monkeypatch):
    levels = rgb16(6, 10)
    write16(tmp_path / "c.png", levels)
    alpha = np.full((6, 10, 1), 65535, np.uint16)
    assert cv2.imwrite(str(tmp_path / "a.png"), np.concatenate([levels[..., ::-1], alpha], axis=-1))
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / "a.png")
    assert img.bits == 8 and "a.png has 16 bits per channel but is read with 8 with alpha" in caplog.text

    import importlib.util

    real_import, real_find = builtins.__import__, importlib.util.find_spec
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "cv2" else real_import(name, *a, **k))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cv2" else real_find(name, *a))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / "c.png")
    assert img.bits == 8 and "without OpenCV" in caplog.text
    assert np.array_equal((img.rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int64), levels >> 8)


def test_a_folder_warns_once_per_file_though_it_is_read_twice(tmp_path, capsys, caplog, models):  # noqa: F811
    levels = rgb16(20, 24)
    alpha = np.full((20, 24, 1), 65535, np.uint16)
    (tmp_path / "in").mkdir()
    for name in ("a.png", "b.png"):  # RGBA at 16 bits: read with 8, and said so
        assert cv2.imwrite(str(tmp_path / "in" / name), np.concatenate([levels[..., ::-1], alpha], axis=-1))
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in"), str(tmp_path / "out"))
    assert code == 0, err
    assert caplog.text.count("a.png has 16 bits per channel but is read with 8") == 1
    assert caplog.text.count("b.png has 16 bits per channel but is read with 8") == 1
