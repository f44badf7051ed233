"""`ganforge modes` input checks: a --set never overrides what --steps / --seed / --device / --threads
report, every 2D setting is range-checked before training, and an interrupted multi-trial Stacked
MNIST run names the command that runs its unstarted trials. Nothing here trains: the trainers are
replaced by fakes that fail (or stand in for a trial)."""

import dataclasses
import shlex
import signal

import pytest
import torch

import ganforge.modes.bench as bench
import ganforge.modes.stacked as stacked
from ganforge.cli import main
from ganforge.errors import UsageError
from ganforge.modes.methods import METHODS, toy_overrides
from ganforge.modes.toy import ToyConfig


@pytest.fixture
def no_training(monkeypatch):
    """Any training reached is a test failure (the input should have been refused first)."""

    def trained(*args, **kwargs):
        raise AssertionError("trained despite a bad --set")

    monkeypatch.setattr(bench, "train_ensemble", trained)
    monkeypatch.setattr(stacked, "run_stacked_trial", trained)
    monkeypatch.setattr("ganforge.evaluators.load_evaluator", lambda name: None)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_toy_steps_cannot_be_set(no_training, capsys, tmp_path):
    for extra in ([], ["--steps", "5"]):
        assert main(["modes", "--set", "steps=20", *extra, "--trials", "1", "--out", str(tmp_path / "m")]) == 2
        err = _one_line_error(capsys)
        assert "steps=20" in err and "--steps" in err
    assert not (tmp_path / "m").exists()
    with pytest.raises(UsageError, match="--steps"):
        toy_overrides(ToyConfig(), {"steps": 5})


@pytest.mark.parametrize("device", ["mps", "CUDA", "cuda:01"])
def test_a_misspelt_device_is_refused_even_for_the_2d_benchmarks(device, no_training, capsys, tmp_path):
    # the 2D benchmarks train on the CPU whatever --device says, but a misspelt name is still a mistake
    assert main(["modes", "--device", device, "--trials", "1", "--out", str(tmp_path / "m")]) == 2
    assert f"--device {device!r} is not a device" in _one_line_error(capsys)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("key, flag", [("train.total_steps=300", "--steps"), ("train.seed=7", "--seed"),
                                       ("train.device=cpu", "--device"), (" train.threads =2", "--threads")])
def test_stacked_flag_keys_cannot_be_set(key, flag, no_training, capsys, tmp_path):
    with pytest.raises(UsageError, match=flag):
        stacked.stacked_config("vanilla", 20, 1, (key,), "auto", 1)  # as run_stacked passes --device, --threads
    assert main(["modes", "--benchmark", "stacked-mnist", "--method", "vanilla", "--trials", "1", "--steps", "20",
                 "--set", "model.g_width=8", "--set", key, "--out", str(tmp_path / "sm"), "--json"]) == 2
    assert flag in _one_line_error(capsys)
    assert not (tmp_path / "sm").exists()


def test_stacked_trials_get_their_own_seed_device_and_threads():
    cfgs = [stacked.stacked_config("vanilla", 20, t, ("model.g_width=8",), "cpu", 2) for t in (0, 1)]
    assert [c.train.seed for c in cfgs] == [0, 1]
    assert {(c.train.total_steps, c.train.device, c.train.threads, c.model.g_width) for c in cfgs} == {(20, "cpu", 2, 8)}


BAD_TOY = ["lr_g=nan", "lr_g=inf", "lr_d=0", "beta1=2", "beta2=1", "loss=foo", "pack=0", "d_pieces=0",
           "batch_size=0", "batch_size=1", "z_dim=0", "g_width=0", "g_depth=0", "d_width=0", "d_depth=0", "n_critic=0",
           "lr_decay_frac=2", "lr_decay_frac=nan", "gp_weight=nan", "msgan_weight=inf", "r1_gamma=nan",
           "drs_lr=inf", "drs_percentile=nan", "mbstd_group=3"]


@pytest.mark.parametrize("item", BAD_TOY)
def test_toy_bad_values_are_one_line_errors(item, no_training, capsys, tmp_path):
    assert main(["modes", "--set", item, "--steps", "5", "--trials", "1", "--out", str(tmp_path / "m")]) == 2
    err = _one_line_error(capsys)
    key = item.split("=")[0]
    assert f"{key} must" in err and "got" in err, err
    assert not (tmp_path / "m").exists()


def test_toy_check_covers_every_field_and_accepts_the_methods_and_edges():
    from ganforge.modes.toy import _RULES

    assert {name for name, _, _ in _RULES} == {f.name for f in dataclasses.fields(ToyConfig)}
    for m in METHODS.values():
        for b in ("ring8", "grid25"):
            m.config(2000, b).check()
    ToyConfig(lr_decay_frac=1.0, beta1=0.0, mbstd_group=500, batch_size=2, loss="hinge", gp_weight=0.0).check()
    ToyConfig(mbstd_group=4, batch_size=100).check()
    with pytest.raises(UsageError, match=r"beta1 must be in \[0, 1\), got -0.1"):  # parse_sets refuses < 0 itself
        ToyConfig(beta1=-0.1).check()
    with pytest.raises(UsageError, match="loss must be one of .*ns.*got 'foo'"):
        ToyConfig(loss="foo").check()
    with pytest.raises(UsageError, match="lr_g must be a finite number > 0, got nan"):
        bench.run_benchmark("ring8", "vanilla", trials=1, steps=1, overrides={"lr_g": float("nan")})


def test_interrupted_stacked_run_names_the_command_for_its_unstarted_trials(monkeypatch, capsys, tmp_path):
    """Trial seed0 stops (a fake SIGINT after its checkpoint); seed1 never started. The message names
    both follow-ups, and the command it gives for seed1 runs into the same --out without touching seed0."""
    from ganforge.modes.stacked import StackedStats, trial_dir
    from ganforge.training.guard import TrainingInterrupted

    ran, stop = [], {"now": True}

    def fake_trial(method, steps, seed, out, clf, overrides=(), device="auto", threads=None):
        run = trial_dir(out, method, seed)
        run.mkdir(parents=True)
        (run / "config.json").write_text(f"{method} {steps} {seed} {overrides} {device}")
        ran.append((method, steps, seed, tuple(overrides), device))
        if stop["now"]:
            raise TrainingInterrupted(signal.SIGINT, 3, run / "checkpoints" / "state-00000003.pt", run)
        return StackedStats(10, 5.0), torch.zeros(64, 3, 28, 28)

    monkeypatch.setattr(stacked, "run_stacked_trial", fake_trial)
    monkeypatch.setattr("ganforge.evaluators.load_evaluator", lambda name: None)
    out = tmp_path / "my out"
    args = ["modes", "--benchmark", "stacked-mnist", "--method", "pacgan", "--trials", "2", "--set", "model.g_width=8",
            "--device", "cpu", "--out", str(out)]
    assert main(args) == 130
    err = _one_line_error(capsys)
    seed0 = trial_dir(out, "pacgan", 0)
    assert f"continue with: ganforge train --resume {seed0}" in err
    assert f"ganforge modes --rescore {shlex.quote(str(out))}" in err
    assert "seed(s) 1 never started" in err
    cmd = shlex.split(err.split("run them with: ")[1].split("; ")[0])
    assert cmd[:2] == ["ganforge", "modes"]
    assert main(args) == 2  # the original command is refused: seed0's folder exists
    capsys.readouterr()

    stop["now"] = False
    before = (seed0 / "config.json").read_text()
    assert main([*cmd[1:], "--json"]) == 0, capsys.readouterr().err
    assert ran[-1] == ("pacgan", 8000, 1, ("model.g_width=8",), "cpu") and len(ran) == 2
    assert (seed0 / "config.json").read_text() == before
