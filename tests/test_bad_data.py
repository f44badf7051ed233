"""Never crash on a bad file: `ganforge data check` and training on a folder holding every
kind of bad or unusual image, decompression bombs refused before decoding, unsafe zips."""

from __future__ import annotations

import io
import json
import logging
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from ganforge.cli import main
from ganforge.data import check_images, files, load_images

FAST = ["--preset", "mlp-mnist", "--set", "model.resolution=8", "--set", "model.g_width=16", "--set", "model.d_width=16",
        "--set", "model.z_dim=8", "--set", "train.total_steps=2", "--set", "train.batch_size=4", "--set", "train.progress=false",
        "--set", "train.sample_grid=4", "--set", "checkpoint.every_steps=0", "--set", "train.threads=1"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def encoded(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming width x height (8-bit grey), and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


GOOD = 12
# file name -> the reason `data check` gives (None: loads fine, not listed)
EXPECTED = {
    "bomb_huge.png": "decompression bomb (400000000 pixels)",  # > 2x PIL's limit: PIL refuses in open()
    "bomb_big.png": "decompression bomb (10000 x 10000 pixels)",  # > our limit: refused from the header
    "cmyk.jpg": None,
    "empty.png": "zero-byte file",
    "float.tif": "unusual mode F",  # odd mode: loads best-effort, listed so the user knows
    "rgba.png": None,
    "sixteen_bit.png": None,
    "text.png": "not an image (cannot identify format)",
    "truncated.jpg": "truncated image",
}


@pytest.fixture
def bad_folder(tmp_path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    for i in range(GOOD):
        Image.new("L", (8, 8), 20 * i).save(root / f"good_{i:02d}.png")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg = encoded(Image.fromarray(noise), "JPEG")
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("this is a text file, not a PNG")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(root / "cmyk.jpg")  # red in CMYK
    Image.new("RGBA", (8, 8), (0, 0, 255, 255)).save(root / "rgba.png")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(root / "sixteen_bit.png")
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(root / "float.tif")
    (root / "bomb_huge.png").write_bytes(png_header_only(20_000, 20_000))
    (root / "bomb_big.png").write_bytes(png_header_only(10_000, 10_000))
    return root


def test_data_check_lists_each_problem_with_its_reason(bad_folder, capsys):
    code, out, err = run_cli(capsys, "data", "check", bad_folder)
    assert code == 1
    listed = dict(line.split(": ", 1) for line in out.splitlines())
    assert listed == {str(bad_folder / name): reason for name, reason in EXPECTED.items() if reason}
    assert f"{GOOD + len(EXPECTED)} image(s) checked, 6 problem(s)" in err

    code, out, _ = run_cli(capsys, "data", "check", bad_folder, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and report["checked"] == GOOD + len(EXPECTED)
    assert {Path(p["file"]).name: p["reason"] for p in report["problems"]} == {k: v for k, v in EXPECTED.items() if v}


def test_data_check_clean_source_and_usage_errors(tmp_path, capsys):
    clean = tmp_path / "clean"
    clean.mkdir()
    Image.new("RGB", (4, 4)).save(clean / "a.png")
    assert run_cli(capsys, "data", "check", clean)[:2] == (0, "")
    code, out, _ = run_cli(capsys, "data", "check", clean, "--json")
    assert code == 0 and json.loads(out) == {"source": str(clean), "checked": 1, "ok": True, "problems": []}
    (tmp_path / "notes.csv").write_text("1,2")
    for args, needle in [(["/no/such/place"], "does not exist"), (["digits"], "built-in dataset"),
                         ([tmp_path / "notes.csv"], "is not a folder, .zip or .npz"), ([], "Missing argument"),
                         ([clean, "--bogus"], "--bogus")]:
        code, _, err = run_cli(capsys, "data", "check", *args)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (args, err)


def test_decompression_bombs_are_refused_before_any_decoding(bad_folder, monkeypatch):
    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    reasons = dict(check_images(str(bad_folder)))
    assert reasons[str(bad_folder / "bomb_big.png")].startswith("decompression bomb")
    data = load_images(str(bad_folder), resolution=8, channels=1, on_bad_image="skip", max_bad_fraction=1.0)
    assert len(data) == GOOD + 4  # good ones + CMYK, RGBA, 16-bit, float
    assert decoded and max(w * h for w, h in decoded) <= 64 * 64  # nothing big was ever decoded (allocated)


def test_training_fails_fast_naming_the_first_bad_file(bad_folder, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--data", bad_folder, "--out", tmp_path / "run", *FAST)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"ganforge: error: bad image {bad_folder / 'bomb_big.png'}: decompression bomb")
    assert "ganforge data check" in lines[0] and not (tmp_path / "run").exists()


def test_training_skips_bad_files_once_each_within_the_stated_fraction(bad_folder, tmp_path, capsys, caplog):
    skip = ["--set", "data.on_bad_image=skip"]
    code, _, err = run_cli(capsys, "train", "--data", bad_folder, "--out", tmp_path / "r1", *FAST, *skip)
    assert code == 2
    assert "5 of 21 images in" in err and "more than max_bad_fraction=0.01" in err  # 5 unreadable; float.tif loads
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        code, _, err = run_cli(capsys, "train", "--data", bad_folder, "--out", tmp_path / "r2", *FAST, *skip,
                               "--set", "data.max_bad_fraction=0.3")
    assert code == 0, err
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping bad image")]
    assert sorted(m.split(": ")[0].rsplit("/", 1)[1] for m in skipped) == sorted(k for k, v in EXPECTED.items() if v and "mode" not in v)
    assert (tmp_path / "r2" / "model" / "generator.safetensors").is_file()


def zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name verbatim
    return path


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_unsafe_zip_is_refused_as_a_whole_and_nothing_is_extracted(tmp_path, capsys, member):
    good = encoded(Image.new("L", (8, 8), 7))
    archive = zip_with(tmp_path / "data.zip", {**{f"ok/{i}.png": good for i in range(8)}, member: good})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, _ = run_cli(capsys, "data", "check", archive)
    assert code == 1 and out.strip() == f"{archive}: refusing zip member {member!r}; absolute paths and '..' components are not allowed"
    code, _, err = run_cli(capsys, "train", "--data", archive, "--out", tmp_path / "run", *FAST)
    assert code == 2 and f"refusing zip member {member!r}" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written next to it (or above)
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_read_in_place_and_absurd_counts_and_sizes_refused(tmp_path, capsys, monkeypatch):
    good = encoded(Image.new("L", (8, 8), 7))
    archive = zip_with(tmp_path / "data.zip", {f"{i}.png": good for i in range(5)} | {"bad.png": b"nope"})
    code, out, _ = run_cli(capsys, "data", "check", archive)
    assert code == 1 and out.strip() == f"{archive}:bad.png: not an image (cannot identify format)"
    monkeypatch.setattr(files, "MAX_ZIP_MEMBERS", 4)
    code, out, _ = run_cli(capsys, "data", "check", archive)
    assert code == 1 and "has 6 members; at most 4 are allowed" in out
    monkeypatch.setattr(files, "MAX_ZIP_MEMBERS", 1_000_000)
    monkeypatch.setattr(files, "MAX_ZIP_MEMBER_BYTES", 50)
    code, out, _ = run_cli(capsys, "data", "check", archive)
    assert code == 1 and "bytes uncompressed; at most 50 bytes" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zip"]  # read in place, never extracted
