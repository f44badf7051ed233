"""`ganforge sr|denoise|inpaint train --config FILE`: a restoration config from a file (as --dry-run prints
it, a run's or saved model's config.json under "restore", or TOML), whole or partial, over the preset;
precedence preset < --config < --data < --set; files of another task or of a GAN refused in one line.
Dry runs on the scikit-image photos: nothing is trained or written."""

import json

from ganforge.apps.restore_config import dumps, get_preset
from test_restore_train import _cli


def _dry(capsys, task, *args):
    """(exit code, the printed config as a dict or None, stderr) of a dry run."""
    code, out, err = _cli(capsys, task, "train", "--dry-run", *args)
    return code, (json.loads(out) if code == 0 else None), err


def _usage(code, err, needle):
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("INFO", "WARNING"))]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err


def test_a_whole_config_printed_by_dry_run_trains_as_given_and_set_goes_over_it(capsys, tmp_path):
    cfg = json.loads(dumps(get_preset("denoise-blind", "denoise")))
    cfg["train"]["total_steps"] = 11
    path = tmp_path / "d.json"
    path.write_text(json.dumps(cfg))
    code, got, _ = _dry(capsys, "denoise", "--config", str(path))
    assert code == 0 and got["preset"] == "denoise-blind" and got["train"]["total_steps"] == 11
    code, got, _ = _dry(capsys, "denoise", "--config", str(path), "--set", "train.total_steps=12")
    assert code == 0 and got["train"]["total_steps"] == 12  # --set over the file


def test_a_partial_file_goes_over_the_preset_and_a_run_config_json_is_unwrapped(capsys, tmp_path):
    part = tmp_path / "p.toml"
    part.write_text("[train]\ntotal_steps = 7\n")
    code, got, _ = _dry(capsys, "sr", "--config", str(part), "--preset", "sr-x2")
    assert code == 0 and got["preset"] == "sr-x2" and got["train"]["total_steps"] == 7
    assert got["model"] == json.loads(dumps(get_preset("sr-x2", "sr")))["model"]  # the rest is the preset's
    run = tmp_path / "config.json"  # a run folder's: the config under "restore"
    run.write_text(json.dumps({"restore": {"task": "sr", "preset": "sr-x2", "train": {"total_steps": 9}}}))
    code, got, _ = _dry(capsys, "sr", "--config", str(run))
    assert code == 0 and got["preset"] == "sr-x2" and got["train"]["total_steps"] == 9  # its own preset as the base


def test_config_files_of_another_task_or_a_gan_and_conflicts_are_one_line(capsys, tmp_path):
    d = tmp_path / "d.json"
    d.write_text(dumps(get_preset("denoise-blind", "denoise")))
    code, _, err = _dry(capsys, "sr", "--config", str(d))
    _usage(code, err, "is a denoise config: train it with `ganforge denoise train --config")
    code, _, err = _dry(capsys, "denoise", "--config", str(d), "--preset", "denoise-s25")
    _usage(code, err, "name different presets")
    g = tmp_path / "g.json"
    code, out, _ = _cli(capsys, "presets", "--show", "dcgan-mnist")
    g.write_text(out)
    code, _, err = _dry(capsys, "sr", "--config", str(g))
    _usage(code, err, "is a GAN training or generator config, not a sr training config")
    code, _, err = _cli(capsys, "train", "--dry-run", "--config", str(d))  # and the GAN side names a restoration config
    _usage(code, err, "is a restoration training config, not a GAN training config")
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"total_stepz": 3}}')
    code, _, err = _dry(capsys, "sr", "--config", str(bad))
    _usage(code, err, "did you mean 'total_steps'?")
    code, _, err = _dry(capsys, "sr", "--config", str(tmp_path / "missing.json"))
    _usage(code, err, "does not exist")
    code, _, err = _cli(capsys, "sr", "train", "--resume", str(tmp_path), "--config", str(d))
    _usage(code, err, "do not combine it with --config")


def test_a_key_set_twice_is_warned_about(capsys, caplog):
    code, got, _ = _dry(capsys, "denoise", "--set", "train.total_steps=3", "--set", "train.total_steps=4")
    assert code == 0 and got["train"]["total_steps"] == 4
    assert "--set train.total_steps is given 2 times ('3', '4'): the last one, '4', is used" in caplog.text
