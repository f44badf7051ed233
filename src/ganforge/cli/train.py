"""`ganforge train`, `ganforge sample`, `ganforge presets`."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import click

from ganforge.config import MAX_SEED, RESUMABLE_KEYS, apply_overrides, dumps
from ganforge.configio import file_base_preset, merge_config, override_key, read_config_file, repeated_overrides
from ganforge.errors import UsageError

log = logging.getLogger("ganforge.train")


def check_resume_overrides(overrides, allowed: tuple[str, ...]) -> None:
    """Refuse a --set of a key outside ``allowed`` on resume: anything else would change the experiment."""
    for item in overrides:
        key = override_key(item)
        if key not in allowed:
            raise UsageError(f"--set {key} cannot change when resuming; allowed: {', '.join(allowed)}")


def _check_source_exists(source: str, resumed: Path | None = None) -> None:
    """``resumed``: the run whose own data.source this is (a dataset that moved has a way out: --data)."""
    from ganforge.data import NAMED_SOURCES

    if source in NAMED_SOURCES or Path(source).exists():
        return
    if resumed is not None:
        raise UsageError(f"data source {source!r} of {resumed} does not exist: if the dataset moved, "
                         f"resume with --data NEW_PATH (it must hold the same images)")
    raise UsageError(
        f"data source {source!r} does not exist: give an image folder, a .zip, an .npz, or one of {', '.join(NAMED_SOURCES)}"
    )


def check_data_option(data_source: str | None, overrides) -> None:
    """--data must name something, and a --set data.source= beside it must agree: which of two
    different datasets wins would otherwise be an accident of the order they are applied in."""
    if data_source is None:
        return
    if not data_source.strip():
        raise UsageError("--data '' is empty: give a dataset name (mnist5k, digits, lfw-faces) or an image "
                         "folder / .zip / .npz path, or leave --data out for the preset's own dataset")
    for item in overrides:
        value = item.partition("=")[2]
        if override_key(item) == "data.source" and value.strip() != data_source:
            raise UsageError(f"--data {data_source!r} and --set data.source={value.strip()!r} name different "
                             "datasets: give only one of them")


# G + D parameters a run may have: 2**30 is 4 GiB of fp32 weights (about 16 GiB with gradients and Adam's
# two moments), hundreds of times the presets' nets. Widths under config.MAX_WIDTH can still exceed it
# (a conv G multiplies its width by 8), and past it the build ends as "can't allocate memory".
MAX_PARAMETERS = 2**30


def check_model_size(model_cfg) -> None:
    """Count G's and D's parameters on the meta device (shapes only, no memory) and refuse a model
    past MAX_PARAMETERS, naming the settings that size it."""
    import torch

    from ganforge.models import build_discriminator, build_generator

    with torch.device("meta"):
        count = sum(p.numel() for net in (build_generator(model_cfg), build_discriminator(model_cfg)) for p in net.parameters())
    if count > MAX_PARAMETERS:
        m = model_cfg
        raise UsageError(f"model.z_dim={m.z_dim}, model.g_width={m.g_width}, model.d_width={m.d_width} at "
                         f"model.resolution={m.resolution} give G and D {count:,} parameters: at most "
                         f"{MAX_PARAMETERS:,} (2**30) are allowed; use smaller widths")


def _check_world_split(cfg) -> None:
    """Under torchrun each process's D sees batch_size / WORLD_SIZE images: check that split's
    minibatch-stddev groups now (config.validate can only check one process)."""
    from ganforge.config import check_batch_split, check_mbstd_group

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1:
        check_batch_split(cfg.train.batch_size, world, cfg.model.pack)
        check_mbstd_group(cfg.model.mbstd_group, cfg.train.batch_size, world, cfg.model.pack)


@click.command("train")
@click.option("--preset", "preset_name", default=None, help="Starting configuration (see `ganforge presets`).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="A config file (.json as `ganforge presets --show` or --dry-run print it, or .toml), whole or only "
                   "the keys to change; it goes over the preset (its own \"preset\" key, if no --preset). "
                   "Precedence: preset < --config < --data < --set.")
@click.option("--data", "data_source", default=None, help="Dataset name (mnist5k, digits, lfw-faces) or image folder / .zip / .npz path.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config value, e.g. train.batch_size=128 (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (must not exist). Default: runs/<number>-<preset>.")
@click.option("--runs-root", type=click.Path(path_type=Path), default=Path("runs"), show_default=True, help="Where numbered run folders go.")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), default=None, help="Continue this run (or 'latest' under --runs-root) from its newest valid checkpoint (with --data: its dataset, moved; the same images).")
@click.option("--dry-run", is_flag=True, help="Validate everything (config, data, model, eval.ref, the state to resume), print the resolved config, train and write nothing.")
def train_cmd(preset_name, config_path, data_source, overrides, out, runs_root, resume_dir, dry_run) -> None:
    """Train a GAN and leave a run folder with samples, metrics, plots and the generator.

    \b
    Examples:
      ganforge train --preset dcgan-mnist
      ganforge train --preset wgan-gp-mnist --set train.total_steps=500 --out runs/wgan-try
      ganforge presets --show dcgan-mnist > my.json   # edit it, then:
      ganforge train --config my.json --set train.seed=1
      ganforge train --preset cgan-mnist --data my_labelled_folder --set model.num_classes=5
      ganforge train --resume runs/00003-dcgan-mnist --set train.total_steps=6000
      ganforge train --resume latest
      ganforge train --resume runs/00003-dcgan-mnist --data /new/place/of/its/images
      torchrun --nproc_per_node 2 -m ganforge train --preset dcgan-mnist   (batch_size is the global batch)
    """
    from ganforge.config import read_run_config
    from ganforge.models import check_model_config

    for note in repeated_overrides(overrides):
        log.warning("%s", note)
    check_data_option(data_source, overrides)
    if resume_dir is not None:
        if preset_name is not None or config_path is not None or out is not None:
            raise UsageError("--resume continues a run with its own config: do not combine it with --preset, --config "
                             "or --out (change what may change with --set)")
        from ganforge.training.rundir import find_run

        resume_dir = find_run(resume_dir, runs_root, kind="gan")  # a run folder, or the newest GAN run under --runs-root
        cfg_path = resume_dir / "config.json"
        check_resume_overrides(overrides, RESUMABLE_KEYS)
        cfg = read_run_config(cfg_path)
        if data_source:  # the run's dataset, moved: the loop checks it holds the same images
            cfg = replace(cfg, data=replace(cfg.data, source=data_source))
    else:
        cfg = _start_config(preset_name, config_path)
        if data_source is not None and preset_name is None and config_path is None:
            log.info("no --preset: training dcgan-mnist (28 x 28 grey, sized for digits) on %s; `ganforge presets` "
                     "lists the others (dcgan-cifar10 and sngan-cifar10: 32 px colour)", data_source)
        if data_source is not None:
            cfg = replace(cfg, data=replace(cfg.data, source=data_source))
    cfg = apply_overrides(cfg, list(overrides))
    if not cfg.data.source:
        raise UsageError(f"preset {cfg.preset!r} has no embedded dataset: give one with --data PATH (an image folder, .zip or .npz)")
    check_model_config(cfg.model)
    check_model_size(cfg.model)
    _check_source_exists(cfg.data.source, None if data_source else resume_dir)
    _check_world_split(cfg)
    # Not under torchrun: there only rank 0 creates the folder, and the loop ends every rank cleanly when
    # that fails (distributed.py); a rank stopping here alone would leave the others waiting to be killed.
    if resume_dir is None and (dry_run or int(os.environ.get("WORLD_SIZE", "1") or 1) == 1):
        from ganforge.training.rundir import check_run_dir

        check_run_dir(out, runs_root)
    from ganforge.training import train

    if dry_run:  # everything up to the first step (data, nets, eval.ref, the state to resume), nothing written
        rank0 = os.environ.get("RANK", "0") == "0"
        if not rank0:  # under torchrun every rank checks (no process group) but only rank 0 reports
            logging.getLogger("ganforge").setLevel(logging.ERROR)
        train(cfg, out=out, runs_root=runs_root, resume=resume_dir, dry_run=True)
        if not rank0:
            return
        click.echo(dumps(cfg))
        where = resume_dir or out or f"{runs_root}/<next number>-{cfg.preset}"
        click.echo(f"dry run: config, data and model are valid; would {'resume' if resume_dir else 'write'} {where}", err=True)
        return
    from ganforge.training.distributed import launched

    with launched(cfg.train.device):  # torchrun: a process group for the run, destroyed however it ends
        run_dir = train(cfg, out=out, runs_root=runs_root, resume=resume_dir)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 reports (and writes) the run
    click.echo(f"run folder: {run_dir}")
    click.echo(f"  samples:   {run_dir / 'samples' / 'final.png'}")
    click.echo(f"  generator: {run_dir / 'model'}  (load with ganforge.load_generator)")


def _start_config(preset_name: str | None, config_path: Path | None):
    """The config a new run starts from: the preset (--preset, else a --config file's own "preset" when it
    names one, else dcgan-mnist) with the file's keys over it (configio.file_base_preset)."""
    from ganforge.config import RunConfig, config_kind, validate
    from ganforge.configio import to_dict
    from ganforge.presets import PRESETS, get_preset

    if config_path is None:
        return get_preset("dcgan-mnist" if preset_name is None else preset_name)
    given = read_config_file(config_path)
    kind = config_kind(given)
    if kind == "gan":  # a GAN run folder's config.json: its config is its "run" object
        given = given["run"] if isinstance(given["run"], dict) else given
    elif kind in ("restore", "restore-model") or (kind == "generator" and not set(given) <= set(to_dict(RunConfig()))):
        if kind == "generator" and "task" in given:  # a flat restoration config, as `ganforge sr train --dry-run` prints
            kind = "restore-flat"
        # a restoration run or model, a saved generator (not a config of only a "model" section): named, not its keys
        what = {"restore": "a restoration run's config.json", "restore-model": "a saved restoration model's config.json",
                "restore-flat": "a restoration training config"}.get(kind, "a saved generator's config.json")
        raise UsageError(f"--config {config_path} is {what}, not a GAN training config: give a file as "
                         "`ganforge presets --show NAME` prints one, or a GAN run's config.json")
    base = file_base_preset(given, config_path, preset_name, PRESETS.__contains__)
    if base is None:
        log.info("no --preset: the keys of %s go over dcgan-mnist's config", config_path)
    return merge_config(get_preset(base or "dcgan-mnist"), given, validate, source=f"--config {config_path}")


@click.command("sample")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--n", "n", type=int, default=64, show_default=True, help="Number of images (at most 1,000,000).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="FILE.npz (uint8 NHWC), FILE.png (grid) or a folder of PNGs.")
@click.option("--class", "class_index", type=int, default=None, help="Class to draw (conditional models).")
@click.option("--per-class", type=int, default=None, help="Conditional models: this many images of every class, "
              "labelled and interleaved 0, 1, ..., K-1, 0, ... (a balanced synthetic training set; replaces --n).")
@click.option("--top-up", type=int, default=None, help="Conditional models: enough images of each class to bring the "
              "training set's count of it up to this (none for a class that has as many): synthetic images for the rare "
              "classes of a long tail. Replaces --n.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Noise seed (same seed, same images).")
@click.option("--truncation", type=float, default=None, help="Truncation trick: redraw noise entries with |z| above "
              "this (e.g. 1.0; at least 0.05): more typical images, less variety. Measure before use: on cgan-mnist it lowered the "
              "share of digits of the asked class (docs/AUGMENTATION.md). Default: plain N(0, 1) noise.")
@click.option("--no-ema", is_flag=True, help="Use the raw generator instead of its EMA copy.")
@click.option("--batch", "batch_size", type=int, default=256, show_default=True, help="Images per forward pass.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--overwrite", is_flag=True, help="Allow replacing an existing --out.")
def sample_cmd(source, n, out, class_index, per_class, top_up, seed, truncation, no_ema, batch_size, device, overwrite) -> None:
    """Draw images from a run folder or a saved generator.

    \b
    Examples:
      ganforge sample runs/00001-dcgan-mnist --n 100 --out grid.png
      ganforge sample runs/00002-cgan-mnist --n 1000 --class 3 --out threes.npz
      ganforge sample runs/00002-cgan-mnist --per-class 500 --out synthetic.npz   # 5000 labelled digits
      ganforge sample runs/00002-cgan-mnist --per-class 500 --truncation 1.0 --out synthetic.npz
      ganforge sample runs/00003-cgan-longtail --top-up 500 --out extra/   # each class's folder up to 500
    """
    from ganforge.metrics.imagesets import MAX_IMAGES
    from ganforge.sampling import (check_count, check_out, check_truncation, folder_names, generate, sample_labels,
                                   save_samples, top_up_counts)
    from ganforge.training.checkpoint import load_generator
    from ganforge.device import resolve_device

    if batch_size <= 0:
        raise UsageError(f"--batch {batch_size} must be > 0")
    check_truncation(truncation)  # before the generator loads
    if per_class is not None and top_up is not None:
        raise UsageError("--per-class and --top-up both set how many images of each class: give one")
    per_class_opt, per_class_value = ("--per-class", per_class) if per_class is not None else ("--top-up", top_up)
    if per_class_value is None:
        per_class_opt = None  # neither: --n images (of --class, or cycling the classes)
    if per_class_opt:
        given = click.get_current_context().get_parameter_source("n") is click.core.ParameterSource.COMMANDLINE
        if given or class_index is not None:
            raise UsageError(f"{per_class_opt} sets the number of images of every class: drop --n and --class")
        if per_class_value < 1:
            raise UsageError(f"{per_class_opt} {per_class_value} must be >= 1")
    else:
        check_count(n)
    check_out(out, overwrite=overwrite)  # the path alone; the files it would replace once n and the classes are known
    G = load_generator(source, ema=not no_ema, device=resolve_device(device, "--device"))
    weights = None  # --top-up: images per class (K,), drawn as generate()'s class_weights
    if per_class_opt:
        if not getattr(G, "num_classes", 0):
            raise UsageError(f"{per_class_opt} needs a conditional generator; {source} is unconditional: use --n")
        if top_up is not None:
            weights = top_up_counts(_class_counts(source, G.num_classes), top_up)
            n = int(weights.sum())
        else:
            n = per_class * G.num_classes  # generate() cycles the classes 0..K-1, so every class gets per_class
            if n > MAX_IMAGES:
                raise UsageError(f"--per-class {per_class} asks for {n:,} images ({G.num_classes} classes); at most "
                                 f"{MAX_IMAGES:,} can be drawn at once: --per-class {MAX_IMAGES // G.num_classes} at most")
    # --per-class/--top-up into a folder: one sub-folder per class, named as the run's class folders were
    class_dirs = _class_dirs(source, G.num_classes) if per_class_opt else None
    labels = sample_labels(n, getattr(G, "num_classes", 0), class_index, weights)
    check_out(out, overwrite=overwrite, names=folder_names(labels, n, class_dirs))  # before generating
    images, labels = generate(G, n, seed=seed, class_index=class_index, batch_size=batch_size, truncation=truncation,
                              class_weights=weights)
    path = save_samples(images, labels, out, overwrite=overwrite, class_dirs=class_dirs)
    click.echo(f"wrote {len(images)} images to {path}")


def _model_meta(source: Path, key: str):
    """``key`` of the saved generator's config.json (its meta: class_names, class_counts), or None."""
    import json

    from ganforge.training.checkpoint import resolve_model_dir

    try:
        return json.loads((resolve_model_dir(source) / "config.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _class_counts(source: Path, k: int) -> list[int]:
    """The training images per class (K,) the generator recorded, for --top-up."""
    counts = _model_meta(source, "class_counts")
    if not (isinstance(counts, list) and len(counts) == k and all(type(c) is int and c >= 0 for c in counts)):
        raise UsageError(f"--top-up needs the training set's images per class, which {source} does not record "
                         "(a generator saved before ganforge recorded them): use --per-class or --class with --n")
    return counts


def _class_dirs(source: Path, k: int) -> list[str]:
    """The run's class names (its data's class folders) when it kept them, else class0 .. class{k-1}."""
    names = _model_meta(source, "class_names")
    ok = isinstance(names, list) and len(names) == k and len(set(map(str, names))) == k
    ok = ok and all(str(s) and Path(str(s)).name == str(s) and not str(s).startswith(".") for s in names)
    return [str(s) for s in names] if ok else [f"class{i}" for i in range(k)]


@click.command("presets")
@click.option("--show", "show", default=None, help="Print one preset's full config as JSON.")
def presets_cmd(show) -> None:
    """List the named starting configurations."""
    from ganforge.presets import PRESETS, get_preset

    if show is not None:  # --show "" is a mistake, not a request for the list
        click.echo(dumps(get_preset(show)))
        return
    width = max(map(len, PRESETS))
    for name, cfg in PRESETS.items():
        click.echo(f"{name:<{width}}  {cfg.description}")
