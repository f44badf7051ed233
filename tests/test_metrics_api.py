"""Library-caller input checks of ganforge.metrics (evaluate, compare, evaluate_pairs, psnr/ssim/ms_ssim):
bad input is a one-line UsageError naming the value, valid input keeps its values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.errors import UsageError
from ganforge.metrics import MetricOptions, compare, evaluate, evaluate_pairs, ms_ssim, psnr, ssim

KID = dict(metrics="kid", evaluator="mnist-clf", options=MetricOptions(kid_subsets=2, kid_subset_size=10))

from test_compare import isolated  # noqa: E402,F401  (autouse: a private cache and one torch thread here too)


@pytest.fixture(scope="module")
def pair():
    """uint8 (32, 32, 3) image and a noisy copy."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
    return a, b


@pytest.fixture(scope="module")
def grey():
    """uint8 (60, 28, 28) random grey images."""
    return np.random.default_rng(1).integers(0, 256, (60, 28, 28), dtype=np.uint8)


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(2, 0, 1)[None]  # (H, W, C) -> (1, C, H, W)


# 1. one HWC image is not N grey images -------------------------------------------------------


def test_one_hwc_image_is_ambiguous_and_x_none_is_one_pair(pair, tmp_path):
    a, b = pair
    with pytest.raises(UsageError, match=r"PRED: shape \(32, 32, 3\) is ambiguous.*x\[None\]"):
        evaluate_pairs(a, b, metrics="psnr")
    rgba = torch.zeros(32, 32, 4, dtype=torch.uint8)
    with pytest.raises(UsageError, match=r"shape \(32, 32, 4\) is ambiguous"):
        evaluate_pairs(rgba, rgba)
    r = evaluate_pairs(a[None], b[None], metrics="psnr")
    assert r.protocol["n_pairs"] == 1
    assert r.mean["psnr"] == pytest.approx(float(psnr(nchw(a), nchw(b), data_range=255)[0]), abs=1e-12)
    assert np.isfinite(r.mean["psnr"])
    # (N, H, W) of other widths is still N grey images
    g = np.random.default_rng(2).integers(0, 256, (4, 16, 16), dtype=np.uint8)
    assert evaluate_pairs(g, g, metrics="psnr").protocol["n_pairs"] == 4
    # a folder of grey images 3 px wide loads as such (the folder decoder knows its layout)
    from ganforge.metrics.imagesets import load_image_set

    folder = tmp_path / "narrow"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    images = load_image_set(folder).images
    assert images.shape == (3, 1, 8, 3) and int(images[2].max()) == 80


# 2. data_range, mixed scales, half precision, crop -------------------------------------------


def test_values_outside_data_range_and_mixed_scales_are_refused(pair):
    a, b = (nchw(x) for x in pair)
    with pytest.raises(UsageError, match=r"values span \[0, 2\d\d\] but data_range=1"):
        psnr(a, b, data_range=1.0)
    with pytest.raises(UsageError, match="pred is torch.uint8 and target torch.float32"):
        psnr(a, b.float() / 255, data_range=255)
    with pytest.raises(UsageError, match="pred values span .* data_range=1"):
        ssim(a.double(), b.double() / 255, data_range=1.0)  # a float pred on the 0..255 scale
    with pytest.raises(UsageError, match=r"target values span \[-1"):
        ms_ssim(a.double() / 255, b.double() / 127.5 - 1, data_range=1.0)  # [-1, 1] images
    # an unclamped float prediction around a target in range is scored as before
    t = b.double() / 255
    p = t + 0.05 * torch.randn(t.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert p.max() > 1 and p.min() < 0
    mse = (p - t).pow(2).mean()
    assert float(psnr(p, t, data_range=1.0)[0]) == pytest.approx(float(10 * torch.log10(1 / mse)), abs=1e-12)


def test_evaluate_pairs_takes_only_data_range_255(pair):
    a, b = pair
    with pytest.raises(UsageError, match="data_range=1.0: evaluate_pairs loads images as uint8"):
        evaluate_pairs(a[None], b[None], data_range=1.0)
    assert evaluate_pairs(a[None], b[None], data_range=255).mean == evaluate_pairs(a[None], b[None]).mean


def test_half_precision_is_computed_in_float32_and_numpy_crop_is_an_int(pair):
    a, b = (nchw(x).float() / 255 for x in pair)
    for half in (torch.bfloat16, torch.float16):
        x, y = a.to(half), b.to(half)
        got = ssim(x, y, data_range=1.0)
        assert got.dtype == torch.float32
        assert torch.equal(got, ssim(x.float(), y.float(), data_range=1.0))
    assert torch.equal(psnr(a, b, data_range=1.0, crop=np.int64(2)), psnr(a, b, data_range=1.0, crop=2))
    with pytest.raises(UsageError, match="crop must be a non-negative integer, got True"):
        psnr(a, b, data_range=1.0, crop=True)
    r = evaluate_pairs(pair[0][None], pair[1][None], metrics="psnr", crop=np.int64(2))
    assert r.protocol["crop"] == 2 and json.dumps(r.protocol)


# 3. evaluate's seed, counts and options ------------------------------------------------------


@pytest.mark.parametrize("seed", [2**40, 2**32 - 1, -1, None, True, 1.5, "0"])
def test_evaluate_refuses_a_seed_numpy_cannot_take(grey, seed):
    with pytest.raises(UsageError, match=r"seed must be an integer from 0 to 4294967294 .*got "):
        evaluate(grey, ref=grey, seed=seed, **KID)


def test_the_largest_eval_seed_works_and_seeds_map_as_before(grey):
    from ganforge.config import MAX_EVAL_SEED

    assert MAX_EVAL_SEED == 2**32 - 2
    r = evaluate(grey[:30], ref=grey, n_ref=50, seed=MAX_EVAL_SEED, **KID)  # the reference draws with seed + 1
    assert r.protocol["seed"] == MAX_EVAL_SEED and r.protocol["n_real"] == 50
    r7 = evaluate(grey[:30], ref=grey, n_ref=50, seed=7, **KID)
    assert evaluate(grey[:30], ref=grey, n_ref=50, seed=np.int64(7), **KID).values == r7.values
    assert json.dumps(r7.protocol)


@pytest.mark.parametrize("kw, needle", [
    (dict(n="10"), "n must be an integer from 1 to 1000000, got '10'"),
    (dict(n=True), "n must be an integer from 1 to 1000000, got True"),
    (dict(n_ref=0), "n_ref must be an integer from 1 to 1000000, got 0"),
    (dict(batch_size="4"), "batch_size must be an integer from 1 .*got '4'"),
    (dict(options={"kid_subsets": 2}), "options must be a ganforge.metrics.MetricOptions"),
])
def test_evaluate_checks_counts_and_options(grey, kw, needle):
    with pytest.raises(UsageError, match=needle):
        evaluate(grey, ref=grey, **{**KID, **kw})


# 4. a finished run is a generator, not reference images --------------------------------------


def _finished_run(root):
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "samples").mkdir()
    (run / "config.json").write_text(json.dumps({"preset": "dcgan-mnist"}))
    (run / "metrics.jsonl").write_text("")
    (run / "checkpoints" / "state-00000004.pt").write_bytes(b"")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(run / "samples" / "final.png")
    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8)
    save_generator(run / "model", cfg, build_generator(cfg))
    return run


def test_a_finished_run_given_as_ref_is_called_a_generator(grey, tmp_path, capsys):
    run = _finished_run(tmp_path)
    with pytest.raises(UsageError, match=r"--ref .*run is a generator, not a set of images.*ganforge sample") as e:
        evaluate(grey, ref=run, metrics="fid", evaluator="mnist-clf")
    assert "no generator yet" not in str(e.value)
    with pytest.raises(UsageError, match="is a generator, not a set of images"):
        evaluate(grey, ref=run / "model", metrics="fid", evaluator="mnist-clf")  # a saved generator too
    np.savez(tmp_path / "x.npz", images=grey)
    code = main(["eval", str(tmp_path / "x.npz"), "--ref", str(run), "--metrics", "fid"])
    err = capsys.readouterr().err
    assert code == 2 and "is a generator, not a set of images" in err, err


# 5. compare's seeds and targets ---------------------------------------------------------------


@pytest.mark.parametrize("seeds, needle", [
    ([0.5, 1.7], "a seed in seeds must be an integer .*got 0.5"),
    ("0,1", "seeds must be a list of integers, e.g. \\[0, 1, 2\\], got '0,1'"),
    (3, "seeds must be a list of integers"),
    ([0, 2**32 - 1], "a seed in seeds must be an integer from 0 to 4294967294"),
])
def test_compare_refuses_seeds_that_are_not_ints(tmp_path, seeds, needle):
    with pytest.raises(UsageError, match=needle):
        compare([tmp_path / "a.npz", tmp_path / "b.npz"], seeds=seeds)


def test_compare_refuses_one_path_for_targets(tmp_path):
    for one in (str(tmp_path), tmp_path):
        with pytest.raises(UsageError, match="targets must be a list of targets .*compare\\(\\[run_a, run_b\\]\\)"):
            compare(one)


# 6. evaluate_pairs' metrics=None, mixed kinds; ssim on channels-last input ----------------------


def test_evaluate_pairs_defaults_and_mixed_kinds(pair, tmp_path):
    a, b = pair
    assert list(evaluate_pairs(a[None], b[None], metrics=None).mean) == ["psnr", "ssim"]
    for p, g in ((str(tmp_path), b[None]), (a[None], tmp_path), ([str(tmp_path)], [str(tmp_path)])):
        with pytest.raises(UsageError, match="give both of one kind"):
            evaluate_pairs(p, g)
    x = torch.rand(2, 32, 32, 3, dtype=torch.float64)
    with pytest.raises(UsageError, match=r"got \(32, 3\); channels last\? give \(N, C, H, W\)"):
        ssim(x, x, data_range=1.0)
    with pytest.raises(UsageError, match=r"channels last\?"):
        ms_ssim(x, x, data_range=1.0)


# 7. device strings ----------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["gpu", "mps"] + ([] if torch.cuda.is_available() else ["cuda"]))
def test_a_bad_device_is_one_line(grey, tmp_path, device):
    with pytest.raises(UsageError, match=f"device='{device}'") as e:
        evaluate(grey, ref=grey, device=device, **KID)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match=f"device='{device}'"):
        compare([tmp_path / "a.npz", tmp_path / "b.npz"], device=device)
