"""The mnist-clf evaluator: shipped weights (integrity, accuracy on the MNIST test set),
invariances of its features, and scores that rank real digits above degraded images."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.data import load_images, to_float
from ganforge.errors import UsageError
from ganforge.evaluators import (
    EVALUATORS,
    embed,
    fit_mnist_clf,
    load_evaluator,
    score_features,
    score_generator_images,
)
from ganforge.evaluators.mnist_clf import accuracy, default_weights_path, load_mnist_npz, random_affine
from ganforge.io import sha256_file

WEIGHTS = default_weights_path()
needs_weights = pytest.mark.skipif(
    not WEIGHTS.is_file(), reason=f"{WEIGHTS} not fitted: python benchmarks/fit_mnist_clf.py"
)


@pytest.fixture(scope="module")
def clf():
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} not fitted: python benchmarks/fit_mnist_clf.py")
    return load_evaluator("mnist-clf")


@pytest.fixture(scope="module")
def mnist_test():
    """uint8 (10000, 1, 28, 28) MNIST test digits and their labels, from <repo>/../shared/data."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist-test10k.npz")
    if not os.path.isfile(path):
        pytest.skip(f"MNIST test set not present at {os.path.abspath(path)}")
    return load_mnist_npz(path)


@pytest.fixture(scope="module")
def mnist5k():
    return load_images("mnist5k", resolution=28, channels=1).images  # uint8 (5000, 1, 28, 28)


def _copy_weights(dst):
    shutil.copy(WEIGHTS, dst / WEIGHTS.name)
    shutil.copy(WEIGHTS.with_suffix(".json"), dst / "mnist-clf.json")
    return dst / "mnist-clf.json"


# ---------------------------------------------------------------------------------------------
# Registry and weight integrity


def test_unknown_evaluator_lists_names():
    with pytest.raises(UsageError, match="known evaluators: cifar10-clf, mnist-clf"):
        load_evaluator("inception-v3-mnist")


@needs_weights
def test_shipped_weights_load_and_match_sidecar(clf):
    meta = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert meta["sha256"] == sha256_file(WEIGHTS) == clf.meta["sha256"]
    assert meta["architecture"] == EVALUATORS["mnist-clf"].arch
    assert meta["test_accuracy"] >= 0.985 and meta["test_images"] == 10000
    assert meta["weights_bytes"] == WEIGHTS.stat().st_size < 2_000_000
    assert not clf.training
    assert not any(p.requires_grad for p in clf.parameters())


@needs_weights
def test_wrong_hash_is_a_usage_error(tmp_path):
    sidecar = _copy_weights(tmp_path)
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(UsageError, match="sha256"):
        load_evaluator("mnist-clf", weights_dir=tmp_path)


@needs_weights
def test_corrupted_weights_are_a_usage_error(tmp_path):
    _copy_weights(tmp_path)
    data = bytearray((tmp_path / WEIGHTS.name).read_bytes())
    data[-1] ^= 0xFF  # one flipped bit inside a tensor: still a valid safetensors file
    (tmp_path / WEIGHTS.name).write_bytes(bytes(data))
    with pytest.raises(UsageError, match="corrupt or was replaced"):
        load_evaluator("mnist-clf", weights_dir=tmp_path)


@needs_weights
def test_stale_architecture_is_a_usage_error(tmp_path):
    sidecar = _copy_weights(tmp_path)
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "architecture": "mnist-cnn-v0"}))
    with pytest.raises(UsageError, match="architecture 'mnist-cnn-v0'"):
        load_evaluator("mnist-clf", weights_dir=tmp_path)


def test_missing_weights_say_how_to_fit_them(tmp_path):
    with pytest.raises(UsageError, match=r"missing; make the weights with .*fit_mnist_clf"):
        load_evaluator("mnist-clf", weights_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# The classifier


def test_accuracy_on_mnist_test_slice(clf, mnist_test):
    images, labels = mnist_test
    assert accuracy(clf, images[:2000], labels[:2000]) >= 0.98


def test_outputs_are_consistent(clf, mnist5k):
    x = to_float(mnist5k[:16])
    with torch.no_grad():
        f, logits, probs = clf.features(x), clf.logits(x), clf.probs(x)
    assert f.shape == (16, 128) and logits.shape == probs.shape == (16, 10)
    assert (f >= 0).all()  # post-ReLU activations
    torch.testing.assert_close(clf.head(f), logits)
    torch.testing.assert_close(probs, logits.softmax(dim=1))
    with pytest.raises(UsageError, match=r"expects images \(N, 1, 28, 28\)"):
        clf.features(torch.zeros(2, 3, 28, 28))


def test_features_are_batch_size_independent(clf, mnist5k):
    x = mnist5k[:50]
    f_all, p_all = embed(x, clf, batch_size=500)
    for batch_size in (1, 7):
        f, p = embed(x, clf, batch_size=batch_size)
        np.testing.assert_allclose(f, f_all, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(p, p_all, rtol=1e-5, atol=1e-6)


def test_embed_accepts_nchw_nhwc_and_nhw(clf, mnist5k):
    x = mnist5k[:20]  # (20, 1, 28, 28)
    f, p = embed(x, clf)
    for layout in (x.permute(0, 2, 3, 1).numpy(), x[:, 0].numpy(), x.numpy()):
        f2, p2 = embed(layout, clf)
        np.testing.assert_array_equal(f2, f)
        np.testing.assert_array_equal(p2, p)
    # a 32 px generator's output is resized to 28 px and still recognised
    big = F.interpolate(x.float(), size=32, mode="bilinear", antialias=True).round().clamp(0, 255).to(torch.uint8)
    assert (embed(big, clf)[1].argmax(1) == p.argmax(1)).mean() >= 0.9
    with pytest.raises(UsageError, match="uint8"):
        embed(to_float(x), clf)
    with pytest.raises(UsageError, match="1-channel"):
        embed(x.expand(-1, 3, -1, -1), clf)


def test_embed_refuses_train_mode(mnist5k):
    from ganforge.evaluators import MnistClassifier

    with pytest.raises(UsageError, match="train mode"):
        embed(mnist5k[:4], MnistClassifier())


# ---------------------------------------------------------------------------------------------
# Scores: real digits beat noise, blur and shuffled pixels


def _degraded(real: torch.Tensor) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    k1 = torch.tensor([1.0, 4, 6, 4, 1])
    k = (k1[:, None] * k1[None]) / 256  # 5x5 binomial, sigma ~1; applied twice
    blur = F.conv2d(F.conv2d(real.float(), k[None, None], padding=2), k[None, None], padding=2)
    perm = torch.randperm(28 * 28, generator=g)
    return {
        "noise": torch.randint(0, 256, real.shape, generator=g, dtype=torch.uint8),
        "blurred": blur.round().clamp(0, 255).to(torch.uint8),
        "shuffled": real.reshape(len(real), -1)[:, perm].reshape(real.shape),
    }


@pytest.fixture(scope="module")
def ref_feats(clf, mnist5k):
    return embed(mnist5k[:1000], clf)[0]  # mnist5k cycles 0..9: a prefix is balanced


@pytest.fixture(scope="module")
def scores(clf, mnist_test, ref_feats):
    real = mnist_test[0][:500]
    images = {"real": real, **_degraded(real)}
    # A 1000-digit reference, embedded once, and 20 KID subsets keep this at a few CPU seconds.
    return {name: score_features(*embed(x, clf), ref_feats, kid_subsets=20) for name, x in images.items()}


def test_score_generator_images_is_embed_then_score_features(clf, mnist_test, mnist5k, ref_feats, scores):
    s = score_generator_images(mnist_test[0][:500].permute(0, 2, 3, 1).numpy(), clf, mnist5k[:1000], kid_subsets=20)
    assert s == scores["real"]


def test_default_reference_is_mnist5k(clf, mnist_test, monkeypatch):
    from ganforge.evaluators import score

    calls = []

    def small_mnist5k(name, **kw):  # the real loader, cut to 1000 digits to keep the test fast
        calls.append((name, kw))
        data = load_images(name, **kw)
        data.images = data.images[:1000]
        return data

    monkeypatch.setattr(score, "load_images", small_mnist5k)
    s = score_generator_images(mnist_test[0][:100], clf, kid_subsets=2)
    assert calls == [("mnist5k", {"resolution": 28, "channels": 1})]
    assert s["n_ref"] == 1000 and s["n_images"] == 100 and s["classes_covered"] == 10


def test_scores_are_plain_floats(scores):
    s = scores["real"]
    assert set(s) >= {"fid", "kid", "classes_covered", "class_kl", "confidence", "classifier_score"}
    assert all(type(v) is float for v in s.values())
    assert s["n_images"] == 500 and s["n_ref"] == 1000 and s["class_min_count"] == 5


def test_real_digits_score_like_the_reference(scores):
    s = scores["real"]
    # 500 test digits vs 1000 training digits: FID 5.0, KID 0.047, classifier score 9.0 with the shipped weights.
    assert s["fid"] < 8 and abs(s["kid"]) < 0.1
    assert s["classes_covered"] == 10
    assert s["class_kl"] < 0.02  # the test set is close to balanced
    assert s["confidence"] > 0.95
    assert s["classifier_score"] > 8
    assert s["precision"] > 0.6 and s["recall"] > 0.6


@pytest.mark.parametrize("bad", ["noise", "blurred", "shuffled"])
def test_real_digits_beat_degraded_images(scores, bad):
    real, other = scores["real"], scores[bad]
    assert real["fid"] < other["fid"] / 10
    assert real["kid"] < other["kid"] / 10
    assert real["classes_covered"] >= other["classes_covered"]
    assert real["class_kl"] < other["class_kl"]
    assert real["classifier_score"] > other["classifier_score"] + 1
    assert real["precision"] > other["precision"] and real["recall"] > other["recall"]


def test_one_class_is_detected_as_mode_collapse(clf, mnist_test, ref_feats):
    images, labels = mnist_test
    s = score_features(*embed(images[labels == 3][:200], clf), ref_feats, kid_subsets=5)
    assert s["classes_covered"] == 1
    assert s["class_kl"] > 2.0  # log(10) = 2.30 for a single class
    assert s["classifier_score"] < 1.2


def test_too_few_images_is_a_usage_error(clf, mnist5k, ref_feats):
    with pytest.raises(UsageError, match="at least 10 images, but images has 5"):
        score_features(*embed(mnist5k[:5], clf), ref_feats)


# ---------------------------------------------------------------------------------------------
# Training


def test_random_affine_identity_and_background():
    x = to_float(torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8))
    g = torch.Generator().manual_seed(0)
    same = random_affine(x, g, shift_px=0, rotate_deg=0, scale=0, shear_deg=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    black = -torch.ones(4, 1, 28, 28)
    moved = random_affine(black, g, shift_px=2, rotate_deg=15, scale=0.1, shear_deg=10)
    torch.testing.assert_close(moved, black)  # the padding is background, not grey


@pytest.mark.slow
def test_fit_is_deterministic_and_loadable(tmp_path):
    metas = [
        fit_mnist_clf(tmp_path / f"run{i}" / "mnist-clf.safetensors", epochs=1, seed=3, log=None) for i in range(2)
    ]
    assert metas[0]["sha256"] == metas[1]["sha256"]
    assert metas[0]["test_accuracy"] is None and metas[0]["epochs"] == 1
    clf = load_evaluator("mnist-clf", weights_dir=tmp_path / "run0")
    assert clf.meta["seed"] == 3
