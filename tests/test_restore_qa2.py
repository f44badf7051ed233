"""Restoration QA, second pass: caps on the batch (train.batch_size, data.patch_size and their product)
and on model.refine, a training folder reads the 16-bit grey+alpha TIFF that apply reads and refuses an
uncompressed planar grey+alpha TIFF in apply's words, 16-bit masks (a tRNS grey level, a grey+alpha
TIFF) read by their alpha, outputs and eval strips that cannot be written (or that collide as a file and
a folder) refused before any network runs, the frames an animation would lose are said, and eval's sigma
is capped at 255. Tiny files and nets; the models fixture of test_restore_files.py."""

import logging
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.apps.restore_config import MAX_BATCH_PIXELS, MAX_BATCH_SIZE, MAX_PATCH_SIZE, PRESETS, apply_overrides, get_preset
from ganforge.apps.restore_data import load_photos
from ganforge.apps.restore_eval import evaluate_restoration
from ganforge.apps.restore_files import read_image_file, read_mask
from ganforge.apps.restore_files16 import png_grey_alpha16
from ganforge.apps.restore_paths import apply_to_path
from ganforge.errors import UsageError
from test_restore_files import models, smooth  # noqa: F401  (module fixture: tiny saved nets)
from test_restore_files_alpha16 import png16
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)
from test_restore_train import _cli


def _one_line(code, err, *needles):
    """A usage error: exit code 2, one line on stderr naming each of ``needles``, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


# ----------------------------------------------------------------------------- 1. batch caps


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=1000000000", f"train.batch_size=1000000000 is too large: use 1 to {MAX_BATCH_SIZE}"),
    ("data.patch_size=128000", f"data.patch_size=128000 is too large: use 1 to {MAX_PATCH_SIZE}"),
    # each under its own cap, together 2000 x 128**2 = 32.8 M pixels a step
    ("train.batch_size=2000", "train.batch_size=2000 patches of data.patch_size=128 are 32,768,000 pixels a step: "
                              "at most 16,777,216 (2**24) are allowed; use train.batch_size <= 1024 or a smaller patch"),
])
def test_batch_sizes_past_the_caps_are_refused_naming_the_key_and_the_range(override, message):
    with pytest.raises(UsageError) as err:
        apply_overrides(get_preset("sr-x4"), [override])
    assert str(err.value) == message


def test_refine_blocks_are_capped_like_blocks():
    """model.refine had no cap: 100000 spent minutes building the net on the meta device to count it."""
    with pytest.raises(UsageError) as err:
        apply_overrides(get_preset("inpaint-center"), ["model.arch=unet", "model.refine=100000"])
    assert str(err.value) == "model.refine=100000 is too large: use at most 256"


def test_the_caps_leave_every_preset_and_the_largest_allowed_batch():
    for name, cfg in PRESETS.items():
        assert cfg.train.batch_size * cfg.data.patch_size**2 * 32 <= MAX_BATCH_PIXELS, name  # 32x headroom at least
    cfg = apply_overrides(get_preset("denoise-s25"), [f"train.batch_size={MAX_BATCH_SIZE}"])  # 4096 x 64**2 = 2**24
    assert cfg.train.batch_size * cfg.data.patch_size**2 == MAX_BATCH_PIXELS
    assert apply_overrides(get_preset("sr-x4"), [f"data.patch_size={MAX_PATCH_SIZE}", "train.batch_size=16"])


def test_cli_batch_caps_are_one_line_at_dry_run_before_the_photos_load(capsys, monkeypatch):
    import ganforge.apps.restore_data as restore_data

    def never(*args, **kwargs):
        raise AssertionError("photos loaded before the config was checked")

    monkeypatch.setattr(restore_data, "load_photos", never)
    for override, needle in (("train.batch_size=160000", "train.batch_size=160000"),
                             ("data.patch_size=12800", "data.patch_size=12800")):
        code, _, err = _cli(capsys, "denoise", "train", "--set", override, "--dry-run")
        _one_line(code, err, needle, "too large: use 1 to")


# ----------------------------------------------------------------------------- 2. training reads what apply reads


def _grey_alpha(h, w):
    """(grey, alpha) (h, w) uint16 levels: a gradient, and an alpha clear in a corner, half in a band."""
    grey = (np.linspace(0, 65535, h * w).reshape(h, w)).round().astype(np.uint16)
    alpha = np.full((h, w), 65535, np.uint16)
    alpha[:4, :4], alpha[8:10] = 0, 32896
    return grey, alpha


def _tiff(path, planes, planar="contig", **options):
    """``planes``: a list of (h, w) arrays, written as one grey(+alpha) TIFF through tifffile."""
    tifffile = pytest.importorskip("tifffile", reason="tifffile writes the grey+alpha TIFF")
    data = np.stack(planes, axis=-1 if planar == "contig" else 0)
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig=planar, extrasamples=[2], **options)


@pytest.mark.parametrize("where", ["folder", "zip"])
def test_a_16_bit_grey_alpha_tiff_trains_as_the_same_png(tmp_path, where):
    """PIL cannot open the TIFF (training called it "not an image"); apply reads it through tifffile. A
    training folder now loads it as it loads the same levels saved as a 16-bit grey+alpha PNG (which PIL
    reads as 8-bit RGBA: the high byte, composited on black like every photo with alpha)."""
    grey, alpha = _grey_alpha(24, 20)
    rgb = smooth(24, 20)
    for kind in ("png", "tif"):
        folder = tmp_path / kind
        folder.mkdir()
        Image.fromarray(rgb).save(folder / "a.png")
        if kind == "png":
            (folder / "b.png").write_bytes(png_grey_alpha16(grey, alpha))
        else:
            _tiff(folder / "b.tif", [grey, alpha], "separate", compression="zlib")
        Image.fromarray(rgb).save(folder / "c.png")  # after it: loading goes on past the file PIL failed on
    if where == "zip":
        for kind in ("png", "tif"):
            with zipfile.ZipFile(tmp_path / f"{kind}.zip", "w") as z:
                for f in sorted((tmp_path / kind).iterdir()):
                    z.write(f, f.name)
    source = (lambda kind: tmp_path / f"{kind}.zip") if where == "zip" else (lambda kind: tmp_path / kind)
    from_png, from_tif = load_photos(str(source("png"))), load_photos(str(source("tif")))
    assert len(from_tif) == 3 and all(torch.equal(a, b) for a, b in zip(from_png, from_tif))
    assert torch.equal(from_tif[0], torch.from_numpy(rgb).permute(2, 0, 1)) and torch.equal(from_tif[2], from_tif[0])
    assert from_tif[1][:, :4, :4].eq(0).all() and torch.equal(from_tif[1][0], from_tif[1][2])  # clear corner: black


def test_an_uncompressed_planar_8_bit_grey_alpha_tiff_is_refused_in_a_training_folder_as_apply_refuses_it(tmp_path, capsys):
    """PIL opens it and fails to decode it ("unknown raw mode"): training said only that, as a bad image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(smooth(40, 40)).save(folder / "a.png")
    grey, alpha = (v >> 8 for v in _grey_alpha(40, 40))
    _tiff(folder / "la.tif", [grey.astype(np.uint8), alpha.astype(np.uint8)], "separate")
    want = (f"cannot read {folder / 'la.tif'}: it is a planar TIFF (grey+alpha, each channel stored apart), which "
            "would be misread; save it as an interleaved (contiguous) TIFF or as PNG")
    with pytest.raises(UsageError) as err:
        load_photos(str(folder))
    assert str(err.value) == want
    code, _, err = _cli(capsys, "denoise", "train", "--data", str(folder), "--dry-run", "--set", "data.patch_size=32",
                        "--set", "data.val_images=0")
    _one_line(code, err, want)


def test_a_file_that_is_no_image_is_still_named_bad_in_a_training_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(smooth(40, 40)).save(folder / "a.png")
    (folder / "b.tif").write_bytes(b"II*\0" + b"\0" * 40)  # a TIFF's magic, then nothing
    with pytest.raises(UsageError, match=r"bad image .*b.tif: .*fix or delete it"):
        load_photos(str(folder))


# ----------------------------------------------------------------------------- 3. 16-bit masks


def _hole(h=12, w=16):
    hole = np.zeros((h, w), bool)
    hole[3:7, 4:10] = True
    return hole


def test_a_16_bit_grey_mask_with_a_trns_level_is_read_by_its_alpha_not_inverted(tmp_path):
    """A black hole painted on white, the white marked clear by a tRNS level: the 8-bit mask is read by its
    alpha; the 16-bit one (PIL drops a 16-bit grey tRNS) came out inverted, with no word."""
    hole = _hole()
    (tmp_path / "m16.png").write_bytes(png16(np.where(hole, 0, 65535).astype(np.uint16), 65535))
    img8 = Image.fromarray(np.where(hole, 0, 255).astype(np.uint8))
    img8.info["transparency"] = 255
    img8.save(tmp_path / "m8.png", transparency=255)
    rgb = np.stack([np.where(hole, 60000, 65535), np.where(hole, 1000, 65535), np.where(hole, 1000, 65535)], -1)
    (tmp_path / "rgb16.png").write_bytes(png16(rgb.astype(np.uint16), (65535, 65535, 65535)))  # red on clear white
    for name in ("m8.png", "m16.png", "rgb16.png"):
        assert np.array_equal(read_mask(tmp_path / name, hole.shape)[0, 0].numpy().astype(bool), hole), name


def test_a_16_bit_grey_alpha_tiff_mask_is_read_and_16_bit_grey_by_half_its_range(tmp_path):
    hole = _hole()
    painted = np.where(hole, 65535, 0).astype(np.uint16)
    _tiff(tmp_path / "ga.tif", [np.full(hole.shape, 3000, np.uint16), painted])  # dark paint on a clear layer
    (tmp_path / "ga.png").write_bytes(png_grey_alpha16(np.full(hole.shape, 3000, np.uint16), painted))
    for name in ("ga.tif", "ga.png"):
        assert np.array_equal(read_mask(tmp_path / name, hole.shape)[0, 0].numpy().astype(bool), hole), name
    levels = np.where(hole, 32768, 32767).astype(np.uint16)  # 8 bits: 127.5 rounds to 128 (white), 127.498 to 127
    Image.fromarray(levels).save(tmp_path / "g16.png")
    assert np.array_equal(read_mask(tmp_path / "g16.png", hole.shape)[0, 0].numpy().astype(bool), hole)
    with pytest.raises(UsageError, match=r"mask .*ga.tif is 16x12 but the image is 12x16"):
        read_mask(tmp_path / "ga.tif", (16, 12))


def test_a_16_bit_mask_that_cannot_be_read_is_named_as_a_mask(tmp_path, capsys, models):  # noqa: F811
    hole = _hole()
    _tiff(tmp_path / "ga.tif", [np.zeros(hole.shape, np.uint16), np.where(hole, 65535, 0).astype(np.uint16)])
    data = bytearray((tmp_path / "ga.tif").read_bytes())
    from ganforge.apps.restore_files16 import tiff_with_shorts

    (tmp_path / "bad.tif").write_bytes(tiff_with_shorts(bytes(data), {259: 4242}))  # a compression nobody decodes
    Image.fromarray(smooth(*hole.shape)).save(tmp_path / "in.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "in.png"),
                        str(tmp_path / "out.png"), "--mask", str(tmp_path / "bad.tif"))
    _one_line(code, err, f"cannot read mask {tmp_path / 'bad.tif'}: tifffile cannot decode")
    assert not (tmp_path / "out.png").exists()
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "in.png"),
                        str(tmp_path / "out.png"), "--mask", str(tmp_path / "ga.tif"))
    assert code == 0, err


# ----------------------------------------------------------------------------- 4. outputs that cannot be written


class _NeverRun:
    """A restorer that fails the test if it is ever called: the refusal must come before the network."""

    task, scale, config, work_scale = "denoise", None, None, 1.0
    name = "never"

    def net_calls(self, h, w, mask=None):
        return 1

    def __call__(self, x, mask=None):
        raise AssertionError("the network ran before the output was checked")


@pytest.mark.parametrize("case", ["under a file", "in /proc"])
def test_an_output_that_cannot_be_written_is_refused_before_the_network_runs(tmp_path, capsys, models, case):  # noqa: F811
    if case == "in /proc" and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(smooth(20, 24)).save(folder / name)
    base = folder / "a.png" if case == "under a file" else Path("/proc")
    for inp, out in ((folder / "a.png", base / "o.png"), (folder, base / "out")):
        with pytest.raises(UsageError, match=r"^output .* cannot be (created|written): "):
            apply_to_path(_NeverRun(), inp, out)
        code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(inp), str(out))
        _one_line(code, err, f"output {out} cannot be", "give a path in a writable folder")


def test_eval_strips_that_cannot_be_written_are_refused_before_the_first_image(tmp_path, capsys, models):  # noqa: F811
    (tmp_path / "f").write_bytes(b"a file")
    image = torch.rand(1, 3, 24, 24)
    with pytest.raises(UsageError, match=r"strips folder .*f/strips cannot be created: .*f is a file"):
        evaluate_restoration("denoise", _NeverRun(), [image], sigma=25.0, strips_dir=tmp_path / "f" / "strips")
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(smooth(24, 24)).save(data / "a.png")
    code, _, err = _cli(capsys, "denoise", "eval", "nlmeans", "--data", str(data),
                        "--strips", str(tmp_path / "f" / "strips"))
    _one_line(code, err, "strips folder", "cannot be created")


# ----------------------------------------------------------------------------- 5. frames an animation would lose


def test_an_animation_is_restored_from_its_first_frame_and_says_what_is_dropped(tmp_path, caplog):
    frames = [Image.fromarray(np.roll(smooth(16, 20), 4 * i, axis=1)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        img = read_image_file(tmp_path / "anim.gif")
    assert "anim.gif has 3 frames (an animation or a multi-page file): only the first is restored" in caplog.text
    with Image.open(tmp_path / "anim.gif") as first:
        want = np.asarray(first.convert("RGB"))
    assert np.array_equal((img.rgb[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), want)
    caplog.clear()
    frames[0].save(tmp_path / "still.gif")
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        read_image_file(tmp_path / "still.gif")
    assert "frames" not in caplog.text


# ----------------------------------------------------------------------------- 6. folder outputs that collide


def test_an_output_that_needs_a_folder_where_a_file_goes_is_refused_before_any_work(tmp_path, capsys, models):  # noqa: F811
    """photos/a.jpg -> out/a.png and photos/a.png/x.png -> out/a.png/x.png: the first was written, then the
    second failed ("File exists"); an output folder that exists where a file goes failed even with --force."""
    photos = tmp_path / "photos"
    (photos / "a.png").mkdir(parents=True)
    Image.fromarray(smooth(20, 24)).save(photos / "a.jpg")
    Image.fromarray(smooth(20, 24)).save(photos / "a.png" / "x.png")
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(photos), str(out))
    _one_line(code, err, f"output {out / 'a.png' / 'x.png'} (of {photos / 'a.png' / 'x.png'}) needs the folder "
                         f"{out / 'a.png'}, but {photos / 'a.jpg'} is written there")
    assert not out.exists()
    (photos / "a.jpg").unlink()
    out.mkdir()
    (out / "a.png").write_bytes(b"an earlier result")  # a file where the folder a.png/ must go
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(photos), str(out), "--force")
    _one_line(code, err, f"needs the folder {out / 'a.png'}, but it is a file")
    assert (out / "a.png").read_bytes() == b"an earlier result"
    (photos / "a.png" / "x.png").rename(photos / "b.png")
    (out / "b.png").mkdir()
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(photos), str(out), "--force")
    _one_line(code, err, f"output {out / 'b.png'} (of {photos / 'b.png'}) is a folder")


# ----------------------------------------------------------------------------- 7. eval's noise level


@pytest.mark.parametrize("sigma", [255.5, 1e300])
def test_eval_sigma_past_255_is_refused_as_training_and_apply_refuse_it(tmp_path, capsys, sigma):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(smooth(24, 24)).save(data / "a.png")
    code, out, err = _cli(capsys, "denoise", "eval", "input", "--data", str(data), "--sigma", str(sigma))
    _one_line(code, err, f"noise sigma must be a number from 0 to 255 (the 0..255 scale), got {float(sigma)}")
    assert out == ""
    with pytest.raises(UsageError, match="from 0 to 255"):
        evaluate_restoration("denoise", _NeverRun(), [torch.rand(1, 3, 24, 24)], sigma=sigma)


# ----------------------------------------------------------------------------- 8. the input as its own mask


def test_the_input_image_given_as_its_own_mask_is_refused(tmp_path, capsys, models):  # noqa: F811
    """The folder case was refused; one image filled its own bright pixels, exit 0."""
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    for mask in (tmp_path / "in.png", tmp_path / ".." / tmp_path.name / "in.png"):
        code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "in.png"),
                            str(tmp_path / "out.png"), "--mask", str(mask))
        _one_line(code, err, f"--mask {mask} is the input image itself", "--mask-kind alpha")
    assert not (tmp_path / "out.png").exists()
