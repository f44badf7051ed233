"""A second QA pass over evaluation and sampling: inputs that used to give a wrong number silently (a
classifier of another class count counting Stacked MNIST modes, [0, 1] floats scored with
data_range=255, a [-1, 1] prediction against a [0, 1] target, NaN pixels, a fitted evaluator's own
class names ignored by label agreement) are refused in one line, and so are the odd arguments of the
library metrics that ended as raw TypeErrors or NaN. Valid input keeps its values."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganforge.cli import main
from ganforge.errors import UsageError
from ganforge.metrics import (FeatureStats, MetricOptions, class_coverage, density_coverage, evaluate, evaluate_pairs,
                              frechet_distance, inception_score, kid, load_extractor, ms_ssim, precision_recall, psnr,
                              ssim)
from ganforge.evaluators.score import score_features
from ganforge.modes import BENCHMARKS, mode_stats
from ganforge.modes.stacked import classify_modes, stacked_stats
from ganforge.sampling import MAX_GRID_IMAGES, check_out, save_samples


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def one_line_error(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("INFO ", "WARNING "))]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]


# ---------------------------------------------------------------- 1. Stacked MNIST: the mode reader


class Linear(nn.Module):
    """A stand-in digit classifier with ``k`` outputs (mnist-clf has 10)."""

    def __init__(self, k: int):
        super().__init__()
        self.fc = nn.Linear(28 * 28, k)

    def forward(self, x):  # (B, 1, 28, 28) -> (B, k)
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def stacked():
    return torch.rand(8, 3, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (8, 3, 28, 28) in [-1, 1]


@pytest.mark.parametrize("k", [5, 12, 100])
def test_a_classifier_of_another_class_count_is_refused_not_counted(stacked, k):
    # 12 classes made "modes" past 999 and 100 classes 50 modes of "1000": numbers that meant nothing
    torch.manual_seed(0)
    with pytest.raises(UsageError, match=rf"outputs of shape \(24, {k}\).*10-class digit classifier"):
        classify_modes(stacked, Linear(k))


def test_the_mode_reader_refuses_the_wrong_scale_and_nan_but_reads_10_classes(stacked):
    torch.manual_seed(0)
    clf = Linear(10)
    modes = classify_modes(stacked, clf, batch_size=3)
    assert modes.shape == (8,) and 0 <= int(modes.min()) and int(modes.max()) < 1000
    assert torch.equal(modes, classify_modes(stacked, clf))  # the batch does not matter
    with pytest.raises(UsageError, match="need float images in \\[-1, 1\\], got torch.uint8"):
        classify_modes(((stacked + 1) * 127.5).to(torch.uint8), clf)
    with pytest.raises(UsageError, match=r"got values in \[0, 255\].*x / 127.5 - 1"):
        classify_modes(((stacked + 1) * 127.5).round(), clf)
    bad = stacked.clone()
    bad[3, 1, 5, 5] = float("nan")
    with pytest.raises(UsageError, match="1 of the 8 images hold NaN"):
        classify_modes(bad, clf)
    with pytest.raises(UsageError, match="batch_size=0"):
        classify_modes(stacked, clf, batch_size=0)
    s = stacked_stats(torch.tensor([5, 5, 5, 17], dtype=torch.int32))  # valid modes count as before
    p = np.array([0.75, 0.25])
    assert s.modes == 2 and s.kl == pytest.approx(float((p * np.log(p * 1000)).sum()), abs=1e-12)


@pytest.mark.parametrize("modes, needle", [
    (torch.tensor([5, 1000]), r"0..999, got 1000 \(1 of 2 out of range\)"),
    (torch.tensor([-1, 3]), "got -1"),
    (torch.tensor([], dtype=torch.long), r"integer tensor \(N,\), N >= 1"),
    (torch.tensor([1.0, 5.0]), "torch.float32"),
    ([1, 2], "got list"),
])
def test_stacked_stats_refuses_modes_it_cannot_count(modes, needle):
    with pytest.raises(UsageError, match=needle):
        stacked_stats(modes)


def test_mode_stats_checks_its_samples_and_takes_arrays():
    ring = BENCHMARKS["ring8"]
    x = ring.sample(200, torch.Generator().manual_seed(0))  # (200, 2)
    assert mode_stats(x.numpy(), ring) == mode_stats(x, ring)
    for bad, needle in ((torch.zeros(5, 3), r"\(N, 2\).*got float32 \(5, 3\)"), (torch.zeros(0, 2), r"\(0, 2\)"),
                        (torch.zeros(5), r"\(5,\)"), ([[1, "a"]], "samples must be")):
        with pytest.raises(UsageError, match=needle):
            mode_stats(bad, ring)
    with pytest.raises(UsageError, match="bench must be a ganforge.modes.Benchmark"):
        mode_stats(x, "ring8")
    # a diverged trial's NaN samples are near no mode: low quality, not an error
    assert mode_stats(torch.full((10, 2), float("nan")), ring).hq == 0.0


# ---------------------------------------------------------------- 2. PSNR / SSIM / MS-SSIM: scale and NaN


@pytest.fixture(scope="module")
def pair01():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 24, 24, generator=g, dtype=torch.float64)  # (2, 3, 24, 24) in [0, 1]
    pred = (target + 0.05 * torch.randn(target.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return pred, target


def test_01_floats_scored_with_data_range_255_are_refused(pair01):
    pred, target = pair01
    # they scored 48 dB too high (PSNR) and near 1 (SSIM) without a word
    for metric in (psnr, ssim):
        with pytest.raises(UsageError, match=r"data_range=255 but every value lies in \[0, 1\].*data_range=1.0"):
            metric(pred, target, data_range=255)
    # the same images on the 0..255 scale keep their value: 10 log10(255^2 / (255^2 mse))
    mse = (pred - target).pow(2).flatten(1).mean(1)
    assert torch.allclose(psnr(pred * 255, target * 255, data_range=255), 10 * torch.log10(1 / mse), atol=1e-9)


def test_a_dark_uint8_pair_is_still_scored_by_evaluate_pairs():
    # a 0/1 mask saved as PNG is integers, not [0, 1] floats: eval-pair (always data_range 255) scores it
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 2, (3, 16, 16), dtype=np.uint8) for _ in range(2))
    r = evaluate_pairs(a, b, metrics="psnr,ssim")
    mse = ((a.astype(float) - b.astype(float)) ** 2).reshape(3, -1).mean(1)
    assert [v["psnr"] for v in r.per_image.values()] == pytest.approx(list(10 * np.log10(255**2 / mse)), abs=1e-9)
    from skimage.metrics import structural_similarity

    want = [structural_similarity(a[i], b[i], data_range=255, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False) for i in range(3)]
    assert [v["ssim"] for v in r.per_image.values()] == pytest.approx(want, abs=1e-9)


def test_a_minus1_1_prediction_against_a_01_target_is_refused(pair01):
    pred, target = pair01
    with pytest.raises(UsageError, match=r"pred values span \[-1, .*\(x \+ 1\) / 2"):
        psnr(pred * 2 - 1, target, data_range=1.0)  # scored 1.7 dB before
    # an unclamped prediction that overshoots by less than half the range is scored as before
    over = target * 1.8 - 0.4  # in [-0.4, 1.4]
    assert over.min() < -0.35 and over.max() > 1.35
    mse = (over - target).pow(2).flatten(1).mean(1)
    assert torch.allclose(psnr(over, target, data_range=1.0), 10 * torch.log10(1 / mse), atol=1e-12)
    # integers get no overshoot: the check runs on their own values, not on the float copy
    with pytest.raises(UsageError, match=r"pred values span \[-128"):
        ssim((target * 255).long() - 128, (target * 255).long(), data_range=255)


@pytest.mark.parametrize("where", ["pred", "target"])
def test_nan_pixels_are_refused_naming_the_image(pair01, where):
    pred, target = (x.clone() for x in pair01)
    (pred if where == "pred" else target)[1, 2, 3, 4] = float("nan")
    for metric in (psnr, ssim):  # they returned NaN for that image (and a NaN mean)
        with pytest.raises(UsageError, match=rf"{where} holds NaN values \(in 1 of its 2 images, the first is image 1\)"):
            metric(pred, target, data_range=1.0)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(weights="abc"), "weights must be one or more finite numbers > 0"),  # a raw ValueError before
    (dict(weights=[-1.0, 1.0]), r"got \[-1.0, 1.0\]"),  # gave 2.58, above SSIM's 1
    (dict(weights=[float("nan")]), "got \\[nan\\]"),
    (dict(weights=[]), "got \\[\\]"),
    (dict(data_range=True), "data_range must be a positive number.*got True"),
    (dict(y_channel="no"), "y_channel must be True or False, got 'no'"),  # 'no' was read as True
])
def test_odd_full_reference_arguments_are_one_line_errors(kwargs, needle):
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    with pytest.raises(UsageError, match=needle):
        ms_ssim(x, x, **{"data_range": 1.0, "weights": (0.5, 0.5), **kwargs})
    with pytest.raises(UsageError, match="pred is torch.complex64"):
        psnr(x.to(torch.complex64), x.to(torch.complex64), data_range=1.0)


def test_ms_ssim_with_fewer_scales_still_matches_its_definition():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 1, 48, 48, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.rand(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    from ganforge.metrics.fullref import _ssim_and_cs

    _, cs = _ssim_and_cs(x, y, 1.0)
    s2, _ = _ssim_and_cs(*(torch.nn.functional.avg_pool2d(v, 2) for v in (x, y)), 1.0)
    want = cs.relu() ** 0.25 * s2.relu() ** 0.75
    assert float(ms_ssim(x, y, data_range=1.0, weights=[0.25, 0.75])) == pytest.approx(float(want), abs=1e-12)


# ---------------------------------------------------------------- 3. distribution metrics: odd arguments


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 6)), rng.normal(size=(40, 6))


@pytest.mark.parametrize("call, needle", [
    (lambda a, b: kid(a, b, subsets=2, subset_size=10.5), "subset_size must be an integer >= 2, got 10.5"),
    (lambda a, b: kid(a, b, subsets=2, subset_size=10, degree=0), "degree must be an integer >= 1"),
    (lambda a, b: kid(a, b, subsets=2, subset_size=10, gamma=float("nan")), "gamma must be a finite number > 0"),
    (lambda a, b: kid(a, b, subsets=2, subset_size=10, coef0=float("inf")), "coef0 must be a finite number"),
    (lambda a, b: kid(a[:, :0], b[:, :0], subsets=1, subset_size=5), r"no feature dimensions: shape \(40, 0\)"),
    (lambda a, b: inception_score(np.full((20, 4), 0.25), splits=2.5), "splits must be an integer.*got 2.5"),
    (lambda a, b: inception_score(np.full((20, 4), 0.25), shuffle_seed=-1), "shuffle_seed must be None or an integer"),
    (lambda a, b: precision_recall(a, b, k=2.5), "k must be an integer >= 1, got 2.5"),
    (lambda a, b: precision_recall(a, b, k=True), "k must be an integer >= 1, got True"),
    (lambda a, b: precision_recall(a, b, device="gpu"), "device='gpu' is not a device"),
    (lambda a, b: density_coverage(a, b, k=1.5), "k must be an integer >= 1, got 1.5"),
    (lambda a, b: class_coverage(np.array([0, 1, 2]), 3.5), "num_classes must be an integer >= 1, got 3.5"),
    (lambda a, b: class_coverage(np.array([0, 1, 2]), 3, min_count=0), "min_count must be one integer >= 1"),
    (lambda a, b: class_coverage(np.array([0, 1, 2]), 3, min_count=[1, 2]), "or 3 of them"),
    (lambda a, b: class_coverage(np.array([0, 1, 2]), 3, ref_hist=[1, 0, 1], eps=float("nan")), "eps must be"),
    (lambda a, b: FeatureStats.from_features([[1.0, 2.0], [3.0]]), "feats must be an array of real numbers"),
    (lambda a, b: FeatureStats.from_features(a, batch_size=2.5), "batch_size must be an integer >= 1 or None"),
    (lambda a, b: frechet_distance(a[0], np.triu(np.ones((6, 6))), a[0], np.eye(6)), "sigma1 is not symmetric"),
    (lambda a, b: score_features(a, np.full((40, 4), 0.25), b, class_min_fraction=float("nan")),  # math.ceil's error
     "class_min_fraction must be a number between 0 and 1, got nan"),
])
def test_odd_metric_arguments_are_one_line_errors(feats, call, needle):
    with pytest.raises(UsageError, match=needle):
        call(*feats)


def test_valid_metric_arguments_keep_their_values(feats):
    a, b = feats
    assert class_coverage(np.array([0, 1, 1]), 3, min_count=np.array([1, 2, 1])).covered == 2
    assert class_coverage(np.array([0, 1, 1]), np.int64(3), min_count=np.int64(1)).covered == 2
    assert kid(a, b, subsets=2, subset_size=np.int64(10), gamma=np.float32(0.5)) == kid(a, b, subsets=2, subset_size=10,
                                                                                           gamma=0.5)
    assert precision_recall(a, b, k=np.int64(3), device=torch.device("cpu")) == precision_recall(a, b, k=3)
    s = FeatureStats.from_features(a)
    assert 0.0 <= frechet_distance(s.mu, s.sigma, s.mu, s.sigma) < 1e-9  # identical: ~0, never negative


def test_feature_stats_save_to_an_unwritable_place_is_one_line(feats, tmp_path):
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(UsageError, match=r"could not write feature statistics to .*f/s.npz"):
        FeatureStats.from_features(feats[0]).save(afile / "s.npz")
    assert afile.read_text() == "x"


# ---------------------------------------------------------------- 4. evaluate(): option and target types


@pytest.fixture(scope="module")
def grey():
    return np.random.default_rng(1).integers(0, 256, (30, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("options, needle", [
    (MetricOptions(pr_k=2.5), "pr_k must be an integer >= 1, got 2.5"),  # TypeError deep in torch before
    (MetricOptions(is_splits=2.5), "is_splits must be an integer >= 1, got 2.5"),
    (MetricOptions(dc_k=True), "dc_k must be an integer >= 1, got True"),  # was taken as k=1
    (MetricOptions(kid_subset_size=10.5), "kid_subset_size must be an integer >= 2 or None, got 10.5"),
    (MetricOptions(is_shuffle_seed=-1), "is_shuffle_seed must be an integer from 0 to 4294967295"),
    (MetricOptions(class_min_fraction="0.1"), "class_min_fraction must be a number between 0 and 1, got '0.1'"),
])
def test_metric_options_of_the_wrong_type_are_refused_before_any_work(grey, monkeypatch, options, needle):
    import ganforge.metrics.evaluation as ev

    monkeypatch.setattr(ev, "load_extractor", lambda *a, **k: pytest.fail("loaded an extractor despite bad options"))
    with pytest.raises(UsageError, match=needle):
        evaluate(grey, ref=grey, evaluator="mnist-clf", metrics="fid", options=options)


@pytest.mark.parametrize("target", [None, 5, [np.zeros((2, 28, 28), np.uint8)]])
def test_a_target_of_the_wrong_kind_is_one_line(grey, target):
    with pytest.raises(UsageError, match=f"target is {type(target).__name__}: give a run folder"):
        evaluate(target, ref=grey, evaluator="mnist-clf", metrics="fid")
    with pytest.raises(UsageError, match=r"metrics must be names such as \"fid,kid\".*got 5; allowed: fid"):
        evaluate(grey, ref=grey, evaluator="mnist-clf", metrics=5)


# ---------------------------------------------------------------- 5. label agreement: the evaluator's own classes


def _class_folders(root, names):
    for name in names:
        (root / name).mkdir(parents=True)
        Image.fromarray(np.full((32, 32, 3), len(name), np.uint8)).save(root / name / "0.png")
    return root


def test_label_agreement_reads_a_fitted_evaluators_own_class_names(tmp_path, capsys):
    # the shipped cifar10-clf weights with a sidecar naming other classes, as `evaluator fit cifar10-clf
    # --data` on other class folders writes it
    from importlib import resources

    src, weights, digits = resources.files("ganforge").joinpath("weights"), tmp_path / "mine.safetensors", list("0123456789")
    shutil.copyfile(src / "cifar10-clf.safetensors", weights)
    weights.with_suffix(".json").write_text(json.dumps({**json.loads((src / "cifar10-clf.json").read_text()),
                                                        "class_names": digits}))
    assert load_extractor("cifar10-clf", weights=weights).class_names == tuple(digits)
    cifar = load_extractor("cifar10-clf").class_names  # the shipped sidecar's: airplane ... truck
    named = _class_folders(tmp_path / "named", cifar)
    # folders named after CIFAR-10's classes, read by a classifier of the classes 0..9: matched to the
    # shipped names they were scored by index against classes they are not (exit 0, "by name")
    line = one_line_error(capsys, "eval", named, "--ref", named, "--metrics", "labels", "--evaluator", "cifar10-clf",
                          "--evaluator-weights", weights)
    assert "class folder(s) airplane, automobile, bird, cat are not cifar10-clf classes (0, 1, 2" in line
    # folders named after the fitted classes are matched by those names
    numbered = _class_folders(tmp_path / "numbered", digits)
    r = evaluate(numbered, ref=named, metrics="labels", evaluator=load_extractor("cifar10-clf", weights=weights))
    assert r.protocol["options"]["label_class_map"] == "by name (the set's class folders)"
    with pytest.raises(UsageError, match="class folder\\(s\\) 0, 1, 2, 3 are not cifar10-clf classes \\(airplane"):
        evaluate(numbered, ref=named, metrics="labels", evaluator="cifar10-clf")


def test_a_generator_is_matched_with_the_fitted_class_names():
    from ganforge.metrics.evaluation import check_class_map, evaluator_class_names

    ex = replace(load_extractor("cifar10-clf"), class_names=tuple("abcdefghij"))
    assert evaluator_class_names(ex) == tuple("abcdefghij")
    assert check_class_map(10, list("abcdefghij"), "cifar10-clf", 10, names=evaluator_class_names(ex)) == "same class names"
    with pytest.raises(UsageError, match="are not cifar10-clf's \\(a, b, c, d, ...\\)"):
        check_class_map(10, list(load_extractor("cifar10-clf").class_names), "cifar10-clf", 10,
                        names=evaluator_class_names(ex))


# ---------------------------------------------------------------- 6. sample: a .png grid of too many images


def test_a_png_grid_of_too_many_images_is_refused_before_drawing(tmp_path):
    # 100,000 digits made a 302 x 300,002 px PNG from 1.4 GB of memory; 1,000,000 would need ~14 GB
    n = MAX_GRID_IMAGES + 1
    with pytest.raises(UsageError, match=f"--out g.png: a .png grid takes at most 10,000 images, not {n:,}; .*npz"):
        check_out("g.png", names=[f"{i}.png" for i in range(n)])
    images = np.zeros((n, 2, 2, 1), np.uint8)
    with pytest.raises(UsageError, match="out='g.png': a .png grid takes at most"):
        save_samples(images, None, "g.png")
    assert not (tmp_path / "g.png").exists()
    # the same images go to an .npz, and a grid of the largest size is still written
    save_samples(images, None, "g.npz")
    assert save_samples(images[:MAX_GRID_IMAGES], None, "g.png").is_file()


# ---------------------------------------------------------------- 7. generate(): what G draws


class Drawn(nn.Module):
    """A stand-in generator: grey 8x8 images ``f(u)`` of uniform noise u in [0, 1] (ganforge's have tanh)."""

    def __init__(self, f):
        super().__init__()
        self.z_dim, self.f, self.anchor = 4, f, nn.Parameter(torch.zeros(()))

    def forward(self, z, y=None):
        u = (z[:, :1, None, None].expand(-1, 1, 8, 8).sin() + 1) / 2  # (b, 1, 8, 8) in [0, 1]
        return self.f(u)


@pytest.mark.parametrize("f, needle", [
    (lambda u: u * 255, r"drew values in \[\d.*, 2\d\d.*\]: images are read as \[-1, 1\]"),  # saved all white
    (lambda u: u / 0 * 0, "drew NaN or infinite values \\(image 0 and 2 more in its batch\\)"),  # saved all black
])
def test_generate_refuses_what_it_would_clamp_to_black_or_white(f, needle):
    from ganforge.sampling import generate

    with pytest.raises(UsageError, match=needle):
        generate(Drawn(f), 7, batch_size=3)


def test_a_generator_that_never_draws_below_0_is_warned_about(caplog):
    from ganforge.sampling import generate

    with caplog.at_level("WARNING", logger="ganforge.sampling"):
        half, _ = generate(Drawn(lambda u: u), 20)
    assert "no value below 0 in 20 image(s)" in caplog.text and half.min() >= 127
    caplog.clear()
    with caplog.at_level("WARNING", logger="ganforge.sampling"):
        full, _ = generate(Drawn(lambda u: u * 2 - 1), 20)
    assert not caplog.text and full.min() < 64  # the same noise on the [-1, 1] scale: full contrast, no warning


def test_mnist_test_data_as_sample_writes_it_and_labels_past_9(tmp_path):
    from ganforge.evaluators.mnist_clf import load_mnist_npz

    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28, 1), dtype=np.uint8)  # `ganforge sample` layout
    np.savez(tmp_path / "t.npz", images=images, labels=np.arange(12) % 10)
    x, y = load_mnist_npz(tmp_path / "t.npz")
    assert x.shape == (12, 1, 28, 28) and torch.equal(x[:, 0], torch.from_numpy(images[..., 0]))
    np.savez(tmp_path / "b.npz", images=images, labels=np.arange(12))  # 10 and 11 would never be predicted
    with pytest.raises(UsageError, match="labels must be the digits 0..9 as integers, one per image, got 0..11"):
        load_mnist_npz(tmp_path / "b.npz")


# ---------------------------------------------------------------- 8. eval-pair: files of 16 bits per channel


def _png16_rgb(path, arr):
    """A 16-bit RGB PNG of uint16 (H, W, 3), which PIL reads (as 8-bit RGB) but cannot write."""
    import struct
    import zlib

    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in arr)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    h, w, _ = arr.shape
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16_bit_files_are_scored_at_8_bits_with_a_warning(tmp_path, caplog, capsys):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 65536, (24, 24), dtype=np.uint16)
    b = np.clip(a.astype(int) + rng.integers(-60, 61, a.shape), 0, 65535).astype(np.uint16)
    for d in ("p", "g"):
        (tmp_path / d).mkdir()
    Image.fromarray(a).save(tmp_path / "p" / "x.png")  # mode I;16
    Image.fromarray(b).save(tmp_path / "g" / "x.png")
    _png16_rgb(tmp_path / "p" / "y.png", np.stack([a] * 3, -1))  # PIL decodes it as plain 8-bit RGB
    _png16_rgb(tmp_path / "g" / "y.png", np.stack([b] * 3, -1))
    with caplog.at_level("WARNING", logger="ganforge.eval"):
        r = evaluate_pairs(tmp_path / "p", tmp_path / "g", metrics="psnr")
    # 65.6 dB apart at 16 bits, 57.3 dB as read: said, not hidden
    assert "4 image file(s) (e.g. " in caplog.text and "x.png) have 16 bits per channel" in caplog.text
    assert r.protocol["bits"] == 8 and r.protocol["files_over_8_bits"] == 4
    assert r.per_image["x"]["psnr"] < 60 and r.per_image["y"]["psnr"] < 60
    caplog.clear()
    g8 = np.random.default_rng(1).integers(0, 256, (24, 24), dtype=np.uint8)
    Image.fromarray(g8).save(tmp_path / "a.png")
    with caplog.at_level("WARNING", logger="ganforge.eval"):
        r8 = evaluate_pairs(tmp_path / "a.png", tmp_path / "a.png", metrics="psnr")
    assert not caplog.text and "files_over_8_bits" not in r8.protocol


# ---------------------------------------------------------------- 9. RGB files of grey pictures, strides


def test_rgb_files_of_grey_pictures_are_told_how_to_be_read(tmp_path, grey, capsys):
    # torchvision's save_image writes MNIST samples as RGB: "choose an evaluator" sent the user the wrong way
    (tmp_path / "rgb").mkdir()
    for i, img in enumerate(grey[:12]):
        Image.fromarray(np.stack([img] * 3, -1)).save(tmp_path / "rgb" / f"{i}.png")
    np.savez(tmp_path / "ref.npz", images=grey)
    line = one_line_error(capsys, "eval", tmp_path / "rgb", "--ref", tmp_path / "ref.npz", "--metrics", "fid")
    assert "has 3-channel images but mnist-clf expects 1-channel (greyscale) images; they are grey pictures " \
           "stored as RGB (R = G = B in every pixel): save them as greyscale" in line
    # colour images keep the advice to choose another evaluator
    Image.fromarray(np.stack([grey[0], grey[0], 255 - grey[0]], -1)).save(tmp_path / "rgb" / "0.png")
    with pytest.raises(UsageError, match="expects 1-channel \\(greyscale\\) images; choose an evaluator"):
        evaluate(tmp_path / "rgb", ref=grey, evaluator="mnist-clf", metrics="fid")


def test_grey_files_and_the_same_npz_give_the_same_features(tmp_path, grey):
    # decoded grey files come as (N, 1, H, W) with NHWC strides, which the convs took for channels-last:
    # their KID differed from the same pixels in an .npz in the 7th digit, and a cache hit mixed them
    (tmp_path / "l").mkdir()
    for i, img in enumerate(grey[:12]):
        Image.fromarray(img).save(tmp_path / "l" / f"{i:02d}.png")
    np.savez(tmp_path / "l.npz", images=grey[:12])
    kw = dict(ref=grey, evaluator="mnist-clf", metrics="fid,kid", cache=False)
    files, npz = evaluate(tmp_path / "l", **kw), evaluate(tmp_path / "l.npz", **kw)
    assert files.protocol["target"]["pixels_sha256"] == npz.protocol["target"]["pixels_sha256"]
    assert files.values == npz.values


def test_generate_refuses_a_module_that_is_not_a_generator():
    from ganforge.sampling import generate

    class NoNoise(nn.Module):
        def forward(self, z, y=None):
            return torch.zeros(len(z), 1, 8, 8)

    with pytest.raises(UsageError, match="G is NoNoise: generate\\(\\) needs a generator module with an integer z_dim"):
        generate(NoNoise(), 2)  # AttributeError before
    for shape in ((8, 8), (8, 8, 1)):  # (b, H, W) or channels last: garbage images or a raw RuntimeError before
        g = Drawn(lambda u, shape=shape: u[:, 0].reshape(len(u), *shape) * 2 - 1)
        with pytest.raises(UsageError, match=rf"drew a batch of shape \(2, {', '.join(map(str, shape))}\): .*channels first"):
            generate(g, 2)
    parameterless = Drawn(lambda u: u * 2 - 1)
    del parameterless.anchor  # no parameter to read the device from: the CPU (StopIteration before)
    assert generate(parameterless, 2)[0].shape == (2, 8, 8, 1)


def test_numpy_options_leave_a_json_protocol(grey):
    r = evaluate(grey, ref=grey, evaluator="mnist-clf", metrics="pr,classes", n=np.int64(20), cache=False,
                 options=MetricOptions(pr_k=np.int64(3), class_min_fraction=np.float32(0.1)))
    assert json.loads(json.dumps(r.to_dict()))["protocol"]["options"]["pr_k"] == 3  # np.int64 broke json.dumps
    assert r.values == evaluate(grey, ref=grey, evaluator="mnist-clf", metrics="pr,classes", n=20, cache=False,
                                options=MetricOptions(pr_k=3, class_min_fraction=0.1)).values
