"""`ganforge eval`, `eval-pair` and `evaluator fit|list`: JSON shapes, one-line errors with exit
code 2, and the cifar10-clf fit function on a tiny subset (the real 85% run needs a GPU)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.errors import UsageError
from ganforge.evaluators import fit_cifar10_clf, load_evaluator

SMALL = ["--kid-subset-size", "50", "--kid-subsets", "5", "--is-splits", "5"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two OpenMP threads on a busy 2-core machine are many times slower
    yield
    torch.set_num_threads(before)


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path):
    """An .npz of 120 digits, an RGB .npz, a folder of mixed sizes, two PNG pairs and a saved generator."""
    from ganforge.data import load_images

    digits = load_images("mnist5k", resolution=28, channels=1).images[:120, 0].numpy()  # (120, 28, 28)
    np.savez(tmp_path / "digits.npz", images=digits)
    np.savez(tmp_path / "rgb.npz", images=np.zeros((20, 28, 28, 3), np.uint8))
    (tmp_path / "mixed").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "mixed" / "b.png")
    Image.fromarray(digits[0]).save(tmp_path / "one.png")
    Image.fromarray(digits[1]).save(tmp_path / "two.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8)
    torch.manual_seed(0)
    save_generator(tmp_path / "run" / "model", cfg, build_generator(cfg))
    (tmp_path / "notweights.pth").write_bytes(b"x" * 100)
    return tmp_path


def test_eval_json_has_every_metric_and_the_protocol(capsys, files):
    code, out, err = run_cli(capsys, "eval", files / "digits.npz", "--metrics", "fid,kid,is,pr,dc,classes",
                             "--n-ref", 300, *SMALL, "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert list(obj) == ["fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density", "coverage",
                         "classes_covered", "class_kl", "protocol"]
    p = obj["protocol"]
    assert p["n_generated"] == 120 and p["n_real"] == 300 and p["reference"]["name"] == "mnist5k"
    assert p["extractor"]["name"] == "mnist-clf" and len(p["extractor"]["weights_sha256"]) == 64
    assert obj["fid"] < 20 and obj["classes_covered"] == 10  # real digits against real digits


def test_eval_a_run_folder_prints_values_and_protocol(capsys, files):
    code, out, err = run_cli(capsys, "eval", files / "run", "--metrics", "fid,is", "--n", 60, "--n-ref", 100, *SMALL)
    assert code == 0, err
    assert out.splitlines()[0].startswith("fid ") and out.splitlines()[1].startswith("is ") and "±" in out
    assert "protocol: 60 generated vs 100 real" in err and "mnist-clf sha256" in err


def _colour_run(root, source, resolution=32, name="run"):
    """A run folder as training leaves it (config.json + model/) for a ``resolution`` px RGB DCGAN on ``source``."""
    from dataclasses import replace

    from ganforge.config import dumps
    from ganforge.models import build_generator
    from ganforge.presets import get_preset
    from ganforge.training.checkpoint import save_generator

    cfg = get_preset("dcgan-cifar10")
    cfg = replace(cfg, data=replace(cfg.data, source=str(source)),
                  model=replace(cfg.model, z_dim=16, g_width=8, resolution=resolution))
    (root / name).mkdir(parents=True)
    (root / name / "config.json").write_text(json.dumps({"run": json.loads(dumps(cfg))}))
    torch.manual_seed(0)
    save_generator(root / name / "model", cfg.model, build_generator(cfg.model))
    return root / name


def test_a_run_is_scored_with_its_own_evaluator_and_training_data(capsys, caplog, tmp_path):
    import logging

    data = _tiny_cifar_folder(tmp_path / "photos", per_class=3)
    run = _colour_run(tmp_path, data)
    with caplog.at_level(logging.INFO, logger="ganforge.eval"):
        code, out, err = run_cli(capsys, "eval", run / "model", "--metrics", "fid", "--n", 40, "--json")
    assert code == 0, err
    p = json.loads(out)["protocol"]
    assert p["extractor"]["name"] == "cifar10-clf" and p["n_real"] == 30 and p["reference"]["source"] == str(data.resolve())
    assert p["reference"]["kind"] == "training data" and p["reference"]["image_shape"] == [3, 32, 32]
    assert "evaluator cifar10-clf: the run's eval.evaluator is auto" in caplog.text and "the run's training data" in caplog.text
    # the run's data moved away: one line naming --ref, unless --ref is given
    data.rename(tmp_path / "moved")
    code, out, err = run_cli(capsys, "eval", run, "--metrics", "fid", "--n", 40)
    assert code == 2 and err.count("\n") == 1 and f"trained on {str(data)!r}, which is not here: give" in err, err
    code, out, err = run_cli(capsys, "eval", run, "--metrics", "fid", "--n", 40, "--ref", tmp_path / "moved", "--json")
    assert code == 0 and json.loads(out)["protocol"]["n_real"] == 30, err
    # 64 px: cifar10-clf reads the images shrunk to 32 px, and a warning says so and names Inception
    run64 = _colour_run(tmp_path, tmp_path / "moved", resolution=64, name="run64")
    with caplog.at_level(logging.INFO, logger="ganforge.eval"):
        code, out, err = run_cli(capsys, "eval", run64, "--metrics", "fid", "--n", 40, "--json")
    p = json.loads(out)["protocol"]
    assert code == 0 and p["extractor"]["name"] == "cifar10-clf" and p["reference"]["image_shape"] == [3, 64, 64], err
    assert "shrunk to 32 px" in caplog.text and "--inception-weights" in caplog.text


def test_eval_pair_json(capsys, files):
    code, out, err = run_cli(capsys, "eval-pair", files / "one.png", files / "one.png", "--metrics", "psnr,ssim", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["psnr"] == "inf" and obj["ssim"] == 1.0 and obj["per_image"]["one"]["ssim"] == 1.0
    assert obj["protocol"]["pairing"] == "two files"
    code, out, _ = run_cli(capsys, "eval-pair", files / "one.png", files / "two.png", "--crop", 2)
    assert code == 0 and out.splitlines()[-1].startswith("mean")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["eval", "{d}/digits.npz", "--metrics", "fid,lpips"], "unknown metric 'lpips'; allowed: fid, kid, is, pr, dc, classes"),
        (["eval", "{d}/mixed", "--metrics", "fid"], "mixed sizes"),
        (["eval", "{d}/rgb.npz", "--metrics", "fid"], "cifar10-clf has no default reference set: give one with --ref"),
        (["eval", "{d}/rgb.npz", "--metrics", "fid", "--ref", "{d}/digits.npz"], "3-channel images but mnist-clf expects 1-channel"),
        (["eval", "{d}/digits.npz", "--metrics", "kid", "--kid-subset-size", "1000"], "subset size 1000 is larger than the 120 images"),
        (["eval", "{d}/digits.npz", "--metrics", "pr", "--pr-k", "200", "--n-ref", "150"], "k=200 needs more than 200 images"),
        (["eval", "{d}/nothing.npz"], "does not exist"),
        (["eval", "{d}/digits.npz", "--evaluator", "inception-v3-fid"], "--inception-weights PATH"),
        (["eval", "{d}/digits.npz", "--evaluator", "inception-v3-fid", "--inception-weights", "{d}/notweights.pth"],
         "sha256"),
        (["eval", "{d}/digits.npz", "--inception-weights", "{d}/notweights.pth"], "only apply to --evaluator inception-v3-fid"),
        (["eval", "{d}/digits.npz", "--evaluator", "cifar10-clf", "--ref", "{d}/digits.npz"],
         "but cifar10-clf expects 3-channel"),
        (["eval-pair", "{d}/one.png", "{d}/small.png"], "PRED and GT differ for one"),
        (["eval-pair", "{d}/one.png", "{d}/gone.png"], "does not exist"),
        (["eval-pair", "{d}/one.png", "{d}/one.png", "--metrics", "fid"], "allowed: psnr, ssim, ms_ssim"),
        (["evaluator", "fit", "resnet50"], "fittable evaluators: mnist-clf, cifar10-clf"),
        (["evaluator", "fit", "cifar10-clf"], "needs --data PATH"),
    ],
)
def test_usage_errors_are_one_line(capsys, files, args, needle):
    code, out, err = run_cli(capsys, *[a.format(d=files) for a in args])
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO ")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_evaluator_list(capsys):
    code, out, _ = run_cli(capsys, "evaluator", "list")
    assert code == 0
    for name in ("mnist-clf", "cifar10-clf", "inception-v3-fid"):
        assert name in out
    assert "86.0% test acc" in out


# ---------------------------------------------------------------------------------------------
# cifar10-clf: shipped weights (86.0% on the CIFAR-10 test set); the fit function runs (tiny here)


def test_the_default_reference_is_the_training_data_as_the_run_loaded_it(capsys, tmp_path):
    """A folder of photos of mixed sizes trains a 32 px generator (each photo centre-cropped and
    resized); `ganforge eval RUN` compares against those 32 px images, the pixels training saw,
    while the same folder given as --ref is refused as a set of mixed sizes."""
    from ganforge.data import load_images

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 52), (64, 48), (33, 33)] * 4):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    run = _colour_run(tmp_path, photos)
    code, out, err = run_cli(capsys, "eval", run, "--metrics", "fid", "--n", 20, "--json")
    assert code == 0, err
    ref = json.loads(out)["protocol"]["reference"]
    from ganforge.data.image_data import pixels_sha256

    assert ref["pixels_sha256"] == pixels_sha256(load_images(str(photos), resolution=32, channels=3).images)
    assert ref["image_shape"] == [3, 32, 32] and ref["n"] == 12 and "centre-cropped and resized" in ref["loaded_as"]
    code, out, err = run_cli(capsys, "eval", run, "--metrics", "fid", "--n", 20, "--ref", photos)
    assert code == 2 and "mixed sizes" in err and err.strip().count("\n") == 0, err


def test_the_library_has_the_cli_defaults(capsys, tmp_path):
    """evaluate(RUN) without evaluator or ref is `ganforge eval RUN`: the run's evaluator and its
    training data as loaded, the same value; an RGB .npz gets cifar10-clf (it was mnist-clf, which
    refused 3 channels); the default metrics add labels only for a conditional run."""
    from ganforge.metrics import evaluate
    from ganforge.metrics.run_defaults import ALL_METRICS, default_metrics

    data = _tiny_cifar_folder(tmp_path / "photos", per_class=3)
    run = _colour_run(tmp_path, data)
    r = evaluate(run, metrics="fid", n=40)
    code, out, err = run_cli(capsys, "eval", run, "--metrics", "fid", "--n", 40, "--json")
    assert code == 0, err
    cli = json.loads(out)
    assert r.values["fid"] == cli["fid"] and r.protocol["extractor"]["name"] == "cifar10-clf"
    assert r.protocol["reference"]["kind"] == "training data"
    assert r.protocol["reference"]["pixels_sha256"] == cli["protocol"]["reference"]["pixels_sha256"]
    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    assert evaluate(images, metrics="fid", ref=images).protocol["extractor"]["name"] == "cifar10-clf"
    data.rename(tmp_path / "moved")
    with pytest.raises(UsageError, match="which is not here: give the reference images with --ref"):
        evaluate(run, metrics="fid", n=40)
    assert default_metrics(run, "cifar10-clf") == ALL_METRICS and default_metrics(images, "mnist-clf") == ALL_METRICS


def test_files_are_scored_by_the_classifier_for_their_channels(capsys, caplog, tmp_path):
    """Not a run: without --evaluator, grey images go to mnist-clf and RGB ones to cifar10-clf, read
    from --ref (else TARGET); a size the classifier resizes is warned about."""
    import logging

    g = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", images=g.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8))
    np.savez(tmp_path / "b.npz", images=g.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8))
    np.savez(tmp_path / "g.npz", images=g.integers(0, 256, (40, 28, 28), dtype=np.uint8))
    for target, ref, want, warns in [("a", "a", "cifar10-clf", False), ("b", "b", "cifar10-clf", True),
                                     ("g", "g", "mnist-clf", False), ("g", None, "mnist-clf", False)]:
        caplog.clear()
        args = ["eval", tmp_path / f"{target}.npz", "--metrics", "fid", "--json", "--no-cache"]
        args += ["--ref", tmp_path / f"{ref}.npz"] if ref else []
        with caplog.at_level(logging.INFO, logger="ganforge.eval"):
            code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        assert json.loads(out)["protocol"]["extractor"]["name"] == want
        assert f"evaluator {want}, for the" in caplog.text and ("shrunk to 32 px" in caplog.text) == warns


def test_non_square_and_unequal_sizes_are_warned_about(caplog):
    """Extractors read a square: a 48 x 64 set changes its aspect ratio, and sets of two sizes are
    compared after resizing; each is one warning. Equal square sets give none."""
    import logging

    from ganforge.metrics import evaluate

    g = np.random.default_rng(0)
    wide = g.integers(0, 256, (40, 48, 64, 3), dtype=np.uint8)
    square = g.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger="ganforge.eval"):
        evaluate(wide, metrics="kid", ref=square, evaluator="cifar10-clf", cache=False)  # kid: no small-set FID caution
    assert "the target's 48 x 64 images are resized to cifar10-clf's 32 x 32 square" in caplog.text
    assert "the target's images are 48 x 64 and the reference's 32 x 32" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.eval"):
        evaluate(square, metrics="kid", ref=square[::-1].copy(), evaluator="cifar10-clf", cache=False)
    assert caplog.text == ""


def _tiny_cifar_folder(root, per_class: int = 12):
    """10 class folders of 32x32 RGB images whose colour depends on the class (learnable in 1 epoch)."""
    rng = np.random.default_rng(0)
    for c in range(10):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (32, 32, 3)) + np.array([c * 19, 255 - c * 19, (c * 97) % 190])
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


def test_cifar10_clf_ships_with_its_recorded_accuracy():
    clf = load_evaluator("cifar10-clf")
    assert clf.meta["test_accuracy"] >= 0.85 and clf.meta["test_images"] == 10000 and clf.meta["train_images"] == 20000
    assert clf.meta["class_names"] == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_shipped_cifar10_clf_accuracy_on_real_test_images(shared_data):
    from ganforge.data import load_images
    from ganforge.evaluators.common import accuracy

    test = load_images(os.path.join(shared_data, "cifar10-test10k.zip"), resolution=32, channels=3, max_images=1000)
    clf = load_evaluator("cifar10-clf")
    # 1000 class-balanced test images: the full 10k set scores 0.8597 (the sidecar's number)
    assert accuracy(clf, test.images, test.labels) == pytest.approx(0.86, abs=0.03)


def test_fit_cifar10_clf_cli_then_evaluate_with_it(capsys, tmp_path):
    data = _tiny_cifar_folder(tmp_path / "tiny")
    code, out, err = run_cli(capsys, "evaluator", "fit", "cifar10-clf", "--data", data, "--test-data", data, "--epochs", 1,
                             "--out", tmp_path / "tiny-clf.safetensors")
    assert code == 0, err
    clf = load_evaluator("cifar10-clf", weights_file=tmp_path / "tiny-clf.safetensors")
    assert clf.meta["epochs"] == 1 and clf.meta["train_images"] == 120 and clf.meta["test_images"] == 120
    assert clf.meta["class_names"] == [f"class{c}" for c in range(10)]
    np.savez(tmp_path / "fake.npz", images=np.full((40, 32, 32, 3), 90, np.uint8))
    code, out, err = run_cli(capsys, "eval", tmp_path / "fake.npz", "--evaluator", "cifar10-clf", "--ref", data,
                             "--evaluator-weights", tmp_path / "tiny-clf.safetensors", "--metrics", "fid,classes", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["protocol"]["extractor"]["weights_sha256"] == clf.meta["sha256"] and obj["fid"] > 0


def test_fit_cifar10_clf_on_a_real_subset(shared_data, tmp_path):
    out = tmp_path / "c.safetensors"
    meta = fit_cifar10_clf(out, data=os.path.join(shared_data, "cifar10-train20k.zip"), epochs=1, max_images=300,
                           batch_size=64, log=None)
    assert meta["train_images"] == 300 and meta["architecture"] == "cifar-resnet14-w32-v1"
    assert meta["class_names"][0] == "airplane" and meta["class_names"][-1] == "truck"
    clf = load_evaluator("cifar10-clf", weights_file=out)
    with torch.no_grad():
        feats = clf.features(torch.zeros(2, 3, 32, 32))
    assert feats.shape == (2, 128) and sum(p.numel() for p in clf.parameters()) < 1_000_000
    again = fit_cifar10_clf(tmp_path / "d.safetensors", data=os.path.join(shared_data, "cifar10-train20k.zip"),
                            epochs=1, max_images=300, batch_size=64, log=None)
    assert again["sha256"] == meta["sha256"]  # seeded: the same run gives the same bytes
