"""ganforge compare / metrics.comparison.compare: several targets under one protocol, checked against
evaluate() target by target, the statistics by hand, and the refusals of unlike protocols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.errors import UsageError
from ganforge.metrics import evaluate
from ganforge.metrics.comparison import compare


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def gens(tmp_path):
    """Two saved 28 px grey DCGANs of different random weights, and digit .npz files of 100 and 120."""
    from ganforge.data import load_images
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8)
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_generator(tmp_path / f"g{seed}", cfg, build_generator(cfg))
    digits = load_images("mnist5k", resolution=28, channels=1).images[:220, 0].numpy()  # (220, 28, 28)
    np.savez(tmp_path / "a.npz", images=digits[:100])
    np.savez(tmp_path / "b.npz", images=digits[100:220])
    np.savez(tmp_path / "rgb.npz", images=np.zeros((100, 28, 28, 3), np.uint8))
    return tmp_path


def _run(root, evaluator, data="a.npz"):
    """A dcgan-mnist run folder (config.json + model/) trained on ``data``, with eval.evaluator=``evaluator``."""
    from dataclasses import replace

    from ganforge.config import dumps
    from ganforge.models import build_generator
    from ganforge.presets import get_preset
    from ganforge.training.checkpoint import save_generator

    cfg = get_preset("dcgan-mnist")
    cfg = replace(cfg, data=replace(cfg.data, source=str(root / data)), eval=replace(cfg.eval, evaluator=evaluator),
                  model=replace(cfg.model, z_dim=16, g_width=8))
    run = root / f"run-{evaluator}-{Path(data).stem}"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"run": json.loads(dumps(cfg))}))
    save_generator(run / "model", cfg.model, build_generator(cfg.model))
    return run


def test_compare_is_evaluate_per_target_and_seed(gens):
    targets = [str(gens / "g0"), str(gens / "g1")]
    c = compare(targets, metrics="fid,pr", n=60, n_ref=300, seeds=[0, 5])
    assert c.keys == ["fid", "precision", "recall"] and c.seeds == [0, 5]
    for t in targets:
        for i, seed in enumerate((0, 5)):
            r = evaluate(t, metrics="fid,pr", n=60, n_ref=300, seed=seed)
            assert c.values[t]["fid"][i] == r.values["fid"] and c.values[t]["recall"][i] == r.values["recall"]
    rows = c.rows()
    a, b = (np.asarray(c.values[t]["fid"]) for t in targets)
    assert rows[0]["fid"]["mean"] == pytest.approx(a.mean()) and "diff_mean" not in rows[0]["fid"]
    assert rows[0]["fid"]["se"] == pytest.approx(a.std(ddof=1) / np.sqrt(2))
    assert rows[1]["fid"]["diff_mean"] == pytest.approx((b - a).mean())
    assert rows[1]["fid"]["diff_se"] == pytest.approx((b - a).std(ddof=1) / np.sqrt(2))
    p = c.protocol
    assert p["extractor"]["name"] == "mnist-clf" and p["n_generated"] == 60 and p["n_real"] == 300
    assert set(p["targets"]) == set(targets) and "subset" in p["reference"]
    one = compare(targets, metrics="fid", n=60, n_ref=300).rows()
    assert one[0]["fid"]["se"] is None and one[1]["fid"]["diff_se"] is None


def test_a_group_is_the_mean_over_its_runs_with_their_spread(gens, capsys):
    """A group's value is the mean of its runs' seed means, its se their spread over the runs, and
    a difference involving a group is unpaired: sqrt(se^2 + se_first^2)."""
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=16, g_width=8)
    for seed in (2, 3):
        torch.manual_seed(seed)
        save_generator(gens / f"g{seed}", cfg, build_generator(cfg))
    a, b = [str(gens / "g0"), str(gens / "g1")], [str(gens / "g2"), str(gens / "g3")]
    c = compare([a, b], metrics="fid", n=60, n_ref=300, seeds=[0, 1])
    rows = c.rows()
    means = {t: np.mean(c.values[t]["fid"]) for t in a + b}
    ga, gb = np.array([means[t] for t in a]), np.array([means[t] for t in b])
    assert rows[0]["target"] == ",".join(a) and rows[0]["runs"] == 2 and rows[0]["fid"]["se_over"] == "runs"
    assert rows[0]["fid"]["mean"] == pytest.approx(ga.mean()) and rows[0]["fid"]["values"] == pytest.approx(ga.tolist())
    se_a, se_b = ga.std(ddof=1) / np.sqrt(2), gb.std(ddof=1) / np.sqrt(2)
    assert rows[0]["fid"]["se"] == pytest.approx(se_a) and rows[1]["fid"]["se"] == pytest.approx(se_b)
    assert rows[1]["fid"]["diff_mean"] == pytest.approx(gb.mean() - ga.mean())
    assert rows[1]["fid"]["diff_se"] == pytest.approx(np.hypot(se_a, se_b))
    assert c.values[a[0]]["fid"] == compare([a[0], b[0]], metrics="fid", n=60, n_ref=300, seeds=[0, 1]).values[a[0]]["fid"]
    # on the command line a comma-separated TARGET is a group, and the table gets a runs column
    code = main(["compare", ",".join(a), b[0], "--metrics", "fid", "--n", "60", "--n-ref", "300", "--seeds", "0,1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0].split() == ["target", "runs", "fid"] and out.splitlines()[1].split()[:2] == [",".join(a), "2"]
    assert "for a group of runs over its runs" in err
    # a run alone and in its group (or in two groups) is scored once and shared
    both = compare([a[0], a, [a[0], b[0]]], metrics="fid", n=60, n_ref=300, seeds=[0, 1])
    assert both.values[a[0]]["fid"] == c.values[a[0]]["fid"] and len(both.values) == 3
    assert both.rows()[1]["fid"]["mean"] == pytest.approx(ga.mean())
    with pytest.raises(UsageError, match="given twice in"):
        compare([a, [a[0], f"{gens}/./g0"]], metrics="fid", n=60)
    with pytest.raises(UsageError, match=r"given twice \(as"):
        compare([a, list(reversed(a))], metrics="fid", n=60)


def test_unlike_protocols_and_bad_targets_are_refused(gens):
    with pytest.raises(UsageError, match="different image counts"):
        compare([gens / "a.npz", gens / "b.npz"], metrics="fid")  # 100 vs 120 images
    assert compare([gens / "a.npz", gens / "b.npz"], metrics="fid", n=100).protocol["n_generated"] == 100
    # a file (evaluator auto) beside a generator takes the generator's evaluator, mnist-clf
    c = compare([gens / "g0", gens / "a.npz"], metrics="fid", n=100)
    assert c.protocol["extractor"]["name"] == "mnist-clf" and c.protocol["reference"]["name"] == "mnist5k"
    with pytest.raises(UsageError, match="3-channel images but mnist-clf expects 1"):
        compare([gens / "g0", gens / "rgb.npz"], metrics="fid", n=100)
    with pytest.raises(UsageError, match="different evaluators .*give one with --evaluator"):
        compare([gens / "g0", _run(gens, "cifar10-clf")], metrics="fid")
    # a generator without its run, or a file, beside a run is compared with the run's training data
    run_a = _run(gens, "mnist-clf")
    c = compare([gens / "g0", run_a, gens / "b.npz"], metrics="fid", n=100)
    assert c.protocol["reference"]["kind"] == "training data" and c.protocol["n_real"] == 100
    with pytest.raises(UsageError, match="different reference images .*give one with --ref"):
        compare([run_a, _run(gens, "mnist-clf", "b.npz")], metrics="fid")  # two runs, two training sets
    with pytest.raises(UsageError, match="at least two different targets or groups"):
        compare([gens / "g0"])
    with pytest.raises(UsageError, match="given twice"):
        compare([gens / "g0", f"{gens}/./g0"])
    with pytest.raises(UsageError, match="no such run folder"):
        compare([gens / "g0", gens / "nope"])
    with pytest.raises(UsageError, match="distinct"):
        compare([gens / "g0", gens / "g1"], seeds=[1, 1])


def test_compare_cli(gens, capsys):
    code = main(["compare", str(gens / "g0"), str(gens / "g1"), "--metrics", "fid", "--n", "60", "--n-ref", "300",
                 "--seeds", "0,1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["target", "fid"] and len(lines) == 3 and "±" in lines[2] and "(" in lines[2]
    assert "protocol: 60 images per target vs 300 real" in err and "seeds 0,1" in err
    code = main(["compare", str(gens / "g0"), str(gens / "g1"), "--metrics", "fid", "--n", "60", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["target"] for r in obj["rows"]] == [str(gens / "g0"), str(gens / "g1")]
    for args, needle in [(["--seeds", "0,x"], "comma-separated list of integers"),
                         (["--metrics", "fidd"], "unknown metric 'fidd'"),
                         (["--inception-weights", str(gens / "a.npz")], "needs --evaluator inception-v3-fid")]:
        code = main(["compare", str(gens / "g0"), str(gens / "g1"), *args])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.strip().count("\n") == 0, err


def test_a_group_must_be_runs_of_one_recipe_with_different_seeds(tmp_path):
    import json

    from ganforge.config import apply_overrides
    from ganforge.configio import to_dict
    from ganforge.presets import get_preset
    from ganforge.metrics.comparison import _check_group

    def run(name, *sets):  # what _check_group reads: the run's config.json and that model/ exists
        cfg = apply_overrides(get_preset("dcgan-mnist"), list(sets))
        (tmp_path / name / "model").mkdir(parents=True)
        (tmp_path / name / "model" / "config.json").write_text("{}")
        (tmp_path / name / "config.json").write_text(json.dumps({"run": to_dict(cfg)}))
        return str(tmp_path / name)

    s0, s1 = run("s0", "train.seed=0"), run("s1", "train.seed=1", "train.threads=2", "perf.channels_last=true")
    _check_group("g", [s0, s1])  # the seed, threads and perf may differ
    same = run("copy", "train.seed=0")
    with pytest.raises(UsageError, match="both trained with train.seed=0"):
        _check_group("g", [s0, same])
    ls = run("ls", "train.seed=2", "loss.kind=lsgan")
    with pytest.raises(UsageError, match=r"is not the recipe of .*s0 in group g: loss.kind='lsgan' \(vs 'ns'\)"):
        _check_group("g", [s0, ls])
    # fake labels draw nothing for an unconditional net (runs saved under another default still group)
    _check_group("g", [s0, run("data", "train.seed=3", "train.fake_labels=data")])
    c0 = run("c0", "train.seed=0", "model.num_classes=10")
    with pytest.raises(UsageError, match=r"train.fake_labels='data' \(vs 'sqrt'\)"):
        _check_group("g", [c0, run("c1", "train.seed=1", "model.num_classes=10", "train.fake_labels=data")])
    np.savez(tmp_path / "x.npz", images=np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(UsageError, match="is not a run folder or saved generator"):
        compare([[s0, str(tmp_path / "x.npz")], s1])
    for bad in ([s0, ""], ["", ""]):
        with pytest.raises(UsageError, match="an empty name in"):
            compare([bad, s1])
