"""Class-conditional synthesis for data augmentation (ganforge.apps.augment, `ganforge sample --per-class`):
the balanced subset, the fixed-step classifier, the study's paired bookkeeping and the CLI."""

import numpy as np
import pytest
import torch

from ganforge.apps.augment import (
    CONDITIONS,
    ClassifierRecipe,
    augmentation_study,
    fit_classifier,
    label_agreement,
    small_labelled_subset,
)
from ganforge.cli import main
from ganforge.errors import UsageError
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)


@pytest.fixture(scope="module")
def digits():
    from ganforge.data import load_images

    d = load_images("mnist5k", resolution=28, channels=1)
    return d.images, d.labels  # uint8 (5000, 1, 28, 28), int64 (5000,)


def test_small_labelled_subset_is_balanced_interleaved_and_seeded(digits):
    x, y = small_labelled_subset(*digits, per_class=7, seed=3)
    assert x.shape == (70, 1, 28, 28) and y.tolist() == list(range(10)) * 7
    x2, _ = small_labelled_subset(*digits, per_class=7, seed=3)
    x3, _ = small_labelled_subset(*digits, per_class=7, seed=4)
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    with pytest.raises(UsageError, match="fewer than --per-class 600"):
        small_labelled_subset(*digits, per_class=600, seed=0)


def test_fit_classifier_learns_is_deterministic_and_leaves_the_global_rng(digits):
    x, y = small_labelled_subset(*digits, per_class=30, seed=0)
    recipe = ClassifierRecipe(steps=120, batch_size=32)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = fit_classifier(x, y, seed=0, recipe=recipe)
    assert torch.equal(torch.rand(1), before)  # forked: the caller's stream goes on unchanged
    b = fit_classifier(x, y, seed=0, recipe=recipe)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    from ganforge.evaluators.common import accuracy

    held_out = digits[0][-1000:], digits[1][-1000:]
    assert accuracy(a, *held_out) > 0.6  # 300 digits, 120 steps: far above chance (0.1)
    with pytest.raises(UsageError, match=r"expected uint8 images \(N, 1, 28, 28\)"):
        fit_classifier(x.float(), y, seed=0, recipe=recipe)


def test_study_pairs_each_condition_with_real_alone(digits, monkeypatch):
    import ganforge.evaluators.common as common

    real = small_labelled_subset(*digits, per_class=2, seed=0)
    synthetic = small_labelled_subset(*digits, per_class=3, seed=1)
    test = digits[0][:50], digits[1][:50]
    scores = iter([0.5, 0.7, 0.8, 0.1, 0.6, 0.65, 0.7, 0.2])  # per seed: real, real+synthetic, 1:1, synthetic
    monkeypatch.setattr(common, "accuracy", lambda model, x, y: next(scores))
    r = augmentation_study(real, synthetic, test, seeds=(0, 1), recipe=ClassifierRecipe(steps=2, batch_size=8), log=None)
    assert list(r.accuracy) == list(CONDITIONS) and r.accuracy["real+synthetic"] == [0.7, 0.65]
    assert (r.n_real, r.n_synthetic, r.n_test) == (20, 30, 50)
    s = r.summary["real+synthetic"]
    assert s["mean"] == pytest.approx(0.675) and s["diff_vs_real"] == pytest.approx(0.125)
    assert s["diff_se"] == pytest.approx(np.std([0.2, 0.05], ddof=1) / np.sqrt(2))
    assert r.summary["real+synthetic 1:1"]["diff_vs_real"] == pytest.approx(0.2)
    assert r.summary["real"]["diff_vs_real"] == 0.0
    with pytest.raises(UsageError, match="the synthetic set is empty"):
        augmentation_study(real, (synthetic[0][:0], synthetic[1][:0]), test, seeds=(0,), log=None)


def test_mixing_one_to_one_draws_half_of_every_batch_from_each_set(digits, monkeypatch):
    import ganforge.evaluators.mnist_clf as clf

    real = small_labelled_subset(*digits, per_class=1, seed=0)  # 10 images, fewer than half a batch
    synthetic = (torch.full((40, 1, 28, 28), 255, dtype=torch.uint8), torch.arange(40) % 10)  # white: x = 1
    seen = []
    real_affine = clf.random_affine
    monkeypatch.setattr(clf, "random_affine", lambda x, gen, **kw: seen.append(x.clone()) or real_affine(x, gen, **kw))
    fit_classifier(*real, seed=0, recipe=ClassifierRecipe(steps=3, batch_size=32), mix=synthetic)
    for x in seen:  # (32, 1, 28, 28): the first 16 real digits (mostly black), the last 16 all white
        assert x.shape[0] == 32 and bool((x[16:] == 1).all()) and not bool((x[:16] == 1).all(dim=(1, 2, 3)).any())


def test_label_agreement_is_mnist_clf_accuracy_on_the_given_labels(digits):
    x, y = small_labelled_subset(*digits, per_class=20, seed=0)
    assert label_agreement(x, y) > 0.98  # real digits: their true labels
    assert label_agreement(x, (y + 1) % 10) < 0.05  # every label wrong


def test_sample_per_class_writes_a_balanced_labelled_set(tmp_path, capsys):
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8, num_classes=10)
    torch.manual_seed(0)
    save_generator(tmp_path / "cgan", cfg, build_generator(cfg))
    assert main(["sample", str(tmp_path / "cgan"), "--per-class", "3", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as z:
        assert z["images"].shape == (30, 28, 28, 1) and z["labels"].tolist() == list(range(10)) * 3
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "cgan"), "--per-class", "3", "--class", "2", "--out", str(tmp_path / "t.npz")]) == 2
    assert "drop --n and --class" in capsys.readouterr().err


def test_sample_per_class_into_a_folder_writes_class_folders_that_load_as_labels(tmp_path, capsys):
    import json

    from ganforge.data import load_images
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8, num_classes=3)
    torch.manual_seed(0)
    save_generator(tmp_path / "cgan", cfg, build_generator(cfg))
    assert main(["sample", str(tmp_path / "cgan"), "--per-class", "2", "--out", str(tmp_path / "plain")]) == 0
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["class0", "class1", "class2"]
    meta = json.loads((tmp_path / "cgan" / "config.json").read_text())
    (tmp_path / "cgan" / "config.json").write_text(json.dumps({**meta, "class_names": ["cat", "dog", "owl"]}))
    assert main(["sample", str(tmp_path / "cgan"), "--per-class", "2", "--out", str(tmp_path / "named")]) == 0
    data = load_images(str(tmp_path / "named"), resolution=28, channels=1)
    assert data.class_names == ["cat", "dog", "owl"] and sorted(data.labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_sample_top_up_draws_what_each_class_lacks(tmp_path, capsys):
    import json

    from ganforge.data import load_images
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.sampling import top_up_counts
    from ganforge.training.checkpoint import save_generator

    assert top_up_counts([5, 0, 9, 12], 9).tolist() == [4, 9, 0, 0]
    with pytest.raises(UsageError, match="--top-up 5: every class already has 6 or more .* give at least 7"):
        top_up_counts([6, 8], 5)
    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8, num_classes=3)
    torch.manual_seed(0)
    save_generator(tmp_path / "cgan", cfg, build_generator(cfg))
    out = str(tmp_path / "t.npz")
    # a generator saved without the training counts: one line naming the alternatives
    assert main(["sample", str(tmp_path / "cgan"), "--top-up", "4", "--out", out]) == 2
    assert "does not record" in (err := capsys.readouterr().err) and "--per-class" in err and len(err.splitlines()) == 1
    meta = json.loads((tmp_path / "cgan" / "config.json").read_text())
    (tmp_path / "cgan" / "config.json").write_text(json.dumps({**meta, "class_counts": [6, 1, 3], "class_names": ["a", "b", "c"]}))
    assert main(["sample", str(tmp_path / "cgan"), "--top-up", "4", "--out", out]) == 0
    with np.load(out) as z:
        assert z["images"].shape == (4, 28, 28, 1) and sorted(z["labels"].tolist()) == [1, 1, 1, 2]
    assert main(["sample", str(tmp_path / "cgan"), "--top-up", "6", "--out", str(tmp_path / "extra")]) == 0
    data = load_images(str(tmp_path / "extra"), resolution=28, channels=1)
    assert data.class_names == ["b", "c"] and torch.bincount(data.labels).tolist() == [5, 3]
    capsys.readouterr()
    for args, needle in ((["--top-up", "1"], "nothing to top up"), (["--top-up", "0"], "--top-up 0 must be >= 1"),
                         (["--top-up", "5", "--per-class", "2"], "give one"), (["--top-up", "5", "--n", "9"], "drop --n"),
                         # sums past int64 must not wrap to a small count, nor end in a traceback
                         (["--top-up", "6148914691236517220"], "images; at most 1,000,000 can be drawn"),
                         (["--top-up", "9223372036854775808"], "images; at most 1,000,000 can be drawn"),
                         (["--per-class", "400000"], "--per-class 400000 asks for 1,200,000 images (3 classes)")):
        assert main(["sample", str(tmp_path / "cgan"), *args, "--out", str(tmp_path / "u.npz")]) == 2, args
        assert needle in (err := capsys.readouterr().err) and len(err.splitlines()) == 1, (args, err)


def test_truncated_noise_matches_scipys_truncated_normal():
    from scipy.stats import truncnorm

    from ganforge.sampling import truncated_noise

    plain = truncated_noise(4000, 64, None, torch.Generator().manual_seed(3))
    assert torch.equal(plain, torch.randn(4000, 64, generator=torch.Generator().manual_seed(3)))  # None: plain N(0, 1)
    for psi in (0.5, 1.0, 2.0):
        z = truncated_noise(4000, 64, psi, torch.Generator().manual_seed(3))  # 256,000 draws
        again = truncated_noise(4000, 64, psi, torch.Generator().manual_seed(3))
        assert torch.equal(z, again) and z.abs().max() <= psi
        ref = truncnorm(-psi, psi)
        assert z.var().item() == pytest.approx(ref.var(), rel=0.01)  # redrawing = sampling the truncated normal
        assert (z.abs() <= psi / 2).float().mean().item() == pytest.approx(ref.cdf(psi / 2) - ref.cdf(-psi / 2), abs=0.005)


def test_sample_truncation_draws_other_images_and_bad_values_are_one_line(tmp_path, capsys):
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8, num_classes=10)
    torch.manual_seed(0)
    save_generator(tmp_path / "cgan", cfg, build_generator(cfg))
    for name, extra in (("plain", []), ("t", ["--truncation", "0.5"]), ("t2", ["--truncation", "0.5"])):
        assert main(["sample", str(tmp_path / "cgan"), "--per-class", "2", "--out", str(tmp_path / f"{name}.npz"), *extra]) == 0
    load = lambda name: np.load(tmp_path / f"{name}.npz")  # noqa: E731
    assert np.array_equal(load("t")["images"], load("t2")["images"])  # same seed, same images
    assert not np.array_equal(load("t")["images"], load("plain")["images"])
    assert load("t")["labels"].tolist() == load("plain")["labels"].tolist()
    for bad in ("0", "-1", "nan", "inf"):
        capsys.readouterr()
        assert main(["sample", str(tmp_path / "cgan"), "--n", "4", "--truncation", bad, "--out", str(tmp_path / "x.npz")]) == 2
        err = capsys.readouterr().err
        assert f"--truncation {float(bad)}" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "x.npz").exists()
