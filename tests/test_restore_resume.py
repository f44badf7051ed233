"""Interrupting and resuming restoration training: SIGTERM/SIGINT write a training state and the
model so far; `--resume` continues from the newest state to the same weights and metrics as a run
that was never stopped; what may not be resumed is refused with one line."""

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

from ganforge.apps.restore_config import apply_overrides
from ganforge.apps.restore_data import PatchSampler
from ganforge.apps.restore_train import train_restorer
from ganforge.errors import UsageError
from ganforge.training import checkpoint as ckpt
from ganforge.training.guard import TrainingInterrupted
from test_restore_models import one_thread  # noqa: F401  (autouse: one torch thread in this module too)
from test_restore_train import _cli, _save_png, photos, tiny  # noqa: F401  (photos: a module-scoped fixture)

TIMING = {"elapsed_s", "img_per_s"}


def interrupt_at(monkeypatch, call: int) -> None:
    """SIGTERM to this process while the sampler cuts batch number ``call`` (1-based): the loop
    finishes that step, then stops."""
    original, count = PatchSampler.sample, [0]

    def sample(self):
        count[0] += 1
        if count[0] == call:
            signal.raise_signal(signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(PatchSampler, "sample", sample)


def weights(run):
    return {name: load_file(run / "model" / name) for name in ("generator.safetensors", "generator_ema.safetensors")}


def rows(run):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(a, b):
    wa, wb = weights(a), weights(b)
    for name in wa:
        assert wa[name].keys() == wb[name].keys()
        for k in wa[name]:
            assert torch.equal(wa[name][k], wb[name][k]), (name, k)
    assert rows(a) == rows(b)


# srgan-x4: a pixel phase of 4 steps, then an adversarial phase (G and D, two Adams) of 4; a log row
# every 3 steps, so a stop at step 5 (phase 2, step 1) leaves a partly summed row in the state
CFG = ("train.total_steps=4", "train.adv_steps=4", "train.log_every=3", "train.val_every=2")


@pytest.mark.parametrize("stop", [2, 5])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, photos, monkeypatch, stop):
    cfg = tiny("srgan-x4", *CFG)
    straight = train_restorer(cfg, out=tmp_path / "straight", photos=photos)
    interrupt_at(monkeypatch, stop)
    with pytest.raises(TrainingInterrupted, match=rf"SIGTERM after step {stop}; .*ganforge sr train --resume .*stopped") as info:
        train_restorer(cfg, out=tmp_path / "stopped", photos=photos)
    assert info.value.exit_code == 128 + signal.SIGTERM
    monkeypatch.undo()
    run = tmp_path / "stopped"
    assert [p.name for p in ckpt.list_states(run / ckpt.STATE_DIR)] == [f"state-{stop:08d}.pt"]
    # the model so far is usable at once, and says so
    meta = json.loads((run / "model" / "config.json").read_text())
    assert meta["interrupted_at_step"] == stop and not (run / "summary.json").exists()
    assert train_restorer(resume=run, photos=photos) == run
    assert_same_run(straight, run)
    assert json.loads((run / "summary.json").read_text())["phases"].keys() == {"pixel", "adversarial"}
    assert not (run / ckpt.STATE_DIR).exists()  # a finished run keeps its model, not its training states
    assert "interrupted_at_step" not in json.loads((run / "model" / "config.json").read_text())


def test_periodic_states_survive_a_kill(tmp_path, photos, monkeypatch):
    # states every 2 steps, the last 2 kept; a kill -9 after step 5 leaves the state of step 4 (here:
    # the stop's own state of step 5 is deleted), from which the run still ends bit for bit the same
    cfg = tiny("srgan-x4", *CFG, "checkpoint.every_steps=2", "checkpoint.keep_last=2")
    straight = train_restorer(cfg, out=tmp_path / "straight", photos=photos)
    interrupt_at(monkeypatch, 5)
    with pytest.raises(TrainingInterrupted):
        train_restorer(cfg, out=tmp_path / "killed", photos=photos)
    monkeypatch.undo()
    states = run_states = ckpt.list_states(tmp_path / "killed" / ckpt.STATE_DIR)
    assert [p.name for p in run_states] == ["state-00000004.pt", "state-00000005.pt"]
    states[-1].unlink()
    train_restorer(resume=tmp_path / "killed", photos=photos)
    assert_same_run(straight, tmp_path / "killed")


def test_resume_refusals(tmp_path, photos, monkeypatch):
    cfg = tiny("denoise-s25", "train.total_steps=4")
    done = train_restorer(cfg, out=tmp_path / "done", photos=photos)
    with pytest.raises(UsageError, match=rf"has finished \(summary.json\): train a new cycle from it with --set train.init_from={done}"):
        train_restorer(resume=done, photos=photos)
    interrupt_at(monkeypatch, 2)
    with pytest.raises(TrainingInterrupted):
        train_restorer(cfg, out=tmp_path / "stopped", photos=photos)
    monkeypatch.undo()
    other = [p.clone() for p in photos]
    other[0][0, 0, 0] ^= 1  # one pixel of one photo differs
    with pytest.raises(UsageError, match="other training photos .*resume needs the same photos"):
        train_restorer(resume=tmp_path / "stopped", photos=other)
    # a library caller's config may differ from the run's only in RESUMABLE_KEYS, as the CLI's --set
    with pytest.raises(UsageError, match=r"resuming .*stopped with a changed experiment: optim\.lr=0\.5 \(the run has [0-9.e-]+\); "
                                         r"only these may change: train\.progress, "):
        train_restorer(apply_overrides(cfg, ["optim.lr=0.5", "train.log_every=7"]), resume=tmp_path / "stopped", photos=photos)
    assert train_restorer(apply_overrides(cfg, ["train.log_every=7"]), resume=tmp_path / "stopped", photos=photos).name == "stopped"
    gan = tmp_path / "gan"
    gan.mkdir()
    (gan / "config.json").write_text(json.dumps({"run": {}}))
    with pytest.raises(UsageError, match="is a GAN run, not a restoration run: resume it with `ganforge train --resume"):
        train_restorer(resume=gan, photos=photos)


def test_a_run_stopped_before_its_first_state_starts_again(tmp_path, photos, monkeypatch):
    cfg = tiny("denoise-s25", "train.total_steps=4", "train.log_every=1")
    straight = train_restorer(cfg, out=tmp_path / "straight", photos=photos)
    interrupt_at(monkeypatch, 3)
    with pytest.raises(TrainingInterrupted):
        train_restorer(cfg, out=tmp_path / "run", photos=photos)
    monkeypatch.undo()
    for p in ckpt.list_states(tmp_path / "run" / ckpt.STATE_DIR):
        p.unlink()  # as if killed before any state was written
    train_restorer(resume=tmp_path / "run", photos=photos)
    assert_same_run(straight, tmp_path / "run")  # the metrics rows of the first attempt are gone


def test_cli_resume(tmp_path, capsys, photos, monkeypatch):
    data = tmp_path / "photos"
    data.mkdir()
    for i, p in enumerate(photos):
        _save_png(data / f"{i}.png", p)
    sets = [a for item in ["train.total_steps=4", "train.log_every=1", "data.val_crop=48", "data.val_images=1",
                           "model.width=8", "model.blocks=2", "train.batch_size=4", "data.patch_size=32",
                           "train.progress=false", "train.device=cpu", "train.max_minutes=0"] for a in ("--set", item)]
    run = tmp_path / "run"
    interrupt_at(monkeypatch, 2)
    code, out, err = _cli(capsys, "sr", "train", "--data", str(data), "--out", str(run), *sets)
    monkeypatch.undo()
    assert code == 128 + signal.SIGTERM and f"continue with: ganforge sr train --resume {run}" in err
    assert "Traceback" not in err
    for args, needle in [
        (("sr", "train", "--resume", str(run), "--preset", "sr-x2"), "do not combine it with --preset"),
        (("sr", "train", "--resume", str(run), "--set", "model.width=16"), "--set model.width cannot change when resuming; allowed:"),
        (("denoise", "train", "--resume", str(run)), f"is a sr run: resume it with `ganforge sr train --resume {run}`"),
        (("sr", "train", "--resume", str(tmp_path / "nope")), "not a ganforge run folder"),
    ]:
        code, out, err = _cli(capsys, *args)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (args, err)
    # the photos moved: the run names the old folder; --data gives the new one, which must hold the same photos
    moved, other = tmp_path / "moved", tmp_path / "other"
    data.rename(moved)
    other.mkdir()
    for i, p in enumerate(photos):
        p = p.clone()
        p[0, 0, 0] ^= i == 0  # one pixel of one photo differs
        _save_png(other / f"{i}.png", p)
    for args, needle in [
        ((), f"data source '{data}' of {run} does not exist: if the photos moved, resume with --data NEW_PATH"),
        (("--data", str(other)), "other training photos than"),
    ]:
        code, out, err = _cli(capsys, "sr", "train", "--resume", str(run), *args)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (args, err)
    code, out, err = _cli(capsys, "sr", "train", "--resume", str(run), "--data", str(moved), "--set", "train.log_every=2")
    assert code == 0, err
    assert (run / "summary.json").is_file() and f"run folder: {run}" in out
    assert json.loads((run / "config.json").read_text())["restore"]["data"]["source"] == str(moved)
    code, out, err = _cli(capsys, "sr", "train", "--resume", str(run))
    assert code == 2 and "has finished" in err


def test_a_relative_data_source_is_stored_absolute_so_a_resume_elsewhere_finds_the_same_photos(tmp_path, capsys, photos, monkeypatch):
    """A run trained on --data photos from a/ and resumed from b/, which holds another photos/: the run's
    config.json names a/photos, so the resume reads the photos it trained on (it used to read b/photos
    and refuse them as other training photos)."""
    for where, flip in (("a", 0), ("b", 1)):
        (tmp_path / where / "photos").mkdir(parents=True)
        for i, p in enumerate(photos):
            p = p.clone()
            p[0, 0, 0] ^= flip
            _save_png(tmp_path / where / "photos" / f"{i}.png", p)
    sets = [a for item in ["train.total_steps=4", "train.log_every=1", "data.val_crop=48", "data.val_images=1",
                           "model.width=8", "model.blocks=2", "train.batch_size=4", "data.patch_size=32",
                           "train.progress=false", "train.device=cpu", "train.max_minutes=0"] for a in ("--set", item)]
    monkeypatch.chdir(tmp_path / "a")
    interrupt_at(monkeypatch, 2)
    code, out, err = _cli(capsys, "denoise", "train", "--data", "photos", "--out", str(tmp_path / "run"), *sets)
    assert code == 128 + signal.SIGTERM, err
    monkeypatch.undo()
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["restore"]["data"]["source"]
    assert stored == str((tmp_path / "a" / "photos").resolve())
    monkeypatch.chdir(tmp_path / "b")
    code, out, err = _cli(capsys, "denoise", "train", "--resume", str(tmp_path / "run"))
    assert code == 0, err
    assert (tmp_path / "run" / "summary.json").is_file()


def test_dry_run_builds_everything_up_to_the_first_step_and_writes_nothing(tmp_path, capsys, photos, monkeypatch):
    """--dry-run loads the photos, builds the nets with init_from (a shipped name too) and, for a resume,
    loads the newest valid state: the errors the real run would give, before it, and no file touched."""
    data = tmp_path / "photos"
    data.mkdir()
    for i, p in enumerate(photos):
        _save_png(data / f"{i}.png", p)
    small = ["--set", "data.patch_size=32", "--set", "data.val_crop=48", "--set", "data.val_images=1", "--set", "train.device=cpu"]
    root = tmp_path / "runs"
    code, out, err = _cli(capsys, "sr", "train", "--preset", "srgan-x4", "--data", str(data), "--set", "train.init_from=sr-x4",
                          "--runs-root", str(root), "--dry-run", *small)
    assert code == 0 and '"init_from": "sr-x4"' in out and "would write" in err, err
    assert not root.exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("x")
    for args, needle in [
        (("denoise", "train", "--set", "train.init_from=sr-x4"), "(it is a sr model)"),
        (("sr", "train", "--preset", "sr-x2", "--set", "train.init_from=sr-x4"), "(it upscales x4, this run x2)"),
        (("sr", "train", "--set", "train.init_from=nope"), "train.init_from='nope' does not exist: give a sr run or model folder, or a shipped sr model (sr-x4)"),
        (("sr", "train", "--out", str(tmp_path / "full")), "already exists and is not empty"),
        (("denoise", "train", "--set", "train.batch_size=4", "--set", "data.patch_size=1024"), "are smaller than data.patch_size=1024"),
    ]:
        code, out, err = _cli(capsys, *args[:2], "--data", str(data), "--dry-run", *small, *args[2:])  # args' --set last: they win
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO")]
        assert code == 2 and len(lines) == 1 and needle in lines[0], (args, err)
    # a stopped run, its newest state damaged: the dry run resumes from the older one, sets nothing aside
    cfg = tiny("denoise-s25", "train.total_steps=6", "checkpoint.every_steps=2", "checkpoint.keep_last=2")
    interrupt_at(monkeypatch, 5)
    with pytest.raises(TrainingInterrupted):
        train_restorer(cfg, out=tmp_path / "stopped", photos=photos)
    monkeypatch.undo()
    states = ckpt.list_states(tmp_path / "stopped" / ckpt.STATE_DIR)
    states[-1].write_bytes(states[-1].read_bytes()[:-10])
    before = {p.relative_to(tmp_path / "stopped"): p.stat().st_mtime_ns for p in (tmp_path / "stopped").rglob("*")}
    assert train_restorer(resume=tmp_path / "stopped", photos=photos, dry_run=True) == tmp_path / "stopped"
    assert {p.relative_to(tmp_path / "stopped"): p.stat().st_mtime_ns for p in (tmp_path / "stopped").rglob("*")} == before
