"""eval.every: metrics during training, the best/ snapshot, collapse warnings, and no effect on the run."""

import json

import pytest
import torch
from safetensors.torch import load_file

from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.metrics.evaluation import evaluate
from ganforge.training import train
from ganforge.training.logger import read_metrics
from ganforge.training.periodic_eval import PeriodicEval, auto_evaluator, auto_evaluator_note


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mnist():
    return load_images("mnist5k", resolution=28, channels=1, max_images=600)


def cfg28(steps, *extra):
    sets = ["data.source=mnist5k", "model.arch=dcgan", "model.resolution=28", "model.channels=1", "model.z_dim=16",
            "model.g_width=8", "model.d_width=8", f"train.total_steps={steps}", "train.batch_size=32",
            "train.progress=false", "train.log_every=5", "train.sample_every=0", "checkpoint.every_steps=0",
            "train.ema_decay=0.9", "train.sample_grid=4", "train.seed=3"]
    return apply_overrides(RunConfig(preset="test-eval"), sets + list(extra))


def test_eval_rows_best_snapshot_and_unchanged_trajectory(tmp_path, mnist, caplog):
    import logging

    plain = train(cfg28(12), data=mnist, out=tmp_path / "plain")
    with caplog.at_level(logging.INFO, logger="ganforge"):
        evald = train(cfg28(12, "eval.every=5", "eval.n=200", "eval.metrics=fid,pr,classes", "eval.best_metric=fid"),
                      data=mnist, out=tmp_path / "evald")
    assert "the reference is the first 200 of the 600 training images" in caplog.text
    # Same seed, same steps: evaluating must not move the training RNG streams or weights.
    a = load_file(plain / "model" / "generator.safetensors")
    b = load_file(evald / "model" / "generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)

    rows = [r for r in read_metrics(evald / "metrics.jsonl") if r.get("event") == "eval"]
    assert [r["step"] for r in rows] == [5, 10, 12]  # every 5 steps and at the end
    for r in rows:
        assert {"fid", "precision", "recall", "classes_covered", "class_kl"} <= set(r)
        assert r["evaluator"] == "mnist-clf" and r["n"] == 200 and r["n_real"] == 200  # the first eval.n of the data
        assert len(r["class_hist"]) == 10 and sum(r["class_hist"]) == 200
    best = json.loads((evald / "best" / "score.json").read_text())
    fids = {r["step"]: r["fid"] for r in rows}
    assert best["metric"] == "fid" and best["value"] == min(fids.values()) and fids[best["step"]] == best["value"]
    assert best["n_real"] == 200
    # best/ is a loadable generator snapshot, and it scores the logged value again
    r = evaluate(evald / "best", metrics="fid", evaluator="mnist-clf", ref=mnist.images[:200], n=200, seed=0)
    assert r.values["fid"] == pytest.approx(best["value"], rel=1e-4)
    assert not (plain / "best").exists()


class _Collapsed(torch.nn.Module):
    """Wraps a generator and returns the first sample for every z: one mode."""

    def __init__(self, G):
        super().__init__()
        self.G, self.z_dim, self.num_classes = G, G.z_dim, 0

    def forward(self, z, y=None):
        return self.G(z[:1], y).expand(len(z), -1, -1, -1)


def test_collapse_warning_when_coverage_falls(tmp_path, mnist, caplog):
    cfg = cfg28(1, "eval.every=1", "eval.n=200", "eval.metrics=pr,classes", "eval.best_metric=recall")
    pe = PeriodicEval(cfg, mnist, torch.device("cpu")).attach(tmp_path)

    class Real(torch.nn.Module):  # "generates" real digits: full coverage
        z_dim, num_classes = 16, 0

        def forward(self, z, y=None):
            idx = torch.arange(len(z)) % len(mnist.images)
            return mnist.images[idx].float() / 127.5 - 1

    real = Real()
    rows = pe(1, real, real, None)
    assert rows[0]["classes_covered"] >= 9 and len(rows) == 1
    rows = pe(2, _Collapsed(real), real, None)
    warned = {r["metric"] for r in rows if r.get("event") == "collapse_warning"}
    assert warned == {"recall", "classes_covered"}
    assert "collapsing" in caplog.text
    assert json.loads((tmp_path / "best" / "score.json").read_text())["step"] == 1  # the collapsed one is not best


def test_eval_config_is_checked():
    with pytest.raises(UsageError, match="eval.metrics"):
        cfg28(1, "eval.metrics=fid,bogus")
    with pytest.raises(UsageError, match="best_metric"):
        cfg28(1, "eval.every=5", "eval.metrics=fid", "eval.best_metric=recall")
    with pytest.raises(UsageError, match="eval.n"):
        cfg28(1, "eval.n=3")
    assert auto_evaluator(28, 1) == "mnist-clf" and auto_evaluator(32, 3) == "cifar10-clf"
    assert auto_evaluator(64, 3) == "cifar10-clf" and auto_evaluator(16, 1) == "mnist-clf"
    assert auto_evaluator_note(28, 1) is None and auto_evaluator_note(32, 3) is None
    assert "64 px images shrunk to 32 px" in auto_evaluator_note(64, 3)


def test_auto_evaluator_reads_other_sizes_resized_with_a_warning(tmp_path, caplog):
    data = load_images("digits", resolution=16, channels=1)
    cfg = apply_overrides(RunConfig(preset="t"), [
        "data.source=digits", "model.arch=mlp", "model.resolution=16", "model.channels=1", "model.z_dim=8",
        "model.g_width=16", "model.d_width=16", "train.total_steps=2", "train.batch_size=16", "train.progress=false",
        "train.sample_every=0", "checkpoint.every_steps=0", "train.sample_grid=4", "eval.every=1"])
    run = train(cfg, data=data, out=tmp_path / "run")
    assert "mnist-clf reads these 16 px images enlarged to 28 px" in caplog.text and (run / "best").exists()
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"] == [1, 2]
    explicit = apply_overrides(cfg, ["eval.evaluator=cifar10-clf"])  # named explicitly: it must fit the data
    with pytest.raises(UsageError, match="cifar10-clf"):
        train(explicit, data=data, out=tmp_path / "run2")


def test_a_warning_about_the_inputs_is_given_once_not_at_every_evaluation(tmp_path, caplog):
    import logging

    import numpy as np

    ref = tmp_path / "ref28.npz"  # another size than the run's 16 px: evaluate warns that both are resized
    np.savez(ref, images=load_images("digits", resolution=28, channels=1).images[:64, 0].numpy())
    data = load_images("digits", resolution=16, channels=1)
    cfg = apply_overrides(RunConfig(preset="t"), [
        "data.source=digits", "model.arch=mlp", "model.resolution=16", "model.channels=1", "model.z_dim=8",
        "model.g_width=16", "model.d_width=16", "train.total_steps=3", "train.batch_size=16", "train.progress=false",
        "train.sample_every=0", "checkpoint.every_steps=0", "train.sample_grid=4", "eval.every=1", "eval.n=64",
        "eval.metrics=fid", "eval.best_metric=fid", f"eval.ref={ref}"])
    with caplog.at_level(logging.INFO, logger="ganforge"):
        run = train(cfg, data=data, out=tmp_path / "run")
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"] == [1, 2, 3]
    assert caplog.text.count("the target's images are 16 x 16 and the reference's 28 x 28") == 1
    assert not logging.getLogger("ganforge.eval").filters  # the filter is the periodic evaluation's only


def test_eval_n_ref_sets_the_reference_size_apart_from_eval_n(tmp_path, mnist, caplog):
    import logging

    import numpy as np

    with caplog.at_level(logging.INFO, logger="ganforge"):
        run = train(cfg28(4, "eval.every=4", "eval.n=100", "eval.n_ref=600", "eval.metrics=fid"),
                    data=mnist, out=tmp_path / "all")
    assert "the reference is the first" not in caplog.text  # all 600 training images, as `ganforge eval RUN` uses
    rows = [r for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"]
    assert [(r["n"], r["n_real"]) for r in rows] == [(100, 600)]
    assert json.loads((run / "best" / "score.json").read_text())["n_real"] == 600

    ref = tmp_path / "ref.npz"
    np.savez(ref, images=mnist.images[:50, 0].numpy())
    with pytest.raises(UsageError, match="100 images requested but it holds only 50"):  # before any step
        train(cfg28(4, "eval.every=4", "eval.n=100", "eval.n_ref=100", f"eval.ref={ref}"), data=mnist, out=tmp_path / "x")
    assert not (tmp_path / "x" / "model").exists()
    run = train(cfg28(4, "eval.every=4", "eval.n=100", "eval.n_ref=40", f"eval.ref={ref}", "eval.metrics=fid"),
                data=mnist, out=tmp_path / "sub")
    assert [r["n_real"] for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"] == [40]
    with pytest.raises(UsageError, match=r"eval.n_ref=5 must be 0 \(the default reference size\) or >= 10"):
        train(cfg28(4, "eval.every=4", "eval.n_ref=5"), data=mnist, out=tmp_path / "y")


def test_a_bad_eval_ref_fails_before_the_run_folder_exists(tmp_path, mnist):
    import numpy as np

    rgb = tmp_path / "rgb.npz"
    np.savez(rgb, images=np.zeros((20, 28, 28, 3), np.uint8))
    for ref, needle in [(tmp_path / "nope.npz", "does not exist"), (rgb, "eval.ref=")]:
        with pytest.raises(UsageError, match=needle):
            train(cfg28(4, "eval.every=4", f"eval.ref={ref}"), data=mnist, out=tmp_path / "run")
        assert not (tmp_path / "run").exists()
