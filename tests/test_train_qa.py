"""QA pass on `ganforge train`: one writer per run folder (run.lock), errors at a periodic evaluation
caught before training or ending with a checkpoint, capped sizes, `--resume latest` among GAN and
restoration runs, an unreadable checkpoint manifest, and messages that name what the user types."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ganforge.cli import main
from ganforge.config import apply_overrides, dumps, read_run_config
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.presets import get_preset
from ganforge.training import checkpoint as ckpt
from ganforge.training import runlock, train
from ganforge.training.logger import read_metrics
from ganforge.training.periodic_eval import PeriodicEval

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", resolution=8, channels=1)


def tiny(steps: int, *extra: str):
    """A 8x8 MLP GAN on the digits: a step takes milliseconds."""
    sets = ["data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=8",
            "model.g_width=16", "model.d_width=16", f"train.total_steps={steps}", "train.batch_size=16",
            "train.progress=false", "train.log_every=1", "train.sample_every=0", "train.sample_grid=4",
            "checkpoint.every_steps=0", "train.threads=1"]
    return apply_overrides(get_preset("mlp-mnist"), sets + list(extra))


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()]


def one_line_error(capsys, *args) -> str:
    code, lines = run_cli(capsys, *args)
    errors = [line for line in lines if not line.startswith(("INFO", "WARNING"))]
    assert code == 2 and len(errors) == 1 and errors[0].startswith("ganforge: error: "), lines
    return errors[0]


def state_files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run / ckpt.STATE_DIR).iterdir())}


# ----------------------------------------------------------------------------- 1. one writer per run folder


def test_run_lock_refuses_a_second_holder_and_is_released(tmp_path):
    with runlock.run_lock(tmp_path) as path:
        held = json.loads(path.read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        for attempt in (lambda: runlock.run_lock(tmp_path).__enter__(), lambda: runlock.check_run_lock(tmp_path)):
            with pytest.raises(UsageError) as err:
                attempt()
            msg = str(err.value)
            assert msg.startswith(f"{tmp_path} is in use by pid {os.getpid()} on {socket.gethostname()} (started ")
            assert f"delete {tmp_path / 'run.lock'} if that process is gone" in msg and "\n" not in msg
    assert not path.exists()
    with runlock.run_lock(tmp_path):  # free again
        pass


def test_lock_left_by_a_dead_process_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / "run.lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "then"}))
    runlock.check_run_lock(tmp_path)  # a dry run passes: the real run would take it over
    with caplog.at_level(logging.WARNING, logger="ganforge"), runlock.run_lock(tmp_path) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"taking over run.lock from pid {pid}" in caplog.text
    # A pid that runs (reused after a crash) with no process holding the file's flock is left behind too
    (tmp_path / "run.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    with runlock.run_lock(tmp_path):
        pass


def test_lock_of_another_host_is_never_taken_over(tmp_path):
    (tmp_path / "run.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2026-01-01"}))
    with pytest.raises(UsageError, match=r"in use by pid 1 on elsewhere \(started 2026-01-01\): wait for it, or delete"):
        runlock.run_lock(tmp_path).__enter__()
    (tmp_path / "run.lock").write_text("")  # being written by its creator (or left empty): in use, never taken
    with pytest.raises(UsageError, match="in use by another process"):
        runlock.check_run_lock(tmp_path)


def test_a_second_trainer_is_refused_before_it_writes_and_a_killed_ones_lock_is_taken_over(tmp_path, digits, caplog):
    run = train(tiny(2, "checkpoint.every_steps=1"), data=digits, out=tmp_path / "run")
    assert not (run / "run.lock").exists()  # released at the end
    before_metrics, before_states = (run / "metrics.jsonl").read_bytes(), state_files(run)
    holder = subprocess.Popen(  # another trainer, as far as the lock can tell
        [sys.executable, "-c", "import sys, time; from ganforge.training.runlock import run_lock\n"
         f"with run_lock({str(run)!r}):\n    print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": SRC})
    try:
        assert holder.stdout.readline().strip() == "held"
        for dry_run in (True, False):
            with pytest.raises(UsageError, match=rf"{run} is in use by pid {holder.pid} on "):
                train(tiny(4, "checkpoint.every_steps=1"), resume=run, data=digits, dry_run=dry_run)
        # nothing of the run changed: no metrics row trimmed, no state set aside or written
        assert (run / "metrics.jsonl").read_bytes() == before_metrics and state_files(run) == before_states
    finally:
        holder.kill()  # kill -9: its lock file stays behind
        holder.wait()
    assert (run / "run.lock").is_file()
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        train(tiny(4, "checkpoint.every_steps=1"), resume=run, data=digits)
    assert f"taking over run.lock from pid {holder.pid}" in caplog.text
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "d_loss" in r] == [1, 2, 3, 4]
    assert not (run / "run.lock").exists()


def test_the_lock_is_held_while_training_and_released_on_error(tmp_path, digits, monkeypatch):
    seen = []
    save_state = ckpt.save_state

    def watching(ckpt_dir, *args, **kw):
        seen.append(json.loads((Path(ckpt_dir).parent / "run.lock").read_text())["pid"])
        return save_state(ckpt_dir, *args, **kw)

    monkeypatch.setattr(ckpt, "save_state", watching)
    run = train(tiny(2), data=digits, out=tmp_path / "run")
    assert seen == [os.getpid()] and not (run / "run.lock").exists()
    with pytest.raises(UsageError, match="past train.total_steps"):  # an error after the lock was taken
        train(tiny(1), resume=run, data=digits)
    assert not (run / "run.lock").exists()


# ----------------------------------------------------------------------------- 2. periodic evaluation


@pytest.mark.parametrize("key,value", [("eval.n", 1_000_001), ("eval.n_ref", 99_999_999_999)])
def test_eval_sizes_are_capped_in_the_config(capsys, key, value):
    with pytest.raises(UsageError, match=rf"^{key}={value} is too large: use at most 1,000,000 images$"):
        apply_overrides(get_preset("dcgan-mnist"), [f"{key}={value}"])
    line = one_line_error(capsys, "train", "--set", "eval.every=5", "--set", f"{key}={value}", "--dry-run")
    assert f"{key}={value} is too large" in line
    apply_overrides(get_preset("dcgan-mnist"), [f"{key}=1000000"])  # the bound itself is allowed


def test_an_unwritable_cache_warns_once_and_training_goes_on(tmp_path, digits, monkeypatch, caplog):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "file" / "cache"))
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        run = train(tiny(4, "eval.every=2", "eval.n=20", "eval.metrics=fid", "eval.evaluator=mnist-clf"),
                    data=digits, out=tmp_path / "run")
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"] == [2, 4]
    warned = [r.getMessage() for r in caplog.records if "cannot cache reference statistics" in r.getMessage()]
    assert len(warned) == 1 and "going on without the cache" in warned[0], warned
    assert (run / "model" / "config.json").is_file()


def test_an_unwritable_cache_does_not_end_ganforge_eval(tmp_path, monkeypatch, capsys, caplog):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "file"))
    images = load_images("digits", resolution=28, channels=1).images[:40].permute(0, 2, 3, 1).numpy()  # (40, 28, 28, 1)
    np.savez(tmp_path / "a.npz", images=images[:20])
    np.savez(tmp_path / "b.npz", images=images[20:])
    code, lines = run_cli(capsys, "eval", str(tmp_path / "a.npz"), "--ref", str(tmp_path / "b.npz"), "--metrics", "fid",
                          "--evaluator", "mnist-clf")
    assert code == 0, lines
    assert [r.levelname for r in caplog.records if "going on without the cache" in r.getMessage()] == ["WARNING"]


def test_an_error_at_a_periodic_evaluation_saves_a_checkpoint_first(tmp_path, digits, monkeypatch, caplog):
    def broken(self, step, *args):
        raise UsageError("evaluation broke")

    monkeypatch.setattr(PeriodicEval, "__call__", broken)
    cfg = tiny(5, "eval.every=3", "eval.n=20", "eval.metrics=fid", "eval.evaluator=mnist-clf")
    with caplog.at_level(logging.WARNING, logger="ganforge"), pytest.raises(UsageError, match="evaluation broke"):
        train(cfg, data=digits, out=tmp_path / "run")
    run = tmp_path / "run"
    assert [p.name for p in ckpt.list_states(run / ckpt.STATE_DIR)] == ["state-00000003.pt"]
    assert "the evaluation at step 3 failed; saved" in caplog.text and not (run / "run.lock").exists()
    monkeypatch.undo()
    train(resume=run, data=digits)  # goes on from step 3 (its next evaluation at step 5 runs)
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if r.get("event") == "eval"] == [5]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "d_loss" in r] == [1, 2, 3, 4, 5]


# ----------------------------------------------------------------------------- 3. train.threads


def test_train_threads_is_capped(capsys):
    from ganforge.device import MAX_THREADS

    for bad in (MAX_THREADS + 1, 99999999999999999999):
        with pytest.raises(UsageError, match=rf"^train.threads={bad} is too large: use 0 \(torch's default\) to {MAX_THREADS}$"):
            apply_overrides(get_preset("dcgan-mnist"), [f"train.threads={bad}"])
    apply_overrides(get_preset("dcgan-mnist"), [f"train.threads={MAX_THREADS}"])
    assert "train.threads=99999999999999999999 is too large" in one_line_error(
        capsys, "train", "--set", "train.threads=99999999999999999999", "--dry-run")


# ----------------------------------------------------------------------------- 4. --resume latest, foreign folders


def gan_config(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"run": json.loads(dumps(tiny(2)))}))
    return folder


def restore_run(folder: Path, task: str = "denoise") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"starts": [], "restore": {"task": task}, "resolved": {}}))
    return folder


def test_latest_reads_the_whole_run_number(tmp_path):
    gan_config(tmp_path / "99999-a")
    newest = gan_config(tmp_path / "100000-b")
    assert ckpt.find_run("latest", tmp_path) == newest
    assert ckpt.find_run("latest", tmp_path, kind="gan") == newest


def test_latest_for_gan_training_skips_restoration_runs(tmp_path, digits, capsys):
    gan = gan_config(tmp_path / "00001-gan")
    denoise = restore_run(tmp_path / "00002-denoise")
    assert ckpt.find_run("latest", tmp_path) == denoise  # unchanged for the restoration side
    assert ckpt.find_run("latest", tmp_path, kind="gan") == gan
    assert ckpt.find_run("latest", tmp_path, kind="restore") == denoise
    assert train(resume="latest", runs_root=tmp_path, data=digits, dry_run=True) == gan
    only = tmp_path / "only"
    restore_run(only / "00001-sr", "sr")
    with pytest.raises(UsageError, match=r"no GAN run folder under .*; 1 other run folder\(s\) there are not GAN runs"):
        ckpt.find_run("latest", only, kind="gan")
    # the CLI resolves latest itself: whatever it picks, a restoration run is named as one, in one line
    line = one_line_error(capsys, "train", "--resume", str(denoise), "--dry-run")
    assert line.endswith(f"{denoise} is a restoration run (denoise), not a GAN run: resume it with "
                         f"`ganforge denoise train --resume {denoise}`")


def test_read_run_config_says_what_a_foreign_folder_is(tmp_path, digits, capsys):
    run = train(tiny(1), data=digits, out=tmp_path / "run")
    with pytest.raises(UsageError, match=rf"^{run / 'model'} is a saved generator folder, not a run folder: give its "
                                         rf"run folder {run}$"):
        read_run_config(run / "model" / "config.json")
    line = one_line_error(capsys, "train", "--resume", str(run / "model"), "--dry-run")
    assert "is a saved generator folder, not a run folder" in line and "'run'" not in line
    model = tmp_path / "sr-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model": {}, "kind": "restoration", "task": "sr",
                                                   "restore": {"task": "sr"}}))
    with pytest.raises(UsageError, match=r"is a saved restoration model \(sr\), not a run folder"):
        read_run_config(model / "config.json")
    (model / "config.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(UsageError, match=r"is not a ganforge run config \(it has no \"run\" section\)$"):
        read_run_config(model / "config.json")


# ----------------------------------------------------------------------------- 5. the checkpoint manifest


def test_an_unreadable_manifest_is_named_not_blamed_on_the_states(tmp_path, digits, capsys):
    run = train(tiny(2, "checkpoint.every_steps=1"), data=digits, out=tmp_path / "run")
    (run / "checkpoints" / "manifest.json").write_text("{")
    line = one_line_error(capsys, "train", "--resume", str(run), "--dry-run")
    assert f"{run / 'checkpoints' / 'manifest.json'} is unreadable (" in line
    assert "delete it to resume from the newest state that passes its own CRC32 checks" in line
    assert "corrupt" not in line and "never committed" not in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["manifest.json", "state-00000001.pt",
                                                                       "state-00000002.pt"]


def test_without_a_manifest_states_are_checked_by_their_own_crc32s(tmp_path, digits, caplog):
    run = train(tiny(2, "checkpoint.every_steps=1"), data=digits, out=tmp_path / "run")
    (run / "checkpoints" / "manifest.json").unlink()
    newest = run / "checkpoints" / "state-00000002.pt"
    with zipfile.ZipFile(newest) as z:  # damage the middle of a tensor's bytes: torch.load would not notice
        info = max(z.infolist(), key=lambda i: i.file_size)
    raw = bytearray(newest.read_bytes())
    raw[info.header_offset + 100 + info.file_size // 2] ^= 0xFF
    newest.write_bytes(bytes(raw))
    assert ckpt.zip_problem(newest) is not None and ckpt.zip_problem(run / "checkpoints" / "state-00000001.pt") is None
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        train(tiny(3, "checkpoint.every_steps=1"), resume=run, data=digits)
    assert "manifest.json is missing: checking each state by its own CRC32s" in caplog.text
    assert "state-00000002.pt is corrupt: its record" in caplog.text and "fails its CRC32" in caplog.text
    assert (run / "checkpoints" / "state-00000002.pt.corrupt").is_file()
    # the run went on from step 1 and committed its new states to a new manifest
    assert set(ckpt.read_manifest(run / "checkpoints")) == {"state-00000002.pt", "state-00000003.pt"}


def test_a_fallback_without_a_manifest_writes_no_empty_one(tmp_path, digits):
    run = train(tiny(2, "checkpoint.every_steps=1"), data=digits, out=tmp_path / "run")
    d = run / "checkpoints"
    (d / "manifest.json").unlink()
    (d / "state-00000002.pt").write_bytes(b"cut")
    state, path = ckpt.load_latest_state(d)
    assert path.name == "state-00000001.pt" and state["step"] == 1
    assert not (d / "manifest.json").exists()  # an empty one would make state-1 read as never committed
    assert ckpt.load_latest_state(d)[1] == path


# ----------------------------------------------------------------------------- 6. messages


def test_an_empty_data_source_is_named(capsys):
    line = one_line_error(capsys, "train", "--set", "data.source=", "--dry-run")
    assert "--set data.source= is empty: give a dataset name" in line and "no embedded dataset" not in line
    with pytest.raises(UsageError, match="data.source= is empty"):
        apply_overrides(get_preset("dcgan-mnist"), ["data.source=  "])


def test_inception_in_training_names_the_environment_variable_not_a_missing_option(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    args = ("train", "--set", "eval.every=2", "--set", "eval.evaluator=inception-v3-fid", "--dry-run")
    line = one_line_error(capsys, *args)
    assert "training reads from $GANFORGE_INCEPTION_WEIGHTS" in line and "--inception-weights" not in line
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(tmp_path / "nope.pth"))
    line = one_line_error(capsys, *args)
    assert f"GANFORGE_INCEPTION_WEIGHTS={tmp_path / 'nope.pth'} is not a file" in line


def test_a_bad_image_names_the_training_setting(tmp_path):
    from PIL import Image

    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"")
    with pytest.raises(UsageError, match=r"on_bad_image='skip' \(training: --set data.on_bad_image=skip\)"):
        load_images(str(tmp_path), resolution=8, channels=1)


def test_a_new_run_id_follows_one_past_99999(tmp_path):
    # the id regex read five digits, so once 100000-x existed the next id was 10001... then 100000
    # again: mkdir failed with FileExistsError and create_run_dir retried the same name forever
    from ganforge.training.rundir import create_run_dir

    (tmp_path / "99999-a").mkdir()
    (tmp_path / "100000-b").mkdir()
    assert create_run_dir("dcgan-mnist", root=tmp_path).name == "100001-dcgan-mnist"


def test_cli_resume_latest_skips_a_newer_restoration_run(tmp_path, capsys):
    # the default runs/ root holds GAN and restoration runs: `ganforge train --resume latest` resumes
    # the newest GAN run, not a newer denoise run it would refuse
    import json

    from ganforge.cli import main

    (tmp_path / "00001-dcgan-mnist").mkdir()
    (tmp_path / "00001-dcgan-mnist" / "config.json").write_text(json.dumps({"run": {}}))
    (tmp_path / "00002-denoise-s25").mkdir()
    (tmp_path / "00002-denoise-s25" / "config.json").write_text(json.dumps({"restore": {"task": "denoise"}}))
    code = main(["train", "--resume", "latest", "--runs-root", str(tmp_path), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 0 and "would resume" in err and err.rstrip().endswith("00001-dcgan-mnist"), err  # defaults only
