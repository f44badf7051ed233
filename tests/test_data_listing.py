"""Listing image folders and zips: symlinked folders, other suffixes, duplicate zip members."""

from __future__ import annotations

import io
import logging
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data import load_images
from ganforge.data.files import ImageFiles
from ganforge.errors import UsageError


def save(path: Path, value: int, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(path, format=fmt)
    return path


def png_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs POSIX symlinks")


@needs_symlinks
def test_symlinked_class_folder_is_listed_with_its_label(tmp_path):
    for i in range(2):
        save(tmp_path / "sym" / "cat" / f"{i}.png", 50)
        save(tmp_path / "elsewhere" / "zebra" / f"{i}.png", 200)
    (tmp_path / "sym" / "zebra").symlink_to(tmp_path / "elsewhere" / "zebra", target_is_directory=True)
    with ImageFiles(tmp_path / "sym") as found:
        assert [e.parts for e in found.entries] == [("cat", "0.png"), ("cat", "1.png"), ("zebra", "0.png"),
                                                    ("zebra", "1.png")]
        assert found.entries[-1].display == str(tmp_path / "sym" / "zebra" / "1.png")  # the path the user sees
    data = load_images(str(tmp_path / "sym"), resolution=4, channels=1)
    assert data.class_names == ["cat", "zebra"] and len(data) == 4
    for image, label in zip(data.images, data.labels, strict=True):
        assert int(image.max()) == (50 if label == 0 else 200)


@needs_symlinks
def test_symlink_loop_terminates_and_warns(tmp_path, caplog):
    save(tmp_path / "a" / "x.png", 10)
    (tmp_path / "a" / "b").symlink_to(tmp_path / "a", target_is_directory=True)  # a/b -> a
    with caplog.at_level(logging.WARNING, logger="ganforge.data"), ImageFiles(tmp_path / "a") as found:
        assert [e.parts for e in found.entries] == [("x.png",)]
    assert f"skipped {tmp_path / 'a' / 'b'}: it links to {tmp_path / 'a'}" in caplog.text


def test_netpbm_and_jfif_are_images(tmp_path):
    save(tmp_path / "c" / "0.pgm", 10, "PPM")
    save(tmp_path / "c" / "1.PPM", 20, "PPM")
    save(tmp_path / "c" / "2.pnm", 30, "PPM")
    save(tmp_path / "c" / "3.jfif", 40, "JPEG")
    data = load_images(str(tmp_path), resolution=4, channels=1)
    assert [int(im.max()) for im in data.images] == [10, 20, 30, 40]


def test_other_suffixes_are_counted_in_one_line(tmp_path, caplog):
    save(tmp_path / "a" / "0.png", 10)
    (tmp_path / "b").mkdir()
    for i in range(2):
        (tmp_path / "b" / f"{i}.pcx").write_bytes(b"x")  # a whole class in a suffix we do not read
    (tmp_path / "a" / ".DS_Store").write_bytes(b"junk")  # metadata is not worth a mention
    (tmp_path / "a" / "Thumbs.db").write_bytes(b"junk")
    with caplog.at_level(logging.INFO, logger="ganforge.data"):
        with ImageFiles(tmp_path) as found:
            assert len(found.entries) == 1
    lines = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert lines == [f"{tmp_path}: ignored 2 file(s) with other suffixes (e.g. b/0.pcx); images are .png .jpg .jpeg "
                     ".bmp .gif .webp .tif .tiff .pgm .ppm .pnm .jfif"]

    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train/c/0.png", png_bytes(1))
        zf.writestr("train/c/1.heic", b"x")
        zf.writestr("__MACOSX/train/c/._0.png", b"x")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ganforge.data"), ImageFiles(archive) as found:
        assert len(found.entries) == 1
    assert "ignored 1 file(s) with other suffixes (e.g. train/c/1.heic)" in caplog.text


def test_zip_with_duplicate_member_names_is_refused(tmp_path):
    archive = tmp_path / "dup.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        zf.writestr("a.png", png_bytes(10))
        zf.writestr("a.png", png_bytes(200))
        zf.writestr("b.png", png_bytes(100))
    with pytest.raises(UsageError, match=r"dup\.zip holds two members named a\.png: .*re-create the zip$"):
        load_images(str(archive), resolution=4, channels=1)


def test_data_check_says_what_listing_leaves_out_once(tmp_path, capsys, caplog):
    import logging

    from ganforge.cli import main

    for i in range(3):
        Image.new("L", (8, 8), i).save(tmp_path / f"{i}.png")
    (tmp_path / "x.pcx").write_text("x")
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        assert main(["data", "check", str(tmp_path)]) == 0
    assert caplog.text.count("ignored 1 file(s) with other suffixes") == 1
