"""`ganforge sr|denoise|inpaint train`, `... apply` and `... export`: thin click commands over
ganforge.apps.restore_train / restore_apply. ``add_train_apply(group, task)`` adds both to one of
the task groups defined in cli/restore.py."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import click

from ganforge.config import MAX_SEED
from ganforge.errors import UsageError

_EXAMPLES = {
    "sr": ("ganforge sr train --preset sr-x4 --data photos/ --set train.max_minutes=15",
           "ganforge sr train --preset srgan-x4 --data photos/ --set train.init_from=runs/00001-sr-x4 --set train.total_steps=0",
           "ganforge sr train --resume runs/00001-sr-x4",
           "ganforge sr train --resume runs/00001-sr-x4 --data /new/place/of/photos",
           "ganforge sr apply runs/00001-sr-x4 small.png big.png --tile 128"),
    "denoise": ("ganforge denoise train --preset denoise-unet-s25 --data photos/",
                "ganforge denoise train --preset denoise-blind --set train.total_steps=200 --dry-run",
                "ganforge denoise apply runs/00002-denoise-unet-s25 noisy/ clean/"),
    "inpaint": ("ganforge inpaint train --preset inpaint-center --data cifar10.zip --set data.patch_size=32",
                "ganforge inpaint apply runs/00003-inpaint-center photo.png out.png --mask holes.png",
                "ganforge inpaint apply runs/00003-inpaint-center photos/ out/ --mask-kind center\n"
                "  ganforge inpaint apply inpaint-free erased.png filled.png --mask-kind alpha"),
}


def _examples(task: str) -> str:
    return "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in _EXAMPLES[task])


def make_train_cmd(task: str) -> click.Command:
    from ganforge.apps.restore_config import DEFAULT_PRESET, PRESETS

    names = [n for n, p in PRESETS.items() if p.task == task]
    width = max(map(len, names))
    presets = "\n\n\b\nPresets:\n" + "\n".join(f"  {n:<{width}}  {PRESETS[n].description}" for n in names)

    @click.command("train", help=f"Train a {task} network and leave a run folder with config.json, metrics.jsonl and model/."
                   + presets + _examples(task))
    @click.option("--preset", "preset_name", default=DEFAULT_PRESET[task], show_default=True, help=f"Starting configuration: {', '.join(names)}.")
    @click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                  help="A config file (.json as --dry-run prints it, a run's or model's config.json, or .toml), whole or "
                       "only the keys to change; it goes over the preset (its own \"preset\" key, if no --preset). "
                       "Precedence: preset < --config < --data < --set.")
    @click.option("--data", "data_source", default=None, help="A folder (recursive) or .zip of photos. Default: scikit-image's sample photos.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. train.total_steps=500 (repeatable).")
    @click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (must be new or empty). Default: runs/<number>-<preset>.")
    @click.option("--runs-root", type=click.Path(path_type=Path), default=Path("runs"), show_default=True, help="Where numbered run folders go.")
    @click.option("--resume", "resume_dir", type=click.Path(path_type=Path), default=None,
                  help="Continue this interrupted run (or 'latest' under --runs-root) from its newest training state (with --data: its photos, moved).")
    @click.option("--dry-run", is_flag=True, help="Validate everything (config, photos, nets, init_from, the state to resume), print the resolved config, train and write nothing.")
    def train_cmd(preset_name, config_path, data_source, overrides, out, runs_root, resume_dir, dry_run) -> None:
        from ganforge.apps.restore_config import apply_overrides, dumps
        from ganforge.configio import repeated_overrides

        for note in repeated_overrides(overrides):
            logging.getLogger("ganforge.restore").warning("%s", note)
        source = click.get_current_context().get_parameter_source  # --preset has a default: ask whether it was typed
        typed_preset = source("preset_name") == click.core.ParameterSource.COMMANDLINE
        if resume_dir is not None:
            from ganforge.apps.restore_config import RESUMABLE_KEYS
            from ganforge.apps.restore_train import read_restore_run
            from ganforge.cli.train import check_resume_overrides
            from ganforge.training.rundir import find_run

            given = [flag for flag, name in (("--preset", "preset_name"), ("--out", "out"), ("--config", "config_path"))
                     if source(name) == click.core.ParameterSource.COMMANDLINE]
            if given:
                raise UsageError(f"--resume continues a run with its own config: do not combine it with {', '.join(given)}")
            resume_dir = find_run(resume_dir, runs_root, kind="restore")
            check_resume_overrides(overrides, RESUMABLE_KEYS)
            cfg = read_restore_run(resume_dir)
            if cfg.task != task:
                raise UsageError(f"{resume_dir} is a {cfg.task} run: resume it with `ganforge {cfg.task} train --resume {resume_dir}`")
            if data_source:  # the run's photos, moved: the training state's digest must match them
                cfg = replace(cfg, data=replace(cfg.data, source=data_source))
        else:
            cfg = _start_config(task, preset_name if typed_preset else None, config_path)
            if data_source:
                cfg = replace(cfg, data=replace(cfg.data, source=data_source))
        cfg = apply_overrides(cfg, list(overrides))
        if cfg.data.source != "skimage" and not Path(cfg.data.source).exists():
            if resume_dir is not None and not data_source:
                raise UsageError(f"data source {cfg.data.source!r} of {resume_dir} does not exist: if the photos moved, "
                                 "resume with --data NEW_PATH (the same photos)")
            raise UsageError(f"--data {cfg.data.source!r} does not exist: give a folder or .zip of photos")
        if cfg.train.init_from and resume_dir is None:
            from ganforge.apps.pretrained import resolve_model_path, shipped_index

            if not resolve_model_path(cfg.train.init_from).exists():  # a folder, or a shipped model's name
                mine = sorted(name for name, entry in shipped_index().items() if entry.get("task") == task)
                raise UsageError(f"train.init_from={cfg.train.init_from!r} does not exist: give a {task} run or model "
                                 f"folder" + (f", or a shipped {task} model ({', '.join(mine)})" if mine else ""))
        if resume_dir is None:
            from ganforge.training.rundir import check_run_dir

            check_run_dir(out, runs_root)  # before the photos load and the nets are built
        from ganforge.apps.restore_train import train_restorer

        if dry_run:  # everything up to the first step (photos, nets, init_from, the state to resume), nothing written
            train_restorer(cfg, out=out, runs_root=runs_root, resume=resume_dir, dry_run=True)
            click.echo(dumps(cfg))
            where = resume_dir or out or f"{runs_root}/<next number>-{cfg.preset}"
            click.echo(f"dry run: config, photos and model are valid; would {'resume' if resume_dir else 'write'} {where}", err=True)
            return
        run_dir = train_restorer(cfg, out=out, runs_root=runs_root, resume=resume_dir)
        click.echo(f"run folder: {run_dir}")
        click.echo(f"  model:    {run_dir / 'model'}  (ganforge {task} apply {run_dir} INPUT OUTPUT)")

    return train_cmd


def _start_config(task: str, preset_name: str | None, config_path: Path | None):
    """The config a new run starts from: the preset (--preset, else a --config file's own "preset" when it
    names one of this task's, else the task's default) with the file's keys over it. The file may be a flat
    config (as --dry-run prints it) or a run's or saved model's config.json (the config under "restore")."""
    from ganforge.apps.restore_config import DEFAULT_PRESET, PRESETS, get_preset, validate
    from ganforge.config import config_kind
    from ganforge.configio import file_base_preset, merge_config, read_config_file

    if config_path is None:
        return get_preset(preset_name or DEFAULT_PRESET[task], task)
    given = read_config_file(config_path)
    kind = config_kind(given)
    if kind in ("restore", "restore-model") and isinstance(given["restore"], dict):
        given = given["restore"]
    elif kind == "gan" or (kind == "generator" and "task" not in given):  # a flat restoration config has "task"
        raise UsageError(f"--config {config_path} is a GAN {'run folder' if kind == 'gan' else 'training or generator'} "
                         f"config, not a {task} training config: give a file as `ganforge {task} train --dry-run` prints one, "
                         "or a restoration run's config.json")
    if given.get("task", task) != task:
        raise UsageError(f"--config {config_path} is a {given['task']} config: train it with "
                         f"`ganforge {given['task']} train --config {config_path}`")
    base = file_base_preset(given, config_path, preset_name, lambda name: name in PRESETS and PRESETS[name].task == task)
    return merge_config(get_preset(base or DEFAULT_PRESET[task], task), given, validate, source=f"--config {config_path}")


# Inpainting: run the network on the image shrunk by this factor (holes larger than it was trained on).
class AutoOr(click.ParamType):
    """"auto", or a number of type ``kind`` that ``ok`` accepts (``what`` names the allowed values):
    --tile (Restorer's tile) and --work-scale (its work_scale)."""

    def __init__(self, kind: type, ok, what: str):
        self.kind, self.ok, self.what = kind, ok, what
        self.name = {int: "INTEGER", float: "FLOAT"}[kind] + "|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip().lower() == "auto":  # the help shows AUTO: any case
            return "auto"
        try:
            v = self.kind(value)
        except (TypeError, ValueError):
            v = None
        if v is None or isinstance(value, bool) or not self.ok(v):
            self.fail(f"{value!r} is not {self.what} or 'auto'", param, ctx)
        return v


def work_scale_option(default: float | str):
    """--work-scale: eval defaults to 1 (the protocol names any other factor), apply to auto."""
    return click.option(
        "--work-scale", type=AutoOr(float, lambda v: 0 < v <= 1, "a factor in (0, 1]"), default=default, show_default=True,
        help="Inpaint the image shrunk by this factor (0 < f <= 1), then upsample the fill: use "
        "(training hole) / (your hole), e.g. 0.53 for a net trained on 64-px holes and a 120-px hole; "
        "auto: that ratio per image, from the depth of its hole and of the holes the net was trained on, "
        "never below (training patch) / (image side).")


WORK_SCALE_OPTION = work_scale_option(1.0)


TILE_OPTION = click.option(
    "--tile", type=AutoOr(int, lambda v: v >= 0, "an integer >= 0"), default="auto", show_default=True,
    help="Models: run the network on tiles of this many input pixels, --overlap pixels of context each, at least "
    "max(8, overlap / 4) (0 = the whole image at once; auto = tile only an image too large to run whole in a few GB: 2048/scale px tiles for SR, 1536 "
    "for denoising, 768 for inpainting).")


# --overlap's default is the model's own tile_overlap (ganforge.apps.restore_apply.Restorer)
OVERLAP_HELP = "Context pixels around each tile. [default: the model's own: 32; 64 for the U-Net denoiser; 160 for the inpainting nets]"
SELF_ENSEMBLE_OPTION = click.option(
    "--self-ensemble", is_flag=True,
    help="Models: average the outputs on the 8 rotations / flips of the input (EDSR+; 8x slower; the 2 flips for a net trained with data.rotate=false).")


# Restorer's precision (ganforge.apps.restore_apply.PRECISIONS)
PRECISION_OPTION = click.option(
    "--precision", type=click.Choice(["fp32", "bf16", "auto"]), default="fp32", show_default=True,
    help="Models: fp32 (exact), bf16 (autocast, channels-last: about 3x faster on a CPU with native bf16, "
    "output within about one 8-bit level) or auto (bf16 where native).")


def make_apply_cmd(task: str) -> click.Command:
    from ganforge.apps.degrade import APPLY_MASK_KINDS

    what = {"sr": "low-resolution", "denoise": "noisy", "inpaint": "damaged"}[task]

    @click.command("apply", help=f"Restore a {what} image file, or every image in a folder, with a trained {task} model."
                   + _examples(task))
    @click.argument("model", type=click.Path(path_type=Path))
    @click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
    @click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path))
    @TILE_OPTION
    @click.option("--overlap", type=int, default=None, help=OVERLAP_HELP)
    @click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
    @click.option("--force", "--overwrite", "force", is_flag=True, help="Overwrite existing output files.")
    @click.option("--no-ema", is_flag=True, help="Use the raw weights instead of the EMA copy.")
    @SELF_ENSEMBLE_OPTION
    @PRECISION_OPTION
    def apply_cmd(model, input_path, output_path, tile, overlap, device, force, no_ema, self_ensemble, precision, **extra) -> None:
        from ganforge.apps.restore_apply import Restorer, load_restorer_net
        from ganforge.apps.restore_paths import apply_to_path
        from ganforge.apps.restore_files import plan_outputs
        from ganforge.device import resolve_device

        device = resolve_device(device, "--device")  # before any work: cuda without a GPU is a usage error
        if overlap is not None and overlap < 0:
            raise UsageError(f"--overlap {overlap} must be >= 0")
        sigma = extra.get("sigma")
        if sigma is not None and not 0 < sigma <= 255:
            raise UsageError(f"--sigma {sigma:g} must be in (0, 255]: the noise level on the 0..255 scale")
        # refuse bad paths before loading the model (said once: apply_to_path logs what it leaves out)
        plan_outputs(input_path, output_path, force=force, mask=extra.get("mask"), say=False)
        G, cfg, _ = load_restorer_net(model, ema=not no_ema)
        if cfg.task != task:  # before the task's own options are checked against the model
            raise UsageError(f"{model} is a {cfg.task} model: use `ganforge {cfg.task} apply`")
        # Restorer refuses a --sigma the net would not read (restore_apply.check_sigma)
        restorer = Restorer(G, cfg, device=device, tile=tile, overlap=overlap, sigma=sigma,
                            work_scale=extra.get("work_scale", 1.0), self_ensemble=self_ensemble, precision=precision)
        written = apply_to_path(restorer, input_path, output_path, mask_path=extra.get("mask"),
                                mask_kind=extra.get("mask_kind"), seed=extra.get("seed", 0), force=force, progress=True)
        click.echo(f"wrote {len(written)} image(s): {written[0] if len(written) == 1 else output_path}")

    if task == "inpaint":
        apply_cmd = work_scale_option("auto")(apply_cmd)
        apply_cmd = click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                                 help="Seed of --mask-kind boxes|strokes.")(apply_cmd)
        apply_cmd = click.option("--mask-kind", type=click.Choice(APPLY_MASK_KINDS),
                                 default=None, help="Cut a generated hole of this kind out of INPUT, then fill it; "
                                 "alpha: fill INPUT's own transparent pixels (alpha < 255: erase the region in an "
                                 "image editor, save as PNG); the output is then opaque.")(apply_cmd)
        apply_cmd = click.option("--mask", type=click.Path(path_type=Path), default=None,
                                 help="Mask image of INPUT's size: white = missing (on a transparent mask: what is painted); "
                                 "for a folder INPUT, a folder of masks named as its images.")(apply_cmd)
    if task == "denoise":
        apply_cmd = click.option("--sigma", type=float, default=None,
                                 help="Noise level (0..255) for a blind model trained with a noise-level map "
                                 "(model.noise_map); other denoisers read no level.")(apply_cmd)
    return apply_cmd


def make_export_cmd(task: str) -> click.Command:
    @click.command("export", help=f"Write a deployable copy of a trained {task} model: one set of weights (the EMA copy "
                   "by default), stored as fp16 unless --dtype fp32. OUT must be new or empty."
                   f"\n\n\b\nExample:\n  ganforge {task} export runs/00003-{task} models/{task}-fp16")
    @click.argument("model", type=click.Path(path_type=Path))
    @click.argument("out", type=click.Path(path_type=Path))
    @click.option("--dtype", default="fp16", show_default=True, help="fp16 or fp32.")
    @click.option("--no-ema", is_flag=True, help="Export the raw weights instead of the EMA copy.")
    def export_cmd(model, out, dtype, no_ema) -> None:
        from ganforge.apps.restore_apply import export_restorer

        written = export_restorer(model, out, dtype=dtype, ema=not no_ema, task=task)
        size = sum(f.stat().st_size for f in written.iterdir()) / 1e6
        click.echo(f"wrote {written} ({size:.1f} MB, {dtype})")

    return export_cmd


def add_train_apply(group: click.Group, task: str) -> None:
    """Add `train`, `apply` and `export` to the click group of ``task`` (sr | denoise | inpaint)."""
    if task not in ("sr", "denoise", "inpaint"):
        raise ValueError(f"unknown restoration task {task!r}")
    group.add_command(make_train_cmd(task))
    group.add_command(make_apply_cmd(task))
    group.add_command(make_export_cmd(task))
