"""`ganforge sr|denoise|inpaint apply`'s outputs, masks and folders (ganforge.apps.restore_files,
restore_paths): bad suffixes, alpha for JPEG, an output that is an input or a mask, and a --sigma
the net cannot read are one-line usage errors with nothing written; masks come from a file, a
folder, an image's alpha or a generated hole; a folder is checked whole before the first output.
Split from test_restore_files.py, whose `models`, `smooth` and `restored` it shares."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.apps.restore_apply import Restorer
from ganforge.apps.restore_files import read_image_file
from test_restore_files import models, restored, smooth  # noqa: F401  (models: a module-scoped fixture)
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)
from test_restore_train import _cli, perturbed_net, tiny


@pytest.mark.parametrize("out_name,needle", [
    ("o.jpgx", "'.jpgx' is not an image type ganforge writes; end it with one of .png, .jpg"),
    ("o", "a name without a suffix has no image type"),
    ("o.jpg", "has an alpha channel, which JPEG cannot store: write"),
])
def test_bad_outputs_are_refused_before_anything_is_written(tmp_path, capsys, models, out_name, needle):
    rgba = np.concatenate([smooth(20, 24), np.full((20, 24, 1), 128, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "in.png")
    code, out, err = _cli(capsys, "sr", "apply", str(models["sr"][0]), str(tmp_path / "in.png"), str(tmp_path / out_name))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / out_name).exists()


@pytest.mark.parametrize("sigma,needle", [
    ("-3", "--sigma -3 must be in (0, 255]"),
    ("300", "--sigma 300 must be in (0, 255]"),
    ("15", "was trained for sigma 25 and reads no level: drop --sigma"),
])
def test_sigma_for_a_net_that_cannot_read_it_is_refused(tmp_path, capsys, models, sigma, needle):
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    code, out, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in.png"),
                          str(tmp_path / "o.png"), "--sigma", sigma)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / "o.png").exists()


def test_sigma_equal_to_the_trained_level_is_accepted(tmp_path, capsys, models):
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    code, out, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in.png"),
                          str(tmp_path / "o.png"), "--sigma", "25")
    assert code == 0, err


def test_overwrite_is_an_alias_of_force(tmp_path, capsys, models):
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    (tmp_path / "o.png").write_bytes(b"old")
    args = ["denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in.png"), str(tmp_path / "o.png")]
    code, out, err = _cli(capsys, *args)
    assert code == 2 and "--force" in err and (tmp_path / "o.png").read_bytes() == b"old"
    code, out, err = _cli(capsys, *args, "--overwrite")  # the name `ganforge sample` and `train` use
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == (24, 20)


def test_an_output_that_is_its_input_is_refused_even_with_force(tmp_path, capsys, models):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth(20, 24)).save(photos / "a.png")
    before = (photos / "a.png").read_bytes()
    Image.fromarray(smooth(20, 24)).save(photos / "b.jpg")
    for inp, out, needle in [(photos / "a.png", photos / "a.png", "is the input itself"),
                             (photos / "a.png", tmp_path / "." / "photos" / "a.png", "is the input itself"),
                             # the folder into itself: b.png would land beside b.jpg, a mixed folder
                             (photos, photos, "is the input folder"), (photos, tmp_path / "photos" / ".", "is the input folder")]:
        code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(inp), str(out), "--force")
        assert code == 2 and needle in err and err.count("\n") == 1, err
    assert (photos / "a.png").read_bytes() == before and sorted(p.name for p in photos.iterdir()) == ["a.png", "b.jpg"]


def _erased(h, w, alpha_value=0, seed=3):
    """An RGBA photo with a 6x8 block erased (alpha ``alpha_value``, colour left under it) and its hole mask."""
    rgba = np.concatenate([smooth(h, w, seed=seed), np.full((h, w, 1), 255, np.uint8)], axis=-1)
    hole = np.zeros((h, w), bool)
    hole[5:11, 7:15] = True
    rgba[hole, 3] = alpha_value
    return rgba, hole


@pytest.mark.parametrize("alpha_value", [0, 254])  # a hard eraser, and the faint rim a soft one leaves
def test_mask_kind_alpha_fills_the_transparent_pixels_like_the_same_mask_file(tmp_path, capsys, models, alpha_value):
    rgba, hole = _erased(20, 24, alpha_value)
    Image.fromarray(rgba).save(tmp_path / "erased.png")
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "hole.png")
    model = str(models["inpaint"][0])
    code, _, err = _cli(capsys, "inpaint", "apply", model, str(tmp_path / "erased.png"), str(tmp_path / "a.png"),
                        "--mask-kind", "alpha")
    assert code == 0, err
    code, _, err = _cli(capsys, "inpaint", "apply", model, str(tmp_path / "rgb.png"), str(tmp_path / "m.png"),
                        "--mask", str(tmp_path / "hole.png"))
    assert code == 0, err
    by_alpha, by_file = Image.open(tmp_path / "a.png"), Image.open(tmp_path / "m.png")
    assert by_alpha.mode == "RGB"  # filled, so opaque: the alpha is not carried over
    assert np.array_equal(np.asarray(by_alpha), np.asarray(by_file))
    out = np.asarray(by_alpha)
    assert np.array_equal(out[~hole], rgba[~hole][:, :3])  # known pixels bit-exact
    assert not np.array_equal(out[hole], rgba[hole][:, :3])  # the colour left under the hole was not kept


def test_mask_kind_alpha_keeps_grey_and_may_write_jpeg(tmp_path, capsys, models):
    rgba, hole = _erased(20, 24)
    la = Image.fromarray(rgba).convert("LA")
    la.save(tmp_path / "erased.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "erased.png"),
                        str(tmp_path / "o.jpg"), "--mask-kind", "alpha")
    assert code == 0, err  # no alpha left to store, so JPEG is fine
    assert Image.open(tmp_path / "o.jpg").mode == "L"


@pytest.mark.parametrize("make,needle", [
    (lambda rgba: Image.fromarray(rgba[..., :3]), "has no alpha channel; erase the region to fill"),
    (lambda rgba: Image.fromarray(np.concatenate([rgba[..., :3], np.full(rgba.shape[:2] + (1,), 255, np.uint8)], -1)),
     "is fully opaque, so there is nothing to fill"),
])
def test_mask_kind_alpha_without_a_hole_is_one_line(tmp_path, capsys, models, make, needle):
    make(_erased(20, 24)[0]).save(tmp_path / "in.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "in.png"),
                        str(tmp_path / "o.png"), "--mask-kind", "alpha")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "in.png" in lines[0], err
    assert not (tmp_path / "o.png").exists()


def test_mask_kind_alpha_takes_each_image_of_a_folder_its_own_hole(tmp_path, capsys, models):
    photos = tmp_path / "photos"
    photos.mkdir()
    holes = {}
    for i, name in enumerate(["a.png", "b.png"]):
        rgba, hole = _erased(20, 24, seed=i)
        if i:  # b's hole is elsewhere
            rgba[..., 3], hole = 255, np.roll(hole, (6, 5), axis=(0, 1))
            rgba[hole, 3] = 0
        Image.fromarray(rgba).save(photos / name)
        holes[name] = (rgba, hole)
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(photos), str(tmp_path / "out"),
                        "--mask-kind", "alpha")
    assert code == 0, err
    restorer = models["inpaint"][1]
    for name, (rgba, hole) in holes.items():
        m = torch.from_numpy(hole.astype(np.float32))[None, None]
        x = torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1)[None].float() / 255 * (1 - m)
        want = (restorer(x, m)[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / name)), want)


@pytest.mark.parametrize("trained,kind,warns", [
    ("center,square", "alpha", True), ("center,square", "strokes", True), ("center,square", None, True),
    ("center,square", "center", False), ("boxes,strokes", "alpha", False), ("center,boxes", None, False),
])
def test_a_centre_only_net_warns_for_other_holes(tmp_path, caplog, trained, kind, warns):
    import logging

    from ganforge.apps.restore_paths import apply_to_path

    cfg = tiny("inpaint-center", f"degrade.mask_kinds={trained}")
    restorer = Restorer(perturbed_net(cfg, seed=1), cfg)
    rgba, hole = _erased(20, 24)
    Image.fromarray(rgba).save(tmp_path / "in.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "hole.png")
    with caplog.at_level(logging.WARNING, logger="ganforge.restore"):
        apply_to_path(restorer, tmp_path / "in.png", tmp_path / "o.png", mask_kind=kind,
                      mask_path=None if kind else tmp_path / "hole.png")
    said = [r.getMessage() for r in caplog.records if "trained on centre holes only" in r.getMessage()]
    assert len(said) == int(warns), said
    if warns:
        assert "use inpaint-free" in said[0]


def test_read_mask_by_luma_or_by_what_is_painted_on_a_transparent_layer(tmp_path):
    from ganforge.apps.restore_files import read_mask

    hole = np.zeros((12, 16), bool)
    hole[3:8, 4:11] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "white.png")  # white on black
    painted = np.zeros((12, 16, 4), np.uint8)
    painted[hole] = (200, 0, 0, 255)  # red (luma 60) on a transparent layer
    Image.fromarray(painted).save(tmp_path / "red.png")
    opaque = np.full((12, 16, 4), 255, np.uint8)
    opaque[..., :3] = hole[..., None] * 255  # white on black, alpha everywhere 255: read by luma
    Image.fromarray(opaque).save(tmp_path / "opaque.png")
    for name in ("white", "red", "opaque"):
        got = read_mask(tmp_path / f"{name}.png", (12, 16))
        assert got.shape == (1, 1, 12, 16) and torch.equal(got[0, 0].bool(), torch.from_numpy(hole)), name


@pytest.mark.parametrize("value,needle", [(0, "marks no pixel as missing"), (255, "marks every pixel as missing")])
def test_a_mask_with_nothing_or_everything_to_fill_is_one_line(tmp_path, capsys, models, value, needle):
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    Image.fromarray(np.full((20, 24), value, np.uint8)).save(tmp_path / "m.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "in.png"),
                        str(tmp_path / "o.png"), "--mask", str(tmp_path / "m.png"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "m.png" in lines[0], err
    assert not (tmp_path / "o.png").exists()


def test_a_folder_of_masks_pairs_by_name_and_suffix_may_differ(tmp_path, capsys, models):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    (photos / "sub").mkdir(parents=True)
    (masks / "sub").mkdir(parents=True)
    holes = {}
    for i, (rel, mask_rel) in enumerate([("a.jpg", "a.png"), ("sub/b.png", "sub/b.png")]):
        Image.fromarray(smooth(20, 24, seed=i)).save(photos / rel, quality=95)
        hole = np.zeros((20, 24), bool)
        hole[4 + i : 10 + i, 6:14] = True
        Image.fromarray(hole.astype(np.uint8) * 255).save(masks / mask_rel)
        holes[rel] = hole
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(photos), str(tmp_path / "out"),
                        "--mask", str(masks))
    assert code == 0, err
    for rel, hole in holes.items():
        src = read_image_file(photos / rel).rgb
        m = torch.from_numpy(hole.astype(np.float32))[None, None]
        want = (models["inpaint"][1](src * (1 - m), m)[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
        got = np.asarray(Image.open((tmp_path / "out" / rel).with_suffix(".png")))
        assert np.array_equal(got, want.numpy()), rel


@pytest.mark.parametrize("case,needle", [
    ("missing", "no mask for b.png in"),
    ("two", "2 masks (b.bmp, b.tif) for b.png"),
    ("file-for-folder", "is one image but the input"),
    ("folder-for-file", "is a folder but the input"),
    ("absent", "does not exist"),
])
def test_mask_folder_problems_are_one_line_before_anything_runs(tmp_path, capsys, models, case, needle):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(smooth(20, 24)).save(photos / name)
    hole = np.zeros((20, 24), np.uint8)
    hole[5:9, 5:9] = 255
    Image.fromarray(hole).save(masks / "a.png")
    if case == "two":  # no b.png: the stem matches two images (and one file that is not an image)
        for name in ("b.bmp", "b.tif"):
            Image.fromarray(hole).save(masks / name)
        (masks / "b.txt").write_text("notes")
    elif case != "missing":
        Image.fromarray(hole).save(masks / "b.png")
    inp, mask = {"file-for-folder": (photos, masks / "a.png"), "folder-for-file": (photos / "a.png", masks),
                 "absent": (photos, tmp_path / "nope")}.get(case, (photos, masks))
    out = tmp_path / ("o.png" if inp.is_file() else "out")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(inp), str(out), "--mask", str(mask))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not out.exists() or not any(out.iterdir())


def test_a_mask_folder_inside_the_input_folder_is_not_filled(tmp_path, capsys, models):
    photos = tmp_path / "photos"
    (photos / "masks").mkdir(parents=True)
    Image.fromarray(smooth(20, 24)).save(photos / "a.png")
    hole = np.zeros((20, 24), np.uint8)
    hole[5:9, 5:9] = 255
    Image.fromarray(hole).save(photos / "masks" / "a.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(photos), str(tmp_path / "out"),
                        "--mask", str(photos / "masks"))
    assert code == 0, err
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == ["a.png"]
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(photos), str(tmp_path / "out2"),
                        "--mask", str(photos))
    assert code == 2 and "is the input folder itself" in err and len(err.strip().splitlines()) == 1


def test_mask_kind_alpha_checks_every_image_of_a_folder_before_running(tmp_path, capsys, models):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(_erased(20, 24)[0]).save(photos / "a.png")  # has a hole
    Image.fromarray(smooth(20, 24)).save(photos / "b.png")  # no alpha: the folder stops before a.png is filled
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(photos), str(tmp_path / "out"),
                        "--mask-kind", "alpha")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "b.png has no alpha channel" in lines[0], err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("task,case,needle", [
    ("denoise", "truncated", "cannot read"),
    ("sr", "not-an-image", "cannot read"),
    ("inpaint", "mask-size", "is 24x20 but the image is 20x16"),
])
def test_a_folder_is_read_whole_before_the_first_output(tmp_path, capsys, models, task, case, needle):
    """A damaged photo (or a mask of the wrong size) late in a folder stops the command before the
    first output is written, with one line naming it (restore_paths._check_folder)."""
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    hole = np.zeros((20, 24), np.uint8)
    hole[5:9, 5:9] = 255
    for name in ("a.png", "b.png"):
        Image.fromarray(smooth(20, 24)).save(photos / name)
        Image.fromarray(hole).save(masks / name)
    bad = photos / "z.png"  # sorted last: the folder would have written a.png and b.png first
    if case == "truncated":
        Image.fromarray(smooth(20, 24)).save(photos / "full.png")
        bad.write_bytes((photos / "full.png").read_bytes()[:200])
        (photos / "full.png").unlink()
    elif case == "not-an-image":
        bad.write_bytes(b"this is a text file named like an image\n")
    else:
        Image.fromarray(smooth(16, 20)).save(bad)
        Image.fromarray(hole).save(masks / "z.png")
    extra = ["--mask", str(masks)] if task == "inpaint" else []
    out = tmp_path / "out"
    code, _, err = _cli(capsys, task, "apply", str(models[task][0]), str(photos), str(out), *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "z.png" in lines[0], err
    assert not out.exists() or not any(out.iterdir())


def _one_line(code, err, needle):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    return lines[0]


def test_two_images_that_would_write_one_output_are_refused_before_any_work(tmp_path, capsys, models):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth(20, 24)).save(photos / "rgb.png")
    Image.fromarray(smooth(20, 24, seed=1)).save(photos / "rgb.jpg")
    code, _, err = _cli(capsys, "sr", "apply", str(models["sr"][0]), str(photos), str(tmp_path / "out"))
    line = _one_line(code, err, "would both be written to")
    assert "rgb.jpg" in line and "rgb.png" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_mask_is_never_an_output_even_with_force(tmp_path, capsys, models):
    model = str(models["inpaint"][0])
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    hole = np.zeros((20, 24), np.uint8)
    hole[5:9, 5:9] = 255
    Image.fromarray(hole).save(tmp_path / "m.png")
    mask_bytes = (tmp_path / "m.png").read_bytes()
    for extra in ([], ["--force"]):  # without --force it must not suggest --force
        code, _, err = _cli(capsys, "inpaint", "apply", model, str(tmp_path / "in.png"), str(tmp_path / "m.png"),
                            "--mask", str(tmp_path / "m.png"), *extra)
        assert "--force" not in _one_line(code, err, "is a mask (--mask")
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    Image.fromarray(smooth(20, 24)).save(photos / "a.png")
    Image.fromarray(hole).save(masks / "a.png")
    code, _, err = _cli(capsys, "inpaint", "apply", model, str(photos), str(masks), "--mask", str(masks), "--force")
    _one_line(code, err, "is the --mask folder")
    assert (tmp_path / "m.png").read_bytes() == mask_bytes and (masks / "a.png").read_bytes() == mask_bytes


def test_an_output_folder_inside_the_input_folder_is_not_restored_again(tmp_path, capsys, caplog, models):
    import logging

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth(20, 24)).save(photos / "a.png")
    args = ["sr", "apply", str(models["sr"][0]), str(photos), str(photos / "x2")]
    code, _, err = _cli(capsys, *args)
    assert code == 0, err
    first = (photos / "x2" / "a.png").read_bytes()
    with caplog.at_level(logging.INFO, logger="ganforge.restore"):
        code, out, err = _cli(capsys, *args, "--force")
    assert code == 0 and "wrote 1 image(s)" in out, err
    said = [r.getMessage() for r in caplog.records if "inside the output folder" in r.getMessage()]
    assert len(said) == 1 and "left out 1 image(s)" in said[0], said  # said once, not by the CLI's early check too
    assert sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.png")) == ["a.png", "x2/a.png"]
    assert (photos / "x2" / "a.png").read_bytes() == first  # a.png again, not its own result upscaled


@pytest.mark.parametrize("tile,overlap,minimum", [("1", None, 8), ("7", "4", 8), ("9", "40", 10)])
def test_a_tile_far_below_the_overlap_is_refused(tmp_path, capsys, models, tile, overlap, minimum):
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    extra = ["--overlap", overlap] if overlap else []
    code, _, err = _cli(capsys, "sr", "apply", str(models["sr"][0]), str(tmp_path / "in.png"), str(tmp_path / "o.png"),
                        "--tile", tile, *extra)
    line = _one_line(code, err, f"--tile {tile} is below the minimum {minimum} for an overlap of {overlap or 32} px")
    assert "0 (the whole image) or auto" in line
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("tile", ["0", "8", "AUTO", "Auto"])
def test_tile_zero_a_tile_at_the_minimum_and_auto_in_any_case_are_valid(tmp_path, capsys, models, tile):
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in.png"),
                        str(tmp_path / "o.png"), "--tile", tile, "--overlap", "16")
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), restored(models["denoise"][1], smooth(20, 24)))


def test_compare_at_another_scale_names_compare_not_scale(tmp_path, capsys, models):
    data = tmp_path / "set"
    data.mkdir()
    Image.fromarray(smooth(32, 32)).save(data / "a.png")
    code, _, err = _cli(capsys, "sr", "eval", str(models["sr"][0]), "--data", str(data), "--compare", "sr-x4")
    line = _one_line(code, err, "--compare sr-x4 is an x4 model but the evaluated")
    assert "is x2" in line and "--scale" not in line
    code, _, err = _cli(capsys, "sr", "eval", "bicubic", "--data", str(data), "--scale", "2", "--compare", "sr-x4")
    _one_line(code, err, "--compare sr-x4 is an x4 model but the evaluation (--scale 2) is x2")


@pytest.mark.parametrize("kind,size,needle", [
    ("center", (1, 1), "--mask-kind center on"), ("strokes", (1, 3), "--mask-kind strokes on"),
])
def test_a_generated_hole_with_nothing_or_everything_to_fill_is_one_line(tmp_path, capsys, models, kind, size, needle):
    h, w = size
    Image.fromarray(smooth(h, w)).save(tmp_path / "tiny.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "tiny.png"),
                        str(tmp_path / "o.png"), "--mask-kind", kind)
    line = _one_line(code, err, needle)
    assert f"tiny.png ({w}x{h}) marks" in line and ("no pixel" in line if kind == "center" else "every pixel" in line)
    assert not (tmp_path / "o.png").exists()
    if kind != "center":  # strokes are random: which image of a folder draws which depends on the order
        return
    photos = tmp_path / "photos"  # in a folder, before the first output is written
    photos.mkdir()
    Image.fromarray(smooth(20, 24)).save(photos / "a.png")
    Image.fromarray(smooth(h, w)).save(photos / "z.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(photos), str(tmp_path / "out"),
                        "--mask-kind", kind)
    assert "z.png" in _one_line(code, err, needle)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_generated_hole_in_a_folder_is_the_one_apply_draws(tmp_path, capsys, models):
    """_check_folder draws the folder's holes from the same seed, so checking does not change them."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["a.png", "b.png"]):
        Image.fromarray(smooth(20, 24, seed=i)).save(photos / name)
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(photos), str(tmp_path / "out"),
                        "--mask-kind", "boxes", "--seed", "3")
    assert code == 0, err
    from ganforge.apps.degrade import make_mask

    gen = torch.Generator().manual_seed(3)
    for i, name in enumerate(["a.png", "b.png"]):
        m = make_mask("boxes", 1, 20, 24, gen)
        x = torch.from_numpy(smooth(20, 24, seed=i)).permute(2, 0, 1)[None].float() / 255 * (1 - m)
        want = (models["inpaint"][1](x, m)[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / name)), want), name


def test_an_input_file_that_is_not_an_image_is_named_before_the_output(tmp_path, capsys, models):
    import zipfile

    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as z:
        z.writestr("a.png", b"")
    for out in ("o/z", "o.png"):
        code, _, err = _cli(capsys, "sr", "apply", str(models["sr"][0]), str(tmp_path / "photos.zip"), str(tmp_path / out))
        _one_line(code, err, "photos.zip is a .zip file, which apply does not read: give an image file")
    Image.fromarray(smooth(20, 24)).save(tmp_path / "scan", format="PNG")  # an image without a suffix still works
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "scan"), str(tmp_path / "s.png"))
    assert code == 0, err
