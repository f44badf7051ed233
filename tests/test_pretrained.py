"""Restoration models shipped inside the package (ganforge/weights/restore/): found by name by
`load_restorer` and the CLI, never in the way of a user's own folder, each under 20 MB, clearly
better than the naive answer on a test image, and sr-x4 scoring on Set5 what index.json records
(the other scores take minutes on this CPU: `benchmarks/ship_models.py` measured them)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.apps import pretrained
from ganforge.apps.degrade import add_noise, sr_degrade
from ganforge.apps.restore_apply import export_restorer, load_restorer, save_restorer
from ganforge.apps.restore_config import apply_overrides, get_preset
from ganforge.apps.restore_models import build_restorer
from ganforge.cli import main
from ganforge.errors import UsageError

SHIPPED = pretrained.shipped_names()
TINY = ["model.width=8", "model.blocks=2", "train.device=cpu"]


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """A shipped-models folder holding one tiny exported denoiser named `denoise-s25`."""
    cfg = apply_overrides(get_preset("denoise-s25"), TINY)
    torch.manual_seed(0)
    save_restorer(tmp_path / "run" / "model", cfg, build_restorer(cfg))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    export_restorer(tmp_path / "run", shipped / "denoise-s25")
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", shipped)
    return shipped


def test_a_shipped_name_loads_and_a_users_folder_of_that_name_wins(fake_shipped, tmp_path, monkeypatch):
    assert pretrained.shipped_names() == ["denoise-s25"]
    r = load_restorer("denoise-s25", sigma=25)
    x = torch.rand(1, 3, 16, 16)
    assert r.task == "denoise" and r(x).shape == x.shape
    # a folder of the same name in the working directory is the user's model, not ours
    monkeypatch.chdir(tmp_path)
    Path("denoise-s25").mkdir()
    with pytest.raises(UsageError, match="holds no generator"):
        load_restorer("denoise-s25")


def test_unknown_name_is_one_line_naming_the_shipped_models(fake_shipped, capsys):
    with pytest.raises(UsageError, match=r"no-such does not exist: give a model or run folder, or a shipped model \(denoise-s25\)"):
        load_restorer("no-such")
    code = main(["denoise", "eval", "no-such", "--data", str(fake_shipped), "--sigma", "25"])
    err = capsys.readouterr().err
    assert code == 2 and "a shipped model (denoise-s25)" in err and err.count("\n") == 1, err


def test_cli_applies_a_shipped_model_by_name(fake_shipped, tmp_path, capsys):
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(img)
    code = main(["denoise", "apply", "denoise-s25", str(img), str(tmp_path / "out.png"), "--sigma", "25"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(tmp_path / "out.png").size == (24, 20)


# ----------------------------------------------------------------------------- the real shipped models


@pytest.mark.skipif(not SHIPPED, reason="no shipped restoration models in this checkout")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_small_exported_and_documented(name):
    folder = pretrained.SHIPPED_DIR / name
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["config.json", "generator.safetensors"]
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 20 * 2**20, (name, size)  # the acceptance: each under 20 MB
    meta = json.loads((folder / "config.json").read_text())
    entry = pretrained.shipped_index()[name]
    assert meta["task"] == entry["task"] and meta["weights_dtype"] == "fp16"
    assert {"trained", "command", "scores"} <= set(entry)


def _butterfly():
    """Set5's butterfly when ../shared/data is here (tests may read it), else skip."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr" / "Set5" / "butterfly.png"
    if not path.exists():
        pytest.skip("../shared/data/sr/Set5 is not in this checkout's neighbourhood")
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255


def _psnr(a, b):
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.mark.skipif("sr-x4" not in SHIPPED, reason="no shipped sr-x4")
def test_shipped_sr_beats_bicubic_on_butterfly():
    from torch.nn import functional as F

    hr = _butterfly()[..., :252, :252]  # a multiple of 4
    lr = sr_degrade(hr, 4)
    ours = load_restorer("sr-x4")(lr).clamp(0, 1)
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    assert _psnr(ours, hr) > _psnr(bicubic, hr) + 1.0  # measured: see index.json's scores


@pytest.mark.skipif("denoise-s25" not in SHIPPED, reason="no shipped denoise-s25")
def test_shipped_denoiser_removes_most_of_sigma25_noise():
    clean = _butterfly()
    noisy = add_noise(clean, 25.0, torch.Generator().manual_seed(0))
    out = load_restorer("denoise-s25", sigma=25)(noisy).clamp(0, 1)
    assert _psnr(noisy, clean) < 21 and _psnr(out, clean) > 28  # noisy ≈ 20.2 dB


@pytest.mark.skipif("sr-x4" not in SHIPPED, reason="no shipped sr-x4")
def test_shipped_sr_scores_what_the_index_records_on_set5(capsys):
    set5_dir = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr" / "Set5"
    if not set5_dir.exists():
        pytest.skip("../shared/data/sr/Set5 is not in this checkout's neighbourhood")
    assert main(["sr", "eval", "sr-x4", "--data", str(set5_dir), "--scale", "4", "--json"]) == 0
    mean = json.loads(capsys.readouterr().out)["mean"]
    want = pretrained.shipped_index()["sr-x4"]["scores"]["Set5"]
    for key in ("psnr_y", "psnr_rgb", "ssim_y"):
        assert mean[key] == pytest.approx(want[key], abs=2e-3), key  # the index rounds to 4 decimals


@pytest.mark.skipif("inpaint-free" not in SHIPPED, reason="no shipped inpaint-free")
def test_shipped_inpaint_free_scores_what_the_index_records_on_set14_strokes(capsys):
    set14 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr" / "Set14"
    if not set14.exists():
        pytest.skip("../shared/data/sr/Set14 is not in this checkout's neighbourhood")
    assert main(["inpaint", "eval", "inpaint-free", "--data", str(set14), "--crop", "240", "--work-scale", "auto",
                 "--mask", "strokes", "--json"]) == 0
    mean = json.loads(capsys.readouterr().out)["mean"]
    want = pretrained.shipped_index()["inpaint-free"]["scores"]["Set14 240 px crops strokes"]
    for key in ("psnr_rgb", "psnr_y", "ssim_rgb"):
        assert mean[key] == pytest.approx(want[key], abs=2e-3), key
