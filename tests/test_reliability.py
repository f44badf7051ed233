"""Failures ganforge must survive or refuse cleanly: failed and corrupt checkpoint writes,
malicious pickles, checkpoints of the wrong shape, NaN/Inf under each policy, and bad
configuration rejected before any data is loaded. (Resume and kill -9: test_resume.py.)"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ganforge.cli import main
from ganforge.config import apply_overrides, read_run_config
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.presets import get_preset
from ganforge.training import checkpoint as ckpt
from ganforge.training import train
from ganforge.training.guard import NonFiniteError, NonFiniteGuard
from ganforge.training.objective import Objective

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny_sets(steps: int, **over) -> list[str]:
    sets = {
        "model.arch": "mlp", "model.resolution": 8, "model.channels": 1, "model.z_dim": 16, "model.g_width": 32,
        "model.d_width": 32, "train.total_steps": steps, "train.batch_size": 32, "train.progress": "false",
        "train.log_every": 4, "train.sample_every": 0, "train.sample_grid": 4, "checkpoint.every_steps": 4,
        "checkpoint.keep_last": 5, "train.ema_decay": 0.99, "train.deterministic": "true", "train.threads": 1,
    }
    sets.update(over)
    return [f"{k}={v}" for k, v in sets.items()]


def tiny_cfg(steps: int, source: str = "digits", **over):
    return apply_overrides(get_preset("mlp-mnist"), [f"data.source={source}", *tiny_sets(steps, **over)])


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", resolution=8, channels=1)


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory, digits) -> Path:
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, images=digits.images.permute(0, 2, 3, 1).numpy())
    return path


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def assert_all_saved_tensors_finite(run: Path) -> None:
    for path in ckpt.list_states(run / ckpt.STATE_DIR):
        ckpt.check_finite(ckpt.load_state_file(path))
    for path in run.glob("model/*.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(str(path)).values() if t.is_floating_point())


# ----------------------------------------------------------------------------- failed saves


def small_state(step: int, value: float = 1.0) -> dict:
    return {"format": ckpt.STATE_FORMAT, "step": step, "G": {"w": torch.full((1000,), value)}}


def half_then(exc: BaseException):
    def writer(f, data: bytes) -> None:
        f.write(data[: len(data) // 2])
        raise exc
    return writer


def enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failure", ["exception mid-file", "disk full mid-file", "disk full at manifest commit", "rename fails"])
def test_failed_save_keeps_previous_states_and_leaves_no_partial_file(tmp_path, monkeypatch, failure):
    d = tmp_path / "checkpoints"
    ckpt.save_state(d, 1, small_state(1), keep_last=2)
    ckpt.save_state(d, 2, small_state(2), keep_last=2)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    target = d / "state-00000003.pt"
    if failure == "exception mid-file":
        monkeypatch.setattr(ckpt, "_write_with_test_delay", half_then(RuntimeError("injected")))
        expected = (RuntimeError, "injected")
    elif failure == "disk full mid-file":
        monkeypatch.setattr(ckpt, "_write_with_test_delay", half_then(enospc()))
        expected = (UsageError, f"could not write {target}: No space left on device")
    elif failure == "disk full at manifest commit":
        def full_disk(path, obj):  # the real atomic writer, on a disk that fills up halfway through
            ckpt.atomic_write(path, lambda f: half_then(enospc())(f, json.dumps(obj).encode()))

        monkeypatch.setattr(ckpt, "atomic_write_json", full_disk)
        expected = (UsageError, f"could not write {d / ckpt.MANIFEST}: No space left on device")
    else:
        real_replace = os.replace
        monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(errno.EIO, "Input/output error"))
                            if str(b).endswith(".pt") else real_replace(a, b))
        expected = (UsageError, f"could not write {target}: Input/output error")
    with pytest.raises(expected[0]) as exc:
        ckpt.save_state(d, 3, small_state(3), keep_last=1)  # keep_last=1: rotation would delete 1 and 2
    assert expected[1] in str(exc.value) and "\n" not in str(exc.value)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before  # nothing added, removed or changed
    state, path = ckpt.load_latest_state(d)
    assert path.name == "state-00000002.pt" and state["step"] == 2


def test_rotation_happens_only_after_the_commit(tmp_path, monkeypatch):
    d = tmp_path / "checkpoints"
    events: list[str] = []
    real_json, real_unlink = ckpt.atomic_write_json, Path.unlink
    monkeypatch.setattr(ckpt, "atomic_write_json", lambda p, o: (events.append(f"commit {sorted(o)}"), real_json(p, o))[1])
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: (events.append(f"delete {self.name}"), real_unlink(self, missing_ok))[1])
    for step in (1, 2, 3):
        ckpt.save_state(d, step, small_state(step), keep_last=2)
    assert events[-3:] == ["commit ['state-00000001.pt', 'state-00000002.pt', 'state-00000003.pt']",
                           "delete state-00000001.pt", "commit ['state-00000002.pt', 'state-00000003.pt']"]
    assert [p.name for p in ckpt.list_states(d)] == ["state-00000002.pt", "state-00000003.pt"]


def test_stale_temp_files_from_a_killed_writer_are_removed(tmp_path):
    d = tmp_path / "checkpoints"
    d.mkdir()
    (d / ".state-00000004.pt.abc123.tmp").write_bytes(b"half a state")
    (d / "notes.txt").write_text("mine")
    ckpt.save_state(d, 5, small_state(5), keep_last=2)
    assert sorted(p.name for p in d.iterdir()) == ["manifest.json", "notes.txt", "state-00000005.pt"]


def test_disk_full_during_training_is_one_clear_line(tmp_path, monkeypatch, capsys, digits_npz):
    real, calls = ckpt._write_with_test_delay, []

    def fail_second(f, data):
        calls.append(1)
        return half_then(enospc())(f, data) if len(calls) == 2 else real(f, data)

    monkeypatch.setattr(ckpt, "_write_with_test_delay", fail_second)
    run = tmp_path / "run"
    sets = [x for s in tiny_sets(12) for x in ("--set", s)]
    code, _, err = run_cli(capsys, "train", "--preset", "mlp-mnist", "--data", digits_npz, "--out", run, *sets)
    assert code == 2
    assert one_error_line(err) == f"ganforge: error: could not write {run / 'checkpoints' / 'state-00000008.pt'}: No space left on device"
    assert [p.name for p in ckpt.list_states(run / "checkpoints")] == ["state-00000004.pt"]
    assert ckpt.load_latest_state(run / "checkpoints")[0]["step"] == 4
    assert not list((run / "checkpoints").glob(".*.tmp"))


# ----------------------------------------------------------------------------- corrupt files


@pytest.fixture
def run_with_three_states(tmp_path, digits_npz) -> Path:
    return train(tiny_cfg(12, str(digits_npz)), out=tmp_path / "run")  # states 4, 8, 12


@pytest.mark.parametrize("damage", ["truncate", "flip one bit"])
def test_corrupt_newest_state_is_detected_and_skipped(run_with_three_states, caplog, damage):
    newest = run_with_three_states / "checkpoints" / "state-00000012.pt"
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x10
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="ganforge.checkpoint"):
        state, path = ckpt.load_latest_state(newest.parent)
    assert path.name == "state-00000008.pt" and state["step"] == 8
    assert any("state-00000012.pt is corrupt" in r.getMessage() and "falling back" in r.getMessage() for r in caplog.records)
    # set aside, so that it no longer counts toward keep_last and cannot push out state 8
    assert [p.name for p in ckpt.list_states(newest.parent)] == ["state-00000004.pt", "state-00000008.pt"]
    assert (newest.parent / "state-00000012.pt.corrupt").is_file() and "state-00000012.pt" not in ckpt.read_manifest(newest.parent)
    for p in ckpt.list_states(newest.parent):
        p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(UsageError, match=r"no valid training state .* all corrupt"):
        ckpt.load_latest_state(newest.parent)


def test_resume_falls_back_says_so_on_stderr_and_recomputes_the_same_state(run_with_three_states):
    run = run_with_three_states
    newest = run / "checkpoints" / "state-00000012.pt"
    original = ckpt.load_state_file(newest)
    data = bytearray(newest.read_bytes())
    data[-100] ^= 0x01  # one flipped bit, size unchanged
    newest.write_bytes(bytes(data))
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", str(run)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "state-00000012.pt is corrupt: sha256 does not match" in p.stderr and "falling back" in p.stderr
    assert "from state-00000008.pt (step 8 of 12)" in p.stderr
    resumed = ckpt.load_state_file(newest)  # rewritten by the resumed run: bit-identical to the lost one
    a, b = dict(ckpt._tensors(original)), dict(ckpt._tensors(resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_corrupt_state_set_aside_does_not_push_out_the_valid_one(run_with_three_states):
    """keep_last=2 with a corrupt newest state: resuming from state 8 and checkpointing only at the end
    used to keep the corrupt 12 and delete 8, leaving no valid fallback."""
    run = run_with_three_states
    newest = run / "checkpoints" / "state-00000012.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    cfg = apply_overrides(read_run_config(run / "config.json"), ["train.total_steps=16", "checkpoint.every_steps=0",
                                                                 "checkpoint.keep_last=2"])
    train(cfg, resume=run)
    assert [p.name for p in ckpt.list_states(run / "checkpoints")] == ["state-00000008.pt", "state-00000016.pt"]
    assert ckpt.load_latest_state(run / "checkpoints")[0]["step"] == 16


# ----------------------------------------------------------------------------- untrusted files


class Payload:
    """Unpickling this runs Path(marker).touch(): what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_never_runs(run_with_three_states, tmp_path, capsys):
    run = run_with_three_states
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))  # the payload is live: unpickling it creates a file
    assert probe.exists()

    marker = tmp_path / "pwned"
    evil = run / "checkpoints" / "state-00000016.pt"
    torch.save({"format": ckpt.STATE_FORMAT, "step": 16, "G": Payload(marker)}, evil)
    manifest = json.loads((run / "checkpoints" / "manifest.json").read_text())  # the attacker fixes the manifest too
    manifest[evil.name] = {"sha256": __import__("hashlib").sha256(evil.read_bytes()).hexdigest(), "bytes": evil.stat().st_size, "step": 16}
    (run / "checkpoints" / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ckpt.UnsafeCheckpoint, match=r"refusing to load .*state-00000016\.pt: it is not a plain-tensor checkpoint"):
        ckpt.load_latest_state(run / "checkpoints")  # no fallback to an older state either: the folder is tampered with
    code, _, err = run_cli(capsys, "train", "--resume", run, "--set", "train.total_steps=20")
    line = one_error_line(err)
    assert code == 2 and "refusing to load" in line and "weights_only=False" not in line
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"G": Payload(marker)}))  # a plain (non-zip) pickle
    with pytest.raises(ckpt.UnsafeCheckpoint):
        ckpt.load_state_file(legacy)
    assert not marker.exists()


def test_wrong_architecture_names_keys_and_config_and_touches_nothing(run_with_three_states, digits):
    from ganforge.models import build_generator

    run = run_with_three_states
    config_before = (run / "config.json").read_bytes()
    # the library refuses a changed experiment on resume, as the CLI's --set check does
    with pytest.raises(UsageError, match=r"resuming .*run with a changed experiment: .*model\.g_width=16 \(the run has 32\); "
                                         r"only these may change: train\.total_steps"):
        train(tiny_cfg(16, **{"model.g_width": 16}), resume=run, data=digits)
    # a run whose config.json was edited to a net its training states do not fit
    edited = json.loads(config_before)
    edited["run"]["model"]["g_width"] = 16
    (run / "config.json").write_text(json.dumps(edited))
    with pytest.raises(UsageError) as exc:
        train(resume=run, data=digits)
    msg = str(exc.value)
    assert "G does not fit this model (shape mismatch at" in msg and "file (32," in msg and '"g_width": 32' in msg
    assert json.loads((run / "config.json").read_text()) == edited  # a failed resume writes nothing
    (run / "config.json").write_bytes(config_before)

    # an inference snapshot whose config.json does not match its weights
    meta = json.loads((run / "model" / "config.json").read_text())
    meta["model"]["g_width"] = 16
    (run / "model" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match=r"does not fit this architecture \(shape mismatch at .*model config: .*\"g_width\": 16"):
        ckpt.load_generator(run)
    G = build_generator(tiny_cfg(1, **{"model.g_width": 16}).model)
    before = [p.detach().clone() for p in G.parameters()]
    with pytest.raises(UsageError):
        ckpt.load_state_strict(G, load_file(str(run / "model" / "generator.safetensors")), source="x")
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))


# ----------------------------------------------------------------------------- NaN / Inf


def inject_nan(monkeypatch, d_steps: set[int], times: int = 10**9) -> dict:
    """Make the D loss NaN at the given D step indices (at most `times` times); record D's
    parameters as each D step starts."""
    seen: dict = {"injected": 0, "params": {}}
    original = Objective.discriminator_loss

    def patched(self, D, real, fake, y_real, y_fake, d_step, **kw):
        seen["params"].setdefault(d_step, [p.detach().clone() for p in D.parameters()])
        loss, stats = original(self, D, real, fake, y_real, y_fake, d_step, **kw)
        if d_step in d_steps and seen["injected"] < times:
            seen["injected"] += 1
            loss = loss * float("nan")
        return loss, stats

    monkeypatch.setattr(Objective, "discriminator_loss", patched)
    return seen


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_nonfinite_skip_leaves_parameters_unchanged_and_counts(tmp_path, monkeypatch, caplog, digits):
    seen = inject_nan(monkeypatch, {6})
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):
        run = train(tiny_cfg(12, **{"train.on_nonfinite": "skip"}), out=tmp_path / "run", data=digits)
    assert all(torch.equal(a, b) for a, b in zip(seen["params"][6], seen["params"][7]))  # the NaN update was not applied
    assert not all(torch.equal(a, b) for a, b in zip(seen["params"][5], seen["params"][6]))  # ordinary ones are
    final = ckpt.load_state_file(run / "checkpoints" / "state-00000012.pt")
    assert int(final["opt_d"]["state"][0]["step"]) == 11 and int(final["opt_g"]["state"][0]["step"]) == 12
    assert final["guard"]["skipped"] == 1 and rows(run)[-1]["skipped_updates"] == 1
    assert [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()] == [
        "skipping the D update of step 7: loss nan, gradient norm nan (1 skipped so far)"]
    assert_all_saved_tensors_finite(run)


def test_nonfinite_abort_names_step_and_loss_and_saves_nothing_after(tmp_path, monkeypatch, capsys, digits_npz):
    inject_nan(monkeypatch, {6})
    run = tmp_path / "run"
    sets = [x for s in tiny_sets(12, **{"train.on_nonfinite": "abort"}) for x in ("--set", s)]
    code, _, err = run_cli(capsys, "train", "--preset", "mlp-mnist", "--data", digits_npz, "--out", run, *sets)
    assert code == 1
    assert one_error_line(err).startswith("ganforge: error: training diverged: non-finite d_loss=nan (gradient norm nan) at step 7; train.on_nonfinite=abort")
    assert [p.name for p in ckpt.list_states(run / "checkpoints")] == ["state-00000004.pt"]
    assert [r["step"] for r in rows(run)] == [4]  # no NaN row either
    assert not (run / "model").exists()
    assert_all_saved_tensors_finite(run)


def test_nonfinite_rollback_recovers(tmp_path, monkeypatch, caplog, digits):
    inject_nan(monkeypatch, {6}, times=1)
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):
        run = train(tiny_cfg(12, **{"train.on_nonfinite": "rollback"}), out=tmp_path / "run", data=digits)
    events = [r for r in rows(run) if r.get("event") == "rollback"]
    assert events == [{"step": 7, "event": "rollback", "to_step": 4, "net": "d", "loss": "nan"}]
    assert any("rolled back to state-00000004.pt (rollback 1 of at most 3)" in r.getMessage() for r in caplog.records)
    final = ckpt.load_state_file(run / "checkpoints" / "state-00000012.pt")
    assert final["guard"]["rollbacks"] == 1 and int(final["opt_d"]["state"][0]["step"]) == 12
    assert_all_saved_tensors_finite(run)


def test_nonfinite_rollback_gives_up_after_max_rollbacks(tmp_path, monkeypatch, digits):
    seen = inject_nan(monkeypatch, {6})  # every replay of D step 6 diverges again
    with pytest.raises(NonFiniteError, match=r"at step 7 after 2 rollback\(s\); giving up \(train.max_rollbacks=2\)"):
        train(tiny_cfg(12, **{"train.on_nonfinite": "rollback", "train.max_rollbacks": 2}), out=tmp_path / "run", data=digits)
    assert seen["injected"] == 3
    assert len([r for r in rows(tmp_path / "run") if r.get("event") == "rollback"]) == 2
    assert_all_saved_tensors_finite(tmp_path / "run")


def test_no_state_with_nan_is_ever_written(tmp_path):
    with pytest.raises(ckpt.NonFiniteState, match=r"step 3: G\.w holds NaN/Inf"):
        ckpt.save_state(tmp_path, 3, small_state(3, float("inf")), keep_last=2)
    assert list(tmp_path.iterdir()) == []


def test_guard_reports_the_first_bad_update_in_one_poll():
    g = NonFiniteGuard("abort")
    one = torch.tensor(1.0)
    for step in range(5):
        assert g.allow(step, "d", one * (float("inf") if step >= 2 else 1), one)  # abort never refuses
    with pytest.raises(NonFiniteError, match=r"d_loss=inf .* at step 3;"):
        g.poll()
    assert g.poll() is None  # flags are consumed by the poll


# ----------------------------------------------------------------------------- bad configuration


BAD_CONFIG = [
    (["--set", "optim.lr_g=-1e-4"], "optim.lr_g=-0.0001 must be > 0"),
    (["--set", "optim.lr_d=0"], "optim.lr_d=0.0 must be > 0"),
    (["--set", "train.batch_size=10", "--set", "train.world_size=3"], "train.batch_size=10 must be divisible by train.world_size=3"),
    (["--set", "train.world_size=2"], "train.world_size=2: the number of processes comes from the launcher; leave it at 1 and run torchrun --nproc_per_node 2"),
    (["--set", "train.world_size=0"], "train.world_size=0 must be > 0"),
    (["--set", "perf.precision=fp16"], "perf.precision='fp16' is not allowed: use one of fp32, bf16"),
    (["--set", "train.learning_rate=1"], "unknown key 'learning_rate' in 'train'; allowed: ["),
    (["--set", "optimizer.lr=1"], "unknown section 'optimizer'; allowed: ["),
    (["--set", "train.on_nonfinite=ignore"], "train.on_nonfinite='ignore' is not allowed: use one of abort, skip, rollback"),
    (["--set", "train.max_rollbacks=-1"], "train.max_rollbacks=-1 must be >= 0"),
    (["--set", "data.on_bad_image=ignore"], "data.on_bad_image='ignore' is not allowed: use one of error, skip"),
    (["--set", "data.max_bad_fraction=1.5"], "data.max_bad_fraction=1.5 must be in [0, 1]"),
    (["--set", "checkpoint.every_steps=-5"], "checkpoint.every_steps=-5 must be >= 0"),
    (["--set", "checkpoint.keep_last=0"], "checkpoint.keep_last=0 must be > 0"),
    (["--set", "train.total_steps=ten"], "train.total_steps='ten' is not an integer"),
    (["--set", "train.device=tpu"], "train.device='tpu' is not allowed: use one of auto, cpu, cuda"),
    (["--data", "/no/such/images"], "data source '/no/such/images' does not exist: give an image folder, a .zip, an .npz, or one of"),
    (["--resume", "/no/such/run"], "--resume /no/such/run: not a ganforge run folder (no config.json)"),
    (["--resume", "latest", "--runs-root", "/no/such/root"], "--resume latest: no GAN run folder under /no/such/root"),
]


@pytest.mark.parametrize("args,message", BAD_CONFIG, ids=[" ".join(a) for a, _ in BAD_CONFIG])
def test_bad_configuration_is_rejected_before_any_work(tmp_path, monkeypatch, capsys, args, message):
    import ganforge.training.loop as loop

    def no_data(*a, **k):
        raise AssertionError("data was loaded")

    monkeypatch.setattr(loop, "load_images", no_data)
    fresh = ["--preset", "mlp-mnist", "--out", str(tmp_path / "run")] if "--resume" not in args else []
    code, _, err = run_cli(capsys, "train", *fresh, *args)  # "before any work": no_data above would raise
    assert code == 2
    assert message in one_error_line(err)
    assert not (tmp_path / "run").exists()


def test_resume_rejects_changes_to_the_experiment(run_with_three_states, capsys):
    code, _, err = run_cli(capsys, "train", "--resume", run_with_three_states, "--set", "model.g_width=8")
    assert code == 2 and "--set model.g_width cannot change when resuming; allowed: train.total_steps" in one_error_line(err)
