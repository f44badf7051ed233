"""`ganforge modes`: mode-collapse benchmarks — 2D ring8 / grid25 and Stacked MNIST — for a named method."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ganforge.config import MAX_SEED
from ganforge.errors import UsageError

BENCHMARK_NAMES = ("ring8", "grid25", "stacked-mnist")


@click.command("modes")
@click.option("--benchmark", default="ring8", show_default=True, help="ring8 | grid25 | stacked-mnist.")
@click.option("--method", default="vanilla", show_default=True,
              help="2D: vanilla | pacgan | mbstd | msgan | ttur | wgan-gp | r1 | wide-d | unrolled | decay | ttur-decay | "
                   "best-pack | best (the recommended recipe for that benchmark, DRS included); "
                   "stacked-mnist: vanilla | pacgan | mbstd | ttur | r1 | msgan | unrolled | wide | msgan-wide | msgan-r1 | best.")
@click.option("--trials", type=int, default=10, show_default=True, help="Independent seeded trials (mean ± s.e.; at most 1000).")
@click.option("--steps", type=int, default=None, help="G updates per trial; a shorter 2D best run shortens its DRS calibration in proportion. [default: 2D best 20000, other 2D methods 2000; stacked-mnist best 64000, its other methods 8000]")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, help="Trial t uses seed + t.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="2D: a ToyConfig field (e.g. lr_decay_frac=0.3); stacked-mnist: a run-config key (e.g. train.batch_size=128). "
                   "Not the length, seed, device or threads: use --steps, --seed, --device, --threads. Repeatable.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("modes-out"), show_default=True,
              help="Folder for scatter plots / sample grids (and Stacked MNIST run folders, which must be new).")
@click.option("--overwrite", is_flag=True, help="Replace the 2D scatter plots already in --out (Stacked MNIST trial "
              "folders are never replaced: give a new --out).")
@click.option("--save", type=click.Path(path_type=Path), default=None,
              help="2D: keep the trained trials (and DRS's calibrated D) in this new or empty folder, for --rescore.")
@click.option("--rescore", type=click.Path(path_type=Path), default=None,
              help="Score kept trials again without training. 2D: a --save folder; only --set drs_percentile=P may change. "
                   "Stacked MNIST: an earlier --out folder (its runs/ trials), with the per-channel KL split.")
@click.option("--all", "run_all", is_flag=True, help="Every method on ring8 and grid25: the markdown comparison table.")
@click.option("--with-stacked-mnist", "with_stacked", is_flag=True,
              help="With --all: add every Stacked MNIST method (slow on CPU: minutes per trial).")
@click.option("--device", default="auto", show_default=True, help="Stacked MNIST training device: auto | cpu | cuda | cuda:N (2D runs on CPU).")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads (at most 1024).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def modes_cmd(benchmark, method, trials, steps, seed, sets, out, overwrite, save, rescore, run_all, with_stacked, device, threads,
              as_json) -> None:
    """Measure mode collapse on VEEGAN/PacGAN's 2D ring (8 modes), grid (25 modes) or Stacked MNIST (1000 modes).

    Prints modes captured, high-quality fraction (2D) and reverse KL, mean ± standard error
    over --trials, and writes scatter plots (2D) or a sample grid (Stacked MNIST) to --out.
    The trials of a 2D run train at once as one batched ensemble.

    \b
    Examples:
      ganforge modes --benchmark ring8 --method vanilla --trials 10
      ganforge modes --benchmark grid25 --method best --trials 10 --json   # 20,000 steps + DRS: CPU-hours
      ganforge modes --benchmark grid25 --method unrolled --set unroll_steps=3 --steps 1000
      ganforge modes --benchmark stacked-mnist --method pacgan --trials 2 --steps 2000
      ganforge modes --all --trials 3 --steps 1000
      ganforge modes --all --with-stacked-mnist --trials 2
      ganforge modes --benchmark ring8 --method best --trials 1 --seed 5 --save runs/r8
      ganforge modes --rescore runs/r8 --set drs_percentile=80 --json
      ganforge modes --rescore modes-out --json   # the Stacked MNIST trials kept in modes-out/runs
    """
    import torch

    from ganforge.modes.bench import check_trials, get_benchmark, run_benchmark, run_config
    from ganforge.modes.methods import METHODS, get_method, parse_sets
    from ganforge.modes.saved import check_save_dir
    from ganforge.modes.stacked import STACKED_METHODS, get_stacked_method, run_stacked, stacked_config
    from ganforge.device import MAX_THREADS, is_device_name, resolve_device

    device = device.strip()  # --device " cuda" reads as cuda, as resolve_device and --set read it
    check_trials(trials, seed)
    if not 1 <= threads <= MAX_THREADS:  # OpenMP segfaults on 100,000 threads (device.MAX_THREADS)
        raise UsageError(f"--threads must be from 1 to {MAX_THREADS}, got {threads}")
    if steps is not None and steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    if with_stacked and not run_all:
        raise UsageError("--with-stacked-mnist goes with --all (for one Stacked MNIST row use --benchmark stacked-mnist)")
    if run_all and sets:
        raise UsageError("--set applies to one benchmark: use it without --all")
    if save and (run_all or benchmark == "stacked-mnist"):
        raise UsageError("--save applies to one 2D benchmark (ring8 or grid25); Stacked MNIST keeps every trial's run folder in --out")
    if rescore and run_all:
        raise UsageError("--rescore scores one kept folder: drop --all")
    if save and rescore:
        raise UsageError("--save trains and keeps trials, --rescore scores kept ones: give one of them")
    if not is_device_name(device):  # the 2D benchmarks run on the CPU, but a misspelt name is still a mistake
        resolve_device(device, "--device")  # its one-line "is not a device" error
    if device != "auto" and (run_all and with_stacked or benchmark == "stacked-mnist") and not rescore:
        resolve_device(device, "--device")  # cuda without a GPU: one line now, not after the 2D rows
    torch.set_num_threads(threads)
    if rescore:
        from ganforge.modes.saved import rescore_trials

        # the kept run fixes these; silently ignoring one the user typed would mislabel the result
        ctx = click.get_current_context()
        given = [f"--{n}" for n in ("benchmark", "method", "trials", "steps", "seed", "out", "overwrite", "device")
                 if ctx.get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE]
        if given:
            raise UsageError(f"--rescore takes its benchmark, method, seeds and steps from the kept run: drop {', '.join(given)}")

        if (rescore / "runs").is_dir():  # a Stacked MNIST --out folder: its trials' run folders
            from ganforge.modes.stacked import rescore_stacked

            if sets:
                raise UsageError("--rescore of Stacked MNIST trials takes no --set: every setting acted during training")
            results = rescore_stacked(rescore)
        else:
            results = [rescore_trials(rescore, parse_sets(sets) if sets else {})]
        _echo(results, as_json)
        return
    if run_all:
        pairs = [(b, m) for b in ("ring8", "grid25") for m in METHODS]
        pairs += [("stacked-mnist", m) for m in STACKED_METHODS] if with_stacked else []
    else:
        if benchmark not in ("ring8", "grid25", "stacked-mnist"):
            raise UsageError(f"unknown benchmark {benchmark!r}: choose one of ring8, grid25, stacked-mnist")
        if benchmark == "stacked-mnist":
            get_stacked_method(method)
        else:
            get_benchmark(benchmark), get_method(method)
        pairs = [(benchmark, method)]
    toy_sets = parse_sets(sets) if sets and benchmark != "stacked-mnist" else {}
    # Every row's settings and sizes, before --out is judged (a second try keeps its error) and before the
    # first row trains (--all: a later row's error would otherwise come after the earlier rows' hours)
    for b, m in pairs:
        if b == "stacked-mnist":
            from ganforge.cli.train import check_model_size

            check_model_size(stacked_config(get_stacked_method(m).name, steps, seed, tuple(sets), device, threads).model)
        else:
            run_config(b, m, trials, steps, seed, toy_sets)
    if save is not None:
        check_save_dir(save)
    check_out(out, pairs, trials, seed, overwrite)  # before any trial trains

    results = []
    for b, m in pairs:
        if b == "stacked-mnist":
            results.append(run_stacked(m, trials, steps, seed, out, tuple(sets), device, threads))
        else:
            results.append(run_benchmark(b, m, trials=trials, steps=steps, seed=seed, out=out, overrides=toy_sets, save=save))
    _echo(results, as_json)


def check_out(out: Path, pairs: list[tuple[str, str]], trials: int, seed: int, overwrite: bool) -> None:
    """--out must be a folder (new or existing) and must not hold what this call writes: a 2D plot is
    replaced only with --overwrite; a Stacked MNIST trial's run folder (hours of training) never is."""
    from ganforge.io import check_can_write
    from ganforge.modes.bench import plot_path
    from ganforge.modes.stacked import trial_dir

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: modes writes its plots (and Stacked MNIST run folders) into a folder; "
                         "give a new or existing folder")
    check_can_write(out, f"--out {out}")  # a file in the way or a read-only folder: before training, not after
    for b, m in pairs:
        if b == "stacked-mnist":
            for t in range(trials):
                run = trial_dir(out, m, seed + t)
                if run.exists() and (not run.is_dir() or any(run.iterdir())):
                    raise UsageError(
                        f"--out {out} already holds the Stacked MNIST trial {run}: give a new --out or other --seed; "
                        f"score the kept trials with `ganforge modes --rescore {out}`, or finish a stopped one with "
                        f"`ganforge train --resume {run}`")
        elif (plot := plot_path(out, b, m)).exists() and not overwrite:
            raise UsageError(f"--out {out} already holds {plot.name}: give another --out, or pass --overwrite to replace it")


def _echo(results, as_json: bool) -> None:
    from ganforge.modes.bench import TABLE_HEADER

    if as_json:
        payload = [r.summary() for r in results]
        click.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    else:
        click.echo(TABLE_HEADER)
        for r in results:
            click.echo(r.row())
