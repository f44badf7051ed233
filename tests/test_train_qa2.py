"""Second QA pass on `ganforge train`: --set keys that suggest the close one, a key given twice with two
values said, config files (--config FILE, JSON or TOML) and their precedence, JSON values of the wrong
type, LR schedules that silently do not decay or jump on an extended resume, an EMA that cannot follow G,
a capped sample grid, and a metrics file that cannot be written."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import pytest

from ganforge.cli import main
from ganforge.config import apply_overrides, dumps, from_dict
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.presets import get_preset
from ganforge.training import checkpoint as ckpt
from ganforge.training import logger, train
from ganforge.training.ema import ema_notes
from ganforge.training.schedule import schedule_notes


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", resolution=8, channels=1)


TINY = ["data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=8",
        "model.g_width=16", "model.d_width=16", "train.batch_size=16", "train.progress=false", "train.log_every=2",
        "train.sample_every=0", "train.sample_grid=4", "checkpoint.every_steps=4", "train.threads=1"]


def tiny(steps: int, *extra: str):
    """An 8x8 MLP GAN on the digits: a step takes milliseconds."""
    return apply_overrides(get_preset("mlp-mnist"), [*TINY, f"train.total_steps={steps}", *extra])


def one_line_error(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    errors = [line for line in err if not line.startswith(("INFO", "WARNING"))]
    assert code == 2 and len(errors) == 1 and errors[0].startswith("ganforge: error: "), err
    assert not any("Traceback" in line for line in err)
    return errors[0]


def dry_config(capsys, *args) -> dict:
    """The resolved config `ganforge train ... --dry-run` prints."""
    code = main(["train", *map(str, args), "--dry-run"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


# ----------------------------------------------------------------------------- 1. --set


@pytest.mark.parametrize("item,needle", [
    ("train.steps=5", "unknown key 'steps' in 'train'; allowed: ['augment', "),
    ("train.steps=5", "'world_size'] (did you mean 'total_steps'?)"),
    ("train.batch=5", "(did you mean 'batch_size'?)"),
    ("train.emadecay=0.9", "(did you mean 'ema_decay'?)"),
    ("trian.total_steps=5", "unknown section 'trian'; allowed: ['checkpoint', "),
    ("trian.total_steps=5", "'train'] (did you mean 'train'?)"),
    # no section: the section that has the key, never one that does not (it said "e.g. train.lr_g")
    ("lr_g=1e-3", "(did you mean optim.lr_g?)"),
    ("preset=wgan-mnist", "the top-level key 'preset' is not a setting: it comes from the preset (--preset"),
])
def test_a_mistyped_set_key_names_the_close_one(item, needle):
    with pytest.raises(UsageError) as exc:
        apply_overrides(get_preset("dcgan-mnist"), [item])
    assert needle in str(exc.value)


def test_a_key_given_twice_with_two_values_is_said_and_the_last_wins(capsys, caplog):
    # scripts append a --set to a shared list (tests/test_resume.py does), so the last wins; but a value the
    # user typed that an alias's or a script's later one overrides was silently not used
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):
        cfg = dry_config(capsys, "--set", "train.total_steps=5", "--set", "train.total_steps=50")
    assert cfg["train"]["total_steps"] == 50
    assert [r.message for r in caplog.records if "given" in r.message] == [
        "--set train.total_steps is given 2 times ('5', '50'): the last one, '50', is used"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):  # the same value twice (spaces aside) is harmless
        assert dry_config(capsys, "--set", "train.seed=5", "--set", "train.seed = 5")["train"]["seed"] == 5
    assert not [r for r in caplog.records if "given" in r.message]


def test_integers_may_be_written_as_whole_floats_but_not_as_fractions():
    cfg = apply_overrides(get_preset("dcgan-mnist"), ["train.total_steps=2e3", "checkpoint.every_steps=500.0"])
    assert cfg.train.total_steps == 2000 and cfg.checkpoint.every_steps == 500
    for bad in ("train.total_steps=2.5e0", "train.total_steps=1e400", "train.seed=1e300"):
        with pytest.raises(UsageError, match="is not an integer|out of range"):
            apply_overrides(get_preset("dcgan-mnist"), [bad])


@pytest.mark.parametrize("value", [None, ["translation"], {"a": 1}, 3])
def test_a_json_value_of_the_wrong_type_for_a_string_is_refused_not_turned_into_text(value):
    # it was str(value): data.source "None", train.augment "['translation']"
    d = json.loads(dumps(get_preset("dcgan-mnist")))
    d["eval"]["ref"] = value
    with pytest.raises(UsageError, match=r"eval.ref=.* is not a string"):
        from_dict(d)


# ----------------------------------------------------------------------------- 2. --config FILE


def test_a_config_printed_by_presets_show_trains_as_that_preset(capsys, tmp_path):
    path = tmp_path / "my.json"
    main(["presets", "--show", "wgan-mnist"])
    path.write_text(capsys.readouterr().out)
    cfg = dry_config(capsys, "--config", path)
    assert cfg == json.loads(dumps(get_preset("wgan-mnist")))


def test_config_precedence_is_preset_then_file_then_data_then_set(capsys, tmp_path):
    part = tmp_path / "part.toml"  # only some keys, TOML; no "preset": it goes over --preset
    part.write_text('[train]\ntotal_steps = 7\nseed = 3\n[optim]\nlr_g = 1e-3\n[data]\nsource = "lfw-faces"\n')
    cfg = dry_config(capsys, "--preset", "mlp-mnist", "--config", part, "--data", "digits", "--set", "train.seed=4")
    assert cfg["preset"] == "mlp-mnist" and cfg["model"]["arch"] == "mlp"  # the preset
    assert cfg["train"]["total_steps"] == 7 and cfg["optim"]["lr_g"] == 1e-3  # the file over it
    assert cfg["data"]["source"] == "digits" and cfg["train"]["seed"] == 4  # --data and --set over the file
    named = tmp_path / "named.json"  # a file naming its preset starts from it without --preset
    named.write_text(json.dumps({"preset": "wgan-mnist", "train": {"total_steps": 5}}))
    cfg = dry_config(capsys, "--config", named)
    assert cfg["preset"] == "wgan-mnist" and cfg["train"]["n_critic"] == 5 and cfg["train"]["total_steps"] == 5
    line = one_line_error(capsys, "train", "--preset", "dcgan-mnist", "--config", named, "--dry-run")
    assert "--preset dcgan-mnist and --config" in line and "name different presets" in line


@pytest.mark.parametrize("name,text,needle", [
    ("bad.json", '{"train": {"total_steps": 5,}}', "is not valid JSON: Expecting property name"),
    ("bad.toml", '[train]\ntotal_steps = "x\n', "is not valid TOML: "),
    ("c.yaml", "train:\n  total_steps: 5\n", "YAML is not read; write the config as JSON (.json) or TOML (.toml)"),
    ("c.txt", "{}", "unknown config file type '.txt'"),
    ("list.json", "[1, 2]", "holds a JSON list: it must be an object of sections"),
    ("unk.json", '{"train": {"totl_steps": 5}}', "unknown key(s) ['totl_steps'] in section 'train': allowed ['augment', "),
    ("unk2.json", '{"train": {"totl_steps": 5}}', "'world_size'] (did you mean 'total_steps'?)"),
    ("typ.json", '{"train": {"total_steps": "many"}}', "train.total_steps='many' is not an integer"),
    ("sec.json", '{"train": 5}', "config section 'train' must be an object"),
    ("range.toml", "[train]\nema_decay = 1.0\n", "train.ema_decay=1.0 must be in [0, 1)"),
])
def test_a_bad_config_file_is_one_line_naming_it(capsys, tmp_path, name, text, needle):
    (tmp_path / name).write_text(text)
    line = one_line_error(capsys, "train", "--config", tmp_path / name, "--dry-run")
    assert f"--config {tmp_path / name}" in line and needle in line


def test_a_run_folders_config_json_trains_as_that_run_and_other_folders_configs_are_named(capsys, tmp_path, digits):
    run = train(tiny(2, "train.seed=7"), out=tmp_path / "run", data=digits)
    cfg = dry_config(capsys, "--config", run / "config.json")
    assert cfg["train"]["seed"] == 7 and cfg["model"]["arch"] == "mlp" and cfg["train"]["total_steps"] == 2
    line = one_line_error(capsys, "train", "--config", run / "model" / "config.json", "--dry-run")
    assert "model/config.json is a saved generator's config.json, not a GAN training config" in line
    (tmp_path / "sr.json").write_text(json.dumps({"restore": {"task": "sr"}}))
    assert "is a restoration run's config.json" in one_line_error(capsys, "train", "--config", tmp_path / "sr.json")
    (tmp_path / "model.json").write_text(json.dumps({"model": {"z_dim": 12}}))  # only a model section: a config
    assert dry_config(capsys, "--config", tmp_path / "model.json")["model"]["z_dim"] == 12


def test_a_missing_config_or_a_folder_or_with_resume_is_refused(capsys, tmp_path):
    assert one_line_error(capsys, "train", "--config", tmp_path / "no.json").endswith("no.json does not exist")
    assert one_line_error(capsys, "train", "--config", tmp_path).endswith("is a folder, not a config file")
    (tmp_path / "c.json").write_text("{}")
    line = one_line_error(capsys, "train", "--resume", tmp_path, "--config", tmp_path / "c.json")
    assert "do not combine it with --preset, --config or --out" in line


# ----------------------------------------------------------------------------- 3. LR schedules


def test_a_decay_that_never_starts_is_said(capsys, caplog):
    # dcgan-mnist decays from step 4000: a shortened run silently kept its LR constant
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):
        dry_config(capsys, "--preset", "dcgan-mnist", "--data", "digits", "--set", "train.total_steps=20")
    assert any("optim.decay_start_step=4000, which a run of train.total_steps=20 never reaches" in r.message
               for r in caplog.records)
    assert schedule_notes("constant", 20, 4000) == [] and schedule_notes("linear", 8000, 4000) == []


def test_extending_a_decayed_run_says_the_lr_jumps(tmp_path, digits, caplog):
    run = train(tiny(8, "optim.schedule=linear"), out=tmp_path / "run", data=digits)
    with caplog.at_level(logging.INFO):
        train(tiny(16, "optim.schedule=linear"), resume=run, data=digits)
    said = [r.message for r in caplog.records if r.name == "ganforge.config"]  # the allowed change is said
    assert said == [f"resuming {run} with train.total_steps=16 (the run has 8)"]
    notes = [r.message for r in caplog.records if "the run had 8" in r.message]
    assert notes == ["train.total_steps=16 (the run had 8) with optim.schedule=linear: the learning rates follow "
                     "the new schedule from step 8 on, at 0.5 x their base value where the old one had 0 x"]
    assert ckpt.load_latest_state(run / ckpt.STATE_DIR)[0]["step"] == 16


def test_an_ema_without_warm_up_that_cannot_leave_its_initial_weights_is_said(capsys, caplog):
    with caplog.at_level(logging.WARNING, logger="ganforge.train"):
        dry_config(capsys, "--preset", "mlp-mnist", "--data", "digits", "--set", "train.total_steps=100",
                   "--set", "train.ema_warmup=false")
    assert any("train.ema_decay=0.999 with train.ema_warmup=false keeps 90% of G's random initial weights" in r.message
               for r in caplog.records)
    assert ema_notes(0.999, True, 100) == [] and ema_notes(0.9, False, 100) == [] and ema_notes(0.0, False, 1) == []


def test_the_sample_grid_is_capped_before_any_work():
    with pytest.raises(UsageError, match=r"train.sample_grid=100000 is too large: use at most 1024"):
        apply_overrides(get_preset("dcgan-mnist"), ["train.sample_grid=100000"])


# ----------------------------------------------------------------------------- 4. metrics file


class _FullDisk:
    """A file whose third write fails as a full disk does."""

    def __init__(self, f):
        self.f, self.writes = f, 0

    def write(self, text):
        self.writes += 1
        if self.writes == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(text)

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()


def test_a_full_disk_at_a_metrics_row_is_one_line_not_a_traceback(capsys, tmp_path, monkeypatch):
    real_init = logger.MetricsLog.__init__

    def init(self, path):
        real_init(self, path)
        self._f = _FullDisk(self._f)

    monkeypatch.setattr(logger.MetricsLog, "__init__", init)
    run = tmp_path / "run"
    sets = [x for s in [*TINY, "train.total_steps=12"] for x in ("--set", s)]
    line = one_line_error(capsys, "train", "--preset", "mlp-mnist", "--out", run, *sets)
    assert line.startswith(f"ganforge: error: could not write {run / 'metrics.jsonl'}: No space left on device")
    assert ckpt.load_latest_state(run / ckpt.STATE_DIR)[0]["step"] == 4  # the state before it is kept


# ----------------------------------------------------------------------------- 5. the command line and train()'s arguments


@pytest.mark.parametrize("args", [[], ["sr"]])
def test_no_command_prints_the_commands_not_an_error_wrapped_around_them(capsys, args):
    assert main(args) == 2  # a usage error, as click >= 8.2 has it
    err = capsys.readouterr().err
    assert err.startswith(f"{' '.join(['ganforge', *args])}: no command given (the commands are listed below)")
    assert "Commands:" in err and "error: Usage" not in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["--version"], ["train", "--help"], ["presets", "--help"], ["sr", "train", "--help"]])
def test_version_and_help_exit_0(capsys, args):
    assert main(args) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("kw,needle", [
    ({"out": 5}, "out=5 is not a folder path"), ({"resume": 5}, "resume=5 is not a folder path"),
    ({"runs_root": None}, "runs_root=None is not a folder path"),
])
def test_train_names_a_folder_argument_that_is_not_a_path(kw, needle):
    with pytest.raises(UsageError, match=needle):  # it was Python's "expected str, bytes or os.PathLike object"
        train(tiny(2), **kw)


def test_a_library_dry_run_refuses_the_out_folder_the_run_would(tmp_path, digits):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists and is not empty"):  # the dry run said it was fine
        train(tiny(2), out=tmp_path / "taken", data=digits, dry_run=True)
    assert train(tiny(2), out=tmp_path / "new", data=digits, dry_run=True) is None
    assert not (tmp_path / "new").exists() and (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_a_sample_grid_that_cannot_be_written_saves_the_state_first(tmp_path, digits, monkeypatch, caplog):
    # the grid at a step boundary is drawn before that boundary's state is saved: a full disk there lost
    # every step since the last checkpoint (here all three)
    from ganforge.training import loop
    from ganforge.training.logger import read_metrics

    def full_disk(*args, **kwargs):
        raise UsageError("could not write samples/step-00000003.png: No space left on device")

    monkeypatch.setattr(loop, "save_png", full_disk)
    cfg = tiny(5, "train.sample_every=3")
    with caplog.at_level(logging.WARNING, logger="ganforge"), pytest.raises(UsageError, match="No space left"):
        train(cfg, data=digits, out=tmp_path / "run")
    run = tmp_path / "run"
    assert [p.name for p in ckpt.list_states(run / ckpt.STATE_DIR)] == ["state-00000003.pt"]
    assert "the sample grid at step 3 failed; saved" in caplog.text
    monkeypatch.undo()
    train(resume=run, data=digits)  # goes on from step 3
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "d_loss" in r] == [2, 4, 5]  # log_every=2


def test_a_metrics_row_with_a_step_that_is_not_a_number_is_dropped_on_resume_not_a_traceback(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "d_loss": 1}\n{"step": null}\n{"step": "x"}\n{"step": 3}\n{"event": "x"}\n')
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        assert ckpt.trim_metrics(path, 2) == 3  # null, "x" and the row past step 2
    assert path.read_text() == '{"step": 1, "d_loss": 1}\n{"event": "x"}\n'
    assert "whose step is not a number" in caplog.text
