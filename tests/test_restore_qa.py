"""Restoration QA fixes: --resume of a saved model folder, data.val_crop's minimum, seed ranges, size
caps (width, blocks, D, threads), `export` to an unwritable place, and loss.perceptual_weights
without an adversarial phase. Tiny nets on the photos fixture of test_restore_train.py."""

import json
import logging
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ganforge.apps.pretrained import resolve_model_path, shipped_index
from ganforge.apps.restore_apply import export_restorer, load_restorer, read_restore_run
from ganforge.apps.restore_config import (MAX_PARAMETERS, PRESETS, apply_overrides, check_model_size, count_parameters,
                                          from_dict, get_preset, min_val_crop, to_dict)
from ganforge.apps.restore_data import validation_set
from ganforge.apps.restore_eval import evaluate_restoration
from ganforge.apps.restore_paths import apply_to_path
from ganforge.apps.restore_train import train_restorer
from ganforge.config import MAX_SEED
from ganforge.device import MAX_THREADS
from ganforge.errors import UsageError
import test_restore_models
import test_restore_train
from test_restore_train import _cli, _save_png, tiny

one_thread = test_restore_models.one_thread  # autouse: one torch thread in this module too
photos = test_restore_train.photos  # five small photos (a module-scoped fixture)


def _one_line_error(code, err, *needles):
    """A usage error: exit code 2, one line on stderr naming each of ``needles``, no traceback."""
    assert code == 2, err
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    for needle in needles:
        assert needle in line, line


@pytest.fixture(scope="module")
def run(tmp_path_factory, photos):
    """A finished tiny sr x4 run (config.json, metrics.jsonl, model/, summary.json), copied per test."""
    out = tmp_path_factory.mktemp("qa") / "run"
    train_restorer(tiny("sr-x4", "train.total_steps=1"), out=out, photos=photos)
    return out


def _unfinished(run, tmp_path) -> Path:
    """A copy of ``run`` as an interrupted run leaves it before its first training state: its
    config.json, metrics and the model so far, no summary.json and no checkpoints/."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "summary.json").unlink()
    return copy


# ----------------------------------------------------------------------------- 1. --resume of a model folder


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_refuses_a_saved_model_and_an_export_and_leaves_them_alone(run, tmp_path, capsys):
    run = _unfinished(run, tmp_path)  # resumable itself: only the model folder inside is refused
    export = export_restorer(run, tmp_path / "exported")
    for folder in (run / "model", export):
        before = _snapshot(folder)
        code, out, err = _cli(capsys, "sr", "train", "--resume", str(folder), "--dry-run")
        _one_line_error(code, err, f"{folder} is a saved model", "generator.safetensors", "not a run folder",
                        f"({run})", f"--set train.init_from={folder}")
        code, out, err = _cli(capsys, "sr", "train", "--resume", str(folder))  # not a dry run either
        _one_line_error(code, err, "is a saved model")
        assert _snapshot(folder) == before and not (folder / "model").exists()
        with pytest.raises(UsageError, match="is a saved model"):  # the library call too
            train_restorer(resume=folder)
    assert load_restorer(export).scale == 4  # still a loadable model


def test_a_model_folder_whose_config_a_run_config_overwrote_is_still_refused(run, tmp_path):
    """The damage the old --resume did: the model's config.json replaced by a run's. Its weights beside
    config.json still tell it from a run folder (whose weights are in model/)."""
    folder = tmp_path / "model"
    shutil.copytree(run / "model", folder)
    shutil.copy(run / "config.json", folder / "config.json")
    with pytest.raises(UsageError, match="is a saved model"):
        read_restore_run(folder)


def test_a_run_without_a_training_state_yet_still_restarts(run, tmp_path, photos, caplog):
    run = _unfinished(run, tmp_path)
    assert read_restore_run(run).task == "sr"
    with caplog.at_level(logging.WARNING, "ganforge.restore"):
        assert train_restorer(resume=run, photos=photos, dry_run=True) == run
    assert "has no training state yet: starting it again from step 0" in caplog.text
    assert train_restorer(resume=run, photos=photos) == run
    assert (run / "summary.json").is_file() and (run / "model" / "generator.safetensors").is_file()
    assert "restore" in json.loads((run / "config.json").read_text())


# ----------------------------------------------------------------------------- 2. data.val_crop's minimum


@pytest.mark.parametrize("preset, extra, least", [
    ("sr-x4", [], 16), ("sr-x2", [], 8), ("denoise-s25", [], 4), ("denoise-unet-s25", [], 4),
    ("inpaint-center", [], 4), ("inpaint-center", ["model.arch=unet"], 4),
])
def test_val_crop_below_the_minimum_is_refused_and_the_minimum_validates(preset, extra, least, photos):
    assert min_val_crop(tiny(preset, *extra)) == least
    with pytest.raises(UsageError, match=f"data.val_crop={least - 1} is too small .*at least {least}"):
        tiny(preset, *extra, f"data.val_crop={least - 1}")
    cfg = tiny(preset, *extra, f"data.val_crop={least}")
    (batch,) = validation_set(photos[-1:], cfg)
    assert tuple(batch.target.shape[-2:]) == (least, least)


def test_training_at_the_minimum_val_crop_validates(tmp_path, photos):
    """At the boundary the validation passes run (the start and the end of the phase), where a smaller
    crop used to fail with a traceback at the first validation."""
    for preset in ("denoise-s25", "sr-x4"):
        cfg = tiny(preset, "train.total_steps=1", f"data.val_crop={min_val_crop(tiny(preset))}")
        out = train_restorer(cfg, out=tmp_path / preset, photos=photos)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["phase"] for r in rows if "val_psnr" in r] == ["start", "end-pixel"]
        assert all(r["val_psnr"] > 0 for r in rows if "val_psnr" in r)


def test_cli_val_crop_too_small_is_one_line_at_dry_run(capsys):
    code, out, err = _cli(capsys, "denoise", "train", "--set", "data.val_crop=3", "--dry-run")
    _one_line_error(code, err, "data.val_crop=3", "at least 4")
    code, out, err = _cli(capsys, "sr", "train", "--set", "data.val_crop=15", "--dry-run")
    _one_line_error(code, err, "data.val_crop=15", "at least 16")


def test_a_validation_photo_smaller_than_the_minimum_is_named(photos):
    small = photos[0][:, :12, :20]  # 12 px: no whole x4 validation crop
    with pytest.raises(UsageError, match="validation photo 2 of 2 .* is 20x12: .*at least 16"):
        validation_set([photos[0], small], tiny("sr-x4"))


# ----------------------------------------------------------------------------- 3. seeds


def test_train_seed_is_range_checked():
    for bad in (-1, MAX_SEED + 1, 10**23):
        with pytest.raises(UsageError, match=f"train.seed={bad} is out of range"):
            tiny("sr-x4", f"train.seed={bad}")
    assert tiny("sr-x4", f"train.seed={MAX_SEED}").train.seed == MAX_SEED
    with pytest.raises(UsageError, match="train.seed=-1 is out of range"):  # a config.json too
        from_dict({**to_dict(tiny("sr-x4")), "train": {"seed": -1}})


def test_cli_seeds_out_of_range_are_one_line(tmp_path, capsys, photos):
    data = tmp_path / "data"
    data.mkdir()
    _save_png(data / "a.png", photos[3])
    code, out, err = _cli(capsys, "denoise", "eval", "nlmeans", "--data", str(data), "--seed", "-1")
    _one_line_error(code, err, "--seed", "-1")
    code, out, err = _cli(capsys, "inpaint", "eval", "telea", "--data", str(data), "--mask", "strokes", "--seed", "-1")
    _one_line_error(code, err, "--seed", "-1")
    code, out, err = _cli(capsys, "inpaint", "apply", "inpaint-free", str(data / "a.png"), str(tmp_path / "o.png"),
                          "--mask-kind", "square", "--seed", "99999999999999999999999")
    _one_line_error(code, err, "--seed", "99999999999999999999999")
    assert not (tmp_path / "o.png").exists()
    code, out, err = _cli(capsys, "sr", "train", "--set", "train.seed=-1", "--dry-run")
    _one_line_error(code, err, "train.seed=-1", "out of range")


def test_library_seeds_out_of_range_are_usage_errors(tmp_path, photos):
    from ganforge.apps.classical import make_classical

    with pytest.raises(UsageError, match="seed=-1 is out of range"):
        evaluate_restoration("denoise", make_classical("nlmeans", "denoise", sigma=25.0), [photos[3]], sigma=25.0, seed=-1)
    _save_png(tmp_path / "a.png", photos[3])
    restorer = load_restorer("inpaint-free")
    with pytest.raises(UsageError, match="seed=18446744073709551616 is out of range"):
        apply_to_path(restorer, tmp_path / "a.png", tmp_path / "o.png", mask_kind="square", seed=2**64)
    assert not (tmp_path / "o.png").exists()


# ----------------------------------------------------------------------------- 4. size caps


@pytest.mark.parametrize("override, message", [
    ("model.width=100000", "model.width=100000 is too large: use at most 4096"),
    ("model.blocks=100000", "model.blocks=100000 is too large: use at most 256"),
    ("model.d_width=100000", "model.d_width=100000 is too large: use at most 4096"),
    ("model.d_layers=100000", "model.d_layers=100000 is too large: use at most 8"),
    ("model.width=4096", "G has 6,192,148,483 parameters .* at most 1,073,741,824"),
    ("train.threads=100000", f"train.threads=100000 is too large: use at most {MAX_THREADS}"),
])
def test_sizes_past_the_caps_are_refused(override, message):
    with pytest.raises(UsageError, match=message):
        apply_overrides(get_preset("sr-x4"), [override])


def test_a_discriminator_past_the_cap_is_refused_only_with_an_adversarial_phase():
    cfg = apply_overrides(get_preset("sr-x4"), ["model.d_width=4096"])  # no D is built without phase 2
    assert count_parameters(cfg)[1] == 0
    with pytest.raises(UsageError, match=r"and D 11,275,071,489 \(model.d_width=4096, model.d_layers=3\).*together"):
        apply_overrides(get_preset("srgan-x4"), ["model.d_width=4096"])


def test_d_layers_must_leave_the_patchgan_a_patch():
    with pytest.raises(UsageError, match="model.d_layers=4 halves data.patch_size=32 .* at most 3 layers .* at least 48"):
        tiny("srgan-x4", "model.d_layers=4")
    assert tiny("srgan-x4", "model.d_layers=3").model.d_layers == 3
    assert tiny("sr-x4", "model.d_layers=4").model.d_layers == 4  # no D without phase 2


def test_the_counts_match_the_built_nets_and_every_preset_and_shipped_model_fits():
    from ganforge.apps.restore_models import build_discriminator, build_restorer, count_params

    for name, cfg in PRESETS.items():
        check_model_size(cfg)  # the presets are built at import without it (a circular import)
        g, d = count_parameters(cfg)
        assert g == count_params(build_restorer(cfg)), name
        assert d == (count_params(build_discriminator(cfg)) if cfg.train.adv_steps else 0), name
    cfg = replace(PRESETS["srgan-x4"], model=replace(PRESETS["srgan-x4"].model, d_spectral_norm=False))  # batch norm
    assert count_parameters(cfg)[1] == count_params(build_discriminator(cfg))
    for name in shipped_index():
        meta = json.loads((resolve_model_path(name) / "config.json").read_text())
        assert sum(count_parameters(from_dict(meta["restore"]))) < MAX_PARAMETERS  # from_dict validates


def test_cli_size_caps_are_one_line_and_quick(capsys):
    for override, needle in (("model.width=100000", "model.width=100000"), ("model.blocks=100000", "model.blocks=100000"),
                             ("train.threads=100000", "train.threads=100000")):
        code, out, err = _cli(capsys, "sr", "train", "--set", override, "--dry-run")
        _one_line_error(code, err, needle, "at most")


# ----------------------------------------------------------------------------- 5. export to an unwritable place


def test_export_under_a_file_is_one_line_before_any_work(run, tmp_path, capsys):
    (tmp_path / "in.png").write_bytes(b"not a folder")
    code, out, err = _cli(capsys, "sr", "export", str(run), str(tmp_path / "in.png" / "exp"))
    _one_line_error(code, err, f"cannot write {tmp_path / 'in.png' / 'exp'}", "is a file")
    with pytest.raises(UsageError, match="is a file"):
        export_restorer(tmp_path / "no-such-model", tmp_path / "in.png" / "deeper" / "exp")  # before the model loads


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
def test_export_into_proc_is_one_line(run, capsys):
    code, out, err = _cli(capsys, "sr", "export", str(run), "/proc/ganforge-qa-export")
    _one_line_error(code, err, "cannot write /proc/ganforge-qa-export")


def test_export_removes_the_folders_it_made_when_the_model_fails(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        export_restorer(tmp_path / "no-such-model", tmp_path / "a" / "b" / "exp")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- 6. loss.perceptual_weights


def test_missing_perceptual_weights_are_refused_before_the_photos_load(tmp_path):
    for preset in ("sr-x4", "srgan-x4"):  # without and with the adversarial phase that reads them
        cfg = tiny(preset, f"loss.perceptual_weights={tmp_path / 'vgg.safetensors'}", f"data.source={tmp_path / 'none'}")
        with pytest.raises(UsageError, match="loss.perceptual_weights=.*vgg.safetensors' does not exist"):
            train_restorer(cfg, out=tmp_path / "run", dry_run=True)
    assert not (tmp_path / "run").exists()


def test_cli_missing_perceptual_weights_without_phase_2_is_one_line(capsys):
    code, out, err = _cli(capsys, "sr", "train", "--set", "loss.perceptual_weights=/nonexistent", "--dry-run")
    _one_line_error(code, err, "loss.perceptual_weights='/nonexistent' does not exist", "train.adv_steps > 0")


def test_unused_perceptual_weights_are_warned_about(tmp_path, photos, caplog):
    vgg = tmp_path / "vgg.pth"
    vgg.write_bytes(b"only its existence is checked without phase 2")
    cfg = tiny("sr-x4", "train.total_steps=1", f"loss.perceptual_weights={vgg}")
    with caplog.at_level(logging.WARNING, "ganforge.restore"):
        run = train_restorer(cfg, out=tmp_path / "run", photos=photos)
    assert "loss.perceptual_weights" in caplog.text and "is unused" in caplog.text
    # resumed after the file went: the run cannot change the key, and never reads it, so only a warning
    (run / "summary.json").unlink()
    vgg.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, "ganforge.restore"):
        assert train_restorer(resume=run, photos=photos, dry_run=True) == run
    assert "is missing and unused" in caplog.text


def test_restoration_training_holds_the_run_lock_and_latest_skips_gan_runs(tmp_path, photos):
    # the run lock of GAN training (training/runlock.py) in restoration training too: a second trainer
    # in a held run folder stops in one line before it writes; `latest` picks the newest restoration run
    from ganforge.training.checkpoint import find_run
    from ganforge.training.runlock import run_lock

    run = train_restorer(tiny("denoise-s25", "train.total_steps=2"), photos=photos,
                         runs_root=tmp_path)
    assert not (run / "run.lock").exists()  # released when training ended
    (run / "summary.json").unlink()  # as if stopped before the end: resumable
    (tmp_path / "00009-dcgan-mnist").mkdir()
    (tmp_path / "00009-dcgan-mnist" / "config.json").write_text(json.dumps({"run": {}}))
    assert find_run("latest", tmp_path, kind="restore") == run
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with run_lock(run):
        for dry in (True, False):
            with pytest.raises(UsageError, match=r"is in use by pid \d+"):
                train_restorer(resume=run, photos=photos, runs_root=tmp_path, dry_run=dry)
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing written
