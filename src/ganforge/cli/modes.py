"""`ganforge modes`: the 2D mode-collapse benchmarks (ring8, grid25) for a named method."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ganforge.errors import UsageError


@click.command("modes")
@click.option("--benchmark", default="ring8", show_default=True, help="ring8 | grid25.")
@click.option("--method", default="vanilla", show_default=True, help="vanilla | pacgan | mbstd | msgan | ttur | wgan-gp | r1 | wide-d | best.")
@click.option("--trials", type=int, default=10, show_default=True, help="Independent seeded trials (mean ± s.e.).")
@click.option("--steps", type=int, default=None, help="G updates per trial. [default: 2000]")
@click.option("--seed", type=int, default=0, show_default=True, help="Trial t uses seed + t.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("modes-out"), show_default=True, help="Folder for the scatter plots.")
@click.option("--all", "run_all", is_flag=True, help="Every method on both benchmarks: the markdown comparison table.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def modes_cmd(benchmark, method, trials, steps, seed, out, run_all, threads, as_json) -> None:
    """Measure mode collapse on VEEGAN/PacGAN's 2D ring (8 modes) or grid (25 modes).

    Prints modes captured, high-quality fraction and reverse KL, mean ± standard error
    over --trials, and writes scatter plots of the generated samples to --out.

    \b
    Examples:
      ganforge modes --benchmark ring8 --method vanilla --trials 10
      ganforge modes --benchmark grid25 --method best --trials 10 --json
      ganforge modes --all --trials 3 --steps 1000
    """
    import torch

    from ganforge.modes.bench import DEFAULT_STEPS, TABLE_HEADER, get_benchmark, run_benchmark
    from ganforge.modes.methods import METHODS, get_method

    if trials < 1:
        raise UsageError(f"--trials must be at least 1, got {trials}")
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    steps = DEFAULT_STEPS if steps is None else steps
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    torch.set_num_threads(threads)
    if run_all:
        pairs = [(b, m) for b in ("ring8", "grid25") for m in METHODS]
    else:
        get_benchmark(benchmark), get_method(method)  # validate before training
        pairs = [(benchmark, method)]
    results = [run_benchmark(b, m, trials=trials, steps=steps, seed=seed, out=out) for b, m in pairs]
    if as_json:
        payload = [r.summary() for r in results]
        click.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    else:
        click.echo(TABLE_HEADER)
        for r in results:
            click.echo(r.row())
