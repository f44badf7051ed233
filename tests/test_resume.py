"""Never lose a run: exact resume (in process and across processes), kill -9 at any moment
(including mid-save), and SIGTERM / SIGINT ending with a fresh checkpoint.

Every test trains a tiny seeded MLP on the 8x8 digits in deterministic CPU mode, so two runs
that should agree are compared bit for bit: every tensor and counter of the final training
state (weights, EMA, both Adam states, data order, python/numpy/torch RNG states)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import apply_overrides, read_run_config
from ganforge.errors import UsageError
from ganforge.data import load_images
from ganforge.presets import get_preset
from ganforge.training import checkpoint as ckpt
from ganforge.training import train

SRC = str(Path(__file__).resolve().parents[1] / "src")
TIMING = ("img_per_s", "sec_per_kimg", "elapsed_s")  # the only fields allowed to differ


def tiny_sets(steps: int, **over) -> list[str]:
    """--set values for a deterministic tiny run that exercises every piece of resumable state:
    EMA, D dropout, hflip (Batcher RNG), DiffAugment (global RNG), lazy R1 every 3 D steps."""
    sets = {
        "model.arch": "mlp", "model.resolution": 8, "model.channels": 1, "model.z_dim": 16,
        "model.g_width": 32, "model.d_width": 32, "model.d_dropout": 0.2, "train.total_steps": steps,
        "train.batch_size": 32, "train.n_critic": 2, "train.progress": "false", "train.log_every": 5,
        "train.sample_every": 10, "train.sample_grid": 4, "checkpoint.every_steps": 10, "train.ema_decay": 0.99,
        "train.deterministic": "true", "train.threads": 1, "train.augment": "translation,cutout,color",
        "loss.r1_gamma": 1.0, "loss.reg_every": 3, "data.hflip": "true", "optim.lr_g": 1e-3, "optim.lr_d": 1e-3,
    }
    sets.update(over)
    return [f"{k}={v}" for k, v in sets.items()]


def tiny_cfg(steps: int, data_source: str = "digits", **over):
    return apply_overrides(get_preset("mlp-mnist"), [f"data.source={data_source}", *tiny_sets(steps, **over)])


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory) -> Path:
    """The digits as an .npz: subprocesses load it without importing scikit-learn (faster)."""
    data = load_images("digits", resolution=8, channels=1)
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, images=data.images.permute(0, 2, 3, 1).numpy())
    return path


def flat(obj, prefix=""):
    """Nested state -> {dotted key: leaf} (tensors and plain values)."""
    if isinstance(obj, dict):
        return {k2: v2 for k, v in obj.items() for k2, v2 in flat(v, f"{prefix}.{k}" if prefix else str(k)).items()}
    if isinstance(obj, (list, tuple)):
        return {k2: v2 for i, v in enumerate(obj) for k2, v2 in flat(v, f"{prefix}.{i}").items()}
    return {prefix: obj}


def assert_same_state(a: dict, b: dict) -> None:
    fa, fb = ({k: v for k, v in flat(x).items() if k not in TIMING} for x in (a, b))  # wall clocks differ
    assert fa.keys() == fb.keys(), set(fa) ^ set(fb)
    differ = [k for k in fa if not (torch.equal(fa[k], fb[k]) if isinstance(fa[k], torch.Tensor) else fa[k] == fb[k])]
    assert not differ, f"differ: {differ[:10]}"


def final_state(run: Path, step: int) -> dict:
    return ckpt.load_state_file(run / ckpt.STATE_DIR / f"state-{step:08d}.pt")


def metric_rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (run / "metrics.jsonl").read_text().splitlines()]


def cli(*args: str, env_extra: dict | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}  # one thread: 2 shared cores on CI
    env.pop(ckpt.SAVE_DELAY_ENV, None)
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "ganforge", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def cli_train(npz: Path, steps: int, *extra: str, **kw) -> subprocess.Popen:
    sets = [x for s in tiny_sets(steps) for x in ("--set", s)]
    return cli("train", "--preset", "mlp-mnist", "--data", str(npz), *sets, *extra, **kw)


def finish(p: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


# ----------------------------------------------------------------------------- exact resume


@pytest.mark.parametrize("variant", [{}, {"train.update": "simultaneous", "train.n_critic": 1, "loss.kind": "hinge",
                                          "train.on_nonfinite": "skip", "train.augment": "", "loss.r1_gamma": 0.0}])
def test_exact_resume_in_process(tmp_path, variant):
    data = load_images("digits", resolution=8, channels=1)
    straight = train(tiny_cfg(40, **variant), out=tmp_path / "straight", data=data)
    next_draw_straight = torch.randn(4)
    half = train(tiny_cfg(20, **variant), out=tmp_path / "halves", data=data)  # stop at 20 ...
    resumed = train(tiny_cfg(40, **variant), resume=half, data=data)  # ... rebuild everything, resume
    next_draw_resumed = torch.randn(4)

    assert_same_state(final_state(straight, 40), final_state(resumed, 40))
    assert torch.equal(next_draw_straight, next_draw_resumed)  # the global RNG continues identically
    assert metric_rows(straight) == metric_rows(resumed)  # appended, not clobbered, and equal
    assert [r["step"] for r in metric_rows(resumed)] == list(range(5, 41, 5))
    for name in ("step-00000030.png", "final.png"):  # fixed sample noise
        assert (straight / "samples" / name).read_bytes() == (resumed / "samples" / name).read_bytes()
    assert final_state(resumed, 40)["ema"]["num_updates"] == 40


def test_resumed_run_clock_goes_on_from_the_state(tmp_path):
    """metrics' elapsed_s is the run's training wall time: a resumed run adds to the state's,
    so a trial resumed across sessions reports its whole time (states without it count from 0)."""
    data = load_images("digits", resolution=8, channels=1)
    run = train(tiny_cfg(10), out=tmp_path / "run", data=data)
    state = final_state(run, 10)
    assert 0 < state["elapsed_s"] < 1000
    state["elapsed_s"] = 1000.0  # as if the first 10 steps had taken 1000 s: recommitted with its checksum
    ckpt.save_state(run / ckpt.STATE_DIR, 10, state, keep_last=2)
    train(tiny_cfg(20), resume=run, data=data)
    clock = {row["step"]: row["elapsed_s"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    assert clock[5] <= clock[10] < 1000 <= clock[15] <= clock[20] <= final_state(run, 20)["elapsed_s"] + 0.01
    legacy = final_state(run, 20)
    del legacy["elapsed_s"]  # a state written before the field existed resumes with the clock at 0
    ckpt.save_state(run / ckpt.STATE_DIR, 20, legacy, keep_last=2)
    train(tiny_cfg(25), resume=run, data=data)
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["elapsed_s"] < 1000


def test_exact_resume_across_processes(tmp_path, digits_npz):
    reference = train(tiny_cfg(30, str(digits_npz)), out=tmp_path / "ref")
    code, _, err = finish(cli_train(digits_npz, 15, "--out", str(tmp_path / "run")))
    assert code == 0, err
    code, _, err = finish(cli("train", "--resume", str(tmp_path / "run"), "--set", "train.total_steps=30"))
    assert code == 0, err
    assert "resuming" in err and "step 15 of 30" in err
    assert_same_state(final_state(reference, 30), final_state(tmp_path / "run", 30))
    assert metric_rows(reference) == metric_rows(tmp_path / "run")


def test_resume_from_a_moved_dataset_needs_the_same_images(tmp_path, digits_npz, capsys, caplog):
    """data.source may change on resume (the dataset moved), but only to the same images: the
    checkpoint's content sha256 decides; under the same path a content change is only warned about."""
    import logging
    import shutil

    from ganforge.cli import main

    here, moved, other = tmp_path / "here.npz", tmp_path / "moved.npz", tmp_path / "other.npz"
    shutil.copy(digits_npz, here)
    images = np.load(digits_npz)["images"]
    images[0, 0, 0] ^= 1  # one pixel of one image differs
    np.savez(other, images=images)
    straight = train(tiny_cfg(20, str(here)), out=tmp_path / "straight")
    run = train(tiny_cfg(10, str(here)), out=tmp_path / "run")
    here.rename(moved)
    resume = ["train", "--resume", str(run), "--set", "train.total_steps=20"]
    for extra, needle in [((), f"data source '{here}' of {run} does not exist: if the dataset moved, resume with --data NEW_PATH"),
                          (("--data", str(other)), f"data.source='{other}' does not hold the images the run trained on from "
                                                   f"'{here}' (1797 images each, content sha256 ")]:
        assert main([*resume, *extra]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err
    assert main([*resume, "--data", str(moved)]) == 0
    a, b = final_state(straight, 20), final_state(run, 20)
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])  # the moved images continue the run bit for bit
    assert b["batcher"]["data_sha256"] == a["batcher"]["data_sha256"]
    assert json.loads((run / "config.json").read_text())["run"]["data"]["source"] == str(moved)
    shutil.copy(other, moved)  # edited in place: resumes, with a warning
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):
        assert main(["train", "--resume", str(run), "--set", "train.total_steps=25"]) == 0
    assert any("differ from those the run trained on" in r.getMessage() for r in caplog.records)
    legacy = final_state(run, 25)
    del legacy["batcher"]["data_sha256"]  # a state written before content hashes: a move is taken on the count
    ckpt.save_state(run / ckpt.STATE_DIR, 25, legacy, keep_last=2)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):
        assert main(["train", "--resume", str(run), "--data", str(other), "--set", "train.total_steps=30"]) == 0
    assert any("predates content hashes" in r.getMessage() for r in caplog.records)


def test_resume_latest_picks_newest_run_and_needs_a_run(tmp_path, digits_npz, capsys):
    from ganforge.cli import main

    root = tmp_path / "runs"
    code = main(["train", "--resume", "latest", "--runs-root", str(root)])
    assert code == 2 and "--resume latest: no GAN run folder" in capsys.readouterr().err
    first = train(tiny_cfg(5, str(digits_npz)), runs_root=root)
    second = train(tiny_cfg(5, str(digits_npz)), runs_root=root)
    (root / "00003-crashed-before-config").mkdir()  # a run killed before it wrote config.json
    assert ckpt.find_run("latest", root) == second != first
    code = main(["train", "--resume", "latest", "--runs-root", str(root), "--set", "train.total_steps=10"])
    assert code == 0 and final_state(second, 10)["step"] == 10


# ----------------------------------------------------------------------------- kill -9


# Rows every 3 steps, checkpoints every 10: a run resumed from step 10 or 20 must also restore
# the partial metric sums of the interrupted interval to write the same rows.
KILL_SETS = {"train.log_every": 3}


@pytest.fixture(scope="module")
def reference_60(tmp_path_factory, digits_npz) -> Path:
    return train(tiny_cfg(60, str(digits_npz), **KILL_SETS), out=tmp_path_factory.mktemp("ref") / "run")


def wait_for(predicate, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def temp_files(ckpt_dir: Path) -> list[Path]:
    return [p for p in ckpt_dir.glob(".state-*.tmp")] if ckpt_dir.is_dir() else []


@pytest.mark.parametrize("moment,seed", [("save", 2), ("save", 4), ("anytime", 0), ("anytime", 2)])
def test_kill_9_then_resume_latest_equals_uninterrupted(tmp_path, digits_npz, reference_60, moment, seed):
    """moment=save: killed while the seed-th state file is half written (the writer sleeps
    mid-file under GANFORGE_TEST_SAVE_DELAY_S); anytime: at a seeded random point of the run."""
    root = tmp_path / "runs"
    delay = "0.4" if moment == "save" else "0.05"  # anytime: kills land in steps and in saves alike
    sets = [x for k, v in KILL_SETS.items() for x in ("--set", f"{k}={v}")]
    p = cli_train(digits_npz, 60, "--runs-root", str(root), *sets, env_extra={ckpt.SAVE_DELAY_ENV: delay})
    ckpt_dir = root / "00001-mlp-mnist" / ckpt.STATE_DIR
    if moment == "save":
        seen: set[str] = set()

        def in_save_number_seed() -> bool:
            seen.update(t.name for t in temp_files(ckpt_dir))
            return len(seen) >= seed and bool(temp_files(ckpt_dir))

        wait_for(in_save_number_seed, proc=p)
        time.sleep(0.05)  # inside the writer's pause: half the bytes are on disk
    else:  # after a random number of logged rows (0..18 of 20), plus a random fraction of a step
        rng = random.Random(seed)
        rows, metrics = rng.randint(0, 18), root / "00001-mlp-mnist" / "metrics.jsonl"
        wait_for(lambda: metrics.is_file() and metrics.read_text().count("\n") >= rows, proc=p)
        time.sleep(rng.uniform(0.0, 0.05))
    assert p.poll() is None, "the run must still be going when it is killed"
    p.kill()  # SIGKILL: no handler, no cleanup
    p.communicate()

    # No partial file under a final name: every state file present is whole.
    for state in ckpt.list_states(ckpt_dir):
        torch.load(state, weights_only=True)
    if moment == "save":
        assert temp_files(ckpt_dir), "the kill should have landed inside the writer"

    code, _, err = finish(cli("train", "--resume", "latest", "--runs-root", str(root)))
    assert code == 0, err
    run = root / "00001-mlp-mnist"
    assert_same_state(final_state(reference_60, 60), final_state(run, 60))
    assert not temp_files(ckpt_dir)  # the resumed writer cleaned up after the killed one
    assert metric_rows(run) == metric_rows(reference_60)  # no gap, no duplicate, same values


# ----------------------------------------------------------------------------- SIGTERM / SIGINT


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_finishes_step_checkpoints_and_exits(tmp_path, digits_npz, sig, code):
    run = tmp_path / "run"
    p = cli_train(digits_npz, 100_000, "--out", str(run), "--set", "checkpoint.every_steps=0")
    wait_for(lambda: (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text().count("\n") >= 2, proc=p)
    p.send_signal(sig)
    rc, _, err = finish(p)
    assert rc == code, err
    lines = [line for line in err.splitlines() if line.startswith("ganforge: error:")]
    assert len(lines) == 1 and f"stopped by {signal.Signals(sig).name} after step" in lines[0]
    step = int(re.search(r"after step (\d+)", lines[0]).group(1))
    state, path = ckpt.load_latest_state(run / ckpt.STATE_DIR)
    assert state["step"] == step and path.name == f"state-{step:08d}.pt"  # the current step, checksummed
    assert step >= 10  # two rows were logged before the signal
    assert state["ema"]["num_updates"] == step
    if sig == signal.SIGTERM:  # and the run continues from there
        rc, _, err = finish(cli("train", "--resume", str(run), "--set", f"train.total_steps={step + 3}"))
        assert rc == 0, err
        assert ckpt.load_latest_state(run / ckpt.STATE_DIR)[0]["step"] == step + 3


def test_resume_without_a_checkpoint_never_replaces_a_finished_generator_or_drops_checkpoints(tmp_path):
    import shutil

    from ganforge.errors import UsageError

    data = load_images("digits", resolution=8, channels=1)
    run = train(tiny_cfg(20), out=tmp_path / "run", data=data)
    model = (run / "model" / "generator.safetensors").read_bytes()
    rows = (run / "metrics.jsonl").read_text()
    for state in (run / "checkpoints").glob("state-*.pt"):
        state.write_bytes(b"not a checkpoint")  # every state unreadable
    with pytest.raises(UsageError, match=r"no valid training state in .*\(2 file\(s\), all corrupt\)"):
        train(tiny_cfg(30), resume=run, data=data)
    shutil.rmtree(run / "checkpoints")  # none at all, and a finished model/
    with pytest.raises(UsageError, match=r"has a finished generator \(model/\) but no checkpoint to resume from"):
        train(tiny_cfg(30), resume=run, data=data)
    assert (run / "model" / "generator.safetensors").read_bytes() == model and (run / "metrics.jsonl").read_text() == rows
    shutil.rmtree(run / "model")  # stopped before its first checkpoint: starting again is right
    assert train(tiny_cfg(30), resume=run, data=data) == run and (run / "model").is_dir()


def test_a_relative_data_source_is_kept_absolute_so_other_folders_find_the_same_data(tmp_path, digits_npz, monkeypatch):
    import shutil

    from ganforge.metrics.run_defaults import run_eval_defaults

    (tmp_path / "a").mkdir()
    shutil.copy(digits_npz, tmp_path / "a" / "digits.npz")
    monkeypatch.chdir(tmp_path / "a")
    run = train(tiny_cfg(10, "digits.npz"), out=tmp_path / "run")
    want = str((tmp_path / "a" / "digits.npz").resolve())
    assert json.loads((run / "config.json").read_text())["run"]["data"]["source"] == want
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")  # a "digits.npz" here would be other images
    np.savez(tmp_path / "b" / "digits.npz", images=np.zeros((40, 8, 8), np.uint8))
    assert run_eval_defaults(run).ref.source == want
    with pytest.raises(UsageError, match="trained on 1797 images but the dataset has 40"):  # b's file, named here
        train(tiny_cfg(20, "digits.npz"), resume=run)
    saved = apply_overrides(read_run_config(run / "config.json"), ["train.total_steps=20"])
    assert train(saved, resume=run) == run  # resumed from b: the stored path, not b's file


def test_a_missing_ema_file_is_refused_not_replaced_by_the_raw_weights(tmp_path):
    from ganforge.training.checkpoint import load_generator

    run = train(tiny_cfg(10), out=tmp_path / "run", data=load_images("digits", resolution=8, channels=1))
    assert json.loads((run / "model" / "config.json").read_text())["has_ema"] is True
    (run / "model" / "generator_ema.safetensors").unlink()
    with pytest.raises(UsageError, match="generator_ema.safetensors is missing, though this generator was saved with EMA"):
        load_generator(run)
    load_generator(run, ema=False)  # the raw weights, asked for
