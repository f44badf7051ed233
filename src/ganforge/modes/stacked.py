"""Stacked MNIST (Metz et al. 2017; the VEEGAN and PacGAN protocol): 1000 modes.

A generator is trained with ganforge's own loop (`ganforge.training.train`) from the
`dcgan-mnist` preset with `model.channels=3` on the `stacked-mnist` named source (three mnist5k
digits as R, G, B). Its mode is read channel by channel by the shipped `mnist-clf` evaluator:

    images (N, 3, 28, 28) in [-1, 1] → digits (N, 3) → mode 100·R + 10·G + B ∈ [0, 1000)

From 26,000 samples: modes covered (≥ 1 sample) and KL(p ‖ u), p the histogram of the modes,
u uniform over 1000. As in PacGAN's code (`model.py`, `log_metrics`: `p[0:num_mode] = counts`,
`KLD` skips p = 0) the histogram is not smoothed and empty modes contribute 0 — the same
definition as the 2D reverse KL (`metrics.reverse_kl`).
"""

from __future__ import annotations

import math
import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge.errors import UsageError, is_int
from ganforge.modes.bench import check_trials
from ganforge.modes.metrics import reverse_kl

N_MODES = 1000
N_EVAL_SAMPLES = 26_000  # VEEGAN / PacGAN
DEFAULT_STEPS = 8000  # the dcgan-mnist preset's own length


@dataclass(frozen=True)
class StackedMethod:
    name: str
    paper: str
    overrides: tuple[str, ...] = ()  # `--set` strings applied to the dcgan-mnist-based RunConfig
    steps: int = DEFAULT_STEPS  # G updates per trial when `--steps` is not given: the length it was measured at

    def length(self, steps: int | None) -> int:
        """`steps` if given (`--steps`), else this method's own length."""
        return self.steps if steps is None else steps


# Remedies that ganforge's main training loop implements.
STACKED_METHODS: dict[str, StackedMethod] = {
    m.name: m
    for m in (
        StackedMethod("vanilla", "Radford et al. 2016, ICLR (DCGAN; the dcgan-mnist preset)"),
        StackedMethod("pacgan", "Lin et al. 2018, NeurIPS (PacGAN)", ("model.pack=2",)),
        StackedMethod("mbstd", "Karras et al. 2018, ICLR (minibatch stddev)", ("model.mbstd_group=4",)),
        StackedMethod("ttur", "Heusel et al. 2017, NeurIPS (TTUR)", ("optim.lr_g=2.5e-4",)),
        # γ 1: on seed 0 at 8,000 steps γ 0.1 gave KL 0.258 and γ 1 0.191 (γ 10, with MSGAN, 0.333)
        StackedMethod("r1", "Mescheder et al. 2018, ICML (R1, γ 1)", ("loss.r1_gamma=1.0",)),
        StackedMethod("msgan", "Mao et al. 2019, CVPR (MSGAN)", ("loss.msgan_weight=1.0",)),
        StackedMethod("unrolled", "Metz et al. 2017, ICLR (Unrolled GAN)", ("train.unroll_steps=5",)),
        # Capacity: both nets twice as wide (≈ 4x the conv FLOPs; measured 2.3x the CPU time per step).
        StackedMethod("wide", "capacity (Arora et al. 2017, ICML): G and D twice as wide",
                      ("model.g_width=64", "model.d_width=64")),
        # Measured at 8,000 steps, seeds 0-3 (docs/MODE_COLLAPSE.md): msgan KL 0.341 ± 0.018; msgan-wide
        # 0.251 ± 0.016; msgan-r1 0.182 ± 0.002 (R1 γ 10 was no better than none, 0.333 on seed 0).
        StackedMethod("msgan-wide", "Mao et al. 2019 (MSGAN) with G and D twice as wide",
                      ("loss.msgan_weight=1.0", "model.g_width=64", "model.d_width=64")),
        StackedMethod("msgan-r1", "Mao et al. 2019 (MSGAN) + Mescheder et al. 2018 (R1, γ 1)",
                      ("loss.msgan_weight=1.0", "loss.r1_gamma=1.0")),
        # MSGAN + R1 + capacity: the gains add up (seed 0: 0.275 without R1, 0.133 with it). Trained twice the
        # preset's length, since with R1 the KL keeps falling with steps (seed 0: 0.133 at 8,000, 0.082 at 16,000;
        # twice the width again at 8,000 steps gave 0.106 for 1.5x the CPU time of 16,000 steps at width 64).
        # Seeds 0-3: KL 0.130 at 8,000 and 0.081 at 16,000 steps (CPU), 0.063 at 32,000 (H200); at 64,000 steps
        # (CPU) 0.055 ± 0.004 over seeds 0, 2, 3, 4 (0.045, 0.0625, and 0.0525, 0.0607 in bf16): short of the
        # issue's 0.05 on the mean. 128,000 steps (bf16, CPU) gave seeds 0 and 2 0.048, so the length stays.
        # R1 is lazy (StyleGAN2's regularisation interval: every 4th D step, γ·4), which scored 0.130 / 0.131
        # against 0.133 / 0.135 on seeds 0-1 at 8,000 steps for 1.3x the steps per second on the CPU.
        # Feature matching λ 100 (Salimans et al. 2016) lowered the KL in every paired trial (bf16, CPU): 3 seeds
        # at 8,000 steps (0.139 → 0.110 mean), 2 at 16,000 (0.093 → 0.079), and seeds 3 and 4 at 64,000
        # (0.0525 → 0.0448, 0.0607 → 0.0467); λ 10 did nothing. It costs about 10 % more time per step.
        # With it, 64,000 steps, seeds 0, 2, 3, 4 (bf16, CPU): 1000/1000 modes in each, KL 0.0476 ± 0.0015
        # (0.0472, 0.0518, 0.0448, 0.0467), under the 0.05; the same seeds without it 0.055 ± 0.004.
        StackedMethod("best", "MSGAN (Mao et al. 2019) + lazy R1 γ 1 (Mescheder et al. 2018; every 4th D step, "
                      "Karras et al. 2020) + feature matching λ 100 (Salimans et al. 2016) with G and D twice as "
                      "wide on the dcgan-mnist preset, 64,000 steps; chosen from our measurements, docs/MODE_COLLAPSE.md",
                      ("loss.msgan_weight=1.0", "loss.r1_gamma=1.0", "loss.reg_every=4", "loss.fm_weight=100.0",
                       "model.g_width=64", "model.d_width=64"),
                      steps=64000),
    )
}


def get_stacked_method(name: str) -> StackedMethod:
    if name not in STACKED_METHODS:
        raise UsageError(f"unknown method {name!r} for stacked-mnist: choose one of {', '.join(STACKED_METHODS)}")
    return STACKED_METHODS[name]


# run-config keys that stacked_config's arguments (`modes` flags) set: a --set of one would override the flag
# (the result would report a length or seed that never ran, every trial would share one seed) or be overridden
FLAG_KEYS = {"train.total_steps": "--steps", "train.seed": "--seed (trial t uses seed + t)",
             "train.device": "--device", "train.threads": "--threads"}


def stacked_config(method: str, steps: int | None = None, seed: int = 0, overrides: tuple[str, ...] = (),
                   device: str | None = None, threads: int | None = None):
    """The RunConfig of one trial: dcgan-mnist with 3 channels on stacked-mnist, the method's
    overrides, then the user's (`--set`), trained `steps` G updates (None: the method's own length)
    on `device` with `threads` (None: the preset's, and then `overrides` may set them).
    No checkpoints, intermediate grids or periodic evaluation (the preset's mnist-clf metrics need
    1-channel images): a trial is scored once, here."""
    from ganforge.config import apply_overrides
    from ganforge.configio import override_key
    from ganforge.presets import PRESETS

    taken = dict(FLAG_KEYS)  # length and seed always come from the arguments; device and threads when given
    if device is None:
        del taken["train.device"]
    if threads is None:
        del taken["train.threads"]
    for item in overrides:
        key = override_key(item)
        if key in taken:
            raise UsageError(f"--set {item!r} is not allowed: {key} is set by {taken[key]}; use that option")
    base = PRESETS["dcgan-mnist"]
    meth = get_stacked_method(method)
    steps = meth.length(steps)
    # the preset's LR decay starts at half its 8000 steps; keep that fraction for other lengths
    decay = dict(decay_start_step=steps // 2) if base.optim.schedule != "constant" else {}
    cfg = replace(
        base,
        preset=f"stacked-mnist-{method}",
        description=f"Stacked MNIST, {method}",
        data=replace(base.data, source="stacked-mnist"),
        model=replace(base.model, channels=3),
        optim=replace(base.optim, **decay),
        train=replace(base.train, total_steps=steps, seed=seed, progress=False, sample_every=0),
        checkpoint=replace(base.checkpoint, every_steps=0, keep_last=1),
        eval=replace(base.eval, every=0),
    )
    flags = [f"train.{k}={v}" for k, v in (("device", device), ("threads", threads)) if v is not None]
    return apply_overrides(cfg, [*meth.overrides, *overrides, *flags])


# ----------------------------------------------------------------------------- metrics


@torch.no_grad()
def classify_digits(images: Tensor, clf: nn.Module, batch_size: int = 1000) -> Tensor:
    """images (N, 3, 28, 28) in [-1, 1] → digits (N, 3) int64: each channel (R, G, B) read by `clf`
    (expects (N, 1, 28, 28) in [-1, 1])."""
    _check_stacked_images(images)
    if not (is_int(batch_size) and batch_size >= 1):
        raise UsageError(f"batch_size={batch_size!r}: images per forward pass must be an integer >= 1")
    digits = []
    for chunk in images.split(int(batch_size)):
        x = chunk.reshape(-1, 1, 28, 28).to(next(clf.parameters()).device)  # (3n, 1, 28, 28), R G B per image
        logits = clf(x)  # (3n, 10)
        if logits.ndim != 2 or logits.shape != (len(x), 10):
            # a classifier of another class count gives "digits" >= 10 (modes past 999) or never reads 5..9:
            # a mode count out of 1000 that means nothing
            raise UsageError(f"the classifier gives outputs of shape {tuple(logits.shape)} for {len(x)} digit images; "
                             f"stacked-mnist reads each channel as a digit 0..9, so it needs a 10-class digit "
                             f"classifier with outputs ({len(x)}, 10), such as mnist-clf")
        digits.append(logits.argmax(dim=1).view(-1, 3).cpu())
    return torch.cat(digits)  # (N, 3)


def _check_stacked_images(images) -> None:
    """images must be float (N, 3, 28, 28), N >= 1, in [-1, 1] as G's tanh draws them: uint8 or [0, 255]
    images would be read on the wrong scale by a classifier trained on [-1, 1] digits."""
    if not isinstance(images, Tensor):
        raise UsageError(f"stacked-mnist modes need a torch tensor of images (N, 3, 28, 28), got {type(images).__name__}")
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, 28, 28) or not len(images):
        raise UsageError(f"stacked-mnist modes need images (N, 3, 28, 28), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise UsageError(f"stacked-mnist modes need float images in [-1, 1], got {images.dtype} "
                         "(uint8 images: x.float() / 127.5 - 1)")
    if torch.isnan(images).any():
        raise UsageError(f"stacked-mnist modes: {int(torch.isnan(images).flatten(1).any(1).sum())} of the {len(images)} "
                         "images hold NaN values")
    lo, hi = images.min().item(), images.max().item()
    if lo < -1.001 or hi > 1.001:
        raise UsageError(f"stacked-mnist modes need images in [-1, 1], got values in [{lo:.4g}, {hi:.4g}] "
                         "(0..255 images: x / 127.5 - 1; [0, 1] images: 2 * x - 1)")


def modes_of_digits(digits: Tensor) -> Tensor:
    """digits (N, 3) int64, the R, G, B digit of each image → modes (N,) int64, 100·R + 10·G + B."""
    return digits @ torch.tensor([100, 10, 1])


def classify_modes(images: Tensor, clf: nn.Module, batch_size: int = 1000) -> Tensor:
    """images (N, 3, 28, 28) in [-1, 1] → modes (N,) int64 of `classify_digits`."""
    return modes_of_digits(classify_digits(images, clf, batch_size))


@dataclass(frozen=True)
class StackedStats:
    modes: int  # modes with at least one sample (of 1000)
    kl: float  # KL(p_modes ‖ uniform over 1000), no smoothing
    # Diagnosis. The uniform target is a product of three uniform digit marginals, so the joint KL splits
    # exactly:  KL(p ‖ u) = Σ_c KL(p_c ‖ u_10) + KL(p ‖ p_R·p_G·p_B).
    # channel_kl holds the three marginal terms (R, G, B): a generator that draws too few 1s in every
    # channel shows here. kl_dependence is the last term: modes missing or over-drawn *as combinations*
    # (true collapse across channels), plus the sampling noise of a 1000-bin histogram (≈ 0.019 at 26,000).
    channel_kl: tuple[float, float, float] = (0.0, 0.0, 0.0)
    kl_dependence: float = 0.0
    digit_share: tuple[tuple[float, ...], ...] = ()  # (3, 10): fraction of samples whose R / G / B digit is d


def stacked_stats(modes: Tensor) -> StackedStats:
    """modes (N,) in [0, 1000) → coverage, KL and its split into per-channel and dependence terms."""
    if not (isinstance(modes, Tensor) and modes.ndim == 1 and len(modes) and not modes.is_floating_point()
            and modes.dtype != torch.bool):
        what = f"{modes.dtype} {tuple(modes.shape)}" if isinstance(modes, Tensor) else type(modes).__name__
        raise UsageError(f"stacked_stats needs modes as an integer tensor (N,), N >= 1, got {what}")
    if (bad := (modes < 0) | (modes >= N_MODES)).any():
        raise UsageError(f"stacked_stats: modes are 100·R + 10·G + B in 0..{N_MODES - 1}, got "
                         f"{int(modes[bad][0])} ({int(bad.sum())} of {len(modes)} out of range)")
    modes = modes.long()
    counts = torch.bincount(modes, minlength=N_MODES)  # (1000,)
    digits = torch.stack([modes // 100, modes // 10 % 10, modes % 10], dim=1)  # (N, 3)
    per_channel = [torch.bincount(digits[:, c], minlength=10) for c in range(3)]  # 3 × (10,)
    channel_kl = tuple(reverse_kl(c) for c in per_channel)
    kl = reverse_kl(counts)
    share = tuple(tuple(float(v) / modes.numel() for v in c) for c in per_channel)
    return StackedStats(int((counts > 0).sum()), kl, channel_kl, kl - sum(channel_kl), share)


def expected_kl_of_uniform(n: int, k: int = N_MODES) -> float:
    """E[KL(p̂ ‖ u)] for n samples of the uniform distribution over k modes, to second order:
    (k − 1) / (2n) — the floor a perfect generator scores (0.0192 for 26,000 samples)."""
    return (k - 1) / (2 * n)


# ----------------------------------------------------------------------------- trials


@torch.no_grad()
def sample_generator(G: nn.Module, n: int, z_dim: int, seed: int, device, batch_size: int = 1000) -> Tensor:
    """n images (N, 3, 28, 28) from G in eval mode, latents from a generator seeded `seed`."""
    gen = torch.Generator().manual_seed(seed)
    out = [G(torch.randn(min(batch_size, n - i), z_dim, generator=gen).to(device)).cpu() for i in range(0, n, batch_size)]
    return torch.cat(out)


def trial_dir(out: Path, method: str, seed: int) -> Path:
    """The run folder of one trial inside a `modes --out` folder (what `--rescore OUT` globs)."""
    return Path(out) / "runs" / f"stacked-mnist-{method}-seed{seed}"


def run_stacked_trial(method: str, steps: int, seed: int, out: Path, clf: nn.Module, overrides=(), device="auto",
                      threads: int | None = None):
    """Train one trial into trial_dir(out, method, seed) (must be new) and score 26,000 samples of
    its generator (the EMA copy the preset keeps). Returns (stats, 64 sample images for the grid)."""
    from ganforge.training import train

    cfg = stacked_config(method, steps, seed, tuple(overrides), device, threads)
    run = train(cfg, out=trial_dir(out, method, seed))
    return score_run(run, clf, seed, cfg.model.z_dim, cfg.train.device)


def unfinished(run: Path, total_steps: int) -> str | None:
    """Why a kept trial cannot be scored yet (stopped before its last step), or None when it can."""
    from ganforge.training import checkpoint as ckpt

    if (run / ckpt.MODEL_DIR / "config.json").is_file():
        return None
    states = ckpt.list_states(run / ckpt.STATE_DIR)
    at = f"its last checkpoint is step {ckpt.state_step(states[-1])} of {total_steps}" if states else "it has no checkpoint"
    return f"trial {str(run)!r} has not finished ({at}): continue it with: ganforge train --resume {run}"


def score_run(run: Path, clf: nn.Module, seed: int, z_dim: int, device: str = "auto"):
    """Score a trained trial: 26,000 samples of its EMA generator, latent seed 10000 + seed.
    Returns (stats, the first 64 images)."""
    from ganforge.training.checkpoint import load_generator
    from ganforge.device import resolve_device

    # sampled and classified on the training device: 78,000 digits through mnist-clf take ~50 s on 2 CPU
    # threads. The latents are the same everywhere (drawn on the CPU); a GPU's float rounding can flip an
    # ambiguous digit's argmax, nothing more.
    dev = resolve_device(device)
    return score_generator(load_generator(run, ema=True, device=dev), clf, seed, z_dim, dev)


def score_generator(G: nn.Module, clf: nn.Module, seed: int, z_dim: int, device) -> tuple[StackedStats, Tensor]:
    """The protocol on one generator (eval mode): 26,000 samples, latent seed 10000 + the trial's seed,
    each channel read by `clf`. Returns (stats, the first 64 images)."""
    x = sample_generator(G, N_EVAL_SAMPLES, z_dim, seed=10_000 + seed, device=device)
    return stacked_stats(classify_modes(x, clf.to(device))), x[:64]


def mean_se_or_none(xs: list[float]) -> tuple[float, float]:
    n, m = len(xs), sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1) / n) if n > 1 else 0.0)


@dataclass
class StackedResult:
    method: str
    steps: int
    trials: list[StackedStats]
    seconds: float
    cpu_seconds: float = 0.0
    benchmark: str = "stacked-mnist"
    # the user's --set strings as {key: value}; None without any. benchmarks/modes_table.py merges
    # only results whose overrides match (as for the 2D benchmarks)
    overrides: dict | None = None
    seeds: list[int] | None = None  # the trials' seeds, in order
    grid: Path | None = None  # the sample grid written for this result (64 samples of its first trial)

    def summary(self) -> dict:
        mm, ms = mean_se_or_none([float(t.modes) for t in self.trials])
        km, ks = mean_se_or_none([t.kl for t in self.trials])
        n = len(self.trials)
        seeds = self.seeds or [None] * n
        per_trial = [
            {"seed": sd, "modes": t.modes, "kl": t.kl, "channel_kl": list(t.channel_kl), "kl_dependence": t.kl_dependence,
             "digit_percent": [[round(100 * v, 2) for v in ch] for ch in t.digit_share]}
            for sd, t in zip(seeds, self.trials)
        ]
        return {
            "benchmark": self.benchmark, "method": self.method, "trials": n, "steps": self.steps,
            "modes_mean": mm, "modes_se": ms, "hq_mean": None, "hq_se": None, "kl_mean": km, "kl_se": ks,
            # the split of kl_mean (StackedStats): R, G, B digit marginals, and the rest
            "channel_kl_mean": [sum(t.channel_kl[c] for t in self.trials) / n for c in range(3)],
            "kl_dependence_mean": sum(t.kl_dependence for t in self.trials) / n,
            "seconds": self.seconds, "seconds_per_trial": self.seconds / n, "cpu_seconds": self.cpu_seconds,
            "overrides": self.overrides, "per_trial": per_trial, "grid": None if self.grid is None else str(self.grid),
        }

    def row(self) -> str:
        s = self.summary()
        return (
            f"| {self.benchmark} | {self.method} | {s['modes_mean']:.1f} ± {s['modes_se']:.1f} / {N_MODES} | – "
            f"| {s['kl_mean']:.3f} ± {s['kl_se']:.3f} | {s['trials']} | {s['steps']} | {s['seconds_per_trial']:.0f} |"
        )


def run_stacked(
    method: str, trials: int, steps: int | None = None, seed: int = 0, out: Path | None = None,
    overrides: tuple[str, ...] = (), device: str = "auto", threads: int | None = None,
) -> StackedResult:
    """`trials` seeded trials (seed + t) of `steps` G updates each (None: the method's own length,
    `StackedMethod.steps`); run folders and the sample grid go under `out`."""
    from ganforge.evaluators import load_evaluator
    from ganforge.training.guard import TrainingInterrupted

    meth = get_stacked_method(method)
    steps = meth.length(steps)
    check_trials(trials, seed)
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    first = stacked_config(meth.name, steps, seed, overrides, device, threads)  # validates the overrides before any training
    out = Path(out if out is not None else "modes-out")
    clf = load_evaluator("mnist-clf")
    stats, t0, c0, grid = [], time.perf_counter(), time.process_time(), None
    for t in range(trials):
        try:
            s, imgs = run_stacked_trial(method, steps, seed + t, out, clf, overrides, device, threads)
        except TrainingInterrupted as exc:
            # A trial longer than one sitting (a device lease's command limit, say): stopped with a checkpoint. It
            # goes on with the generic `ganforge train --resume RUN` (same config, same LR schedule, bit-exact on
            # CPU); the trials after it never started, and a run of just their seeds into the same --out adds
            # them (check_out refuses only existing trial folders); `modes --rescore OUT` then scores them all.
            rest = ""
            if t + 1 < trials:
                cmd = ["ganforge", "modes", "--benchmark", "stacked-mnist", "--method", meth.name, "--steps", str(steps),
                       "--seed", str(seed + t + 1), "--trials", str(trials - t - 1), *(a for o in overrides for a in ("--set", o)),
                       *(["--device", device] if device != "auto" else []),
                       *(["--threads", str(threads)] if threads not in (None, 1) else []), "--out", str(out)]
                seeds = ", ".join(str(seed + i) for i in range(t + 1, trials))
                rest = f"; trial seed(s) {seeds} never started: run them with: {shlex.join(cmd)}"
            exc.args = (f"{exc}{rest}; once every trial has finished, score them with: "
                        f"ganforge modes --rescore {shlex.quote(str(out))}",)
            raise
        stats.append(s)
        grid = imgs if grid is None else grid
    grid_path = save_grid(grid, out, method)
    sets = trial_settings(first, meth.name) or None  # the trials differ from the first only in their seed
    return StackedResult(method, steps, stats, time.perf_counter() - t0, time.process_time() - c0, overrides=sets,
                         seeds=[seed + t for t in range(trials)], grid=grid_path)


def save_grid(images: Tensor, out: Path, method: str) -> Path:
    """The 8 x 8 grid of a result's first 64 samples ((64, 3, 28, 28) in [-1, 1]) as
    OUT/stacked-mnist-METHOD.png. Another run of the method into the same --out (other seeds, another
    length) keeps the grid already there and writes STEM-2.png, ...; the same grid is not written twice."""
    from ganforge.io import image_grid, save_png_keeping

    return save_png_keeping(image_grid(images, nrow=8), Path(out) / f"stacked-mnist-{method}.png")


# ----------------------------------------------------------------------------- rescoring kept trials


def bookkeeping(key: str) -> bool:
    """Whether a run-config key changes only speed or bookkeeping, never what is trained: where it ran
    and on how many threads, logging, and checkpoints (writing one draws no random numbers, and a resume
    is bit-exact on the CPU). A result's `overrides` leave these out, so modes_table.py merges a trial
    kept for a curve (`--set checkpoint.every_steps=8000`) with plain ones. perf.* is not among them:
    bf16 changes the numbers."""
    return key.startswith("checkpoint.") or key in ("train.device", "train.threads", "train.log_every", "train.progress")


def trial_settings(cfg, method: str) -> dict[str, str]:
    """{"section.key": str(value)} for every run-config key where a trial's config differs from the
    method as defined *now* (same length and seed), bookkeeping left out. A run and a later --rescore
    of it label the trial alike, with the values as the config holds them ("True", "0.001"), not as they
    were typed ("true", "1e-3"); a trial of an older `best` (before R1 joined it) comes back as `best`
    with loss.r1_gamma=0.0, so a changed recipe never passes for the current one."""
    from ganforge.configio import to_dict

    ref, got = to_dict(stacked_config(method, cfg.train.total_steps, cfg.train.seed)), to_dict(cfg)
    return {f"{sec}.{k}": str(v) for sec, vals in got.items() if isinstance(vals, dict)
            for k, v in vals.items() if ref.get(sec, {}).get(k) != v and not bookkeeping(f"{sec}.{k}")}


def rescore_stacked(path: Path, device: str = "auto") -> list[StackedResult]:
    """Score again the trials kept in the `--out` folder of earlier Stacked MNIST runs (each trial is
    a run folder `runs/stacked-mnist-METHOD-seedS`), e.g. for the per-channel diagnosis of trials
    scored before it existed. One result per (method, steps, settings), seeds in order; a trial's
    settings are the keys where its config.json differs from the method's own configuration."""
    from ganforge.config import read_run_config
    from ganforge.evaluators import load_evaluator

    path = Path(path)
    runs = sorted((path / "runs").glob("stacked-mnist-*-seed*")) if (path / "runs").is_dir() else []
    if not runs:
        raise UsageError(f"--rescore {str(path)!r}: no Stacked MNIST trials under {str(path / 'runs')!r} "
                         "(give the --out folder of a --benchmark stacked-mnist run)")
    groups: dict[tuple, list] = {}
    for run in runs:
        try:
            cfg = read_run_config(run / "config.json")
        except UsageError as exc:
            raise UsageError(f"--rescore: {exc}") from None
        method = cfg.preset.removeprefix("stacked-mnist-")
        if method not in STACKED_METHODS:
            raise UsageError(f"--rescore: {str(run)!r} is not a Stacked MNIST trial (preset {cfg.preset!r})")
        sets = trial_settings(cfg, method)
        if (why := unfinished(run, cfg.train.total_steps)) is not None:
            raise UsageError(f"--rescore: {why}")
        groups.setdefault((method, cfg.train.total_steps, tuple(sorted(sets.items()))), []).append((cfg.train.seed, run, cfg))
    clf = load_evaluator("mnist-clf")
    results = []
    for (method, steps, sets), trials in groups.items():
        t0, c0, stats, grid = time.perf_counter(), time.process_time(), [], None
        for seed, run, cfg in sorted(trials, key=lambda t: t[0]):
            s, imgs = score_run(run, clf, seed, cfg.model.z_dim, device)
            stats.append(s)
            grid = imgs if grid is None else grid
        # a trial finished by `train --resume` never reached run_stacked's grid: write it here (the same
        # latents, so a trial scored once already gets the very grid it has, not a second copy)
        results.append(StackedResult(method, steps, stats, time.perf_counter() - t0, time.process_time() - c0,
                                     overrides=dict(sets) or None, seeds=sorted(t[0] for t in trials),
                                     grid=save_grid(grid, path, method)))
    return results
