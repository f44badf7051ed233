"""ganforge.metrics.evaluate / evaluate_pairs: values independent of batch size, the reference
cache (hit = identical numbers, changed key = miss), the recorded protocol, the ranking on real
MNIST, and one-line errors for bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.metrics import MetricOptions, evaluate, evaluate_pairs, load_extractor, psnr, ssim

SMALL = MetricOptions(kid_subsets=10, kid_subset_size=100, is_splits=5)  # options that fit 300-image sets
ALL = "fid,kid,is,pr,dc,classes"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two OpenMP threads on a busy 2-core machine are many times slower
    yield tmp_path / "cache"
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """uint8 (5000, 1, 28, 28) mnist5k digits: the default reference of mnist-clf."""
    return load_images("mnist5k", resolution=28, channels=1).images


@pytest.fixture(scope="module")
def mnist_clf():
    return load_extractor("mnist-clf")


def blur(images: torch.Tensor) -> torch.Tensor:
    """5x5 binomial blur of uint8 (N, 1, H, W) images: a cheap stand-in for a half-trained generator."""
    k = torch.tensor([1.0, 4, 6, 4, 1])
    k = (k[:, None] * k[None]) / 256
    x = F.conv2d(F.pad(images.float(), (2, 2, 2, 2), mode="replicate"), k[None, None])
    return x.round().clamp(0, 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# Invariances


def test_every_metric_is_independent_of_batch_size(digits, mnist_clf):
    target = blur(digits[-300:])  # non-trivial precision, recall, density and coverage
    runs = [evaluate(target, metrics=ALL, evaluator=mnist_clf, ref=digits[:300], batch_size=b, cache=False, options=SMALL)
            for b in (1, 7, 500)]
    v = runs[-1].values
    assert 0.05 < v["precision"] < 1 and 0 < v["coverage"] < 1 and v["fid"] > 1  # the check is not vacuous
    for r in runs[:-1]:
        assert r.values.keys() == v.keys()
        for key in v:
            assert r.values[key] == pytest.approx(v[key], rel=1e-6, abs=1e-9), key


def test_generator_values_are_independent_of_batch_size(mnist_clf, digits):
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig

    torch.manual_seed(0)
    G = build_generator(ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8)).eval()
    runs = [evaluate(G, metrics="fid,kid,is", evaluator=mnist_clf, ref=digits[:200], n=200, batch_size=b,
                     options=SMALL).values for b in (1, 64)]
    for key in runs[0]:
        assert runs[0][key] == pytest.approx(runs[1][key], rel=1e-6, abs=1e-9), key
    again = evaluate(G, metrics="fid", evaluator=mnist_clf, ref=digits[:200], n=200, seed=1).values
    assert again["fid"] != runs[1]["fid"]  # the seed changes the noise


# ---------------------------------------------------------------------------------------------
# Reference cache


def test_cache_hit_is_identical_and_changed_keys_miss(digits, mnist_clf, isolated_cache):
    target = blur(digits[-200:])

    def run(**kw):
        args = dict(metrics=ALL, evaluator=mnist_clf, ref=digits[:1000], n_ref=300, options=SMALL)
        r = evaluate(target, **{**args, **kw})
        return r.values, r.protocol["reference"]["cache"]

    first, state = run()
    assert state == "miss" and len(list((isolated_cache / "ref-stats").glob("*.npz"))) == 1
    assert not [p for p in (isolated_cache / "ref-stats").iterdir() if p.name.startswith(".")]  # no temp files left
    again, state = run()
    assert state == "hit" and again == first  # bit-identical numbers
    assert run(n=100)[1] == "hit"  # the generated side does not change the reference statistics
    assert run(n_ref=301)[1] == "miss"  # another reference subset size
    assert run(seed=1)[1] == "miss"  # another random reference subset
    assert run(dtype="float64", evaluator="mnist-clf")[1] == "miss"  # another extractor setting
    fake = load_extractor("mnist-clf")
    fake.name = "mnist-clf-variant"
    assert run(evaluator=fake)[1] == "miss"  # another extractor
    assert run(cache=False)[1] == "off"


def test_fid_only_entry_is_upgraded_when_features_are_needed(digits, mnist_clf):
    args = dict(evaluator=mnist_clf, ref=digits[:300], options=SMALL)
    assert evaluate(digits[-200:], metrics="fid", **args).protocol["reference"]["cache"] == "miss"
    assert evaluate(digits[-200:], metrics="fid", **args).protocol["reference"]["cache"] == "hit"
    assert evaluate(digits[-200:], metrics="kid", **args).protocol["reference"]["cache"] == "miss"  # raw features needed
    assert evaluate(digits[-200:], metrics="fid,pr", **args).protocol["reference"]["cache"] == "hit"


def test_corrupt_cache_file_is_recomputed(digits, mnist_clf, isolated_cache):
    args = dict(metrics="fid", evaluator=mnist_clf, ref=digits[:300], options=SMALL)
    first = evaluate(digits[-200:], **args).values
    (path,) = (isolated_cache / "ref-stats").glob("*.npz")
    path.write_bytes(b"not an npz")
    r = evaluate(digits[-200:], **args)
    assert r.protocol["reference"]["cache"] == "miss" and r.values == first


# ---------------------------------------------------------------------------------------------
# Protocol and ranking


def test_protocol_records_what_the_numbers_depend_on(tmp_path, digits):
    npz = tmp_path / "fake.npz"
    np.savez(npz, images=blur(digits[-400:])[:, 0].numpy())
    r = evaluate(str(npz), metrics="fid,classes", n=300, seed=3, options=SMALL)  # default reference: mnist5k
    p = r.protocol
    assert p["n_generated"] == 300 and p["n_real"] == 5000 and p["seed"] == 3
    assert p["target"]["kind"] == "npz" and p["target"]["bytes"] == npz.stat().st_size
    assert p["target"]["subset"] == "random 300 of 400 (seed 3)" and len(p["target"]["pixels_sha256"]) == 64
    assert p["reference"]["name"] == "mnist5k" and p["reference"]["cache"] == "miss"
    from ganforge.evaluators.mnist_clf import default_weights_path

    sidecar = json.loads(default_weights_path().with_suffix(".json").read_text())
    ex = p["extractor"]
    assert ex["name"] == "mnist-clf" and ex["weights_sha256"] == sidecar["sha256"]
    assert ex["resize"] == "bilinear-antialias" and ex["dtype"] == "float32"
    assert p["ganforge_version"] and p["options"]["kid_subset_size"] == 100 and p["options"]["class_min_count"] == 3
    assert list(r.to_dict()) == ["fid", "classes_covered", "class_kl", "protocol"]
    json.dumps(r.to_dict())  # JSON-ready


def test_classes_covered_against_a_long_tailed_reference(digits):
    # two disjoint long tails of mnist5k digits (250, 150, ..., 2 a class): the target matches the
    # reference's class mix, so every class the reference shows counts as covered; a tenth of a
    # uniform share (ceil(0.1 * 620 / 10) = 7) would miss the rarest
    from ganforge.data import load_images as load
    from ganforge.metrics.imagesets import ImageSet

    labels = load("mnist5k", resolution=28, channels=1).labels
    tail = [round(250 * 0.6**k) for k in range(10)]  # 250, 150, 90, 54, 32, 19, 12, 7, 4, 2
    rows = [torch.nonzero(labels == k).flatten() for k in range(10)]
    ref_rows = torch.cat([r[:n] for r, n in zip(rows, tail)])
    tgt_rows = torch.cat([r[250:250 + n] for r, n in zip(rows, tail)])
    ref = ImageSet(digits[ref_rows], {"kind": "long tail"}, labels=labels[ref_rows])
    r = evaluate(digits[tgt_rows], metrics="classes", ref=ref)
    counts = r.protocol["options"]["class_min_counts"]
    assert r.protocol["options"]["class_min_count"] == 7 and counts[0] == 7 and counts[-1] == 1
    assert sum(np.array(r.class_hist) < 7) >= 2  # the uniform bar would miss these
    assert r.values["classes_covered"] == 10
    # a balanced reference (1000 random digits: 80 to 120 a class) moves no threshold by more than its noise
    r = evaluate(digits[tgt_rows], metrics="classes", n_ref=1000)
    assert 5 <= min(r.protocol["options"].get("class_min_counts", [7])) and r.protocol["options"]["class_min_count"] == 7


def test_real_digits_beat_blurred_which_beat_noise(shared_data, digits):
    with np.load(os.path.join(shared_data, "mnist-test10k.npz")) as z:
        real = torch.from_numpy(z["images"][:1000]).unsqueeze(1)  # (1000, 1, 28, 28), disjoint from mnist5k
    noise = torch.randint(0, 256, real.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    scores = {name: evaluate(x, metrics=ALL, n_ref=1000).values for name, x in
              (("real", real), ("blurred", blur(real)), ("noise", noise))}
    r, b, n = scores["real"], scores["blurred"], scores["noise"]
    for lower_is_better in ("fid", "kid", "class_kl"):
        assert r[lower_is_better] < b[lower_is_better] < n[lower_is_better], lower_is_better
    for higher_is_better in ("is", "precision", "recall", "density", "coverage"):
        assert r[higher_is_better] > b[higher_is_better] > n[higher_is_better], higher_is_better
    assert r["classes_covered"] == 10 and n["classes_covered"] <= 2
    assert r["fid"] < 5 and r["precision"] > 0.75 and r["is"] > 8.5  # two samples of the same distribution


def test_kid_subset_size_defaults_to_1000_or_the_smaller_set(digits, mnist_clf):
    """Without a subset size KID uses 1000 images per subset, or every image of the smaller set
    (StyleGAN2-ADA's rule), and records the size it used; a given size is used as given."""
    r = evaluate(digits[:50], metrics="kid", evaluator=mnist_clf, ref=digits[50:250])
    assert r.protocol["options"]["kid_subset_size"] == 50
    given = evaluate(digits[:50], metrics="kid", evaluator=mnist_clf, ref=digits[50:250],
                     options=MetricOptions(kid_subset_size=50))
    assert given.values == r.values
    assert evaluate(digits[:50], metrics="kid", evaluator=mnist_clf, ref=digits[50:90]).protocol["options"]["kid_subset_size"] == 40


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_is_a_usage_error(tmp_path, digits, mnist_clf):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(mixed / "a.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mixed / "b.png")
    rgb = torch.zeros(20, 3, 28, 28, dtype=torch.uint8)
    cases = [
        (dict(target=str(mixed)), "mixed sizes.*a.png is 28x28 but .*b.png is 32x32"),
        (dict(target=rgb), "3-channel images but mnist-clf expects 1-channel"),
        (dict(target=digits[:50], metrics="kid", options=MetricOptions(kid_subset_size=60)),
         "subset size 60 is larger than the 50 images"),
        (dict(target=digits[:1], metrics="kid"), "kid needs at least 2 images"),
        (dict(target=digits[:3], metrics="pr"), "k=3 needs more than 3 images"),
        (dict(target=digits[:50], metrics="fid,bleu"), "unknown metric 'bleu'; allowed: fid, kid, is, pr, dc, classes"),
        (dict(target=str(tmp_path / "nope")), "does not exist"),
        (dict(target=digits[:50], n=100), "100 images requested but it holds only 50"),
        (dict(target=digits[:50], ref=digits[:2], metrics="dc"), "k=5 needs more than 5 images, but the reference"),
        (dict(target=digits[:50], evaluator="cifar10-clf", ref=digits[:50]), "but cifar10-clf expects 3-channel"),
        (dict(target=digits[:50], evaluator="vgg"), "unknown evaluator 'vgg'"),
    ]
    for kwargs, match in cases:
        kwargs.setdefault("evaluator", mnist_clf)
        target = kwargs.pop("target")
        with pytest.raises(UsageError, match=match):
            evaluate(target, **kwargs)


# ---------------------------------------------------------------------------------------------
# Paired images


def test_evaluate_pairs_matches_direct_metrics_and_pairs_by_name(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    (tmp_path / "pred").mkdir(), (tmp_path / "gt").mkdir()
    for i, name in enumerate(["b", "a", "c"]):
        Image.fromarray(pred[i]).save(tmp_path / "pred" / f"{name}.png")
        Image.fromarray(gt[i]).save(tmp_path / "gt" / f"{name}.bmp")  # suffixes may differ
    r = evaluate_pairs(tmp_path / "pred", tmp_path / "gt", metrics="psnr,ssim", y_channel=True, crop=2)
    assert list(r.per_image) == ["a", "b", "c"]
    p = torch.from_numpy(pred).permute(0, 3, 1, 2).double()
    g = torch.from_numpy(gt).permute(0, 3, 1, 2).double()
    want_psnr = psnr(p, g, data_range=255, y_channel=True, crop=2)
    want_ssim = ssim(p, g, data_range=255, y_channel=True, crop=2)
    for i, name in enumerate(["b", "a", "c"]):
        assert r.per_image[name]["psnr"] == pytest.approx(float(want_psnr[i]), rel=1e-12)
        assert r.per_image[name]["ssim"] == pytest.approx(float(want_ssim[i]), rel=1e-12)
    assert r.mean["psnr"] == pytest.approx(float(want_psnr.mean()), rel=1e-12)
    assert r.protocol["y_channel"] and r.protocol["crop"] == 2 and r.protocol["n_pairs"] == 3
    np.savez(tmp_path / "p.npz", images=pred)
    np.savez(tmp_path / "g.npz", images=gt)
    by_index = evaluate_pairs(tmp_path / "p.npz", tmp_path / "g.npz", metrics="psnr")
    assert by_index.per_image["1"]["psnr"] == pytest.approx(float(psnr(p[1:2], g[1:2], data_range=255)[0]))
    one = evaluate_pairs(tmp_path / "pred" / "a.png", tmp_path / "gt" / "a.bmp", metrics="psnr")
    assert one.mean["psnr"] == pytest.approx(float(psnr(p[1:2], g[1:2], data_range=255)[0]))  # "a" is image 1


def test_evaluate_pairs_errors(tmp_path):
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(tmp_path / "g.png")
    (tmp_path / "p").mkdir(), (tmp_path / "q").mkdir()
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(tmp_path / "p" / "x.png")
    Image.fromarray(np.zeros((24, 24), np.uint8)).save(tmp_path / "q" / "y.png")
    with pytest.raises(UsageError, match="PRED and GT differ for a: 24x24 with 3 channel"):
        evaluate_pairs(tmp_path / "a.png", tmp_path / "b.png")
    with pytest.raises(UsageError, match="differ for a: .*3 channel.*1 channel"):
        evaluate_pairs(tmp_path / "a.png", tmp_path / "g.png")
    with pytest.raises(UsageError, match="only in PRED: x"):
        evaluate_pairs(tmp_path / "p", tmp_path / "q")
    with pytest.raises(UsageError, match="unknown metric 'lpips'; allowed: psnr, ssim, ms_ssim"):
        evaluate_pairs(tmp_path / "a.png", tmp_path / "a.png", metrics="psnr,lpips")
    with pytest.raises(UsageError, match="GT .*missing.png does not exist"):
        evaluate_pairs(tmp_path / "a.png", tmp_path / "missing.png")
    with pytest.raises(UsageError, match="ms_ssim needs images of at least 161x161"):
        evaluate_pairs(tmp_path / "a.png", tmp_path / "a.png", metrics="ms_ssim")
    assert evaluate_pairs(tmp_path / "a.png", tmp_path / "a.png", metrics="psnr").mean["psnr"] == float("inf")


def test_a_run_stopped_before_its_generator_is_refused_not_scored_as_its_sample_grids(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "config.json").write_text(json.dumps({"preset": "dcgan-mnist"}))
    (run / "metrics.jsonl").write_text("")
    for step in (10, 20, 30):  # what Ctrl-C leaves: sample grids and checkpoints, no model/
        Image.fromarray(np.zeros((62, 62), np.uint8)).save(run / "samples" / f"step-{step:06d}.png")
    (run / "checkpoints" / "state-00000035.pt").write_bytes(b"")
    with pytest.raises(UsageError, match=r"TARGET .*run is a training run that has no generator yet \(its last "
                                         r"checkpoint is step 35\): finish it with `ganforge train --resume"):
        evaluate(run, metrics="fid", evaluator="mnist-clf")
    with pytest.raises(UsageError, match="--ref .* no generator yet"):
        evaluate(np.zeros((20, 28, 28), np.uint8), metrics="fid", evaluator="mnist-clf", ref=run)
    (run / "best").mkdir()
    (run / "best" / "config.json").write_text("{}")
    with pytest.raises(UsageError, match="or score its best snapshot"):
        evaluate(run, metrics="fid", evaluator="mnist-clf")


@pytest.mark.parametrize("channels", [2, 4])
def test_an_npz_with_alpha_is_composited_on_black_like_its_image_files_and_training(tmp_path, channels):
    """Grey+alpha and RGBA arrays: the .npz, the same pictures as PNG files, and the training loader
    (data.transforms) all see colour * alpha / 255 on black."""
    from ganforge.data.transforms import arrays_to_tensor
    from ganforge.metrics.imagesets import load_image_set

    rng = np.random.default_rng(channels)
    raw = rng.integers(0, 256, (6, 10, 10, channels), dtype=np.uint8)
    raw[0, ..., -1] = 255  # opaque, transparent and half-transparent images among them
    raw[1, ..., -1] = 0
    np.savez(tmp_path / "a.npz", images=raw)
    folder = tmp_path / "files"
    folder.mkdir()
    for i, a in enumerate(raw):
        Image.fromarray(a, "LA" if channels == 2 else "RGBA").save(folder / f"{i}.png")
    from_npz = load_image_set(tmp_path / "a.npz").images
    assert from_npz.shape == (6, channels - 1, 10, 10)
    assert torch.equal(from_npz, load_image_set(folder).images)
    assert torch.equal(from_npz, arrays_to_tensor(raw, 10, channels - 1))
    assert torch.equal(from_npz[0], torch.from_numpy(raw[0, ..., :-1]).permute(2, 0, 1)) and from_npz[1].max() == 0


def test_eval_of_a_run_says_when_its_training_data_changed_since(tmp_path, caplog):
    """The run records its images' count and content hash; `ganforge eval RUN`'s default reference (the
    training data) is checked against them: files added since training are said, not passed off as the
    images the run trained on."""
    import logging

    import ganforge
    from ganforge.config import apply_overrides

    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(data / f"{i}.png")
    cfg = apply_overrides(ganforge.get_preset("dcgan-mnist"), [
        f"data.source={data}", "train.total_steps=2", "train.batch_size=8", "model.g_width=8", "model.d_width=8",
        "train.sample_every=0", "eval.every=0", "train.progress=false"])
    run = ganforge.train(cfg, out=tmp_path / "run")
    recorded = json.loads((run / "config.json").read_text())["resolved"]["data"]
    assert recorded["num_images"] == 24 and len(recorded["sha256"]) == 64
    with caplog.at_level(logging.WARNING, logger="ganforge.eval"):
        r = evaluate(str(run), metrics="fid", n=20)
    assert r.protocol["reference"]["same_as_trained"] is True and "not the images" not in caplog.text
    for i in range(24, 30):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(data / f"{i}.png")
    with caplog.at_level(logging.WARNING, logger="ganforge.eval"):
        r = evaluate(str(run), metrics="fid", n=20)
    assert r.protocol["reference"]["same_as_trained"] is False
    assert "is not the images the run trained on (24 images then, 30 now" in caplog.text


def test_an_fid_from_no_more_images_than_feature_dimensions_is_cautioned_in_the_log_and_the_protocol(caplog):
    import logging

    from ganforge.metrics import evaluate
    from ganforge.metrics.evaluation import fid_caution

    assert fid_caution(129, 5000, 128) is None
    assert fid_caution(10_000, 128, 128).startswith("FID from 128 reference images in 128-dimensional features")
    assert "FID from 40 generated and 100 reference images" in fid_caution(40, 100, 128)
    g = np.random.default_rng(0)
    a, b = (g.integers(0, 256, (40, 28, 28), dtype=np.uint8) for _ in range(2))
    with caplog.at_level(logging.WARNING, logger="ganforge.eval"):
        r = evaluate(a, metrics="fid,kid", ref=b, evaluator="mnist-clf", cache=False)
    assert r.protocol["cautions"] == [fid_caution(40, 40, 128)] and "covariance is singular" in caplog.text
    assert "cautions" not in evaluate(a, metrics="kid", ref=b, evaluator="mnist-clf", cache=False).protocol


def test_compare_gives_each_warning_about_its_shared_inputs_once(tmp_path, caplog):
    import logging

    from ganforge.metrics.comparison import compare

    g = np.random.default_rng(0)
    for name in ("a", "b", "ref"):
        np.savez(tmp_path / f"{name}.npz", images=g.integers(0, 256, (40, 28, 28), dtype=np.uint8))
    with caplog.at_level(logging.WARNING, logger="ganforge.eval"):
        compare([str(tmp_path / "a.npz"), str(tmp_path / "b.npz")], metrics="fid", ref=str(tmp_path / "ref.npz"),
                evaluator="mnist-clf", seeds=[0, 1], cache=False)
    assert caplog.text.count("covariance is singular") == 1  # 2 targets x 2 seeds, one warning
    assert not logging.getLogger("ganforge.eval").filters  # the filter goes with the call
