"""``bench_train`` and ``bench_sample``: build both paths, time them, and return one JSON-ready dict."""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import torch
from torch import nn

from ganforge.bench.measure import (
    count_flops, fp32_math, matmul_peak_tflops, peak_memory_kind, peak_memory_mb, reset_peak_memory, sync, time_rate,
)
from ganforge.bench.reference import make_reference_iteration
from ganforge.config import RunConfig, apply_overrides
from ganforge.configio import override_key
from ganforge.data import Batcher, ImageData
from ganforge.errors import UsageError
from ganforge.models import build_discriminator, build_generator
from ganforge.training.distributed import DataParallel
from ganforge.training.ema import EMA
from ganforge.training.guard import NonFiniteGuard
from ganforge.training.loop import label_sampler, make_optimizer
from ganforge.training.objective import Objective
from ganforge.training.perf import resolve_precision
from ganforge.training.stats import Accumulator
from ganforge.training.step import make_iteration


def _sig(x: float) -> float:
    """x to 4 significant digits (tiny CPU TFLOP/s values keep their precision)."""
    return float(f"{x:.4g}")


# 2**16 images per batch: 32x past the largest batch in the docs' examples (2048) and more than
# any preset's activations fit in 80 GB of GPU memory, yet a mistyped 100000000 is refused up front
# instead of ending as "can't allocate memory" after the nets are built.
MAX_BATCH = 65536

# --set keys the bench options set themselves: an override would silently replace the option and
# the printed "batch N" (and img/s) would describe a run that did not happen.
OPTION_KEYS = {"train.batch_size": "--batch", "train.device": "--device"}


def check_bench_args(batch: int, steps: int, repeats: int) -> None:
    for name, value in (("--batch", batch), ("--steps", steps), ("--repeats", repeats)):
        if value < 1:
            raise UsageError(f"{name} {value} must be >= 1")
    if batch > MAX_BATCH:
        raise UsageError(f"--batch {batch} is too large: at most {MAX_BATCH} images per batch")


# --set keys with no effect on a benchmark, which times random images: accepting them would let a user
# believe that the rate is that of their dataset (data.hflip and data.on_device are applied)
NO_EFFECT_KEYS = ("data.source", "data.max_images", "data.on_bad_image", "data.max_bad_fraction")


def check_bench_overrides(overrides) -> None:
    for item in overrides:
        key = override_key(item)
        if key in OPTION_KEYS:
            raise UsageError(f"--set {key} is not allowed in bench: use {OPTION_KEYS[key]} instead")
        if key in NO_EFFECT_KEYS:
            raise UsageError(f"--set {key} has no effect in bench, which times random images of the model's size "
                             "(the dataset is not read); leave it out")


@contextlib.contextmanager
def _threads(threads: int):
    """torch's CPU threads set to ``threads`` (0: left as they are) while the benchmark runs, then put back:
    a ``--set train.threads=1`` that was not applied would report the rate of all cores as one thread's."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _autocast(precision: str, device: torch.device) -> Callable:
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def make_ganforge_iteration(
    cfg: RunConfig, device: torch.device, parallel: DataParallel | None = None, *, G: nn.Module | None = None,
    D: nn.Module | None = None,
) -> tuple[Callable[[], None], str, NonFiniteGuard]:
    """The training loop's own iteration (training/step.py) on random uint8 images, set up as
    ``train()`` sets it up (optimisers, objective, EMA, guard, perf settings). Returns the
    zero-argument iteration, the precision that runs and the guard (to be polled). ``parallel``
    shards it across processes as under torchrun; ``G``/``D`` replace the preset's nets (tests)."""
    t, m = cfg.train, cfg.model
    n = 2 * t.batch_size  # two batches per epoch: the Batcher's reshuffle is part of what is timed
    images = torch.randint(0, 256, (n, m.channels, m.resolution, m.resolution), dtype=torch.uint8)
    labels = torch.randint(m.num_classes, (n,)) if m.num_classes else None
    names = [str(k) for k in range(m.num_classes)] if m.num_classes else None
    # stored and flipped as training does (data.on_device, data.hflip): both change what a step costs
    batcher = Batcher(ImageData(images, labels, names, "random"), t.batch_size, seed=t.seed, hflip=cfg.data.hflip,
                      device=device if cfg.data.on_device else "cpu", out_device=device)
    G = (G or build_generator(m)).to(device)
    D = (D or build_discriminator(m)).to(device)
    if cfg.perf.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if parallel is not None:
        G, D = parallel.prepare(G, D)
    precision = resolve_precision(cfg.perf.precision, device, strict=cfg.perf.strict)
    guard = NonFiniteGuard(t.on_nonfinite, t.max_rollbacks)
    iterate = make_iteration(
        cfg, G=G, D=D, opt_g=make_optimizer(G.parameters(), cfg, "g"), opt_d=make_optimizer(D.parameters(), cfg, "d"),
        objective=Objective.from_config(cfg), batcher=batcher, fake_labels=label_sampler(m.num_classes, t.batch_size, device),
        guard=guard, acc=Accumulator(), ema=EMA(G, t.ema_decay, t.ema_warmup) if t.ema_decay > 0 else None,
        autocast=_autocast(precision, device), device=device, parallel=parallel,
    )
    G.train()
    D.train()
    step = 0

    def one() -> None:
        nonlocal step
        iterate(step)
        step += 1

    return one, precision, guard


def bench_train(
    cfg: RunConfig, *, batch: int, device: torch.device, steps: int = 10, repeats: int = 3, warmup: int = 3,
    overrides: tuple[str, ...] = (),
) -> dict:
    """Time the eager reference and ganforge's step on the same preset and batch (see measure.py)."""
    check_bench_args(batch, steps, repeats)
    check_bench_overrides(overrides)
    cfg = apply_overrides(cfg, [f"train.batch_size={batch}", *overrides])
    with _threads(cfg.train.threads):  # as training applies train.threads: peaks and rates alike
        return _time_train(cfg, batch=batch, device=device, steps=steps, repeats=repeats, warmup=warmup)


def _time_train(cfg: RunConfig, *, batch: int, device: torch.device, steps: int, repeats: int, warmup: int) -> dict:
    t = cfg.train
    imgs_per_iter = batch * (t.n_critic if t.update == "alternating" else 1)  # real images, as the loop logs
    peaks = {"fp32": matmul_peak_tflops(device, torch.float32), "bf16": matmul_peak_tflops(device, torch.bfloat16)}

    out: dict = {}
    torch.manual_seed(t.seed)
    reference = make_reference_iteration(cfg, batch, device)
    fast, precision, guard = make_ganforge_iteration(cfg, device)
    flops = count_flops(reference)  # same nets, same batch: the autocast dtype does not change the count
    for name, fn, prec in (("reference", reference, "fp32"), ("fast", fast, precision)):
        reset_peak_memory(device)
        t0 = time.perf_counter()
        fn()  # the first iteration pays for compilation (perf.compile) and allocator warm-up
        sync(device)
        first_step_s = time.perf_counter() - t0
        rate = time_rate(fn, device, steps=steps, repeats=repeats, warmup=warmup)
        tflops = flops * rate / 1e12 if flops is not None else None  # None: not countable (count_flops)
        out[name] = {
            "precision": prec, "img_per_s": _sig(rate * imgs_per_iter), "steps_per_s": _sig(rate),
            "tflops": _sig(tflops) if tflops is not None else None,
            "util": _sig(tflops / peaks[prec]) if tflops is not None else None, "peak_mem_mb": round(peak_memory_mb(device), 1),
            "first_step_s": round(first_step_s, 3),
        }
    guard.poll()  # a NaN in the timed steps is a bug worth an error, as in training
    return {
        "preset": cfg.preset, "device": str(device), "batch": batch, "steps": steps, "repeats": repeats,
        "update": t.update, "n_critic": t.n_critic, "imgs_per_iter": imgs_per_iter,
        "channels_last": cfg.perf.channels_last,
        "perf": {k: getattr(cfg.perf, k) for k in ("compile", "compile_mode", "fused_optim", "d_concat", "sn_once", "fast_dropout")},
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "flops_per_iter": flops, "peak_tflops": {k: _sig(v) for k, v in peaks.items()}, "fp32_math": fp32_math(device),
        "peak_mem_kind": peak_memory_kind(device), **out,
        "ratio": round(out["fast"]["img_per_s"] / out["reference"]["img_per_s"], 3),
    }


def bench_sample(
    cfg: RunConfig, *, batch: int, device: torch.device, steps: int = 10, repeats: int = 3, warmup: int = 2,
    overrides: tuple[str, ...] = (),
) -> dict:
    """Generator inference img/s, eager fp32 against bf16 autocast (with the preset's channels_last),
    and ``time_to_first_batch_s``: from building G to the first generated batch back on the host.
    ``overrides`` are `--set` strings, as for bench_train (e.g. model.resolution=64)."""
    check_bench_args(batch, steps, repeats)
    check_bench_overrides(overrides)
    cfg = apply_overrides(cfg, list(overrides))
    with _threads(cfg.train.threads):  # as training applies train.threads
        return _time_sample(cfg, batch=batch, device=device, steps=steps, repeats=repeats, warmup=warmup)


def _time_sample(cfg: RunConfig, *, batch: int, device: torch.device, steps: int, repeats: int, warmup: int) -> dict:
    m = cfg.model
    t0 = time.perf_counter()
    G = build_generator(m).to(device).eval()
    z = torch.randn(batch, m.z_dim, device=device)  # (B, z_dim)
    y = torch.randint(m.num_classes, (batch,), device=device) if m.num_classes else None
    with torch.no_grad():
        G(z, y).cpu()
    first = time.perf_counter() - t0

    def run(precision: str) -> Callable[[], None]:
        ac = _autocast(precision, device)

        def fn() -> None:
            with torch.no_grad(), ac():
                G(z, y)

        return fn

    out = {"preset": cfg.preset, "device": str(device), "batch": batch, "threads": torch.get_num_threads(),
           "time_to_first_batch_s": round(first, 4)}
    fp32 = time_rate(run("fp32"), device, steps=steps, repeats=repeats, warmup=warmup)
    out["eager_fp32"] = {"img_per_s": round(fp32 * batch, 1)}
    precision = resolve_precision("bf16", device)  # falls back to fp32 (with a warning) where bf16 is not native
    if cfg.perf.channels_last:
        G = G.to(memory_format=torch.channels_last)
    rate = time_rate(run(precision), device, steps=steps, repeats=repeats, warmup=warmup)
    out["fast"] = {"precision": precision, "channels_last": cfg.perf.channels_last, "img_per_s": round(rate * batch, 1)}
    out["ratio"] = round(rate / fp32, 3)
    sync(device)
    return out
