"""Label agreement (`ganforge eval --metrics labels`, and in the periodic evaluation of conditional
runs): the share of a conditional generator's images that the evaluator reads as the asked class."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.apps.augment import label_agreement
from ganforge.cli import main
from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.metrics.evaluation import check_class_map, evaluate
from ganforge.training import train
from ganforge.training.logger import read_metrics


class DigitLookup(nn.Module):
    """A 'conditional generator' that returns real MNIST digits of the asked class (shifted by
    ``shift`` classes), so its label agreement is known from mnist-clf's own accuracy."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shift: int = 0):
        super().__init__()
        self.z_dim, self.num_classes, self.shift = 4, 10, shift
        self.by_class = [images[labels == k] for k in range(10)]  # uint8 (n_k, 1, 28, 28)
        self.anchor = nn.Parameter(torch.zeros(()))  # generate() reads the device from a parameter

    def forward(self, z, y):
        # row i: the j-th digit of class (y_i + shift) % 10, j from z's first entry, so draws vary
        picks = [self.by_class[(int(k) + self.shift) % 10][int(abs(v) * 1000) % 50] for k, v in zip(y, z[:, 0])]
        return torch.stack(picks).float() / 127.5 - 1  # (N, 1, 28, 28) in [-1, 1]


@pytest.fixture(scope="module")
def mnist():
    data = load_images("mnist5k", resolution=28, channels=1)
    return data.images.cpu(), data.labels.cpu()


@pytest.mark.parametrize("shift", [0, 3])
def test_evaluate_labels_equals_mnist_clf_accuracy_on_the_same_images(mnist, shift):
    G = DigitLookup(*mnist, shift=shift)
    r = evaluate(G, metrics="labels", evaluator="mnist-clf", n=400, seed=0)
    # the reference: the same 400 images and asked labels, scored by apps.augment's own path
    from ganforge.sampling import generate

    images, labels = generate(G, 400, seed=0)
    ref = label_agreement(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels).long())
    assert r.values["label_agreement"] == pytest.approx(ref, abs=1e-9)
    assert (ref > 0.97) if shift == 0 else (ref < 0.03)
    assert r.protocol["options"]["label_class_map"].startswith("by index")
    # mnist5k, the default reference, is labelled and balanced (500 a class): its mix draws cycling's labels
    assert r.protocol["target"]["labels"] == "reference class frequencies"
    assert r.protocol["target"]["class_counts"] == [40] * 10 and r.protocol["target"]["reference_class_counts"] == [500] * 10


def test_class_map_rules():
    assert check_class_map(10, None, "mnist-clf", 10).startswith("by index")
    assert check_class_map(10, [str(i) for i in range(10)], "mnist-clf", 10) == "same class names"
    with pytest.raises(UsageError, match="has 5 classes but mnist-clf reads 10"):
        check_class_map(5, None, "mnist-clf", 10)
    names = ["cat", "dog", "owl", "ant", "bee", "cow", "eel", "fox", "gnu", "hen"]
    with pytest.raises(UsageError, match="are not cifar10-clf's"):
        check_class_map(10, names, "cifar10-clf", 10)
    with pytest.raises(UsageError, match="reads 1008"):
        check_class_map(10, None, "inception-v3-fid", 1008)


def test_cli_adds_labels_for_a_conditional_run_and_refuses_image_files(tmp_path, capsys, mnist):
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    for name, k in (("cgan", 10), ("gan", 0)):
        cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=8, g_width=8, num_classes=k)
        torch.manual_seed(0)
        save_generator(tmp_path / name, cfg, build_generator(cfg))
    meta = json.loads((tmp_path / "cgan" / "config.json").read_text())
    (tmp_path / "cgan" / "config.json").write_text(json.dumps({**meta, "class_names": [str(i) for i in range(10)]}))
    args = ["--n", "200", "--kid-subset-size", "100", "--json", "--no-cache"]
    assert main(["eval", str(tmp_path / "cgan"), *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["label_agreement"] <= 1 and out["protocol"]["options"]["label_class_map"] == "same class names"
    assert main(["eval", str(tmp_path / "gan"), *args]) == 0
    assert "label_agreement" not in json.loads(capsys.readouterr().out)
    np.savez(tmp_path / "x.npz", images=mnist[0][:50, 0].numpy())
    assert main(["eval", str(tmp_path / "x.npz"), "--metrics", "labels"]) == 2
    err = capsys.readouterr().err
    assert "needs a class-conditional generator" in err and len(err.strip().splitlines()) == 1


def test_a_labelled_npz_is_scored_on_its_own_labels_and_subsets_keep_the_pairs(tmp_path, capsys, mnist):
    images, labels = mnist[0][:300, 0].numpy(), mnist[1][:300].numpy()
    np.savez(tmp_path / "real.npz", images=images, labels=labels)
    np.savez(tmp_path / "wrong.npz", images=images, labels=(labels + 1) % 10)
    np.savez(tmp_path / "big.npz", images=images, labels=labels + 10)
    x = torch.from_numpy(images)[:, None]
    want = label_agreement(x, torch.from_numpy(labels).long())
    r = evaluate(str(tmp_path / "real.npz"), metrics="labels", evaluator="mnist-clf")
    assert r.values["label_agreement"] == pytest.approx(want, abs=1e-9) and want > 0.97
    sub = evaluate(str(tmp_path / "real.npz"), metrics="labels", evaluator="mnist-clf", n=100, seed=4)
    idx = np.sort(np.random.RandomState(4).choice(300, 100, replace=False))  # imagesets.subset's draw
    assert sub.values["label_agreement"] == pytest.approx(label_agreement(x[idx], torch.from_numpy(labels[idx]).long()))
    assert evaluate(str(tmp_path / "wrong.npz"), metrics="labels", evaluator="mnist-clf").values["label_agreement"] < 0.03
    assert main(["eval", str(tmp_path / "big.npz"), "--metrics", "labels"]) == 2
    assert "labels go up to" in capsys.readouterr().err


def test_periodic_eval_of_a_conditional_run_logs_label_agreement(tmp_path):
    data = load_images("mnist5k", resolution=28, channels=1, max_images=500)
    sets = ["model.arch=dcgan", "model.resolution=28", "model.channels=1", "model.z_dim=8", "model.g_width=8",
            "model.d_width=8", "model.num_classes=10", "train.total_steps=2", "train.batch_size=10", "train.progress=false",
            "train.sample_every=0", "checkpoint.every_steps=0", "train.sample_grid=10", "train.threads=1",
            "eval.every=2", "eval.n=100", "eval.metrics=fid"]
    run = train(apply_overrides(RunConfig(), sets), data=data, out=tmp_path / "r")
    rows = [r for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"]
    assert len(rows) == 1 and 0 <= rows[0]["label_agreement"] <= 1


def test_best_is_kept_by_label_agreement_when_asked(tmp_path):
    """eval.best_metric=label_agreement: best/ follows the share of asked-for digits (higher is
    better); it is refused for an unconditional run, and for classes the evaluator does not read."""
    data = load_images("mnist5k", resolution=28, channels=1, max_images=500)
    sets = ["model.arch=dcgan", "model.resolution=28", "model.channels=1", "model.z_dim=8", "model.g_width=8",
            "model.d_width=8", "model.num_classes=10", "train.total_steps=2", "train.batch_size=10", "train.progress=false",
            "train.sample_every=0", "checkpoint.every_steps=0", "train.sample_grid=10", "train.threads=1",
            "eval.every=1", "eval.n=100", "eval.metrics=fid", "eval.best_metric=label_agreement"]
    run = train(apply_overrides(RunConfig(), sets), data=data, out=tmp_path / "r")
    rows = [r for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"]
    score = json.loads((run / "best" / "score.json").read_text())
    top = max(rows, key=lambda r: (r["label_agreement"], -r["step"]))  # the first of the highest
    assert score["metric"] == "label_agreement" and score["value"] == top["label_agreement"] and score["step"] == top["step"]
    # best/ names the classes as model/ does, so it is scored by the same class map (not "by index")
    names = json.loads((run / "model" / "config.json").read_text())["class_names"]
    assert names and json.loads((run / "best" / "config.json").read_text())["class_names"] == names
    # and keeps the training images per class, as model/ does (`ganforge sample best/ --top-up N`)
    counts = torch.bincount(data.labels, minlength=10).tolist()
    assert [json.loads((run / d / "config.json").read_text())["class_counts"] for d in ("model", "best")] == [counts] * 2
    # compare: a best/ written before it named its classes (matched by index) is still scored alike
    from ganforge.metrics import compare

    meta = json.loads((run / "best" / "config.json").read_text())
    (run / "best" / "config.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "class_names"}))
    c = compare([run, run / "best"], metrics="fid,labels", n=100)
    assert [c.protocol["targets"][str(t)]["label_class_map"][:7] for t in (run, run / "best")] == ["same cl", "by inde"]
    with pytest.raises(UsageError, match="for class-conditional runs"):
        apply_overrides(RunConfig(), [s for s in sets if s != "model.num_classes=10"])
    three = apply_overrides(RunConfig(), [s.replace("num_classes=10", "num_classes=3") for s in sets])
    few = replace(data, labels=data.labels % 3, class_names=["a", "b", "c"])
    with pytest.raises(UsageError, match="needs an evaluator that reads this run's classes"):
        train(three, data=few, out=tmp_path / "r3")
