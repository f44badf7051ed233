"""`ganforge eval`, `ganforge eval-pair`, `ganforge evaluator fit|list`: thin over ganforge.metrics
(evaluate, evaluate_pairs, the extractor registry) and ganforge.evaluators (fit functions)."""

from __future__ import annotations

import json
import logging
import math
import shlex
import sys
from pathlib import Path

import click

from ganforge.config import MAX_EVAL_SEED, MAX_SEED
from ganforge.errors import UsageError
from ganforge.metrics.distribution import MAX_KID_SUBSETS

log = logging.getLogger("ganforge.eval")

def _json_ready(obj):
    """Non-finite floats (PSNR of identical images) as strings, so the output is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_ready(v) for v in obj]
    return obj


def _device(device: str) -> str:
    """--device cpu | cuda | cuda:N | auto -> the device to run on; cuda without one is a UsageError."""
    from ganforge.device import resolve_device

    return str(resolve_device(device, "--device"))


@click.command("eval")
@click.argument("target")
@click.option("--metrics", default=None, help="Comma-separated: fid, kid, is, pr, dc, classes, labels. Default: fid,kid,is,pr,dc,classes, "
              "and labels (label agreement) for a class-conditional generator whose classes the evaluator reads.")
@click.option("--evaluator", "evaluator", default=None, help="Feature extractor (see `ganforge evaluator list`). Default: for a run "
              "or saved generator, the one its training used (eval.evaluator); otherwise auto: mnist-clf for grey images, "
              "cifar10-clf for RGB (read from --ref, else TARGET; other sizes are resized, with a warning).")
@click.option("--ref", default=None, help="Reference images: dataset name, .npz, image folder or .zip. Default: for a run, its "
              "eval.ref or its training data; otherwise the evaluator's own set (mnist5k for mnist-clf).")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="Images: drawn from a generator (default 10000), or a random subset of a file TARGET (default: all).")
@click.option("--n-ref", type=click.IntRange(min=1), default=None, help="Random subset of the reference (default: all of it).")
@click.option("--seed", type=click.IntRange(0, MAX_EVAL_SEED), default=0, show_default=True, help="Generator noise, subset draws and KID subsets.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=256, show_default=True, help="Images per forward pass (does not change the values).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True, help="Extractor arithmetic.")
@click.option("--kid-subsets", type=click.IntRange(1, MAX_KID_SUBSETS), default=100, show_default=True, help="KID: random subsets.")
@click.option("--kid-subset-size", type=click.IntRange(min=2), default=None, help="KID: images per subset (at most the size of either set)  [default: 1000, or the smaller set's size]")
@click.option("--pr-k", type=click.IntRange(min=1), default=3, show_default=True, help="Precision/recall: k-th neighbour.")
@click.option("--dc-k", type=click.IntRange(min=1), default=5, show_default=True, help="Density/coverage: k-th neighbour.")
@click.option("--is-splits", type=click.IntRange(min=1), default=10, show_default=True, help="IS: splits.")
@click.option("--inception-weights", type=click.Path(path_type=Path), default=None, help="inception-v3-fid: pytorch-fid's pt_inception-2015-12-05-6726825d.pth (or $GANFORGE_INCEPTION_WEIGHTS).")
@click.option("--inception-sha256", default=None, help="inception-v3-fid: required sha256 of another Inception weights file.")
@click.option("--evaluator-weights", type=click.Path(path_type=Path), default=None, help="mnist-clf / cifar10-clf: a .safetensors (with its .json) written by `ganforge evaluator fit`.")
@click.option("--no-ema", is_flag=True, help="Generator targets: use the raw generator instead of its EMA copy.")
@click.option("--class-mix", type=click.Choice(["reference", "uniform"]), default="reference", show_default=True,
              help="Class-conditional generators: draw the classes in the reference's proportions (when it is labelled "
              "with the generator's classes; else uniform), or uniformly (cycling 0..K-1).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached reference statistics.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: each metric under its name, plus `protocol`.")
def eval_cmd(target, metrics, evaluator, ref, n, n_ref, seed, batch_size, device, dtype, kid_subsets, kid_subset_size,
             pr_k, dc_k, is_splits, inception_weights, inception_sha256, evaluator_weights, no_ema, class_mix, no_cache,
             as_json) -> None:
    """Score TARGET (a run folder, saved generator, .npz, image folder or .zip) against reference images.

    Reference statistics are cached under $GANFORGE_CACHE (default ~/.cache/ganforge), keyed on the
    reference pixels and the extractor; every result carries the protocol that produced it.

    \b
    Examples:
      ganforge eval runs/00001-dcgan-mnist --metrics fid,kid,pr --n 10000
      ganforge eval samples.npz --ref ../shared/data/mnist-test10k.npz --json
      ganforge eval runs/00004-sngan-cifar10 --evaluator inception-v3-fid \\
          --inception-weights pt_inception-2015-12-05-6726825d.pth --ref cifar10-test10k.zip --n 50000
    """
    from ganforge.metrics.evaluation import MetricOptions, evaluate, parse_metrics
    from ganforge.metrics.run_defaults import default_metrics, resolve_defaults

    if metrics is not None:
        parse_metrics(metrics)  # unknown names fail before anything loads
    evaluator, ref = resolve_defaults(target, evaluator, ref)  # here, not in evaluate: the weights options need the name
    if metrics is None:
        metrics = default_metrics(target, evaluator)
    if evaluator == "inception-v3-fid":
        if evaluator_weights is not None:
            raise UsageError("--evaluator-weights is for mnist-clf / cifar10-clf; give Inception's file with --inception-weights")
        weights, sha = inception_weights, inception_sha256
    else:
        if inception_weights is not None or inception_sha256 is not None:
            raise UsageError(f"--inception-weights/--inception-sha256 only apply to --evaluator inception-v3-fid, not {evaluator}")
        weights, sha = evaluator_weights, None
    result = evaluate(
        target, metrics=metrics, evaluator=evaluator, ref=ref, n=n, n_ref=n_ref, seed=seed, batch_size=batch_size,
        device=_device(device), dtype=dtype, cache=not no_cache, ema=not no_ema, weights=weights, sha256=sha,
        class_mix=class_mix, options=MetricOptions(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, pr_k=pr_k,
                                                   dc_k=dc_k, is_splits=is_splits),
    )
    if as_json:
        click.echo(json.dumps(_json_ready(result.to_dict()), indent=2))
        return
    values = result.values
    for key, value in values.items():
        if key.endswith("_std"):
            continue
        std = values.get(f"{key}_std")
        click.echo(f"{key:<16} {value:.6g}" + (f" ± {std:.2g}" if std is not None else ""))
    p = result.protocol
    ex = p["extractor"]
    click.echo(
        f"protocol: {p['n_generated']} generated vs {p['n_real']} real ({_ref_name(p['reference'])}, "
        f"reference cache {p['reference']['cache']}), seed {p['seed']}, {ex['name']} sha256 {ex['weights_sha256'][:12]}, "
        f"resize {ex['resize']}, {ex['dtype']}, ganforge {p['ganforge_version']}"
        + (f" at {p['ganforge_commit'][:12]}" + ("+dirty" if p["ganforge_commit"].endswith("+dirty") else "")
           if p.get("ganforge_commit") else "")
        + _classes_note(p["target"]),
        err=True,
    )


def _classes_note(ident: dict) -> str:
    """A conditional generator's class mix for the protocol line: "; classes: reference class frequencies"
    or "; classes: classes cycling 0..K-1 (the reference has no labels)"; "" for any other target."""
    if ident.get("kind") != "generator" or "labels" not in ident:
        return ""
    return f"; classes: {ident['labels']}" + (f" ({ident['labels_note']})" if ident.get("labels_note") else "")


def _ref_name(ident: dict) -> str:
    """The reference's name for the protocol line: a built-in name, a path, or the run's training data."""
    if ident.get("kind") == "training data":
        return f"the run's training data {ident['source']} at {'x'.join(map(str, ident['image_shape'][1:]))}"
    return ident.get("name") or ident.get("path") or ident.get("kind", "")


def _seeds(ctx, param, value: str) -> list[int]:
    try:
        seeds = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers (e.g. 0,1,2)") from None
    if bad := [s for s in seeds if not 0 <= s <= MAX_EVAL_SEED]:
        raise click.BadParameter(f"{bad[0]} is out of range: evaluation seeds are integers from 0 to {MAX_EVAL_SEED} (2**32 - 2)")
    return seeds


@click.command("compare")
@click.argument("targets", nargs=-1, required=True)
@click.option("--metrics", default=None, help="Comma-separated, as for eval. Default: eval's, with labels only if every target has it.")
@click.option("--evaluator", default=None, help="Feature extractor. Default: the targets' own (as for eval), which must agree.")
@click.option("--ref", default=None, help="Reference images. Default: the targets' own (a run's training data), which must be the same images.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None, help="Images per target: drawn from a generator (default 10000), or a random subset of a file (default: all).")
@click.option("--n-ref", type=click.IntRange(min=1), default=None, help="Random subset of the reference (default: all of it).")
@click.option("--seeds", default="0", show_default=True, callback=_seeds, help="Evaluation seeds, comma-separated: each target is scored once per seed, and the table shows mean ± standard error.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=256, show_default=True, help="Images per forward pass.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--inception-weights", type=click.Path(path_type=Path), default=None, help="inception-v3-fid: the weights file (or $GANFORGE_INCEPTION_WEIGHTS).")
@click.option("--no-ema", is_flag=True, help="Generator targets: use the raw generator instead of its EMA copy.")
@click.option("--class-mix", type=click.Choice(["reference", "uniform"]), default="reference", show_default=True,
              help="Class-conditional generators: as for eval; every one must end with the same mix.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached reference statistics.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: rows (per target and metric: mean, se, values, diff_mean, diff_se), seeds, protocol.")
def compare_cmd(targets, metrics, evaluator, ref, n, n_ref, seeds, batch_size, device, inception_weights, no_ema,
                class_mix, no_cache, as_json) -> None:
    """Score several run folders, generators or image sets under one protocol: the same evaluator,
    reference, image count and seeds. Each row after the first also shows its difference from the
    first, seed by seed (the same seed draws the same noise for every generator of one z size).

    The ± over --seeds is the evaluation's noise (which images were drawn), not training noise. A
    TARGET of comma-separated runs is a group, the runs of one recipe with different train.seed: its
    value is the mean over its runs, its ± the spread over the runs (training noise), and its
    difference from the first row is unpaired.

    \b
    Examples:
      ganforge compare runs/00001-dcgan-mnist runs/00002-wgan-gp-mnist --seeds 0,1,2
      ganforge compare runs/00001-dcgan-mnist runs/00001-dcgan-mnist/best --metrics fid,pr --json
      ganforge compare runs/dcgan-s0,runs/dcgan-s1,runs/dcgan-s2 runs/lsgan-s0,runs/lsgan-s1,runs/lsgan-s2
    """
    from ganforge.metrics.comparison import compare

    if inception_weights is not None and evaluator != "inception-v3-fid":
        raise UsageError("--inception-weights needs --evaluator inception-v3-fid")
    entries = [t.split(",") if "," in t and not Path(t).exists() else t for t in targets]  # "a,b": a group
    c = compare(entries, metrics=metrics, evaluator=evaluator, ref=ref, n=n, n_ref=n_ref, seeds=seeds,
                batch_size=batch_size, device=_device(device), cache=not no_cache, ema=not no_ema,
                weights=inception_weights, class_mix=class_mix)
    if as_json:
        click.echo(json.dumps(_json_ready(c.to_dict()), indent=2))
        return
    rows = c.rows()

    def cell(v: dict, diff: bool) -> str:
        text = f"{v['mean']:.4g}" + (f" ± {v['se']:.2g}" if v["se"] is not None else "")
        if diff:
            text += f" ({v['diff_mean']:+.3g}" + (f" ± {v['diff_se']:.2g}" if v["diff_se"] is not None else "") + ")"
        return text

    grouped = any(r["runs"] > 1 for r in rows)
    table = [["target", *(["runs"] if grouped else []), *c.keys]]
    table += [[r["target"], *([str(r["runs"])] if grouped else []), *(cell(r[k], i > 0) for k in c.keys)]
              for i, r in enumerate(rows)]
    widths = [max(len(line[j]) for line in table) for j in range(len(table[0]))]
    for line in table:
        click.echo("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip())
    p = c.protocol
    click.echo(f"protocol: {p['n_generated']} images per target vs {p['n_real']} real ({_ref_name(p['reference'])}), "
               f"seeds {','.join(map(str, c.seeds))}, {p['extractor']['name']} sha256 {p['extractor']['weights_sha256'][:12]}; "
               "± and (+d ± se): over the seeds, the difference from the first target seed by seed"
               + ("; for a group of runs over its runs, the difference unpaired" if grouped else ""),
               err=True)


@click.command("eval-pair")
@click.argument("pred")
@click.argument("gt")
@click.option("--metrics", default="psnr,ssim", show_default=True, help="Comma-separated: psnr, ssim, ms_ssim.")
@click.option("--y-channel", is_flag=True, help="Compare the BT.601 luma (Y) of RGB images.")
@click.option("--crop", type=click.IntRange(min=0), default=0, show_default=True, help="Border pixels dropped on each side.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: mean per metric, per_image, protocol.")
def eval_pair_cmd(pred, gt, metrics, y_channel, crop, as_json) -> None:
    """Full-reference metrics of PRED against GT: two image files, two folders (or .zip) matched by
    file name, or two .npz with equal-shape `images`.

    \b
    Examples:
      ganforge eval-pair sr_out/ ../shared/data/sr/Set5 --metrics psnr,ssim --y-channel --crop 4
      ganforge eval-pair restored.png clean.png --json
    """
    from ganforge.metrics.pairs import evaluate_pairs

    r = evaluate_pairs(pred, gt, metrics=metrics, y_channel=y_channel, crop=crop)
    if as_json:
        click.echo(json.dumps(_json_ready(r.to_dict()), indent=2))
        return
    width = max(len(name) for name in r.per_image)
    for name, vals in r.per_image.items():
        click.echo(f"{name:<{width}}  " + "  ".join(f"{m} {v:.4f}" for m, v in vals.items()))
    click.echo(f"{'mean':<{width}}  " + "  ".join(f"{m} {v:.4f}" for m, v in r.mean.items()))


@click.group("evaluator")
def evaluator_cmd() -> None:
    """List the feature extractors and fit the classifier ones."""


@evaluator_cmd.command("list")
def list_cmd() -> None:
    """One line per extractor: name, what it is, where its weights come from."""
    from ganforge.metrics.extractors import EXTRACTORS

    width = max(map(len, EXTRACTORS))
    for name, spec in EXTRACTORS.items():
        click.echo(f"{name:<{width}}  {spec.description}\n{'':<{width}}  weights: {spec.weights_hint}")


def _check_fit_out(out: Path, overwrite: bool) -> None:
    """The weights file and its sidecar are the user's work (fitted weights, possibly an hour's): replace
    them only with --overwrite. The default cache path too: a second fit there would replace the first.
    Its folder must be creatable and writable before the fit starts."""
    from ganforge.io import check_can_write

    if out.suffix != ".safetensors":
        raise UsageError(f"--out {out} must end in .safetensors (its sidecar is the same name with .json)")
    sidecar = out.with_suffix(".json")
    for path in (out, sidecar):
        if path.is_dir():
            raise UsageError(f"--out {out}: {path} is a folder; give a new .safetensors file name")
    taken = [str(p) for p in (out, sidecar) if p.exists()]
    if taken and not overwrite:
        raise UsageError(f"{' and '.join(taken)} already exist{'s' if len(taken) == 1 else ''}: give another --out, "
                         "or pass --overwrite to replace the weights and their sidecar")
    check_can_write(out.parent, f"--out {out}")  # a file in the way or a read-only folder: now, not after the fit


@evaluator_cmd.command("fit")
@click.argument("name")
@click.option("--data", default=None, help="Training images (cifar10-clf: folder/.zip with 10 class sub-folders). mnist-clf trains on mnist5k.")
@click.option("--test-data", default=None, help="Held-out images for the accuracy recorded in the sidecar.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the data (default: 40).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--max-images", type=click.IntRange(min=10), default=None, help="Train on a class-balanced subset (quick checks).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Weights file (.safetensors; its sidecar .json goes next to it). Default: <cache>/weights/NAME.safetensors.")
@click.option("--overwrite", is_flag=True, help="Allow replacing an existing weights file and its .json sidecar.")
def fit_cmd(name, data, test_data, epochs, seed, max_images, device, out, overwrite) -> None:
    """Fit a classifier evaluator and write its weights + JSON sidecar (sha256, accuracy, command).

    \b
    Examples:
      ganforge evaluator fit cifar10-clf --data cifar10-train20k.zip --test-data cifar10-test10k.zip --device cuda
      ganforge evaluator fit mnist-clf --test-data mnist-test10k.npz --out /tmp/mnist-clf.safetensors
    """
    from ganforge.evaluators import EVALUATORS, user_weights_dir

    if name not in EVALUATORS:
        raise UsageError(f"cannot fit {name!r}; fittable evaluators: {', '.join(EVALUATORS)}")
    out = out or user_weights_dir() / EVALUATORS[name].weights_file
    _check_fit_out(out, overwrite)  # before the fit: minutes on the CPU (cifar10-clf: over an hour)
    command = shlex.join(["ganforge", "evaluator", "fit", *sys.argv[sys.argv.index("fit") + 1:]]) if "fit" in sys.argv else None
    opts = {"seed": seed, "command": command, "log": lambda msg: click.echo(msg, err=True)}
    if epochs is not None:
        opts["epochs"] = epochs
    if name == "mnist-clf":
        from ganforge.evaluators import fit_mnist_clf

        if data not in (None, "mnist5k") or max_images is not None or device != "cpu":
            raise UsageError("mnist-clf always trains on the 5000 mnist5k digits on the CPU; drop --data/--max-images/--device")
        meta = fit_mnist_clf(out, test_npz=test_data, **opts)
    else:
        from ganforge.evaluators import fit_cifar10_clf

        if data is None:
            raise UsageError("cifar10-clf needs --data PATH: CIFAR-10 training images with one sub-folder per class")
        meta = fit_cifar10_clf(out, data=data, test_data=test_data, max_images=max_images, device=_device(device), **opts)
    click.echo(f"wrote {out} (sha256 {meta['sha256'][:12]}, test accuracy {meta['test_accuracy']})")
    click.echo(f"  use it with: ganforge eval TARGET --evaluator {name} --evaluator-weights {out}")
