"""The restoration CLI: `ganforge sr|denoise|inpaint train` and `apply`, usage errors, overwrite and
wrong-task refusals, the model folder's config.json and `export` (the library side and the helpers
_cli, _save_png, tiny: test_restore_train.py)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.apps.degrade import make_mask
from ganforge.apps.restore_apply import load_restorer, save_restorer
from ganforge.apps.restore_config import to_dict
from ganforge.apps.restore_models import build_restorer
from ganforge.errors import UsageError
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)
from test_restore_train import TINY, _cli, _save_png, photos, tiny  # noqa: F401  (photos: a module-scoped fixture)


def test_cli_train_and_apply(tmp_path, capsys, photos):
    data = tmp_path / "photos"
    data.mkdir()
    for i, p in enumerate(photos):
        _save_png(data / f"{i}.png", p)
    sets = [a for item in [*TINY, "train.total_steps=2"] for a in ("--set", item)]
    code, out, err = _cli(capsys, "sr", "train", "--data", str(data), "--out", str(tmp_path / "run"), *sets)
    assert code == 0, err
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    code, out, err = _cli(capsys, "sr", "train", "--preset", "sr-x2", "--dry-run", *sets)
    assert code == 0 and json.loads(out)["degrade"]["scale"] == 2
    lr = tmp_path / "lr"
    lr.mkdir()
    _save_png(lr / "a.png", photos[0][:, :16, :20])
    _save_png(lr / "b.png", photos[1][:, :12, :12])
    code, out, err = _cli(capsys, "sr", "apply", str(tmp_path / "run"), str(lr / "a.png"), str(tmp_path / "a_x4.png"), "--tile", "8")
    assert code == 0, err
    assert Image.open(tmp_path / "a_x4.png").size == (80, 64)
    code, out, err = _cli(capsys, "sr", "apply", str(tmp_path / "run"), str(lr), str(tmp_path / "out"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    code, out, err = _cli(capsys, "sr", "apply", str(tmp_path / "run"), str(lr / "a.png"), str(tmp_path / "a_x4.png"), "--force")
    assert code == 0, err


def test_cli_inpaint_apply_with_a_mask_file(tmp_path, capsys, photos):
    cfg = tiny("inpaint-center")
    save_restorer(tmp_path / "model", cfg, build_restorer(cfg))
    _save_png(tmp_path / "img.png", photos[3])
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    code, out, err = _cli(capsys, "inpaint", "apply", str(tmp_path / "model"), str(tmp_path / "img.png"),
                          str(tmp_path / "out.png"), "--mask", str(tmp_path / "mask.png"))
    assert code == 0, err
    result = np.asarray(Image.open(tmp_path / "out.png"))
    original = photos[3].permute(1, 2, 0).numpy()
    assert np.array_equal(result[mask == 0], original[mask == 0])  # known pixels untouched
    assert np.all(result[mask == 255] == 0)  # a fresh net returns its zero-filled estimate in the holes
    code, out, err = _cli(capsys, "inpaint", "apply", str(tmp_path / "model"), str(tmp_path / "img.png"),
                          str(tmp_path / "half.png"), "--mask", str(tmp_path / "mask.png"), "--work-scale", "0.5")
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "half.png"))[mask == 0], original[mask == 0])
    code, out, err = _cli(capsys, "inpaint", "eval", str(tmp_path / "model"), "--data", str(tmp_path), "--crop", "48",
                          "--work-scale", "0.5", "--compare", "telea", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["protocol"]["work_scale"] == 0.5 and result["protocol"]["compare"] == "telea"
    assert "self_ensemble" not in result["protocol"] and result["protocol"]["precision"] == "fp32"
    code, out, err = _cli(capsys, "inpaint", "eval", str(tmp_path / "model"), "--data", str(tmp_path), "--crop", "48",
                          "--self-ensemble", "--json")
    assert code == 0, err
    assert json.loads(out)["protocol"]["self_ensemble"] == 8


@pytest.mark.parametrize("args,needle", [
    (["sr", "train", "--preset", "nope", "--dry-run"], "unknown sr preset 'nope'"),
    (["denoise", "train", "--preset", "sr-x4", "--dry-run"], "unknown denoise preset 'sr-x4'"),
    (["sr", "train", "--set", "train.totl_steps=3", "--dry-run"], "unknown key 'totl_steps'"),
    (["sr", "train", "--data", "/no/such/photos", "--dry-run"], "/no/such/photos"),
    (["sr", "apply", "MODEL", "/no/such/input.png", "OUT.png"], "/no/such/input.png"),
    (["inpaint", "apply", "MODEL", "IN", "OUT.png", "--mask-kind", "blob"], "blob"),
    (["inpaint", "apply", "MODEL", "IN", "OUT.png", "--work-scale", "0"], "--work-scale"),
    (["inpaint", "eval", "telea", "--data", "D", "--work-scale", "2"], "--work-scale"),
    (["sr", "eval", "bicubic", "--data", "D", "--work-scale", "0.5"], "--work-scale"),
    (["inpaint", "eval", "telea", "--data", "D", "--self-ensemble"], "classical method 'telea'"),
    (["inpaint", "eval", "ns", "--data", "D", "--work-scale", "0.5"], "--work-scale"),
    (["sr", "eval", "bicubic", "--data", "D", "--precision", "bf16"], "classical method 'bicubic'"),
    (["sr", "apply", "MODEL", "IN", "OUT.png", "--precision", "fp16"], "'fp16' is not one of 'fp32', 'bf16', 'auto'"),
    (["sr", "apply", "MODEL", "IN", "OUT.png", "--tile", "-5"], "'-5' is not an integer >= 0 or 'auto'"),
    (["denoise", "eval", "nlmeans", "--data", "D", "--tile", "big"], "'big' is not an integer >= 0 or 'auto'"),
])
def test_cli_usage_errors(capsys, args, needle):
    code, out, err = _cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_cli_refuses_to_overwrite_and_wrong_task(tmp_path, capsys, photos):
    cfg = tiny("sr-x4")
    save_restorer(tmp_path / "model", cfg, build_restorer(cfg))
    _save_png(tmp_path / "in.png", photos[0])
    (tmp_path / "exists.png").write_bytes(b"keep me")
    code, out, err = _cli(capsys, "sr", "apply", str(tmp_path / "model"), str(tmp_path / "in.png"), str(tmp_path / "exists.png"))
    assert code == 2 and "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "exists.png").read_bytes() == b"keep me"
    code, out, err = _cli(capsys, "denoise", "apply", str(tmp_path / "model"), str(tmp_path / "in.png"), str(tmp_path / "new.png"))
    assert code == 2 and "is a sr model" in err and not (tmp_path / "new.png").exists()
    code, out, err = _cli(capsys, "sr", "apply", str(tmp_path / "nomodel"), str(tmp_path / "in.png"), str(tmp_path / "new.png"))
    assert code == 2 and "nomodel" in err


def test_config_json_of_the_model_folder(tmp_path):
    cfg = tiny("inpaint-free")
    save_restorer(tmp_path, cfg, build_restorer(cfg))
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["kind"] == "restoration" and meta["task"] == "inpaint" and meta["restore"] == to_dict(cfg)
    from ganforge.training.checkpoint import load_generator

    with pytest.raises(UsageError):  # a restoration model is not a GAN generator
        load_generator(tmp_path)


# ----------------------------------------------------------------------------- export


def test_export_keeps_one_fp16_weight_set_and_restores_the_same(tmp_path, capsys):
    cfg = tiny("inpaint-center")
    torch.manual_seed(2)
    G = build_restorer(cfg)
    G_ema = build_restorer(cfg)
    with torch.no_grad():
        for p, q in zip(G.parameters(), G_ema.parameters()):
            p.add_(torch.randn_like(p) * 0.05)
            q.copy_(p * 0.9)
    save_restorer(tmp_path / "run" / "model", cfg, G, G_ema)
    code, out, err = _cli(capsys, "inpaint", "export", str(tmp_path / "run"), str(tmp_path / "fp16"))
    assert code == 0 and "fp16" in out, err
    from safetensors.torch import load_file

    files = sorted(p.name for p in (tmp_path / "fp16").iterdir())
    assert files == ["config.json", "generator.safetensors"]
    state = load_file(str(tmp_path / "fp16" / "generator.safetensors"))
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    # the EMA copy, rounded to fp16 and nothing else
    for k, v in G_ema.state_dict().items():
        assert torch.equal(state[k], v.to(torch.float16)), k
    meta = json.loads((tmp_path / "fp16" / "config.json").read_text())
    assert meta["weights"] == "ema" and meta["weights_dtype"] == "fp16" and meta["restore"] == to_dict(cfg)
    x = torch.rand(1, 3, 24, 28)
    mask = make_mask("center", 1, 24, 28, torch.Generator())
    ref = load_restorer(tmp_path / "run")(x, mask)
    half = load_restorer(tmp_path / "fp16")(x, mask)
    assert (half - ref).abs().max() < 2e-3  # fp16 weight rounding only; known pixels stay exact
    known = mask.expand_as(x) == 0
    assert torch.equal(half[known], x[known])
    # fp32 of the raw weights is bit-exact
    code, _, err = _cli(capsys, "inpaint", "export", str(tmp_path / "run"), str(tmp_path / "fp32"), "--dtype", "fp32", "--no-ema")
    assert code == 0, err
    assert torch.equal(load_restorer(tmp_path / "fp32", ema=False)(x, mask), load_restorer(tmp_path / "run", ema=False)(x, mask))


@pytest.mark.parametrize("args, needle", [
    (["--dtype", "int8"], "--dtype 'int8' is not allowed"),
    ([], "already exists"),
])
def test_export_usage_errors(tmp_path, capsys, args, needle):
    cfg = tiny("denoise-s25")
    save_restorer(tmp_path / "model", cfg, build_restorer(cfg))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("keep me")
    out = tmp_path / ("taken" if not args else "new")
    code, _, err = _cli(capsys, "denoise", "export", str(tmp_path / "model"), str(out), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "keep.txt").read_text() == "keep me" and not (tmp_path / "new").exists()
    code, _, err = _cli(capsys, "sr", "export", str(tmp_path / "model"), str(tmp_path / "new2"))
    assert code == 2 and "is a denoise model" in err


def test_export_takes_a_shipped_name_and_a_refused_export_leaves_nothing(tmp_path, capsys):
    code, _, err = _cli(capsys, "denoise", "export", "denoise-s25", str(tmp_path / "shipped"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "shipped").iterdir()) == ["config.json", "generator.safetensors"]
    code, _, err = _cli(capsys, "sr", "export", "denoise-s25", str(tmp_path / "wrong"))
    assert code == 2 and "is a denoise model" in err and not (tmp_path / "wrong").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shipped"]  # no hidden temporary folder either
