"""A conditional GAN draws its fake labels in the square roots of the training labels' class
frequencies (train.fake_labels=sqrt, the default), in the frequencies (data) or uniformly (uniform):
training.loop.label_sampler. A
balanced set keeps the uniform randint stream either way."""

import json

import torch

from ganforge.data import ImageData, load_images
from ganforge.training import train
from ganforge.training.loop import label_sampler
from test_train import tiny_cfg


def test_a_balanced_set_draws_the_uniform_stream_of_before():
    torch.manual_seed(3)
    want = [torch.randint(10, (64,)) for _ in range(3)]
    torch.manual_seed(3)
    draw = label_sampler(10, 64, torch.device("cpu"), torch.full((10,), 500))
    assert all(torch.equal(draw(), w) for w in want)
    assert label_sampler(0, 64, torch.device("cpu"))() is None


def test_an_imbalanced_set_draws_its_class_frequencies_and_never_a_missing_class():
    torch.manual_seed(0)
    counts = torch.tensor([900, 0, 60, 40])
    draw = label_sampler(4, 100_000, torch.device("cpu"), counts)
    freq = torch.bincount(draw(), minlength=4).double() / 100_000
    assert torch.allclose(freq, counts.double() / 1000, atol=0.004) and freq[1] == 0
    # train.fake_labels=sqrt passes the counts' square roots: 30, 0, 7.75, 6.32 of 44.07
    torch.manual_seed(0)
    freq = torch.bincount(label_sampler(4, 100_000, torch.device("cpu"), counts.double().sqrt())(), minlength=4) / 1e5
    assert torch.allclose(freq.double(), counts.double().sqrt() / counts.double().sqrt().sum(), atol=0.004)


def test_a_conditional_run_records_how_it_drew_its_fake_labels(tmp_path, caplog):
    digits = load_images("digits", resolution=8, channels=1)  # 174 to 183 a class: not balanced
    keep = torch.cat([torch.nonzero(digits.labels == k).flatten()[: (150 if k == 0 else 15)] for k in range(10)])
    imbalanced = ImageData(digits.images[keep], digits.labels[keep], digits.class_names, "digits, 0 dominant")
    balanced = ImageData(digits.images[: 1700], digits.labels[: 1700], digits.class_names, "digits")
    per = torch.bincount(balanced.labels, minlength=10)
    keep = torch.cat([torch.nonzero(balanced.labels == k).flatten()[: int(per.min())] for k in range(10)])
    balanced = ImageData(balanced.images[keep], balanced.labels[keep], balanced.class_names, "digits, balanced")
    for name, data, how, want in (("imb", imbalanced, "data", "the training labels' class frequencies [150, 15, 15"),
                                  ("sqrt", imbalanced, None, "the training labels' class frequencies [150, 15, 15"),
                                  ("bal", balanced, "data", "uniform (balanced classes)"),
                                  ("uni", imbalanced, "uniform", "uniform")):  # as BigGAN / StudioGAN draw them
        cfg = tiny_cfg(2, **{"model.num_classes": 10, "train.batch_size": 32,
                             **({"train.fake_labels": how} if how else {})})
        caplog.clear()
        run = train(cfg, out=tmp_path / name, data=data)
        # a long tail (the rarest class under a tenth of the commonest) is warned about, naming both choices
        assert ("the classes hold 15 to 150 images" in caplog.text) == (data is imbalanced)
        resolved = json.loads((run / "config.json").read_text())["resolved"]
        assert resolved["fake_labels"].startswith(want) and (how != "uniform" or resolved["fake_labels"] == "uniform")
        assert resolved["fake_labels"].endswith("square-rooted") == (name == "sqrt")
        # the generator keeps the training images per class, for `ganforge sample --top-up`
        counts = json.loads((run / "model" / "config.json").read_text())["class_counts"]
        assert counts == torch.bincount(data.labels, minlength=10).tolist()


def test_a_run_saved_before_the_key_existed_resumes_with_uniform_labels(tmp_path):
    # fake labels were uniform before train.fake_labels existed; its default is sqrt now, so a run
    # saved without the key must still read (and resume) as uniform, not change its draws half way
    from ganforge.config import dumps, read_run_config

    cfg = tiny_cfg(2, **{"model.num_classes": 10})
    assert cfg.train.fake_labels == "sqrt"
    run = json.loads(dumps(cfg))
    del run["train"]["fake_labels"]
    (tmp_path / "config.json").write_text(json.dumps({"run": run}))
    assert read_run_config(tmp_path / "config.json").train.fake_labels == "uniform"
    run["train"]["fake_labels"] = "data"
    (tmp_path / "config.json").write_text(json.dumps({"run": run}))
    assert read_run_config(tmp_path / "config.json").train.fake_labels == "data"
