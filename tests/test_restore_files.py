"""`ganforge sr|denoise|inpaint apply` keeps what the input file is (ganforge.apps.restore_files):
grey stays grey, alpha is carried (bicubic-resized for SR), EXIF orientation is applied, the
output format follows the suffix; bad suffixes, alpha for JPEG and a --sigma the net cannot read
are one-line usage errors with nothing written."""

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

from ganforge.apps.degrade import imresize
from ganforge.apps.restore_apply import Restorer, save_restorer
from ganforge.apps.restore_files import read_image_file, resize_alpha
from ganforge.errors import UsageError
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)
from test_restore_train import _cli, perturbed_net, tiny


def smooth(h, w, seed=0):
    """(h, w, 3) uint8: smooth colour gradients plus a little noise."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / 16.0
    img = np.stack([np.sin(x), np.cos(y), np.sin(x * y / 4)], axis=-1) * 0.35 + 0.5 + g.normal(0, 0.03, (h, w, 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A saved tiny sr-x2 net, a tiny denoiser (no noise map) and a tiny inpainter, weights perturbed off the init."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name, preset in [("sr", "sr-x2"), ("denoise", "denoise-s25"), ("inpaint", "inpaint-center")]:
        cfg = tiny(preset)
        net = perturbed_net(cfg, seed=1)
        save_restorer(root / name, cfg, net)
        out[name] = (root / name, Restorer(net, cfg))
    return out


def restored(restorer, rgb_hwc):
    """What the restorer makes of an RGB array: (H', W', 3) uint8, rounded like the files."""
    x = torch.from_numpy(rgb_hwc.copy()).permute(2, 0, 1)[None].float() / 255
    return (restorer(x)[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_grey_input_is_written_grey_as_the_luma_of_the_rgb_result(tmp_path, capsys, models):
    grey = smooth(20, 24)[..., 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    code, out, err = _cli(capsys, "sr", "apply", str(models["sr"][0]), str(tmp_path / "g.png"), str(tmp_path / "o.png"))
    assert code == 0, err
    result = Image.open(tmp_path / "o.png")
    assert result.mode == "L" and result.size == (48, 40)
    want = Image.fromarray(restored(models["sr"][1], np.repeat(grey[..., None], 3, axis=-1))).convert("L")
    assert np.array_equal(np.asarray(result), np.asarray(want))


def test_an_8_bit_picture_stored_as_a_32_bit_tiff_is_restored_at_its_brightness(tmp_path, capsys, models):
    # Mode "I" of 0..255 values: read as 8-bit (it used to be read as 16-bit, /65535: black)
    grey = smooth(20, 24)[..., 0]  # (20, 24) uint8
    Image.fromarray(grey.astype(np.int32)).save(tmp_path / "g32.tif")
    Image.fromarray(grey).save(tmp_path / "g8.png")
    for name in ("g32.tif", "g8.png"):
        code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / name),
                            str(tmp_path / f"{name}.png"))
        assert code == 0, err
    got, want = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("g32.tif", "g8.png"))
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    # a dark 16-bit PGM (mode "I" too, every value <= 255) is 16-bit all the same
    dark = grey.astype(">u2")
    (tmp_path / "dark.pgm").write_bytes(b"P5\n24 20\n65535\n" + dark.tobytes())
    img = read_image_file(tmp_path / "dark.pgm")
    assert img.bits == 16 and img.rgb.max().item() == pytest.approx(grey.max() / 65535)


def test_a_16_bit_grey_file_is_restored_and_written_with_16_bits(tmp_path, capsys, caplog, models):
    levels = (smooth(20, 24)[..., 0].astype(np.uint16) * 257 + np.arange(24, dtype=np.uint16)[None] * 7)  # (20, 24)
    Image.fromarray(levels).save(tmp_path / "g16.png")  # mode I;16: levels between the 8-bit ones
    x = torch.from_numpy(levels.astype(np.float32) / 65535)[None, None].expand(1, 3, -1, -1)
    for task in ("sr", "denoise"):
        out = tmp_path / f"{task}.png"
        code, _, err = _cli(capsys, task, "apply", str(models[task][0]), str(tmp_path / "g16.png"), str(out))
        assert code == 0, err
        got = np.asarray(Image.open(out)).astype(np.int64)
        y = models[task][1](x)[0].double().clamp(0, 1)  # (3, H', W'): luma in float, rounded once
        want = ((0.299 * y[0] + 0.587 * y[1] + 0.114 * y[2]) * 65535).round().numpy().astype(np.int64)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1  # float32 vs the CLI's tiling order
        assert len(np.unique(got % 257)) > 10  # not 8-bit levels scaled up

    mask = np.zeros((20, 24), np.uint8)
    mask[6:14, 8:16] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, _, err = _cli(capsys, "inpaint", "apply", str(models["inpaint"][0]), str(tmp_path / "g16.png"),
                        str(tmp_path / "i.tif"), "--mask", str(tmp_path / "m.png"))
    assert code == 0, err
    got = np.asarray(Image.open(tmp_path / "i.tif"))
    assert got.dtype == np.uint16 and np.array_equal(got[mask == 0], levels[mask == 0])  # known pixels bit-exact

    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "g16.png"),
                        str(tmp_path / "d.jpg"))
    assert code == 0 and "g16.png has 16 bits per channel but .jpg stores 8" in caplog.text
    assert Image.open(tmp_path / "d.jpg").mode == "L"


@pytest.mark.parametrize("task", ["sr", "denoise"])
def test_alpha_is_kept_and_the_colour_under_it_is_not_composited(tmp_path, capsys, models, task):
    rgba = np.concatenate([smooth(20, 24, seed=2), np.zeros((20, 24, 1), np.uint8)], axis=-1)
    rgba[..., 3] = np.linspace(0, 255, 24).round().astype(np.uint8)[None]  # a horizontal fade
    Image.fromarray(rgba).save(tmp_path / "a.png")
    code, out, err = _cli(capsys, task, "apply", str(models[task][0]), str(tmp_path / "a.png"), str(tmp_path / "o.png"))
    assert code == 0, err
    result = np.asarray(Image.open(tmp_path / "o.png"))
    assert result.shape[-1] == 4
    # the net saw the straight colour, not the colour composited on black
    assert np.array_equal(result[..., :3], restored(models[task][1], rgba[..., :3]))
    if task == "denoise":
        assert np.array_equal(result[..., 3], rgba[..., 3])
    else:
        assert np.array_equal(result[..., 3], resize_alpha(rgba[..., 3], 2))
        assert result.shape[:2] == (40, 48)


def test_resize_alpha_is_matlab_bicubic_rounded():
    alpha = np.full((6, 7), 200, np.uint8)
    assert np.array_equal(resize_alpha(alpha, 4), np.full((24, 28), 200, np.uint8))  # flat stays flat
    ramp = np.tile(np.arange(0, 250, 25, dtype=np.uint8), (5, 1))  # (5, 10), 0..225
    up = imresize(torch.from_numpy(ramp.astype(np.float64) / 255)[None, None], 2)[0, 0]
    assert np.array_equal(resize_alpha(ramp, 2), (up.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    assert resize_alpha(np.array([[0, 255]], np.uint8), 4).min() == 0  # overshoot clamped, no wrap-around


def test_exif_orientation_is_applied_before_restoring(tmp_path, capsys, models):
    rgb = smooth(16, 24, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored image is shown rotated 90 degrees clockwise
    Image.fromarray(rgb).save(tmp_path / "phone.png", exif=exif)
    assert read_image_file(tmp_path / "phone.png").rgb.shape == (1, 3, 24, 16)
    code, out, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "phone.png"),
                          str(tmp_path / "o.png"))
    assert code == 0, err
    upright = np.ascontiguousarray(np.rot90(rgb, k=-1))  # (24, 16, 3): clockwise
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), restored(models["denoise"][1], upright))


def test_output_format_follows_the_suffix(tmp_path, capsys, models):
    Image.fromarray(smooth(20, 24)).save(tmp_path / "in.png")
    formats = {".jpg": "JPEG", ".tif": "TIFF", ".bmp": "BMP", ".webp": "WEBP"}
    for suffix, fmt in formats.items():
        code, out, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "in.png"),
                              str(tmp_path / f"o{suffix}"))
        assert code == 0, err
        assert Image.open(tmp_path / f"o{suffix}").format == fmt
    jpeg = Image.open(tmp_path / "o.jpg")
    assert JpegImagePlugin.get_sampling(jpeg) == 0  # 4:4:4, no chroma subsampling
    lossless = np.asarray(Image.open(tmp_path / "o.webp"))
    assert np.array_equal(lossless, np.asarray(Image.open(tmp_path / "o.tif")))  # WebP is written lossless


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


@pytest.mark.parametrize("mode,grey,alpha", [
    ("L", True, False), ("LA", True, True), ("I;16", True, False), ("1", True, False), ("RGB", False, False),
    ("RGBA", False, True), ("P", False, False), ("P+transparency", False, True), ("CMYK", False, False),
    ("LAB", False, False),  # its "A" band is colour, not alpha
    ("RGB+transparency", False, True), ("L+transparency", True, True),  # tRNS: one colour or grey level clear
])
def test_read_image_file_knows_grey_and_alpha_from_the_mode(tmp_path, mode, grey, alpha):
    img = Image.fromarray(smooth(6, 8))
    key = None  # the transparent palette index, colour or grey level (a PNG tRNS chunk)
    if mode.endswith("+transparency"):
        img = img.convert(mode.split("+")[0])
        key = 0 if mode.startswith("P") else tuple(img.getpixel((0, 0))) if mode.startswith("RGB") else img.getpixel((0, 0))
        suffix = ".png"
    else:
        img = img.convert(mode) if mode not in ("I;16", "LAB") else (img.convert("L").convert("I;16") if mode == "I;16"
                                                                     else Image.new("LAB", (8, 6), (50, 10, 20)))
        suffix = ".tif" if mode in ("CMYK", "LAB") else ".png"
    img.save(tmp_path / f"x{suffix}", **({"transparency": key} if key is not None else {}))
    got = read_image_file(tmp_path / f"x{suffix}")
    assert got.rgb.shape == (1, 3, 6, 8) and got.grey == grey and (got.alpha is not None) == alpha
    if mode in ("RGB+transparency", "L+transparency"):  # the keyed pixels are clear, the others opaque
        want = np.asarray(Image.open(tmp_path / f"x{suffix}").convert("RGBA"))[..., 3]
        assert np.array_equal(got.alpha, want) and got.alpha[0, 0] == 0 and (got.alpha == 255).any()
    if grey:
        assert torch.equal(got.rgb[:, 0], got.rgb[:, 1]) and torch.equal(got.rgb[:, 1], got.rgb[:, 2])


@pytest.mark.parametrize("compression", [None, "zlib"])  # PIL's raw reader / libtiff
def test_a_planar_8_bit_tiff_is_read_right_or_refused_where_pil_misreads_it(tmp_path, capsys, models, compression):
    tifffile = pytest.importorskip("tifffile", reason="tifffile writes the planar TIFF")
    from ganforge.apps.restore_files import read_mask

    rgba = np.concatenate([smooth(12, 16), np.tile(np.linspace(0, 255, 16).round().astype(np.uint8), (12, 1))[..., None]], -1)
    for channels in (3, 4):  # PIL reads these right: read, not refused
        tifffile.imwrite(tmp_path / "p.tif", rgba[..., :channels].transpose(2, 0, 1), photometric="rgb",
                         planarconfig="separate", compression=compression, extrasamples=[2] if channels == 4 else None)
        img = read_image_file(tmp_path / "p.tif")
        assert img.bits == 8 and np.array_equal((img.rgb[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(),
                                                rgba[..., :3])
        assert (img.alpha is None) == (channels == 3) and (channels == 3 or np.array_equal(img.alpha, rgba[..., 3]))
    # grey+alpha: PIL reads a compressed one with alpha 0 (all transparent) and fails on an uncompressed one
    tifffile.imwrite(tmp_path / "la.tif", rgba[..., 2:].transpose(2, 0, 1), photometric="minisblack",
                     planarconfig="separate", compression=compression, extrasamples=[2])
    with Image.open(tmp_path / "la.tif") as pil:
        assert pil.tag_v2.get(284) == 2  # PlanarConfiguration: separate
    code, _, err = _cli(capsys, "denoise", "apply", str(models["denoise"][0]), str(tmp_path / "la.tif"),
                        str(tmp_path / "o.png"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and not (tmp_path / "o.png").exists(), err
    assert (f"cannot read {tmp_path / 'la.tif'}: it is a planar TIFF (grey+alpha, each channel stored apart), which "
            "would be misread; save it as an interleaved (contiguous) TIFF or as PNG") in lines[0]
    with pytest.raises(UsageError, match="cannot read mask .*la.tif: it is a planar TIFF"):
        read_mask(tmp_path / "la.tif", (12, 16))


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
