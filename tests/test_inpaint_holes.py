"""Hole depth and `--work-scale auto` for inpainting (ganforge.apps.degrade.hole_depth,
trained_hole_depth; Restorer(work_scale="auto")): the depth is checked against scipy's chessboard
distance transform, and an automatic factor against the same factor given by hand."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from ganforge.apps.degrade import hole_depth, make_mask, trained_hole_depth
from ganforge.apps.restore_apply import Restorer, load_restorer, save_restorer
from ganforge.errors import UsageError
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)
from test_restore_train import _cli, perturbed_net, tiny


def scipy_depth(hole: np.ndarray) -> float:
    """The largest chessboard distance from a missing pixel to a known one (scipy's reference)."""
    return float(ndimage.distance_transform_cdt(hole, metric="chessboard").max()) if hole.any() else 0.0


@pytest.mark.parametrize("kind,h,w,seed", [("boxes", 48, 40, 0), ("strokes", 64, 64, 1), ("strokes", 37, 90, 2),
                                           ("square", 50, 50, 3), ("boxes", 200, 120, 4)])
def test_hole_depth_is_the_chessboard_distance_transform_maximum(kind, h, w, seed):
    m = make_mask(kind, 1, h, w, torch.Generator().manual_seed(seed))[0, 0]  # (h, w)
    assert hole_depth(m) == scipy_depth(m.numpy() > 0.5)


def test_hole_depth_of_simple_holes():
    m = torch.zeros(32, 32)
    assert hole_depth(m) == 0
    m[8:24, 8:24] = 1
    assert hole_depth(m) == 8  # a 16 x 16 square
    line = torch.zeros(20, 20)
    line[10, 2:18] = 1
    assert hole_depth(line) == 1
    corner = torch.zeros(32, 32)
    corner[:10, :10] = 1
    assert hole_depth(corner) == 10  # the border gives no context: eroded from inside only
    assert hole_depth(torch.ones(12, 30)) == 30  # nothing known: the longer side


def test_a_large_mask_is_measured_shrunk_to_within_its_factor():
    m = torch.zeros(1100, 700)
    m[300:700, 200:500] = 1  # depth 150
    f = 3  # ceil(1100 / 512)
    assert 150 <= hole_depth(m) <= 150 + f
    assert hole_depth(m, max_side=1100) == 150


def test_trained_hole_depth_of_the_mask_kinds():
    assert trained_hole_depth(("center",), 32) == 8  # every centre hole is 16 x 16
    assert trained_hole_depth(("center",), 128) == 32
    # the 0.9 quantile of the drawn masks, reproducibly
    free = trained_hole_depth(("boxes", "strokes"), 32)
    assert free == trained_hole_depth(("boxes", "strokes"), 32)
    g = torch.Generator().manual_seed(0)
    depths = [hole_depth(make_mask(("boxes", "strokes")[i % 2], 1, 32, 32, g)[0]) for i in range(256)]
    assert free == float(torch.quantile(torch.tensor(depths), 0.9))


def test_auto_work_scale_is_trained_over_actual_depth_and_equals_that_factor_given_by_hand():
    cfg = tiny("inpaint-center", "degrade.mask_kinds=center")  # patch 32: trained depth 8
    G = perturbed_net(cfg, seed=2)
    x = torch.rand(1, 3, 96, 80)
    big = torch.zeros(1, 1, 96, 80)
    big[:, :, 30:70, 20:60] = 1  # depth 20
    auto = Restorer(G, cfg, work_scale="auto")
    out = auto(x * (1 - big), big)
    assert auto.last_work_scale == pytest.approx(8 / 20)  # = the floor, 32 / 80
    deeper = torch.zeros(1, 1, 96, 80)
    deeper[:, :, 20:70, 15:65] = 1  # depth 25: 8 / 25 = 0.32 is below the floor 32 / 80
    auto(x * (1 - deeper), deeper)
    assert auto.last_work_scale == pytest.approx(0.4)
    wide = torch.zeros(1, 1, 200, 240)
    wide[:, :, 50:90, 60:100] = 1  # depth 20 in a larger image: 8 / 20 = 0.4 is above the floor 0.16
    auto(torch.rand(1, 3, 200, 240) * (1 - wide), wide)
    assert auto.last_work_scale == pytest.approx(0.4)
    assert torch.equal(out, Restorer(G, cfg, work_scale=0.4)(x * (1 - big), big))
    assert auto.net_calls(96, 80, big) == Restorer(G, cfg, work_scale=0.4).net_calls(96, 80)
    small = torch.zeros(1, 1, 96, 80)
    small[:, :, 40:50, 30:40] = 1  # depth 5 <= 8: full size
    assert torch.equal(auto(x * (1 - small), small), Restorer(G, cfg)(x * (1 - small), small))
    assert auto.last_work_scale == 1.0
    # a batch takes its deepest hole
    both = torch.cat([small, big])
    auto(torch.cat([x, x]) * (1 - both), both)
    assert auto.last_work_scale == pytest.approx(0.4)
    for bad in ("half", True, 0, 2.0):
        with pytest.raises(UsageError, match="must be in \\(0, 1\\] or 'auto'"):
            Restorer(G, cfg, work_scale=bad)


@pytest.fixture(scope="module")
def centre_model(tmp_path_factory):
    cfg = tiny("inpaint-center", "degrade.mask_kinds=center")
    path = tmp_path_factory.mktemp("m") / "inpaint"
    save_restorer(path, cfg, perturbed_net(cfg, seed=4))
    return path


def test_cli_work_scale_auto_in_apply_and_eval(tmp_path, capsys, centre_model):
    g = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(g.integers(0, 256, (64 + 16 * i, 64, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    code, out, err = _cli(capsys, "inpaint", "eval", str(centre_model), "--data", str(photos), "--mask", "center",
                          "--work-scale", "auto", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["protocol"]["work_scale"] == "auto" and result["protocol"]["trained_hole_depth"] == 8
    # 64 x 64: a 32 px centre hole (depth 16); 80 x 64: side round(sqrt(80 * 64) / 2) = 36 (depth 18)
    # (8 / 18 = 0.444 for the second, but the floor is the training patch over its short side: 32 / 64)
    assert [r["work_scale"] for r in result["per_image"]] == [0.5, 0.5]
    code, out, err = _cli(capsys, "inpaint", "apply", str(centre_model), str(photos / "0.png"), str(tmp_path / "o.png"),
                          "--mask-kind", "center", "--work-scale", "auto")
    assert code == 0, err
    hole = make_mask("center", 1, 64, 64, torch.Generator())
    x = torch.from_numpy(np.asarray(Image.open(photos / "0.png")).copy()).permute(2, 0, 1)[None].float() / 255
    y = load_restorer(centre_model, work_scale=0.5)(x * (1 - hole), hole)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")),
                          (y[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    for bad in ("0", "1.5", "half"):
        code, _, err = _cli(capsys, "inpaint", "apply", str(centre_model), str(photos / "0.png"), str(tmp_path / "p.png"),
                            "--mask-kind", "center", "--work-scale", bad)
        assert code == 2 and "is not a factor in (0, 1] or 'auto'" in err and "Traceback" not in err, err
