"""Run a method on a 2D benchmark for several seeded trials: mean ± standard error of the
VEEGAN/PacGAN numbers, scatter plots, and the markdown comparison table."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ganforge.config import MAX_SEED
from ganforge.errors import UsageError, is_int
from ganforge.io import check_can_write
from ganforge.modes.drs import CANDIDATES, calibrate_discriminator, drs_sample
from ganforge.modes.ensemble import generate_ensemble, train_ensemble
from ganforge.modes.methods import get_method, toy_overrides
from ganforge.modes.metrics import ModeStats, mode_stats
from ganforge.modes.saved import check_save_dir, save_trials, trial_meta
from ganforge.modes.toy import BENCHMARKS, Benchmark, ToyConfig, ToyDiscriminator, toy_generator

N_EVAL_SAMPLES = 2500  # generated samples scored per trial (VEEGAN / PacGAN)
DEFAULT_STEPS = 2000  # G updates per trial (docs/MODE_COLLAPSE.md gives the CPU time of each row)
# Trials of one run: the docs report 10 to 20. A 2D run holds every trial in memory at once, and a
# count a digit too long otherwise builds its list of seeds until the process is killed.
MAX_TRIALS = 1000
# The whole ensemble's G + D (+ DRS's D) parameters, as a GAN run's G + D (cli/train.py MAX_PARAMETERS):
# 4 GiB of fp32 weights, about 16 GiB with gradients and Adam's moments.
MAX_ENSEMBLE_PARAMETERS = 2**30
# Values in the widest tensor a run makes (trials x samples x units): 2**30 float32 is 4 GiB.
MAX_TENSOR_VALUES = 2**30


def check_trials(trials: int, seed: int = 0) -> None:
    """--trials in 1..MAX_TRIALS, and every trial's seed (seed + t) within MAX_SEED: checked before the
    first trial trains, not when a later one's seed fails."""
    if not is_int(trials) or not 1 <= trials <= MAX_TRIALS:
        raise UsageError(f"--trials must be an integer from 1 to {MAX_TRIALS}, got {trials!r}")
    if is_int(seed) and seed + trials - 1 > MAX_SEED:
        raise UsageError(f"--seed {seed} with --trials {trials}: trial t trains with seed + t, past the largest seed "
                         f"{MAX_SEED} (2**63 - 1); use --seed {MAX_SEED - trials + 1} or less")


def check_ensemble_size(cfg: ToyConfig, trials: int) -> None:
    """Refuse, before anything is allocated, an ensemble of `trials` whose parameters (counted on the meta
    device: shapes only) or widest tensor would not fit in memory, naming the settings that size it."""
    with torch.device("meta"):
        nets = [toy_generator(cfg.z_dim, cfg.g_width, cfg.g_depth),
                ToyDiscriminator(cfg.d_width, cfg.d_depth, cfg.d_pieces, cfg.pack, cfg.mbstd_group)]
        if cfg.drs_steps > 0:  # DRS calibrates a second, unpacked D per trial
            nets.append(ToyDiscriminator(cfg.d_width, cfg.d_depth, cfg.d_pieces, 1, 0))
        count = trials * sum(p.numel() for net in nets for p in net.parameters())
    sizes = (f"z_dim={cfg.z_dim}, g_width={cfg.g_width}, g_depth={cfg.g_depth}, d_width={cfg.d_width}, "
             f"d_depth={cfg.d_depth}, d_pieces={cfg.d_pieces}")
    if count > MAX_ENSEMBLE_PARAMETERS:
        raise UsageError(f"{trials} trial(s) of {sizes} have {count:,} parameters together: at most "
                         f"{MAX_ENSEMBLE_PARAMETERS:,} (2**30); use fewer --trials or smaller networks")
    # (samples per trial, widest layer they pass): a training step's batch through G and D, the scored
    # samples through G, DRS's candidates per round through G and D
    g, gd = max(cfg.z_dim, cfg.g_width), max(cfg.z_dim, cfg.g_width, cfg.d_width * cfg.d_pieces)
    passes = [(cfg.batch_size * cfg.pack, gd), (N_EVAL_SAMPLES, g)] + ([(CANDIDATES, gd)] if cfg.drs_steps > 0 else [])
    rows, width = max(passes, key=lambda p: p[0] * p[1])
    values = trials * rows * width
    if values > MAX_TENSOR_VALUES:
        raise UsageError(f"{trials} trial(s) x {rows:,} samples x {width:,} units ({sizes}, batch_size={cfg.batch_size}, "
                         f"pack={cfg.pack}) is a tensor of {values:,} values: at most {MAX_TENSOR_VALUES:,} (2**30); use "
                         "fewer --trials, a smaller batch or narrower networks")


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}: choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def mean_se(xs: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std with n-1, / √n; 0 for one value)."""
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, 0.0
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return m, math.sqrt(var / n)


@dataclass
class BenchResult:
    benchmark: str
    method: str
    steps: int
    trials: list[ModeStats]
    seconds_per_trial: float
    overrides: dict | None = None  # --set ToyConfig overrides on top of the method
    cpu_seconds: float = 0.0  # CPU time of the whole run (wall time on a shared machine says little)
    # with discriminator rejection sampling (drs_steps > 0): G's own samples, and DRS's acceptance rates
    before_drs: list[ModeStats] | None = None
    drs_acceptance: list[float] | None = None
    recipe: dict | None = None  # the method's own ToyConfig overrides on this benchmark (before --set)

    def summary(self) -> dict:
        out: dict = {"benchmark": self.benchmark, "method": self.method, "trials": len(self.trials), "steps": self.steps}
        out.update(_means(self.trials))
        out["per_trial"] = [{"modes": t.modes, "hq": t.hq, "kl": t.kl} for t in self.trials]
        if self.before_drs is not None:  # the same G's numbers without DRS, from the same run
            out["before_drs"] = _means(self.before_drs)
            out["drs_acceptance_mean"], out["drs_acceptance_se"] = mean_se(self.drs_acceptance)
        out["seconds"] = self.seconds_per_trial * len(self.trials)  # wall time of the whole ensemble
        out["seconds_per_trial"] = self.seconds_per_trial
        out["cpu_seconds"] = self.cpu_seconds
        out["overrides"] = self.overrides
        if self.recipe is not None:
            out["recipe"] = self.recipe
        return out

    def row(self) -> str:
        s = self.summary()
        k = len(BENCHMARKS[self.benchmark].means)
        return (
            f"| {self.benchmark} | {self.method}{' + DRS' if self.before_drs is not None else ''} | {s['modes_mean']:.1f} ± {s['modes_se']:.1f} / {k} "
            f"| {100 * s['hq_mean']:.1f} ± {100 * s['hq_se']:.1f} | {s['kl_mean']:.3f} ± {s['kl_se']:.3f} "
            f"| {s['trials']} | {s['steps']} | {s['seconds_per_trial']:.0f} |"
        )


def _means(stats: list[ModeStats]) -> dict:
    out = {}
    for key in ("modes", "hq", "kl"):
        out[f"{key}_mean"], out[f"{key}_se"] = mean_se([float(getattr(t, key)) for t in stats])
    return out


TABLE_HEADER = (
    "| benchmark | method | modes | high quality % | reverse KL | trials | steps | s/trial |\n"
    "|---|---|---|---|---|---|---|---|"
)


def run_benchmark(
    benchmark: str,
    method: str,
    trials: int = 10,
    steps: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    overrides: dict | None = None,
    save: Path | None = None,
) -> BenchResult:
    """Trial t trains with seed `seed + t` and scores 2,500 samples drawn with seed 10000 + seed + t;
    all trials train at once as one batched ensemble (ensemble.py). `overrides` are ToyConfig
    fields applied after the method's (`Method.recipe(benchmark)`); `steps` None means the method's
    own length (`best`: 20,000), else DEFAULT_STEPS. Plots go to `out` if given. With ``drs_steps > 0`` the scored
    samples come from discriminator rejection sampling (drs.py; latents and uniforms seeded as the
    plain samples), and the plain samples' numbers are kept in ``before_drs``. With `save` (a new or
    empty folder) the trained trials (and calibrated D) are kept for ``saved.rescore_trials``."""
    bench, meth = get_benchmark(benchmark), get_method(method)
    steps, cfg = run_config(benchmark, method, trials, steps, seed, overrides)
    if save is not None:
        check_save_dir(save)  # before hours of training, not after
    if out is not None:
        check_can_write(out, f"--out {out}")  # the plot is written after training
    seeds = [seed + t for t in range(trials)]
    t0, c0 = time.perf_counter(), time.process_time()
    ens = train_ensemble(bench, cfg, seeds)
    d_params = calibrate_discriminator(ens, bench, cfg, seeds) if cfg.drs_steps > 0 else None
    samples, stats, before, acceptance = score_trials(ens, bench, cfg, seeds, d_params)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if save is not None:
        save_trials(save, trial_meta(benchmark, method, steps, seeds, overrides, cfg), ens, d_params)
    recipe = meth.recipe(benchmark)
    if "drs_steps" in recipe:
        recipe = {**recipe, "drs_steps": cfg.drs_steps}
    result = BenchResult(benchmark, method, steps, stats, wall / trials, overrides or None, cpu, before, acceptance,
                         recipe)
    if out is not None:
        plot_samples(bench, samples, stats, plot_path(out, benchmark, method), title=f"{benchmark} · {method}" + (" + DRS" if before is not None else ""))
    return result


def run_config(benchmark: str, method: str, trials: int, steps: int | None = None, seed: int = 0,
               overrides: dict | None = None) -> tuple[int, ToyConfig]:
    """(steps, the checked ToyConfig) of a run_benchmark call, every argument checked (sizes included)
    without training: `modes --all` checks every row before the first trains."""
    check_trials(trials, seed)
    meth = get_method(method)
    steps = steps if steps is not None else meth.steps or DEFAULT_STEPS
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    cfg = toy_overrides(meth.config(steps, benchmark), overrides or {}).check()
    if meth.steps and steps < meth.steps and cfg.drs_steps > 0 and "drs_steps" not in (overrides or {}):
        # A shorter run than the recipe's (`best` at --steps 500 to try it) gets its DRS calibration
        # shortened in proportion: --steps bounds the time, and 12,000 calibration steps after 500
        # training steps would take 20x the training. The result's recipe shows the length used.
        cfg = replace(cfg, drs_steps=max(1, round(cfg.drs_steps * steps / meth.steps)))
    check_ensemble_size(cfg, trials)
    return steps, cfg


def plot_path(out: Path, benchmark: str, method: str) -> Path:
    """Where run_benchmark puts a result's scatter plot inside --out (what `modes` checks before training)."""
    return Path(out) / f"{benchmark}-{method}.png"


def score_trials(ens, bench: Benchmark, cfg, seeds: list[int], d_params=None):
    """The scored samples of trained trials: 2,500 per trial drawn with seed 10000 + seed, from G
    alone or, given the calibrated D, by DRS. Returns (samples T × (2500, 2), their ModeStats,
    G alone's ModeStats when DRS was used else None, DRS's acceptance rates or None)."""
    sample_seeds = [10_000 + s for s in seeds]
    samples = list(generate_ensemble(ens, N_EVAL_SAMPLES, sample_seeds))  # T × (2500, 2)
    stats = [mode_stats(x, bench) for x in samples]
    if d_params is None:
        return samples, stats, None, None
    drs = drs_sample(ens, d_params, cfg, N_EVAL_SAMPLES, sample_seeds)
    samples = list(drs.samples)
    return samples, [mode_stats(x, bench) for x in samples], stats, drs.acceptance


def plot_samples(bench: Benchmark, samples: list[torch.Tensor], stats: list[ModeStats], path: Path, title: str) -> Path | None:
    """Scatter of up to 4 trials' generated samples (blue) over the mode centres (red); None, with a
    warning, without matplotlib (the `plot` extra): the trials and their scores are kept either way."""
    try:
        import matplotlib
    except ImportError:
        logging.getLogger("ganforge.modes").warning("matplotlib is not installed: no scatter plot %s "
                                                    "(pip install 'ganforge[plot]')", path)
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(4, len(samples))
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3.2), squeeze=False)
    means = bench.means_tensor()
    lim = float(means.abs().max()) * 1.4 + 0.2
    for ax, x, s in zip(axes[0], samples, stats):
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, c="tab:blue", linewidths=0)
        ax.scatter(means[:, 0], means[:, 1], s=12, c="tab:red", marker="x")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{s.modes} modes, {100 * s.hq:.0f}% HQ", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
