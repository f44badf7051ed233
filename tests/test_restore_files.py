"""`ganforge sr|denoise|inpaint apply` keeps what the input file is (ganforge.apps.restore_files):
grey stays grey, alpha is carried (bicubic-resized for SR), EXIF orientation is applied, the
output format follows the suffix. Outputs, masks, folders and options: test_restore_files_outputs.py;
16-bit colour and grey+alpha: test_restore_files16.py."""

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


@pytest.mark.parametrize("where", ["folder", "zip"])
def test_a_planar_tiff_that_pil_misreads_is_refused_in_a_training_folder_too(tmp_path, where):
    """restore_data.load_photos checks the tags PIL read as it opened each file, as apply does: a
    compressed planar grey+alpha TIFF loaded with alpha 0 (composited to black) and a 16-bit one
    scrambled, with no word; an interleaved one, and an 8-bit planar RGB that PIL reads right, load."""
    tifffile = pytest.importorskip("tifffile", reason="tifffile writes the planar TIFF")
    import zipfile

    from ganforge.apps.restore_data import load_photos

    rgb = smooth(12, 16)
    la = np.stack([rgb[..., 0], np.tile(np.linspace(0, 255, 16).round().astype(np.uint8), (12, 1))], -1)  # (12, 16, 2)
    files = tmp_path / "photos"
    files.mkdir()
    tifffile.imwrite(files / "a.tif", rgb.transpose(2, 0, 1), photometric="rgb", planarconfig="separate", compression="zlib")
    tifffile.imwrite(files / "b.tif", la, photometric="minisblack", compression="zlib", extrasamples=[2])

    def source(*names):  # the folder (holding just ``names``), or a zip of those files
        if where == "folder":
            return files
        with zipfile.ZipFile(tmp_path / "photos.zip", "w") as z:
            for name in names:
                z.write(files / name, name)
        return tmp_path / "photos.zip"

    photos = load_photos(str(source("a.tif", "b.tif")))
    assert [tuple(p.shape) for p in photos] == [(3, 12, 16)] * 2 and np.array_equal(photos[0].permute(1, 2, 0), rgb)
    tifffile.imwrite(files / "c.tif", la.transpose(2, 0, 1), photometric="minisblack", planarconfig="separate",
                     compression="zlib", extrasamples=[2])
    tifffile.imwrite(files / "d.tif", rgb.transpose(2, 0, 1).astype(np.uint16) * 257, photometric="rgb",
                     planarconfig="separate", compression="zlib")
    for bad, what in [("c.tif", "grey+alpha"), ("d.tif", "16-bit")]:
        path = source("a.tif", "b.tif", bad)
        with pytest.raises(UsageError) as err:
            load_photos(str(path))
        shown = files / bad if where == "folder" else f"{path}:{bad}"
        assert str(err.value) == (f"cannot read {shown}: it is a planar TIFF ({what}, each channel stored apart), which "
                                  "would be misread; save it as an interleaved (contiguous) TIFF or as PNG")
        (files / bad).unlink()  # the next case alone
