"""End-to-end training on real data: the generator must measurably improve, runs must leave
everything behind, and save -> load must give identical samples."""

import json

import numpy as np
import pytest
import torch

from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.presets import get_preset
from ganforge.sampling import generate
from ganforge.training import load_generator, train
from ganforge.training.checkpoint import MODEL_DIR


def _digit_classifier():
    """A scikit-learn MLP trained on 8x8 digits (about 97% held-out accuracy), the judge of G."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    x = d.images.reshape(len(d.images), -1) / 16.0
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0).fit(x[:1500], d.target[:1500])
    assert clf.score(x[1500:], d.target[1500:]) > 0.9
    return clf


def classifier_score(clf, images_uint8):
    """Inception-score-style number on the digit classifier: exp(E_x KL(p(y|x) || p(y))).
    1 for garbage or collapse onto one class, up to 10 for confident, diverse digits."""
    x = images_uint8.reshape(len(images_uint8), -1) / 255.0
    p = clf.predict_proba(x)
    py = p.mean(0, keepdims=True)
    kl = (p * (np.log(p + 1e-12) - np.log(py + 1e-12))).sum(1).mean()
    return float(np.exp(kl)), int(len(np.unique(p.argmax(1))))


def tiny_cfg(steps, **over):
    cfg = RunConfig(preset="test-mlp-digits")
    sets = [
        "data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=16",
        "model.g_width=64", "model.d_width=64", f"train.total_steps={steps}", "train.batch_size=64",
        "train.progress=false", "train.log_every=50", "train.sample_every=0", "checkpoint.every_steps=0",
        "optim.lr_g=1e-3", "optim.lr_d=1e-3", "train.ema_decay=0.99", "train.sample_grid=16",
    ]
    return apply_overrides(cfg, sets + [f"{k}={v}" for k, v in over.items()])


def test_generator_measurably_improves_on_digits(tmp_path):
    clf = _digit_classifier()
    data = load_images("digits", resolution=8, channels=1)
    cfg = tiny_cfg(1500)
    # untrained generator = the same config at step 0
    torch.manual_seed(0)
    from ganforge.models import build_generator

    G0 = build_generator(cfg.model).eval()
    before, _ = classifier_score(clf, generate(G0, 1000, seed=1)[0])
    run = train(cfg, out=tmp_path / "run", data=data)
    G = load_generator(run)
    after, classes = classifier_score(clf, generate(G, 1000, seed=1)[0])
    real, _ = classifier_score(clf, data.images.permute(0, 2, 3, 1).numpy())
    print(f"classifier score: untrained {before:.2f}, trained {after:.2f}, real {real:.2f}, classes {classes}")
    assert after > before + 2.0
    assert after > 5.0 and classes == 10


def test_run_leaves_everything_behind(tmp_path):
    run = train(tiny_cfg(60, **{"train.sample_every": 30, "train.log_every": 20, "checkpoint.every_steps": 30}), out=tmp_path / "r")
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["run"]["train"]["total_steps"] == 60
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40, 60]
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "img_per_s", "lr_g", "lr_d"):
        assert key in rows[-1] and np.isfinite(rows[-1][key])
    assert (run / "samples" / "step-00000030.png").is_file() and (run / "samples" / "final.png").is_file()
    assert (run / "loss.png").is_file()
    assert (run / MODEL_DIR / "generator.safetensors").is_file()
    assert (run / MODEL_DIR / "generator_ema.safetensors").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("state-*.pt")) == ["state-00000030.pt", "state-00000060.pt"]


def test_save_load_gives_identical_samples(tmp_path):
    from ganforge.models import build_generator
    from ganforge.training.checkpoint import save_generator

    cfg = get_preset("cgan-mnist").model
    G = build_generator(cfg).eval()
    save_generator(tmp_path / "m", cfg, G)
    G2 = load_generator(tmp_path / "m")
    a, la = generate(G, 20, seed=3)
    b, lb = generate(G2, 20, seed=3)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert a.shape == (20, 28, 28, 1) and a.dtype == np.uint8


@pytest.mark.parametrize("name", ["wgan-gp-mnist", "wgan-mnist", "keras-dcgan-mnist", "sagan-mnist", "cgan-mnist", "lsgan-mnist", "mlp-mnist", "faces-lfw", "dcgan-mnist"])
def test_each_family_trains_a_few_steps(tmp_path, name):
    cfg = get_preset(name)
    small = ["train.total_steps=3", "train.batch_size=8", "train.progress=false", "train.log_every=1",
             "train.sample_every=0", "train.sample_grid=4", "checkpoint.every_steps=0", "data.max_images=64",
             "eval.every=0"]
    if cfg.model.arch != "keras-dcgan":
        small += ["model.g_width=8", "model.d_width=8"]
    run = train(apply_overrides(cfg, small), out=tmp_path / name)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    if cfg.loss.gp_weight:
        assert "gp" in rows[0] and rows[0]["gp"] >= 0
    if cfg.loss.clip_value:
        G_D = torch.load(run / "checkpoints" / "state-00000003.pt", weights_only=True)["D"]
        assert max(v.abs().max().item() for k, v in G_D.items() if v.is_floating_point() and "running" not in k) <= 0.01 + 1e-7


def test_weight_clipping_and_ema_are_applied(tmp_path):
    from ganforge.training.ema import EMA

    lin = torch.nn.Linear(2, 2)
    ema = EMA(lin, decay=0.5, warmup=False)
    with torch.no_grad():
        lin.weight.add_(1.0)
    before = ema.model.weight.clone()
    ema.update(lin)
    torch.testing.assert_close(ema.model.weight, 0.5 * before + 0.5 * lin.weight)
    ema_w = EMA(lin, decay=0.999, warmup=True)
    assert ema_w.current_decay() == pytest.approx(0.1)  # (1+0)/(10+0)


def test_existing_out_is_never_overwritten(tmp_path):
    from ganforge.errors import UsageError

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match="already exists"):
        train(tiny_cfg(2), out=tmp_path / "r")
    assert (tmp_path / "r" / "keep.txt").read_text() == "x"


def test_numbered_run_folders(tmp_path):
    a = train(tiny_cfg(2), runs_root=tmp_path)
    b = train(tiny_cfg(2), runs_root=tmp_path)
    assert a.name == "00001-test-mlp-digits" and b.name == "00002-test-mlp-digits"


@pytest.mark.parametrize("name", ["sngan-cifar10", "dcgan-cifar10"])
def test_cifar_presets_train_on_the_real_zip(tmp_path, shared_data, name):
    from dataclasses import replace

    cfg = get_preset(name)
    cfg = replace(cfg, data=replace(cfg.data, source=f"{shared_data}/cifar10-train20k.zip"))
    small = ["train.total_steps=2", "train.batch_size=8", "train.progress=false", "train.log_every=1",
             "train.sample_every=0", "train.sample_grid=4", "checkpoint.every_steps=0", "data.max_images=32",
             "model.g_width=8", "model.d_width=8"]
    run = train(apply_overrides(cfg, small), out=tmp_path / name)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(np.isfinite(r["d_loss"]) for r in rows)
    assert (run / "samples" / "final.png").is_file()
