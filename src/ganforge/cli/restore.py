"""`ganforge sr|denoise|inpaint eval ...`: thin over ganforge.apps.restore_eval.

MODEL_OR_METHOD is a classical method (ganforge.apps.classical.CLASSICAL) or a trained model
folder, loaded through ganforge.apps.restore_train.load_restorer (imported only then). The
groups' `train` and `apply` subcommands come from ganforge.cli.restore_train.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ganforge.cli.restore_train import OVERLAP_HELP, PRECISION_OPTION, SELF_ENSEMBLE_OPTION, TILE_OPTION, WORK_SCALE_OPTION
from ganforge.config import MAX_SEED
from ganforge.errors import UsageError

_TASK_HELP = {
    "sr": "Super-resolution: MATLAB-bicubic x2/x4 degradation, scored on Y with border crop = scale.",
    "denoise": "Denoising: additive white Gaussian noise with sigma on the 0..255 scale.",
    "inpaint": "Inpainting: centre / boxes / strokes masks, known pixels kept.",
}
_EXAMPLES = {
    "sr": "ganforge sr eval bicubic --data ../shared/data/sr/Set5 --scale 4\n"
    "  ganforge sr eval runs/00003-sr-x4 --data ../shared/data/sr/Set14 --scale 4 --compare bicubic --strips strips/",
    "denoise": "ganforge denoise eval bm3d --data ../shared/data/sr/Set5 --sigma 25 --json\n"
    "  ganforge denoise eval runs/00004-denoise --data ../shared/data/sr/Set14 --sigma 25 --compare nlmeans",
    "inpaint": "ganforge inpaint eval telea --data ../shared/data/cifar10-test10k.zip --mask center --max-images 1000\n"
    "  ganforge inpaint eval ns --data ../shared/data/sr/Set14 --mask center --crop 240",
}
_DEFAULTS = {"sr": 4, "denoise": 25.0, "inpaint": "center"}  # when neither option nor model says
_PARAM = {"sr": "scale", "denoise": "sigma", "inpaint": "mask"}


def resolve_restorer(name: str, task: str, *, scale, sigma, device: str, tile: int | str, overlap: int | None, work_scale: float = 1.0,
                     self_ensemble: bool = False, precision: str = "fp32", compared_with: str | None = None):
    """A classical method name or a model folder -> a restorer for ``task``. ``work_scale``
    (inpainting models): the factor the image is shrunk by before the network runs;
    ``self_ensemble`` (models): the mean over the 8 rotations / flips of the input (the 2 flips for a net trained with data.rotate=false).
    ``compared_with``: ``name`` is --compare's, and this says where ``scale`` came from (for the error)."""
    from ganforge.apps.classical import CLASSICAL, make_classical

    from ganforge.apps.pretrained import resolve_model_path, shipped_names

    if name in CLASSICAL:
        return make_classical(name, task, scale=scale, sigma=sigma)
    if not resolve_model_path(name).exists():
        raise UsageError(
            f"{name!r} is neither a classical method ({', '.join(CLASSICAL)}), a shipped model "
            f"({', '.join(shipped_names()) or 'none installed'}) nor an existing model folder"
        )
    from ganforge.apps.restore_apply import Restorer, load_restorer_net

    G, cfg, _ = load_restorer_net(name)
    if cfg.task != task:
        raise UsageError(f"model {name} is a {cfg.task} model; use `ganforge {cfg.task} eval`")
    # --sigma is the test images' noise level: a net with a noise-level map is told it; a fixed-level or
    # blind net reads none, and is scored at that level as it is
    level = sigma if task == "denoise" and cfg.model.noise_map else None
    restorer = Restorer(G, cfg, device=device, tile=tile, overlap=overlap, sigma=level, work_scale=work_scale,
                        self_ensemble=self_ensemble, precision=precision)
    if task == "sr" and scale is not None and getattr(restorer, "scale", scale) != scale:
        if compared_with is not None:  # the user may never have typed --scale: name the two models
            raise UsageError(f"--compare {name} is an x{restorer.scale} model but {compared_with} is x{scale}: both "
                             f"must work at one scale; compare with an x{scale} model or a classical method")
        raise UsageError(f"model {name} upscales x{restorer.scale}, not x{scale}; drop --scale or use {restorer.scale}")
    return restorer


def _task_value(task: str, given, restorer):
    """The task parameter: the option if given, else what the model was trained for, else the default."""
    if given is not None:
        return given
    attr = getattr(restorer, _PARAM[task], None) if task != "inpaint" else None
    return attr if attr is not None else _DEFAULTS[task]


def _fmt(v: float) -> str:
    return f"{v:.4f}" if v < 2 else ("inf" if v == float("inf") else f"{v:.2f}")  # SSIM 4 digits, PSNR 2


def print_table(result: dict) -> None:
    """Per-image rows and the mean; with a comparison, the classical method's block first."""
    runs = ([result["compare"]] if "compare" in result else []) + [{"method": result["protocol"]["method"], **result}]
    cols = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
    names = [r["name"] for r in result["per_image"]]
    width = max(len(n) for n in names + ["image"])
    block = 9 * len(cols)
    click.echo(f"{'':<{width}}" + "".join(f"  | {Path(run['method']).name[:block - 1]:<{block - 1}}" for run in runs))
    click.echo(f"{'image':<{width}}" + "".join("  |" + "".join(f"{c:>9}" for c in cols) for _ in runs))
    rows = [(name, [run["per_image"][i] for run in runs]) for i, name in enumerate(names)]
    rows.append(("mean", [run["mean"] for run in runs]))
    for name, values in rows:
        click.echo(f"{name:<{width}}" + "".join("  |" + "".join(f"{_fmt(v[c]):>9}" for c in cols) for v in values))
    p = result["protocol"]
    param = ", ".join(f"{k} {p[k]}" for k in ("scale", "sigma", "mask") if k in p)
    click.echo(f"{p['task']}, {param}, on {p['data']}: {p['n_images']} images, border crop {p['border_crop']}, seed {p['seed']}")


def _eval_command(task: str) -> click.Command:
    @click.command(
        "eval",
        help=f"Score MODEL_OR_METHOD ({task}) on a test set: PSNR/SSIM on RGB and Y, per image and mean.\n\n"
        f"\b\nExamples:\n  {_EXAMPLES[task]}",
    )
    @click.argument("model_or_method")
    @click.option("--data", required=True, help="Test images: a folder (sub-folders too) or a .zip of images.")
    @click.option("--compare", default=None, help="A second method (classical name or model folder) scored side by side.")
    @click.option("--strips", type=click.Path(path_type=Path), default=None, help="Write input | compare | method | ground truth PNGs into this new (or empty) folder.")
    @click.option("--max-images", type=click.IntRange(min=1), default=None, help="Only the first N images (class-balanced for class folders).")
    @click.option("--crop", type=click.IntRange(min=1), default=None, help="Centre-crop every image to CROP x CROP pixels first.")
    @click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Seeds the noise / masks (per image).")
    @TILE_OPTION
    @click.option("--overlap", type=click.IntRange(min=0), default=None, help=f"Models: {OVERLAP_HELP[0].lower()}{OVERLAP_HELP[1:]}")
    @click.option("--device", default="cpu", show_default=True, help="Models: cpu, cuda, cuda:N or auto.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object (mean, per_image, protocol).")
    @SELF_ENSEMBLE_OPTION
    @PRECISION_OPTION
    def cmd(model_or_method, data, compare, strips, max_images, crop, seed, tile, overlap, device, as_json, self_ensemble,
            precision, **task_opt):
        work_scale = task_opt.pop("work_scale", 1.0)
        from ganforge.device import resolve_device

        device = str(resolve_device(device, "--device"))  # cuda without a GPU: one line, before any work
        from ganforge.apps.restore_eval import check_task_args, evaluate_restoration, json_safe
        from ganforge.apps.testsets import load_test_images

        param = _PARAM[task]
        given = task_opt[param]
        if task == "denoise" and given is not None and not given > 0:
            raise UsageError(f"--sigma must be > 0 (on the 0..255 scale), got {given:g}")
        if given is not None:  # fail on a bad value before loading anything
            check_task_args(task, **{k: (given if k == param else None) for k in _PARAM.values()})
        if strips is not None and strips.exists() and (not strips.is_dir() or any(strips.iterdir())):
            raise UsageError(f"--strips {strips} already exists and is not empty; give a new or empty folder")

        if (work_scale != 1 or self_ensemble or precision != "fp32") and _is_classical(model_or_method):
            raise UsageError(f"--work-scale, --self-ensemble and --precision are for models, not for the classical method {model_or_method!r}")

        def build(name: str, value, main: bool = False):
            kw = {"scale": value if task == "sr" else None, "sigma": value if task == "denoise" else None}
            # the scale --compare must match: --scale when given, else the evaluated model's own
            against = None if main else (f"the evaluation (--scale {given})" if given is not None
                                         else f"the evaluated {model_or_method}")
            # the work scale, the self-ensemble and the precision are MODEL_OR_METHOD's, never --compare's
            return resolve_restorer(name, task, **kw, device=device, tile=tile, overlap=overlap,
                                    work_scale=work_scale if main else 1.0, self_ensemble=self_ensemble and main,
                                    precision=precision if main else "fp32", compared_with=against)

        # A classical method needs its parameter now; a model may bring its own (trained scale/sigma).
        restorer = build(model_or_method, _DEFAULTS[task] if given is None and _is_classical(model_or_method) else given, main=True)
        value = _task_value(task, given, restorer)
        other = (compare, build(compare, value)) if compare is not None else None
        images = load_test_images(data, max_images=max_images, crop=crop)
        desc = str(data) + (f", first {max_images}" if max_images else "") + (f", centre crop {crop}x{crop}" if crop else "")
        result = evaluate_restoration(
            task, restorer, images, **{param: value}, seed=seed, strips_dir=strips, method=model_or_method, data=desc, compare=other
        )
        if as_json:
            click.echo(json.dumps(json_safe(result)))
        else:
            print_table(result)

    if task == "sr":
        cmd = click.option("--scale", type=int, default=None, help="Upscaling factor: 2, 3, 4 or 8 (default: the model's, or 4).")(cmd)
    elif task == "denoise":
        cmd = click.option("--sigma", type=float, default=None, help="Noise sigma on the 0..255 scale, > 0 (default: the model's, or 25).")(cmd)
    else:
        cmd = click.option("--mask", default=None, help="center, boxes, strokes or square (default: center).")(cmd)
        cmd = WORK_SCALE_OPTION(cmd)
    return cmd


def _is_classical(name: str) -> bool:
    from ganforge.apps.classical import CLASSICAL

    return name in CLASSICAL


def _group(task: str) -> click.Group:
    @click.group(task, help=f"{_TASK_HELP[task]}\n\n\b\nExamples:\n  {_EXAMPLES[task]}")
    def group() -> None:
        pass

    group.add_command(_eval_command(task))
    return group


sr_cmd = _group("sr")
denoise_cmd = _group("denoise")
inpaint_cmd = _group("inpaint")
RESTORE_GROUPS = (sr_cmd, denoise_cmd, inpaint_cmd)

# `train` and `apply` for each task (ganforge.cli.restore_train).
from ganforge.cli.restore_train import add_train_apply  # noqa: E402

for _task_group in RESTORE_GROUPS:
    add_train_apply(_task_group, _task_group.name)
