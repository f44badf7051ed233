"""Stacked MNIST: the named data source, the mode reader (mnist-clf channel by channel), the
1000-mode statistics against hand-computed values, and the real stacked data's own score."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.data import NAMED_SOURCES, load_images
from ganforge.data.builtin import STACKED_MNIST_SIZE, stack_digits
from ganforge.errors import UsageError
from ganforge.modes.stacked import (
    N_EVAL_SAMPLES,
    STACKED_METHODS,
    classify_modes,
    expected_kl_of_uniform,
    stacked_config,
    stacked_stats,
)

# ----------------------------------------------------------------------------- data


def test_stack_digits_channels_and_seed():
    digits = np.arange(7 * 28 * 28, dtype=np.int64).reshape(7, 28, 28).astype(np.uint8)
    images, idx = stack_digits(digits, 50, seed=3)
    assert images.shape == (50, 28, 28, 3) and images.dtype == np.uint8 and idx.shape == (50, 3)
    for j in range(3):  # channel j of image i is digit idx[i, j]
        assert np.array_equal(images[..., j], digits[idx[:, j]])
    again, idx2 = stack_digits(digits, 50, seed=3)
    assert np.array_equal(again, images) and not np.array_equal(stack_digits(digits, 50, seed=4)[1], idx)


def test_named_source_stacked_mnist():
    images, labels, names = NAMED_SOURCES["stacked-mnist"].load()
    assert images.shape == (STACKED_MNIST_SIZE, 28, 28, 3) and images.dtype == np.uint8
    assert len(names) == 1000 and labels.min() >= 0 and labels.max() < 1000
    assert len(np.unique(labels)) == 1000  # 25,600 uniform draws hit every one of the 1000 classes
    # the labels are 100·R + 10·G + B of the mnist5k digits in the channels
    digits, digit_labels, _ = NAMED_SOURCES["mnist5k"].load()
    lookup = {digits[i].tobytes(): int(digit_labels[i]) for i in range(len(digits))}
    for i in range(20):
        want = [lookup[images[i, :, :, j].tobytes()] for j in range(3)]
        assert labels[i] == want[0] * 100 + want[1] * 10 + want[2]
    data = load_images("stacked-mnist", resolution=28, channels=3, max_images=64)
    assert tuple(data.images.shape[1:]) in ((3, 28, 28), (28, 28, 3)) and len(data.images) == 64


# ----------------------------------------------------------------------------- metrics


class _IntensityClassifier(nn.Module):
    """A stand-in evaluator: digit = round(mean pixel in [0, 1] · 9). Shapes as mnist-clf."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):  # (N, 1, 28, 28) in [-1, 1] -> one-hot logits (N, 10)
        assert x.shape[1:] == (1, 28, 28)
        d = ((x.mean(dim=(1, 2, 3)) + 1) / 2 * 9).round().long()
        return nn.functional.one_hot(d, 10).float()


def test_classify_modes_reads_each_channel():
    digits = torch.tensor([[3, 0, 9], [7, 7, 1], [0, 0, 0]])  # (N, 3): R, G, B digits
    images = (digits.float() / 9 * 2 - 1)[:, :, None, None].expand(3, 3, 28, 28)  # constant planes
    modes = classify_modes(images, _IntensityClassifier(), batch_size=2)
    assert modes.tolist() == [309, 771, 0]
    with pytest.raises(UsageError):
        classify_modes(torch.zeros(2, 1, 28, 28), _IntensityClassifier())


def test_stacked_stats_hand_computed():
    s = stacked_stats(torch.tensor([5, 5, 5, 17]))  # p = (3/4, 1/4) on 2 of 1000 modes
    assert s.modes == 2
    assert s.kl == pytest.approx(0.75 * math.log(750) + 0.25 * math.log(250), rel=1e-12)
    perfect = stacked_stats(torch.arange(1000).repeat(26))
    assert perfect.modes == 1000 and perfect.kl == pytest.approx(0.0, abs=1e-12)


def test_kl_splits_into_channel_marginals_and_dependence():
    # the uniform target is a product of 3 uniform digit marginals, so KL(p‖u) = Σ_c KL(p_c‖u_10) + KL(p‖Π p_c);
    # checked against a direct numpy computation of both sides on a skewed, correlated histogram
    rng = np.random.default_rng(1)
    r = rng.choice(10, size=5000, p=np.r_[np.full(9, 0.1), 0.1] * np.r_[np.ones(9), 1.0])
    g = np.where(rng.random(5000) < 0.3, r, rng.choice(10, size=5000, p=np.linspace(1, 2, 10) / 15))
    b = rng.choice(10, size=5000)
    modes = torch.from_numpy(r * 100 + g * 10 + b)
    s = stacked_stats(modes)
    p = np.bincount(modes.numpy(), minlength=1000) / 5000
    marg = [np.bincount(d, minlength=10) / 5000 for d in (r, g, b)]
    prod = np.einsum("i,j,k->ijk", *marg).ravel()
    nz = p > 0
    assert s.kl == pytest.approx(float((p[nz] * np.log(p[nz] * 1000)).sum()), rel=1e-10)
    for c in range(3):
        m = marg[c][marg[c] > 0]
        assert s.channel_kl[c] == pytest.approx(float((m * np.log(m * 10)).sum()), rel=1e-10, abs=1e-12)
        assert s.digit_share[c] == pytest.approx(tuple(marg[c]))
    assert s.kl_dependence == pytest.approx(float((p[nz] * np.log(p[nz] / prod[nz])).sum()), rel=1e-9)
    assert s.channel_kl[1] > s.channel_kl[2] and s.kl_dependence > 0.1  # G is skewed and copies R 30 % of the time
    # hand-computed: all samples at mode 111 -> each channel all "1": log 10 each, no dependence left
    one = stacked_stats(torch.full((7,), 111))
    assert one.channel_kl == pytest.approx((math.log(10),) * 3) and one.kl_dependence == pytest.approx(0.0, abs=1e-12)
    assert one.digit_share[0][1] == 1.0 and sum(one.digit_share[2]) == 1.0


def test_expected_kl_floor_matches_simulation():
    # a perfect generator's 26,000 samples still give KL ≈ (K-1)/(2n) = 0.0192, not 0
    rng = np.random.default_rng(0)
    counts = rng.multinomial(N_EVAL_SAMPLES, np.full(1000, 1e-3), size=200)  # (200, 1000)
    kls = [stacked_stats(torch.from_numpy(np.repeat(np.arange(1000), c))).kl for c in counts]
    assert expected_kl_of_uniform(N_EVAL_SAMPLES) == pytest.approx(999 / 52000)
    assert np.mean(kls) == pytest.approx(expected_kl_of_uniform(N_EVAL_SAMPLES), rel=0.03)


def test_real_stacked_data_scores_all_modes():
    """The real stacked digits, read by the shipped mnist-clf, score as the ideal generator.

    mnist-clf was trained on these 5000 digits, so it reads them (almost) perfectly; a stack's
    mode is then exact, 26,000 uniform draws leave a mode empty with probability
    1000·e^(-26) ≈ 5e-9, and KL sits at the sampling floor (K-1)/(2n) = 0.019."""
    from ganforge.evaluators import load_evaluator

    clf = load_evaluator("mnist-clf")
    digits, labels, _ = NAMED_SOURCES["mnist5k"].load()
    x = torch.from_numpy(digits).permute(0, 3, 1, 2).float() / 127.5 - 1  # (5000, 1, 28, 28) in [-1, 1]
    with torch.no_grad():
        pred = torch.cat([clf(c).argmax(1) for c in x.split(1000)])  # (5000,)
    accuracy = float((pred == torch.from_numpy(labels)).double().mean())
    assert accuracy > 0.995
    images, idx = stack_digits(digits[..., 0], N_EVAL_SAMPLES, seed=1)
    modes = pred[torch.from_numpy(idx)] @ torch.tensor([100, 10, 1])  # (26000,) by lookup
    # the lookup is what reading every channel of the stacked image gives
    sub = torch.from_numpy(images[:300]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.equal(classify_modes(sub, clf), modes[:300])
    s = stacked_stats(modes)
    assert s.modes >= 990 and s.modes == 1000
    assert s.kl == pytest.approx(expected_kl_of_uniform(N_EVAL_SAMPLES), abs=0.004)


# ----------------------------------------------------------------------------- config and CLI


def test_stacked_config_from_dcgan_mnist():
    cfg = stacked_config("pacgan", steps=1000, seed=4, overrides=("train.batch_size=32",))
    assert cfg.model.channels == 3 and cfg.model.arch == "dcgan" and cfg.model.pack == 2
    assert cfg.data.source == "stacked-mnist" and cfg.train.total_steps == 1000 and cfg.train.seed == 4
    assert cfg.train.batch_size == 32 and cfg.optim.decay_start_step == 500  # the preset decays over the 2nd half
    assert stacked_config("vanilla").model.pack == 1
    with pytest.raises(UsageError, match="unknown method"):
        stacked_config("veegan")
    assert stacked_config("msgan").loss.msgan_weight == 1.0
    assert stacked_config("unrolled").train.unroll_steps == 5
    assert stacked_config("r1").loss.r1_gamma == 1.0 and stacked_config("r1").loss.msgan_weight == 0.0
    wide = stacked_config("wide").model
    assert (wide.g_width, wide.d_width) == (64, 64) and stacked_config("vanilla").model.g_width == 32
    best = stacked_config("best")
    assert best.loss.msgan_weight == 1.0 and best.loss.r1_gamma == 1.0 and (best.model.g_width, best.model.d_width) == (64, 64)
    assert best.loss.reg_every == 4  # lazy R1
    assert best.loss.fm_weight == 100.0 and best.train.update == "alternating"  # feature matching needs alternating
    # best trains eight times the preset's length by default (decay over the second half, as the preset), the others 8,000
    assert (best.train.total_steps, best.optim.decay_start_step) == (64000, 32000)
    assert stacked_config("best", steps=8000).train.total_steps == 8000
    assert stacked_config("msgan-r1").train.total_steps == 8000 == STACKED_METHODS["vanilla"].steps
    mw, mr = stacked_config("msgan-wide"), stacked_config("msgan-r1")
    assert (mw.loss.msgan_weight, mw.loss.r1_gamma, mw.model.g_width) == (1.0, 0.0, 64)
    assert (mr.loss.msgan_weight, mr.loss.r1_gamma, mr.model.g_width) == (1.0, 1.0, 32)
    with pytest.raises(UsageError, match="model.pack"):
        stacked_config("pacgan", overrides=("train.batch_size=33",))


@pytest.mark.slow
def test_cli_stacked_mnist_end_to_end(capsys, tmp_path):
    from ganforge.cli import main

    args = ["modes", "--benchmark", "stacked-mnist", "--method", "pacgan", "--trials", "1", "--steps", "20",
            "--device", "cpu", "--out", str(tmp_path), "--set", "train.batch_size=32", "--json",
            "--set", "checkpoint.every_steps=10"]  # bookkeeping: not one of the result's settings
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["benchmark"] == "stacked-mnist" and out["hq_mean"] is None and 1 <= out["modes_mean"] <= 1000
    assert out["overrides"] == {"train.batch_size": "32"}  # so modes_table.py never merges other settings in
    assert (tmp_path / "stacked-mnist-pacgan.png").stat().st_size > 0
    (t,) = out["per_trial"]
    assert t["seed"] == 0 and t["modes"] == out["modes_mean"] and t["kl"] == out["kl_mean"]
    assert sum(t["channel_kl"]) + t["kl_dependence"] == pytest.approx(t["kl"])
    assert [sum(ch) for ch in t["digit_percent"]] == pytest.approx([100, 100, 100], abs=0.05)
    assert main(args) == 2  # the run folder exists: never overwritten

    # --rescore: the kept trial scores the same again, with its settings read back from its config.json
    assert main(["modes", "--rescore", str(tmp_path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["method"] == "pacgan" and again["steps"] == 20 and again["overrides"] == {"train.batch_size": "32"}
    assert (again["modes_mean"], again["kl_mean"], again["per_trial"]) == (out["modes_mean"], out["kl_mean"], out["per_trial"])
    # the same latents through the same generator: the grid already there, not a second copy
    assert again["grid"] == out["grid"] == str(tmp_path / "stacked-mnist-pacgan.png")
    assert not (tmp_path / "stacked-mnist-pacgan-2.png").exists()
    assert main(["modes", "--rescore", str(tmp_path), "--set", "loss.r1_gamma=1"]) == 2
    assert main(["modes", "--rescore", str(tmp_path / "runs"), "--json"]) == 2  # not an --out folder
    assert "nor runs/" in capsys.readouterr().err


def test_cli_stacked_steps_default_to_the_methods_own_length(capsys, tmp_path, monkeypatch):
    """Without --steps each method trains the length it was measured at (best 64,000, the rest 8,000);
    --steps still wins. The trial itself is replaced, so only the resolved length is checked."""
    import ganforge.modes.stacked as stacked
    from ganforge.cli import main

    seen = []

    def fake_trial(method, steps, *args, **kwargs):
        seen.append((method, steps))
        raise SystemExit(0)  # stop before any training

    monkeypatch.setattr(stacked, "run_stacked_trial", fake_trial)
    for method, extra, want in [("best", [], 64000), ("msgan-r1", [], 8000), ("best", ["--steps", "300"], 300)]:
        with pytest.raises(SystemExit):
            main(["modes", "--benchmark", "stacked-mnist", "--method", method, "--trials", "1", *extra,
                  "--device", "cpu", "--out", str(tmp_path / f"{method}{len(extra)}")])
        assert seen[-1] == (method, want)
    # 0 is an error, not "the default" (it silently became 8,000 before)
    assert main(["modes", "--benchmark", "stacked-mnist", "--method", "best", "--steps", "0", "--out", str(tmp_path / "z")]) == 2
    assert "--steps must be at least 1, got 0" in capsys.readouterr().err and not (tmp_path / "z").exists()


def test_trial_settings_are_what_differs_from_the_method():
    """A result's `overrides`: keys where the trial's config differs from the method, as the config holds
    the values (so a run and its --rescore agree however the --set was typed), without bookkeeping keys;
    a --set that repeats the method's own value is not a setting."""
    from ganforge.modes.stacked import trial_settings

    typed = ("perf.channels_last=true", "optim.lr_g=1e-3", "loss.r1_gamma=1.0", "checkpoint.every_steps=8000",
             "train.threads=1", "train.log_every=7", "train.batch_size=32")
    cfg = stacked_config("best", 64000, seed=2, overrides=typed)
    # best's own lr_g is the preset's 1e-3 and its r1_gamma is 1.0: neither is a setting
    assert trial_settings(cfg, "best") == {"perf.channels_last": "True", "train.batch_size": "32"}
    assert trial_settings(stacked_config("best", 64000, seed=2), "best") == {}
    # judged against the method as defined now: a trial without R1 is best with loss.r1_gamma=0.0, and one of
    # the best before feature matching joined it is best with loss.fm_weight=0.0
    assert trial_settings(stacked_config("best", 64000, overrides=("loss.r1_gamma=0",)), "best") == {"loss.r1_gamma": "0.0"}
    assert trial_settings(stacked_config("best", 64000, overrides=("loss.fm_weight=0",)), "best") == {"loss.fm_weight": "0.0"}
    assert trial_settings(stacked_config("best", 64000, overrides=("loss.fm_weight=100",)), "best") == {}


def test_sample_grid_never_replaces_another_grid(tmp_path):
    """A second run (or rescore) of a method into the same --out writes its grid beside the first one's;
    the very same grid again is not written twice."""
    from ganforge.modes.stacked import save_grid

    a, b = torch.zeros(64, 3, 28, 28), torch.ones(64, 3, 28, 28)
    first = save_grid(a, tmp_path, "best")
    assert first == tmp_path / "stacked-mnist-best.png"
    before = first.read_bytes()
    assert save_grid(a, tmp_path, "best") == first and len(list(tmp_path.iterdir())) == 1
    assert save_grid(b, tmp_path, "best") == tmp_path / "stacked-mnist-best-2.png"
    assert save_grid(b, tmp_path, "best") == tmp_path / "stacked-mnist-best-2.png"
    assert save_grid(-a - 0.5, tmp_path, "best") == tmp_path / "stacked-mnist-best-3.png"
    assert first.read_bytes() == before


def test_cli_help_names_every_stacked_method():
    from ganforge.cli import cli
    from ganforge.modes.stacked import STACKED_METHODS

    help_text = next(p.help for p in cli.commands["modes"].params if p.name == "method")
    listed = help_text.split("stacked-mnist:")[1].rstrip(". ")
    assert [m.strip() for m in listed.split("|")] == list(STACKED_METHODS)


def test_cli_rescore_stacked_bad_folders(capsys, tmp_path):
    from ganforge.cli import main

    (tmp_path / "runs").mkdir()
    assert main(["modes", "--rescore", str(tmp_path)]) == 2
    assert "no Stacked MNIST trials" in capsys.readouterr().err
    bad = tmp_path / "runs" / "stacked-mnist-msgan-seed0"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    assert main(["modes", "--rescore", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a ganforge run config" in err and "Traceback" not in err
    assert main(["modes", "--rescore", str(tmp_path), "--all"]) == 2


def test_cli_rescore_names_an_unfinished_trial_and_how_to_continue_it(capsys, tmp_path):
    """A trial stopped by a signal (a device command's time limit) keeps a checkpoint and no model:
    --rescore says which trial, where it stopped and the command that continues it."""
    from ganforge.cli import main
    from ganforge.configio import to_dict

    run = tmp_path / "runs" / "stacked-mnist-best-seed1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"run": to_dict(stacked_config("best", 64000, seed=1))}))
    assert main(["modes", "--rescore", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"trial '{run}' has not finished (it has no checkpoint): continue it with: ganforge train --resume {run}" in err
    (run / "checkpoints" / "state-00031000.pt").write_bytes(b"")  # only the name is read
    assert main(["modes", "--rescore", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "its last checkpoint is step 31000 of 64000" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_interrupted_trial_resumed_scores_as_one_run(tmp_path):
    """The workflow for a trial longer than one device command: SIGTERM stops `ganforge modes` with a
    checkpoint (exit 143, the message names both follow-up commands), `ganforge train --resume`
    finishes the same schedule, and `modes --rescore` scores it exactly as an uninterrupted trial."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}

    def ganforge(*args):
        return subprocess.Popen([sys.executable, "-m", "ganforge", *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    tiny = [x for s in ("model.g_width=8", "model.d_width=8", "train.log_every=2", "train.deterministic=true")
            for x in ("--set", s)]
    args = ["modes", "--benchmark", "stacked-mnist", "--method", "vanilla", "--trials", "1", "--seed", "3",
            "--steps", "400", "--device", "cpu", *tiny, "--json"]
    p = ganforge(*args, "--out", str(tmp_path / "cut"))
    metrics = tmp_path / "cut" / "runs" / "stacked-mnist-vanilla-seed3" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "continue with: ganforge train --resume" in err and f"ganforge modes --rescore {tmp_path / 'cut'}" in err
    assert "Traceback" not in err
    p = ganforge("train", "--resume", str(metrics.parent))
    assert p.wait(timeout=600) == 0, p.communicate()
    p = ganforge("modes", "--rescore", str(tmp_path / "cut"), "--json")
    resumed = json.loads(p.communicate(timeout=600)[0])
    p = ganforge(*args, "--out", str(tmp_path / "whole"))
    whole = json.loads(p.communicate(timeout=900)[0])
    assert resumed["steps"] == whole["steps"] == 400 and resumed["trials"] == whole["trials"] == 1
    assert resumed["per_trial"] == whole["per_trial"]
    # the interrupted run never wrote its sample grid; --rescore does, and it is the uninterrupted run's
    assert resumed["grid"] == str(tmp_path / "cut" / "stacked-mnist-vanilla.png")
    assert Path(resumed["grid"]).read_bytes() == Path(whole["grid"]).read_bytes()


@pytest.mark.slow
def test_stacked_long_sittings_on_cpu(tmp_path):
    """benchmarks/stacked_long.py end to end with tiny nets: the first sitting stops the trial and
    packs it, `keep` unpacks it, the second sitting continues it to the end and scores it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = [sys.executable, str(root / "benchmarks" / "stacked_long.py")]
    env = {**__import__("os").environ, "PYTHONPATH": str(root / "src")}
    first = subprocess.run([*script, "run", "--out", str(tmp_path / "out1"), "--runs", str(tmp_path / "runs1"), "--seeds", "2",
                            "--steps", "100000", "--stop-after", "20", "--device", "cpu", "--smoke"],
                           capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    s1 = json.loads((tmp_path / "out1" / "summary.json").read_text())["seeds"]["2"]
    assert s1["finished"] is False and s1["rc"] == 143 and s1["step"] > 0 and (tmp_path / "out1" / "seed2.tar").is_file()
    kept = tmp_path / "kept"
    assert subprocess.run([*script, "keep", str(tmp_path / "out1"), "--into", str(kept)], env=env).returncode == 0
    # the second sitting: the remaining steps of a 100,000-step schedule would take too long here, so the
    # kept trial's length is cut to a few steps past its checkpoint (a resumed run may lengthen or shorten it)
    cfg_file = kept / "seed2" / "runs" / "stacked-mnist-best-seed2" / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["run"]["train"]["total_steps"] = s1["step"] + 5
    cfg_file.write_text(json.dumps(cfg))
    second = subprocess.run([*script, "run", "--out", str(tmp_path / "out2"), "--runs", str(tmp_path / "runs2"), "--seeds", "2",
                             "--from", str(kept), "--stop-after", "500", "--device", "cpu"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert second.returncode == 0, second.stderr
    s2 = json.loads((tmp_path / "out2" / "summary.json").read_text())["seeds"]["2"]
    assert s2["continued"] is True and s2["finished"] is True and s2["rc"] == 0
    assert s2["steps"] == s1["step"] + 5 and 1 <= s2["modes_mean"] <= 1000 and not (tmp_path / "out2" / "seed2.tar").exists()


def test_stacked_curve_confidence_summary_by_hand():
    """stacked_curve --confidence on two images whose softmaxes are written out: channel R sure of a 1
    and a 7, G unsure (½ / ½ between 0 and 1) then sure of a 3, B uniform in both."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "stacked_curve.py"
    spec = importlib.util.spec_from_file_location("stacked_curve", path)
    curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curve)
    probs = torch.zeros(2, 3, 10)
    probs[0, 0, 1] = probs[1, 0, 7] = 1.0
    probs[0, 1, :2] = 0.5
    probs[1, 1, 3] = 1.0
    probs[:, 2] = 0.1
    got = curve.confidence_summary(probs)
    assert got["low_confidence"] == 0.5  # 3 of the 6 digits are under 0.9
    soft_g = 2 * 0.25 * math.log(2.5) + 0.5 * math.log(5)  # mean softmax (¼, ¼, 0, ½, 0, ...)
    assert got["soft_channel_kl"] == [round(math.log(5), 4), round(soft_g, 4), 0.0]
    # confident digits only: R {1, 7} → log 5; G {3} → log 10; B none → nan
    assert got["confident_channel_kl"][:2] == [round(math.log(5), 4), round(math.log(10), 4)]
    assert math.isnan(got["confident_channel_kl"][2])


@pytest.mark.slow
def test_stacked_curve_scores_each_kept_state_like_rescore(capsys, tmp_path):
    """benchmarks/stacked_curve.py scores the EMA G of every kept training state with the trial's own
    protocol: its last state (the final step) scores exactly what `modes --rescore` gives the trial."""
    import importlib.util
    from pathlib import Path

    from ganforge.cli import main

    args = ["modes", "--benchmark", "stacked-mnist", "--method", "vanilla", "--trials", "1", "--seed", "1", "--steps", "20",
            "--device", "cpu", "--out", str(tmp_path), "--json"]
    for s in ("model.g_width=8", "model.d_width=8", "train.batch_size=16", "checkpoint.every_steps=10", "checkpoint.keep_last=5"):
        args += ["--set", s]
    assert main(args) == 0
    trial = json.loads(capsys.readouterr().out)["per_trial"][0]

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "stacked_curve.py"
    spec = importlib.util.spec_from_file_location("stacked_curve", path)
    curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curve)
    run = tmp_path / "runs" / "stacked-mnist-vanilla-seed1"
    assert curve.main([str(run)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["step"] for r in rows] == [10, 20]
    assert (rows[-1]["modes"], rows[-1]["kl"]) == (trial["modes"], round(trial["kl"], 4))
    # --confidence reads the same argmax from its softmax pass: the same modes and KL, plus its own keys
    assert curve.main([str(run), "--confidence"]) == 0
    sure = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["modes"], r["kl"], r["channel_kl"]) for r in sure] == [(r["modes"], r["kl"], r["channel_kl"]) for r in rows]
    assert 0 <= sure[-1]["low_confidence"] <= 1 and len(sure[-1]["soft_channel_kl"]) == 3
    # a state copied aside under another name (as a watcher keeps them) reports the step it holds
    import shutil

    shutil.copy(run / "checkpoints" / "state-00000010.pt", tmp_path / "seed1-10.pt")
    assert curve.main([str(run), str(tmp_path / "seed1-10.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 10

    def usage_error(argv: list[str], message: str) -> None:
        """stacked_curve rejects a user's mistake with one line on stderr and exit status 2"""
        with pytest.raises(SystemExit) as exc:
            curve.main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err

    usage_error([str(tmp_path)], "is not a ganforge run config")
    usage_error([str(run), str(run / "config.json")], "is not a readable training state")
    usage_error([str(run), str(tmp_path / "missing.pt")], "is not a readable training state")
    usage_error([str(run), "--threads", "0"], "--threads 0")
    other = torch.load(tmp_path / "seed1-10.pt", weights_only=True)  # as if from a trial of another width
    first = next(iter(other["ema"]["model"]))
    other["ema"]["model"][first] = torch.zeros(1)
    torch.save(other, tmp_path / "other.pt")
    usage_error([str(run), str(tmp_path / "other.pt")], "is not a state of")
    for f in (run / "checkpoints").glob("state-*.pt"):
        f.unlink()
    usage_error([str(run)], "no state-")


def test_png_keeping_with_no_free_name_is_a_usage_error(tmp_path):
    """When every numbered name is taken by other images, the error is one line naming the path (exit 2
    through the CLI), and nothing there is replaced."""
    from ganforge.io import save_png_keeping

    imgs = [np.full((4, 4, 3), v, np.uint8) for v in (0, 80, 160, 240)]
    for img in imgs[:3]:
        save_png_keeping(img, tmp_path / "g.png", max_names=3)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["g-2.png", "g-3.png", "g.png"]
    with pytest.raises(UsageError, match=r"no free name for .*g\.png.*3 other images"):
        save_png_keeping(imgs[3], tmp_path / "g.png", max_names=3)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert save_png_keeping(imgs[1], tmp_path / "g.png", max_names=3) == tmp_path / "g-2.png"  # same pixels: found
