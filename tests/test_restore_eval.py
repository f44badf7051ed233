"""Restoration measuring side (ganforge.apps.degrade, classical, restore_eval, testsets and the
`ganforge sr|denoise|inpaint eval` CLI): MATLAB imresize against a numpy port of MATLAB's
algorithm, the published bicubic Set5/Set14 numbers, masks, noise statistics, scores against
scikit-image, JSON shape, one-line errors and comparison strips."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.apps.classical import CLASSICAL, make_classical
from ganforge.apps.degrade import MASK_KINDS, add_noise, imresize, make_mask, mod_crop, quantize, sr_degrade
from ganforge.apps.restore_eval import evaluate_restoration, json_safe, score_pair
from ganforge.apps.testsets import TestImage, load_test_images
from ganforge.cli import main
from ganforge.errors import UsageError


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ a numpy port of MATLAB imresize


def _np_cubic(x):
    ax = np.abs(x)
    return (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _np_contributions(in_len, out_len, scale):
    """MATLAB imresize.m's `contributions` (bicubic, antialiasing on), written loop-free in numpy."""
    kernel_width = 4.0
    if scale < 1:
        kernel_width /= scale

        def h(d):
            return scale * _np_cubic(scale * d)
    else:
        h = _np_cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(p)[None, :]
    weights = h(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_len + 1), np.arange(in_len, 0, -1)])
    indices = aux[np.mod(indices - 1, len(aux)).astype(int)]
    keep = np.any(weights != 0, axis=0)  # MATLAB drops all-zero columns
    return weights[:, keep], indices[:, keep].astype(int)


def np_imresize(img, scale):
    """(H, W, C) float64, one dimension after the other, one output pixel at a time (imresizemex)."""
    out = img
    for dim in (0, 1):
        in_len = out.shape[dim]
        out_len = int(math.ceil(in_len * scale))
        weights, indices = _np_contributions(in_len, out_len, scale)
        moved = np.moveaxis(out, dim, 0)
        res = np.empty((out_len,) + moved.shape[1:])
        for k in range(out_len):
            res[k] = np.tensordot(weights[k], moved[indices[k] - 1], axes=(0, 0))
        out = np.moveaxis(res, 0, dim)
    return out


def to_t(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


@pytest.mark.parametrize(
    "shape,scale",
    [((17, 23, 3), 0.25), ((16, 24, 3), 0.5), ((30, 30, 1), 1 / 3), ((40, 36, 3), 0.3), ((3, 2, 3), 0.5),
     ((9, 7, 3), 2), ((11, 13, 2), 3), ((5, 6, 3), 4), ((4, 4, 1), 8)],
)
def test_imresize_matches_numpy_matlab_port(shape, scale):
    a = np.random.default_rng(0).random(shape)
    ref = np_imresize(a, scale)
    out = imresize(to_t(a), scale)[0].numpy().transpose(1, 2, 0)
    assert out.shape == ref.shape == (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale), shape[2])
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    out32 = imresize(to_t(a).float(), scale)
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32[0].numpy().transpose(1, 2, 0), ref, rtol=0, atol=1e-5)


def test_imresize_invariants():
    const = torch.full((2, 3, 24, 20), 0.3, dtype=torch.float64)
    for scale in (0.25, 0.5, 2, 3):
        out = imresize(const, scale)
        assert (out - 0.3).abs().max() < 1e-12
    # A smooth image survives x2 then /2 almost unchanged (antialiased cubic, not exact).
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48, dtype=torch.float64), torch.linspace(0, 1, 40, dtype=torch.float64), indexing="ij")
    smooth = (0.5 + 0.25 * torch.sin(3 * xx) * torch.cos(2 * yy)).expand(1, 3, 48, 40)
    back = imresize(imresize(smooth, 2), 0.5)
    assert back.shape == smooth.shape
    assert (back - smooth).abs().max() < 2e-3
    # Not clamped: cubic overshoot at a step edge goes beyond [0, 1].
    step = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    step[..., 4:] = 1
    up = imresize(step, 4)
    assert up.min() < 0 and up.max() > 1
    with pytest.raises(UsageError, match="positive"):
        imresize(step, 0)


def test_mod_crop_quantize_and_sr_degrade():
    x = torch.rand(1, 3, 37, 50, dtype=torch.float64)
    assert mod_crop(x, 4).shape == (1, 3, 36, 48)
    assert torch.equal(mod_crop(x, 4), x[..., :36, :48])
    v = torch.tensor([-0.2, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.49999 / 255, 1.3], dtype=torch.float64)
    # im2uint8: clip, round half away from zero (np.round would give 0 and 2 for 0.5 and 2.5).
    assert (quantize(v) * 255).round().tolist() == [0, 1, 2, 3, 0, 255]
    lr = sr_degrade(x, 4)
    assert lr.shape == (1, 3, 9, 12)
    assert torch.allclose(lr * 255, (lr * 255).round(), atol=1e-9)
    ref = np_imresize(x[0, :, :36, :48].numpy().transpose(1, 2, 0), 0.25)
    ref8 = np.floor(np.clip(ref, 0, 1) * 255 + 0.5)
    np.testing.assert_array_equal((lr[0].numpy().transpose(1, 2, 0) * 255).round(), ref8)


# ------------------------------------------------------------------ the protocol check on real data

BABY_X4_PSNR_Y = 31.78674  # our own run (2026-11-23); the SR tables print 31.78 for bicubic


def test_bicubic_x4_reference_psnr_on_baby(shared_data):
    img = load_test_images(os.path.join(shared_data, "sr", "Set5"), max_images=1)
    assert img[0].name == "baby.png"
    res = evaluate_restoration("sr", make_classical("bicubic", "sr", scale=4), img, scale=4)
    assert res["per_image"][0]["psnr_y"] == pytest.approx(BABY_X4_PSNR_Y, abs=1e-4)


@pytest.mark.parametrize(
    "name,scale,published",
    [
        ("Set5", 4, 28.43),
        pytest.param("Set14", 4, 25.99, marks=pytest.mark.slow),  # ~10-30 s on a busy 2-core CPU
        pytest.param("Set5", 2, 33.66, marks=pytest.mark.slow),
        pytest.param("Set14", 2, 30.24, marks=pytest.mark.slow),
    ],
)
def test_bicubic_reproduces_published_numbers(shared_data, name, scale, published):
    images = load_test_images(os.path.join(shared_data, "sr", name))
    res = evaluate_restoration("sr", make_classical("bicubic", "sr", scale=scale), images, scale=scale)
    assert res["mean"]["psnr_y"] == pytest.approx(published, abs=0.05)
    assert res["protocol"]["border_crop"] == scale


def test_set14_grey_image_is_flagged(shared_data):
    images = {t.name: t for t in load_test_images(os.path.join(shared_data, "sr", "Set14"))}
    assert images["bridge.png"].grey and not images["man.png"].grey  # man is RGB with equal channels
    assert images["bridge.png"].image.shape[1] == 3


def test_cifar_zip_prefix_is_class_balanced(shared_data):
    images = load_test_images(os.path.join(shared_data, "cifar10-test10k.zip"), max_images=20)
    classes = [t.name.split("/")[-2] for t in images]
    assert len(set(classes)) == 10 and images[0].image.shape == (1, 3, 32, 32)


# ------------------------------------------------------------------ masks and noise


def test_square_masks_jitter_the_centre_hole():
    masks = make_mask("square", 400, 64, 64, torch.Generator().manual_seed(0))[:, 0]  # (400, 64, 64)
    rows, cols = masks.amax(dim=2), masks.amax(dim=1)  # (400, 64): which rows / columns the hole spans
    sides = rows.sum(1)
    assert torch.equal(sides, cols.sum(1)) and torch.equal(masks.sum((1, 2)), sides**2)  # one square each
    assert sides.min() >= 24 and sides.max() <= 40 and len(sides.unique()) > 10  # 32 * [3/4, 5/4]
    tops = rows.argmax(1)
    centred = (64 - sides) // 2
    assert (tops - centred).abs().max() <= 8 and len((tops - centred).unique()) > 10  # up to 32 / 4 each way
    assert make_mask("square", 1, 8, 300, torch.Generator()).sum() <= 64  # a side never exceeds the image


def test_masks_shape_area_and_determinism():
    g = torch.Generator().manual_seed(0)
    center = make_mask("center", 2, 32, 32, g)
    assert center.shape == (2, 1, 32, 32) and center.dtype == torch.float32
    assert center.sum().item() == 2 * 16 * 16
    assert torch.equal(center[0, 0, 8:24, 8:24], torch.ones(16, 16))
    assert make_mask("center", 1, 240, 240, g).mean().item() == 0.25
    assert make_mask("center", 1, 30, 60, g).mean().item() == pytest.approx(0.25, abs=0.01)
    for kind in ("boxes", "strokes", "square"):
        a = make_mask(kind, 8, 64, 48, torch.Generator().manual_seed(3))
        b = make_mask(kind, 8, 64, 48, torch.Generator().manual_seed(3))
        c = make_mask(kind, 8, 64, 48, torch.Generator().manual_seed(4))
        assert a.shape == (8, 1, 64, 48) and torch.equal(a, b) and not torch.equal(a, c)
        assert set(a.unique().tolist()) <= {0.0, 1.0}
        frac = a.mean(dim=(1, 2, 3))
        assert (frac > 0).all() and (frac < 0.9).all()
    with pytest.raises(UsageError, match="center, boxes, strokes"):
        make_mask("circle", 1, 8, 8, g)
    assert MASK_KINDS == ("center", "boxes", "strokes", "square")


def test_noise_sigma_is_right_and_unclipped():
    x = torch.full((1, 3, 256, 256), 0.5, dtype=torch.float64)
    noisy = add_noise(x, 25, torch.Generator().manual_seed(0))
    n = ((noisy - x) * 255).flatten()
    # 196608 samples: the sample std is within ~0.5% of sigma (3.5 standard errors), the mean near 0.
    assert n.std().item() == pytest.approx(25, rel=0.005)
    assert abs(n.mean().item()) < 4 * 25 / math.sqrt(n.numel())
    assert torch.equal(noisy, add_noise(x, 25, torch.Generator().manual_seed(0)))
    dark = add_noise(torch.zeros(1, 3, 64, 64), 50, torch.Generator().manual_seed(1))
    assert dark.min() < 0  # BM3D protocol: no clipping


# ------------------------------------------------------------------ evaluate_restoration


def smooth_images(n=2, h=40, w=48, grey=False):
    out = []
    for i in range(n):
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        rgb = torch.stack([0.5 + 0.4 * torch.sin(xx / (5 + i) + c) * torch.cos(yy / 7) for c in range(3)])
        if grey:
            rgb = rgb[:1].expand(3, h, w)
        out.append(TestImage(f"img{i}.png", ((rgb * 255).round() / 255)[None].contiguous(), grey))
    return out


def test_perfect_restoration_gives_inf_and_one():
    res = evaluate_restoration("denoise", lambda x, m=None: x, smooth_images(), sigma=0)
    assert res["mean"]["psnr_rgb"] == math.inf and res["mean"]["psnr_y"] == math.inf
    assert res["mean"]["ssim_rgb"] == pytest.approx(1.0) and res["mean"]["ssim_y"] == pytest.approx(1.0)
    safe = json_safe(res)
    assert safe["mean"]["psnr_rgb"] == "inf"
    json.dumps(safe, allow_nan=False)


def test_noisy_input_scores_match_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    images = smooth_images()
    res = evaluate_restoration("denoise", make_classical("input", "denoise"), images, sigma=25, seed=7)
    # Rebuild image 1's noisy input by hand with the same per-image generator.
    from ganforge.apps.restore_eval import example_generator

    gt = images[1].image.double()
    noisy = quantize(add_noise(images[1].image, 25, example_generator(7, 1)).double())
    a, b = noisy[0].permute(1, 2, 0).numpy(), gt[0].permute(1, 2, 0).numpy()
    row = res["per_image"][1]
    assert row["psnr_rgb"] == pytest.approx(metrics.peak_signal_noise_ratio(b, a, data_range=1.0), abs=1e-6)
    ssim_ref = metrics.structural_similarity(
        b, a, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert row["ssim_rgb"] == pytest.approx(ssim_ref, abs=1e-4)
    y = lambda t: (16 + (65.481 * t[..., 0] + 128.553 * t[..., 1] + 24.966 * t[..., 2])) / 255  # noqa: E731
    assert row["psnr_y"] == pytest.approx(metrics.peak_signal_noise_ratio(y(b), y(a), data_range=1.0), abs=1e-6)
    assert res["mean"]["psnr_rgb"] == pytest.approx(np.mean([r["psnr_rgb"] for r in res["per_image"]]))
    # Image 0's noise does not depend on how many images follow it.
    alone = evaluate_restoration("denoise", make_classical("input", "denoise"), images[:1], sigma=25, seed=7)
    assert alone["per_image"][0]["psnr_rgb"] == res["per_image"][0]["psnr_rgb"]


def test_sr_border_crop_and_grey_scoring():
    images = smooth_images(1, 48, 48, grey=True)
    res = evaluate_restoration("sr", make_classical("bicubic", "sr", scale=2), images, scale=2)
    gt = quantize(images[0].image.double())  # the same 8-bit values, as exact k / 255 doubles
    out = quantize(imresize(sr_degrade(gt, 2), 2))
    # Grey source: luma is the grey value itself, compared on 0..255 after a 2-pixel border crop.
    a, b = out[0, 0, 2:-2, 2:-2], gt[0, 0, 2:-2, 2:-2]
    expected = 10 * math.log10(1 / ((a - b) ** 2).mean().item())
    assert res["per_image"][0]["psnr_y"] == pytest.approx(expected, abs=1e-9)
    colour = score_pair(out, gt, crop=2, grey=False)["psnr_y"]
    assert colour == pytest.approx(expected + 20 * math.log10(255 / 219), abs=1e-9)  # the 16..235 squeeze


def test_inpainting_composites_known_pixels():
    images = smooth_images()
    zero = evaluate_restoration("inpaint", lambda x, m: torch.zeros_like(x), images, mask="center")
    inp = evaluate_restoration("inpaint", make_classical("input", "inpaint"), images, mask="center")
    assert zero["mean"] == inp["mean"]  # only the holes (filled with 0) differ from the truth
    gt = images[0].image.double()
    m = make_mask("center", 1, 40, 48, torch.Generator())
    expected = 10 * math.log10(1 / ((gt * m) ** 2).mean().item())
    assert zero["per_image"][0]["psnr_rgb"] == pytest.approx(expected, abs=1e-6)


def test_bad_restorer_output_and_task_arguments():
    with pytest.raises(UsageError, match="expected"):
        evaluate_restoration("sr", lambda x: x, smooth_images(), scale=2)
    with pytest.raises(UsageError, match="2, 3, 4, 8"):
        evaluate_restoration("sr", lambda x: x, smooth_images(), scale=5)
    with pytest.raises(UsageError, match="does not apply"):
        evaluate_restoration("denoise", lambda x: x, smooth_images(), sigma=5, scale=2)


# ------------------------------------------------------------------ classical methods


@pytest.mark.parametrize("name", ["nlmeans", "bm3d"])
def test_denoisers_beat_the_noisy_input(name):
    pytest.importorskip({"nlmeans": "skimage", "bm3d": "bm3d"}[name])
    images = smooth_images(1, 32, 32)
    noisy = evaluate_restoration("denoise", make_classical("input", "denoise"), images, sigma=25)
    den = evaluate_restoration("denoise", make_classical(name, "denoise", sigma=25), images, sigma=25)
    assert den["mean"]["psnr_rgb"] > noisy["mean"]["psnr_rgb"] + 3


@pytest.mark.parametrize("name", ["telea", "ns"])
def test_inpainters_beat_the_holes(name):
    pytest.importorskip("cv2")
    images = smooth_images(1, 32, 32)
    holes = evaluate_restoration("inpaint", make_classical("input", "inpaint"), images, mask="center")
    filled = evaluate_restoration("inpaint", make_classical(name, "inpaint"), images, mask="center")
    assert filled["mean"]["psnr_rgb"] > holes["mean"]["psnr_rgb"] + 5


def test_classical_registry_errors(monkeypatch):
    assert {"bicubic", "nlmeans", "bm3d", "telea", "ns"} <= set(CLASSICAL)
    with pytest.raises(UsageError, match="not for denoise"):
        make_classical("bicubic", "denoise", sigma=25)
    with pytest.raises(UsageError, match="unknown classical method"):
        make_classical("dncnn", "denoise", sigma=25)
    import importlib

    real = importlib.import_module

    def no_bm3d(name, *a, **k):
        if name == "bm3d":
            raise ImportError("No module named 'bm3d'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_bm3d)
    with pytest.raises(UsageError, match=r"ganforge\[restore\]"):
        make_classical("bm3d", "denoise", sigma=25)


# ------------------------------------------------------------------ CLI


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for t in smooth_images(2, 40, 48):
        arr = (t.image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(d / t.name)
    return d


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_json_shape(capsys, folder):
    code, out, err = run_cli(capsys, "sr", "eval", "bicubic", "--data", folder, "--scale", "2", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert set(res["mean"]) == {"psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y"}
    assert [r["name"] for r in res["per_image"]] == ["img0.png", "img1.png"]
    assert res["protocol"]["scale"] == 2 and res["protocol"]["border_crop"] == 2
    code, out, err = run_cli(
        capsys, "denoise", "eval", "input", "--data", folder, "--sigma", "15", "--compare", "nlmeans", "--json"
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["compare"]["method"] == "nlmeans" and len(res["compare"]["per_image"]) == 2
    assert res["compare"]["mean"]["psnr_rgb"] > res["mean"]["psnr_rgb"]
    code, out, err = run_cli(capsys, "inpaint", "eval", "telea", "--data", folder, "--max-images", "1", "--crop", "32")
    assert code == 0, err
    assert "img0.png" in out and "mean" in out and "img1.png" not in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["sr", "eval", "foo"], "neither a classical method"),
        (["denoise", "eval", "bicubic"], "not for denoise"),
        (["sr", "eval", "bicubic", "--scale", "5"], "2, 3, 4, 8"),
        (["denoise", "eval", "nlmeans", "--sigma", "0"], "--sigma must be > 0"),
        (["inpaint", "eval", "telea", "--mask", "circle"], "center, boxes, strokes"),
        (["sr", "eval", "bicubic", "--data", "/nonexistent/dir"], "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(capsys, folder, args, needle):
    if "--data" not in args:
        args = args + ["--data", str(folder)]
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and out == ""


def test_cli_strips_written_and_never_overwritten(capsys, folder, tmp_path):
    strips = tmp_path / "strips"
    code, _, err = run_cli(
        capsys, "sr", "eval", "bicubic", "--data", folder, "--scale", "2", "--strips", strips, "--json"
    )
    assert code == 0, err
    files = sorted(p.name for p in strips.iterdir())
    assert files == ["0000-img0.png", "0001-img1.png"]
    with Image.open(strips / files[0]) as im:
        assert im.size == (3 * 48 + 2 * 4, 40)  # input (enlarged) | bicubic | ground truth
    before = (strips / files[0]).read_bytes()
    code, _, err = run_cli(capsys, "sr", "eval", "bicubic", "--data", folder, "--scale", "4", "--strips", strips)
    assert code == 2 and "not empty" in err
    assert (strips / files[0]).read_bytes() == before
    # With a comparison: input | classical | ours | ground truth.
    strips2 = tmp_path / "strips2"
    code, _, err = run_cli(
        capsys, "denoise", "eval", "input", "--data", folder, "--sigma", "25", "--compare", "nlmeans", "--strips", strips2
    )
    assert code == 0, err
    with Image.open(strips2 / "0000-img0.png") as im:
        assert im.size == (4 * 48 + 3 * 4, 40)


@pytest.mark.parametrize("task,kwargs,side,need", [
    ("denoise", {"sigma": 25.0}, 8, 11),  # BM3D segfaults at 8 px: the size check runs before any method
    ("sr", {"scale": 4}, 19, 20),  # 11 + 2 x 4 border, a multiple of 4
    ("sr", {"scale": 2}, 14, 16),
    ("inpaint", {"mask": "center"}, 10, 11),
])
def test_an_image_too_small_to_score_is_one_line_naming_it_before_any_method_runs(task, kwargs, side, need):
    calls = []
    images = [TestImage("ok.png", torch.rand(1, 3, 32, 32), False), TestImage("tiny.png", torch.rand(1, 3, side, side + 5), False)]
    with pytest.raises(UsageError, match=rf"test image tiny.png is {side + 5}x{side} pixels: {task} evaluation needs "
                                         rf"at least {need}x{need}"):
        evaluate_restoration(task, lambda x, m=None: calls.append(1) or x, images, **kwargs)
    assert not calls
    fine = [TestImage("edge.png", torch.rand(1, 3, need, need), False)]
    assert evaluate_restoration(task, lambda x, m=None: x if task != "sr" else imresize(x, 4.0 if kwargs.get("scale") == 4 else 2.0),
                                fine, **kwargs)["mean"]
