"""The CLI: bad input gives one line on stderr and exit code 2, never a traceback."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ganforge.cli import main

FAST = ["--set", "train.total_steps=2", "--set", "train.progress=false", "--set", "train.sample_grid=4",
        "--set", "checkpoint.every_steps=0"]


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--set", "train.batchsize=3", "--dry-run"], "unknown key 'batchsize'"),
        (["train", "--set", "model.resolution=48", "--dry-run"], "model.resolution=48"),
        (["train", "--data", "/no/such/folder", "--dry-run"], "/no/such/folder"),
        (["train", "--preset", "sngan-cifar10", "--dry-run"], "--data"),
        (["train", "--bogus"], "--bogus"),
        (["sample", "/no/such/run", "--out", "x.png"], "/no/such/run"),
        (["frobnicate"], "No such command"),
    ],
)
def test_usage_errors(capsys, args, needle):
    code, out, err = run_cli(capsys, *args)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is missing")
@pytest.mark.parametrize("args", [
    ["eval", "digits", "--metrics", "fid"],
    ["sample", "/no/such/run", "--out", "x.png"],
    ["bench", "train", "--preset", "dcgan-mnist", "--batch", "4"],
    ["evaluator", "fit", "cifar10-clf", "--data", "D"],
    ["modes", "--benchmark", "stacked-mnist", "--trials", "1"],
    ["sr", "apply", "sr-x4", "IN.png", "OUT.png"],
    ["denoise", "eval", "nlmeans", "--data", "D"],
])
def test_device_cuda_without_a_gpu_is_one_line_in_every_command(capsys, args):
    for device, needle in [("cuda", "--device 'cuda' but no CUDA device is available: use --device cpu or auto"),
                           ("gpu", "'gpu' is not")]:  # ours, or click's choice message (bench)
        code, out, err = run_cli(capsys, *args, "--device", device)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[0], err


def _no_data(*a, **k):
    raise AssertionError("data was loaded")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is missing")
def test_train_device_cuda_n_without_a_gpu_is_one_line_before_any_work(capsys, tmp_path, monkeypatch):
    import ganforge.training.loop as loop
    from ganforge.config import apply_overrides
    from ganforge.errors import UsageError
    from ganforge.presets import get_preset

    monkeypatch.setattr(loop, "load_images", _no_data)
    needle = "train.device='cuda:0' but no CUDA device is available: use train.device=cpu or auto"  # as --device cuda:0
    code, out, err = run_cli(capsys, "train", "--preset", "mlp-mnist", "--out", str(tmp_path / "run"),
                             "--set", "train.device=cuda:0", *FAST)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
    with pytest.raises(UsageError, match=needle):  # the Python API, the same check
        loop.train(apply_overrides(get_preset("mlp-mnist"), ["train.device=cuda:0"]), out=tmp_path / "api")


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_train_device_cuda_n_under_torchrun_is_refused(capsys, tmp_path, monkeypatch, dry_run):
    # torchrun gives each process cuda:LOCAL_RANK; cuda:N would put every rank on one GPU. Refused before
    # the process group starts (launched) and before "no CUDA device" (train), on any machine.
    import ganforge.training.loop as loop

    monkeypatch.setattr(loop, "load_images", _no_data)
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, out, err = run_cli(capsys, "train", "--preset", "mlp-mnist", "--out", str(tmp_path / "run"),
                             "--set", "train.device=cuda:1", *FAST, *dry_run)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert ("train.device='cuda:1' under torchrun: torchrun assigns one GPU per process by LOCAL_RANK; "
            "use train.device=cuda or auto") in lines[0]


def test_empty_folder_and_unreadable_images(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "train", "--data", str(empty), "--out", str(tmp_path / "r1"), *FAST)
    assert code == 2 and str(empty) in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"this is not a png")
    code, _, err = run_cli(capsys, "train", "--data", str(bad), "--out", str(tmp_path / "r2"), *FAST)
    assert code == 2 and "a.png" in err and len(err.strip().splitlines()) == 1


def test_presets_lists_every_preset(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    for name in ("mlp-mnist", "keras-dcgan-mnist", "dcgan-mnist", "sngan-cifar10", "faces-lfw", "cgan-mnist"):
        assert any(line.startswith(name + " ") for line in out.splitlines())


def test_dry_run_prints_config(capsys):
    code, out, err = run_cli(capsys, "train", "--preset", "wgan-gp-mnist", "--set", "train.batch_size=32", "--dry-run")
    assert code == 0 and '"batch_size": 32' in out and "dry run" in err


def test_train_then_sample_every_format(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--preset", "cgan-mnist", "--out", str(run), *FAST,
                             "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "data.max_images=200",
                             "--set", "train.batch_size=16")
    assert code == 0, err
    assert run_cli(capsys, "sample", str(run), "--n", "12", "--out", str(tmp_path / "s.npz"))[0] == 0
    with np.load(tmp_path / "s.npz") as d:
        assert d["images"].shape == (12, 28, 28, 1) and d["images"].dtype == np.uint8
        assert d["labels"].tolist() == [i % 10 for i in range(12)]
    assert run_cli(capsys, "sample", str(run), "--n", "5", "--class", "3", "--out", str(tmp_path / "c.npz"))[0] == 0
    with np.load(tmp_path / "c.npz") as d:
        assert d["labels"].tolist() == [3] * 5
    assert run_cli(capsys, "sample", str(run), "--n", "10", "--out", str(tmp_path / "g.png"))[0] == 0
    assert run_cli(capsys, "sample", str(run), "--n", "3", "--out", str(tmp_path / "dir"))[0] == 0
    assert len(list((tmp_path / "dir").glob("*.png"))) == 3
    # never overwrite silently
    code, _, err = run_cli(capsys, "sample", str(run), "--n", "3", "--out", str(tmp_path / "s.npz"))
    assert code == 2 and "already exists" in err
    code, _, err = run_cli(capsys, "sample", str(run), "--n", "3", "--class", "11", "--out", str(tmp_path / "t.npz"))
    assert code == 2 and "--class 11" in err
    code, _, err = run_cli(capsys, "train", "--preset", "cgan-mnist", "--out", str(run), *FAST)
    assert code == 2 and "already exists" in err


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")}
    p = subprocess.run([sys.executable, "-m", "ganforge", "train", "--preset", "nope"], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "unknown preset" in p.stderr


def test_data_without_a_preset_says_which_preset_runs(capsys, caplog, tmp_path):
    import logging

    from PIL import Image

    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    with caplog.at_level(logging.INFO, logger="ganforge.train"):
        code, out, err = run_cli(capsys, "train", "--data", str(tmp_path), "--set", "train.batch_size=2", "--dry-run")
        assert code == 0, err
        assert "no --preset: training dcgan-mnist (28 x 28 grey, sized for digits)" in caplog.text
        caplog.clear()
        code, out, err = run_cli(capsys, "train", "--data", str(tmp_path), "--preset", "dcgan-cifar10", "--set",
                                 "train.batch_size=2", "--dry-run")
        assert code == 0 and "no --preset" not in caplog.text
