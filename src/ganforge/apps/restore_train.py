"""Training restoration networks: one loop, two phases.

Phase 1 ("pixel") minimises the L1 / L2 pixel loss with Adam and a cosine / step LR schedule.
Phase 2 ("adversarial", when train.adv_steps > 0) fine-tunes G against a PatchGAN with one of
ganforge.losses' adversarial losses plus a content (pixel) loss and a feature loss: VGG19
perceptual distance when loss.perceptual_weights names a local weights file, else D feature
matching. Read ``train_restorer()`` top to bottom: set-up, then per phase and step the LR, one
batch, the phase's step function (``pixel_step`` / ``adversarial_step``), the EMA update, and the
log / validation cadence; then the model folder. ``train.max_minutes`` bounds the wall time: the
LR schedule follows whichever of steps and time runs out first.

    run_dir = train_restorer(get_preset("sr-x4"))
    restore = load_restorer(run_dir)            # restore(lr (1, 3, h, w)) -> (1, 3, 4h, 4w)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from ganforge import __version__
from ganforge.apps.restore_apply import (Restorer, load_restorer, load_restorer_net, read_restore_run, run_net,
                                        save_restorer)
from ganforge.apps.restore_config import (RESUMABLE_KEYS, RestoreConfig, absolute_paths, check_perceptual_weights, dumps,
                                         validate)
from ganforge.apps.restore_data import (Batch, PatchSampler, check_photos, load_photos, shrink_photos, split_photos,
                                       validation_set)
from ganforge.apps.restore_losses import VGGPerceptual, feature_matching, pixel_loss
from ganforge.apps.restore_models import build_discriminator, build_restorer
from ganforge.configio import config_for_resume
from ganforge.errors import GanforgeError, UsageError
from ganforge.io import atomic_write_json
from ganforge.losses import LOSSES
from ganforge.metrics import psnr
from ganforge.provenance import provenance, starts
from ganforge.training import checkpoint as ckpt
from ganforge.training import runlock
from ganforge.training.checkpoint import mismatch
from ganforge.training.ema import EMA
from ganforge.training.guard import StopRequest, TrainingInterrupted
from ganforge.training.logger import MetricsLog
from ganforge.device import keeps_current_cuda_device, resolve_device
from ganforge.training.perf import resolve_precision
from ganforge.training.rundir import create_run_dir, find_run

__all__ = ["Restorer", "load_restorer", "read_restore_run", "train_restorer"]

log = logging.getLogger("ganforge.restore")


class NonFiniteLoss(GanforgeError):
    """A NaN/Inf loss: training stops (exit code 1) instead of saving a broken model."""

    exit_code = 1


def lr_factor(schedule: str, progress: float, step: int, step_every: int, gamma: float) -> float:
    """Multiplier of the phase's base LR. progress in [0, 1] (steps or time, whichever is further):
    cosine anneals 1 -> 0 over it (Loshchilov & Hutter 2017); step multiplies by gamma every
    step_every steps (SRGAN/EDSR halve the LR at fixed steps); constant is 1."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if schedule == "step":
        return gamma ** (step // step_every)
    return 1.0


def validation_psnr(G: nn.Module, val_set: list[Batch], task: str, scale: int, device: torch.device, autocast) -> float:
    """Mean PSNR (dB) of G on the held-out images: on Y with a ``scale``-pixel border cropped for SR
    (the SR convention), on RGB otherwise. G is put in eval mode and back."""
    was_training = G.training
    G.eval()
    values = []
    with torch.no_grad():
        for b in val_set:
            b = b.to(device)
            with autocast():
                out = run_net(G, task, b.inp, b.mask, b.sigma)
            out = out.float().clamp(0, 1)
            if not torch.isfinite(out).all():  # logged as a NaN PSNR (psnr() refuses NaN pixels); the loss guard acts
                values.append(float("nan"))
            elif task == "sr":
                values.append(float(psnr(out, b.target, data_range=1.0, y_channel=True, crop=scale)))
            else:
                values.append(float(psnr(out, b.target, data_range=1.0)))
    G.train(was_training)
    return sum(values) / len(values)


StepFn = Callable[[Batch, float], dict[str, Tensor]]  # one update on a batch at an LR factor -> detached stats


@dataclass
class Phase:
    name: str  # "pixel" | "adversarial"
    steps: int  # G updates
    lr: float  # base LR of G
    step: StepFn
    optimizers: dict[str, torch.optim.Optimizer]  # the step's Adam states ("g", and "d" in phase 2), for resuming


def _optimizer(params, lr: float, cfg: RestoreConfig) -> torch.optim.Adam:
    fused = {"fused": True} if cfg.perf.fused_optim else {}  # the same update, one kernel for all parameters
    return torch.optim.Adam(params, lr=lr, betas=(cfg.optim.beta1, cfg.optim.beta2), **fused)


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def _clip(params, max_norm: float) -> None:
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def make_pixel_step(cfg: RestoreConfig, G: nn.Module, autocast) -> tuple[StepFn, dict[str, torch.optim.Optimizer]]:
    """Phase 1: minimise the pixel loss of G's output. Returns (step, {"g": its optimizer})."""
    opt = _optimizer(G.parameters(), cfg.optim.lr, cfg)

    def step(b: Batch, factor: float) -> dict[str, Tensor]:
        _set_lr(opt, cfg.optim.lr * factor)
        with autocast():
            out = run_net(G, cfg.task, b.inp, b.mask, b.sigma)  # (N, 3, H, W)
        loss = pixel_loss(cfg.loss.pixel, out, b.target)  # fp32
        opt.zero_grad(set_to_none=True)
        loss.backward()
        _clip(G.parameters(), cfg.optim.grad_clip)
        opt.step()
        return {"pixel": loss.detach()}

    return step, {"g": opt}


def make_adversarial_step(cfg: RestoreConfig, G: nn.Module, D: nn.Module, perceptual: nn.Module | None,
                          autocast) -> tuple[StepFn, dict[str, torch.optim.Optimizer]]:
    """Phase 2: one D update on (real, G(x).detach()), then one G update on
    content_weight * pixel + feature_weight * (VGG or D feature matching) + adv_weight * adversarial.
    Returns (step, {"g": G's optimizer, "d": D's})."""
    lo, o = cfg.loss, cfg.optim
    adv = LOSSES[lo.adv_kind]
    opt_g, opt_d = _optimizer(G.parameters(), o.lr_adv, cfg), _optimizer(D.parameters(), o.lr_d, cfg)
    use_fm = perceptual is None and lo.feature_weight > 0

    def step(b: Batch, factor: float) -> dict[str, Tensor]:
        _set_lr(opt_g, o.lr_adv * factor)
        _set_lr(opt_d, o.lr_d * factor)
        with autocast():
            fake = run_net(G, cfg.task, b.inp, b.mask, b.sigma)  # (N, 3, H, W)
        # --- D step
        D.requires_grad_(True)
        with autocast():
            real_logits, fake_logits = D(b.target), D(fake.detach())  # (N * patches,)
        d_loss = adv.d_loss(real_logits.float(), fake_logits.float())
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        _clip(D.parameters(), o.grad_clip)
        opt_d.step()
        # --- G step (D frozen: its gradients are not needed)
        D.requires_grad_(False)
        with autocast():
            logits, fake_feats = D(fake, features=True)
            if use_fm:
                with torch.no_grad():
                    real_feats = D(b.target, features=True)[1]
        g_adv = adv.g_loss(logits.float())
        content = pixel_loss(lo.pixel, fake, b.target)
        if perceptual is not None:
            with autocast():
                feat = perceptual(fake, b.target)
        elif use_fm:
            feat = feature_matching(fake_feats, real_feats)
        else:
            feat = torch.zeros((), device=fake.device)
        g_loss = lo.content_weight * content + lo.feature_weight * feat.float() + lo.adv_weight * g_adv
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        _clip(G.parameters(), o.grad_clip)
        opt_g.step()
        return {"d_loss": d_loss.detach(), "g_adv": g_adv.detach(), "pixel": content.detach(),
                "feature": feat.detach().float(), "d_real": real_logits.detach().float().mean(),
                "d_fake": fake_logits.detach().float().mean()}

    return step, {"g": opt_g, "d": opt_d}


def phase_time_budget(budget_s: float, used_s: float, steps_left: list[int]) -> float:
    """Seconds for the phase starting now (steps_left[0] steps, then the later phases'): the time left
    of train.max_minutes (budget_s; 0 = no limit -> inf) shared by the phases left in proportion to
    their steps. A phase that ends on its step count under its share hands the rest on to the next."""
    if not budget_s:
        return math.inf
    return max(budget_s - used_s, 0.0) * steps_left[0] / sum(steps_left)


def _init_from(G: nn.Module, cfg: RestoreConfig) -> None:
    """Load G's weights from train.init_from (a model or run folder of the same task and network, or
    of one with fewer of G's ``growable`` blocks: those G has beyond the source's keep their
    identity init, so G starts out computing what the source did)."""
    src, src_cfg, _ = load_restorer_net(cfg.train.init_from)
    state = src.state_dict()
    growable = getattr(G, "growable", ())
    state = {**{k: v for k, v in G.state_dict().items() if k not in state and k.startswith(growable)}, **state}
    if src_cfg.task != cfg.task:
        problem = f"it is a {src_cfg.task} model"
    elif cfg.task == "sr" and src_cfg.degrade.scale != cfg.degrade.scale:  # named first: the layers differ too
        problem = f"it upscales x{src_cfg.degrade.scale}, this run x{cfg.degrade.scale}"
    else:
        problem = mismatch(G, state)
    if problem:
        raise UsageError(f"train.init_from={cfg.train.init_from!r} does not match this {cfg.task} network "
                         f"({problem}): its model settings must match")
    G.load_state_dict(state)


def _photos_digest(photos: list[Tensor]) -> str:
    """A fingerprint of the training photos (their shapes and pixel sums): a resumed run's sampler
    state indexes these photos, so it must not continue on a changed folder."""
    h = hashlib.sha256()
    for p in photos:
        h.update(f"{tuple(p.shape)}:{int(p.sum(dtype=torch.int64))};".encode())
    return h.hexdigest()


@keeps_current_cuda_device  # cuda:N is made current below; the caller's GPU is current again after
def train_restorer(cfg: RestoreConfig | None = None, *, out: str | Path | None = None, runs_root: str | Path = "runs",
                   photos: list[Tensor] | None = None, resume: str | Path | None = None,
                   dry_run: bool = False) -> Path | None:
    """Train the restoration network of ``cfg`` and return its run folder (config.json,
    metrics.jsonl, model/). ``photos`` (uint8 (3, H, W) tensors) skips loading cfg.data.source (data.shrink still applies).

    Every checkpoint.every_steps steps a training state goes to RUN/checkpoints/; SIGTERM/SIGINT
    finish the step, write a state and the model folder so far, and raise TrainingInterrupted.
    ``resume=RUN`` (or "latest") continues that run from its newest valid state, bit for bit as if
    never stopped when the budget is in steps (``cfg``, if given, replaces the run's config and may
    differ from it only in ``restore_config.RESUMABLE_KEYS``; the time budget goes on from the time
    already spent). A completed run is not resumed: train a new
    cycle from it with train.init_from.

    ``dry_run=True`` does everything up to the first step, writing nothing: loads the photos, builds
    the nets (loading train.init_from and a perceptual net's weights) and, for a resume, loads the newest
    valid state into them; then returns the run folder it would resume (None for a new run).

    Only one process at a time trains in a run folder: a second one, while this holds its
    ``run.lock`` (training/runlock.py, as GAN training), stops with a UsageError before it writes."""
    with contextlib.ExitStack() as hold:  # the run lock, once taken below
        return _train_restorer(cfg, out=out, runs_root=runs_root, photos=photos, resume=resume, dry_run=dry_run,
                               hold=hold)


def _train_restorer(cfg: RestoreConfig | None, *, out, runs_root, photos, resume, dry_run: bool,
                    hold: contextlib.ExitStack) -> Path | None:
    """train_restorer()'s body; ``hold`` keeps the run folder's lock until train_restorer() ends."""
    if cfg is None and resume is None:
        raise UsageError("give a RestoreConfig (ganforge.apps.restore_config.get_preset(...)) or resume=RUN")
    if cfg is not None and not isinstance(cfg, RestoreConfig):
        from ganforge.config import RunConfig

        gan = " (a GAN config: train it with ganforge.train)" if isinstance(cfg, RunConfig) else ""
        raise UsageError(f"cfg is a {type(cfg).__name__}{gan}, not a RestoreConfig: give a RestoreConfig "
                         "(ganforge.apps.restore_config.get_preset(...)) or resume=RUN")
    if photos is not None:
        check_photos(photos)
    run_dir = find_run(resume, runs_root, kind="restore") if resume is not None else None  # latest: newest restoration run
    found = None  # (training state, its path) when resuming from one
    if run_dir is not None:
        run_cfg = read_restore_run(run_dir)  # first: a GAN run folder is refused here
        if (run_dir / "summary.json").exists():
            raise UsageError(f"{run_dir} has finished (summary.json): train a new cycle from it with --set train.init_from={run_dir}")
        cfg = config_for_resume(run_dir, run_cfg, cfg, RESUMABLE_KEYS)
        if dry_run:  # one writer per run folder (a dry run only looks); held before a state is set aside
            runlock.check_run_lock(run_dir)
        else:
            hold.enter_context(runlock.run_lock(run_dir))
        found = ckpt.load_latest_state(run_dir / ckpt.STATE_DIR, set_aside=not dry_run)
        if found is None:
            log.warning("%s has no training state yet: starting it again from step 0", run_dir)
    assert cfg is not None
    cfg = absolute_paths(validate(cfg))
    check_perceptual_weights(cfg, resuming=run_dir is not None)  # before the photos load
    t, lo = cfg.train, cfg.loss
    device = resolve_device(t.device)
    if device.index is not None:  # cuda:N made current, as GAN training does: calls that take the current
        torch.cuda.set_device(device)  # GPU (bf16 support, cudnn, the allocator) then ask this one, not cuda:0
    if t.threads:
        torch.set_num_threads(t.threads)
    if device.type == "cuda":  # patches have one fixed shape: time the conv algorithms once, keep the fastest
        hold.callback(setattr, torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # the caller's, after
        torch.backends.cudnn.benchmark = cfg.perf.cudnn_benchmark
    # precision resolved for the training GPU (cuda:N, now current); bf16 autocast needs no grad scaler
    precision = resolve_precision(cfg.perf.precision, device)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    torch.manual_seed(t.seed)  # weight init; the sampler and degradations have their own generator

    # --- data: uint8 photos on the training device (data.on_device) or the CPU; patches cut and
    # degraded on the fly there from CPU-drawn random numbers (the same batches on either)
    if photos is None:
        photos = load_photos(cfg.data.source, max_images=cfg.data.max_images)
    photos = shrink_photos(photos, cfg.data.shrink)
    train_photos, val_photos = split_photos(photos, cfg.data.val_images, cfg.data.patch_size)
    sampler = PatchSampler(train_photos, cfg, seed=t.seed, device=device if cfg.data.on_device else "cpu")
    val_set = validation_set(val_photos, cfg)
    scale = cfg.degrade.scale if cfg.task == "sr" else 1

    # --- networks, EMA
    G = build_restorer(cfg)
    if t.init_from and found is None:  # a training state holds G already
        _init_from(G, cfg)
    G = G.to(device)
    adversarial = t.adv_steps > 0
    D = build_discriminator(cfg).to(device) if adversarial else None
    perceptual = VGGPerceptual(lo.perceptual_weights).to(device) if adversarial and lo.perceptual_weights else None
    # NHWC: on CUDA for the tensor cores; on the AVX512-BF16 CPU of docs/BENCHMARKS.md it measured faster
    # too (one thread, DnCNN 64x17, batch 16 of 48 px: bf16 617 vs 673 ms/step, fp32 1238 vs 1478;
    # benchmarks/restore_speed.py)
    if cfg.perf.channels_last:
        G = G.to(memory_format=torch.channels_last)
        D = D.to(memory_format=torch.channels_last) if D is not None else None
    ema = EMA(G, t.ema_decay) if t.ema_decay > 0 else None
    phases = [Phase("pixel", t.total_steps, cfg.optim.lr, *make_pixel_step(cfg, G, autocast))] if t.total_steps else []
    if adversarial:
        phases.append(Phase("adversarial", t.adv_steps, cfg.optim.lr_adv, *make_adversarial_step(cfg, G, D, perceptual, autocast)))
    digest = _photos_digest(train_photos)

    # --- run folder: fresh, or the one being resumed (from its newest valid state, if any)
    state = None
    if run_dir is None:
        if dry_run:
            return None
        run_dir = create_run_dir(cfg.preset, out=out, root=runs_root)
        hold.enter_context(runlock.run_lock(run_dir))  # before config.json: until then --resume refuses the folder
    elif found is None:
        if dry_run:
            return run_dir
        ckpt.trim_metrics(run_dir / "metrics.jsonl", -1)  # the first attempt's rows: all written again
    else:
        state, path = found
        if state.get("photos") != digest:
            raise UsageError(f"{path} was written for other training photos than {cfg.data.source!r} now holds "
                             "(their sizes or pixels changed): resume needs the same photos")
        modules = {"G": G, **({"ema": ema.model} if ema is not None else {}), **({"D": D} if D is not None else {})}
        ckpt.check_state_fits(modules, state, source=path)
        G.load_state_dict(state["G"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if D is not None:
            D.load_state_dict(state["D"])
        for name, opt in phases[state["phase"]].optimizers.items():
            opt.load_state_dict(state["opt"][name])
        sampler.g.set_state(state["sampler"])
        ckpt.set_rng_state(state["rng"])
        log.info("resuming %s from %s (step %d)", run_dir, path.name, state["step"])
        if dry_run:
            return run_dir
        ckpt.trim_metrics(run_dir / "metrics.jsonl", state["step"])  # rows past the state are written again
    ckpt_dir = run_dir / ckpt.STATE_DIR
    resolved = {"device": str(device), "precision": precision, "torch": torch.__version__, "threads": torch.get_num_threads(),
                "train_photos": len(train_photos), "val_photos": len(val_photos)}
    atomic_write_json(run_dir / "config.json", {**provenance(), "starts": starts(run_dir / "config.json", found[0]["step"] if found else 0),
                                                "restore": json.loads(dumps(cfg)), "resolved": resolved})
    metrics = MetricsLog(run_dir / "metrics.jsonl")  # appends
    G_val = lambda: ema.model if ema is not None else G  # noqa: E731  (what validation and the model folder use)

    def validate_now(step: int, phase: str) -> float | None:
        if not val_set:
            return None
        value = validation_psnr(G_val(), val_set, cfg.task, scale, device, autocast)
        metrics.write({"step": step, "phase": phase, "val_psnr": round(value, 4), "val_on": "y" if cfg.task == "sr" else "rgb"})
        return value

    budget_s = t.max_minutes * 60.0
    all_steps = sum(p.steps for p in phases)
    bar = None
    if t.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=all_steps, initial=state["step"] if state else 0, unit="step", dynamic_ncols=True, desc=cfg.preset)

    def write_row(phase: Phase, step: int, sums: dict[str, Tensor], n: int, lr: float, since: float) -> None:
        row = {k: float(v) / n for k, v in sums.items()}  # the host sync of the log step
        if not all(math.isfinite(v) for v in row.values()):
            raise NonFiniteLoss(f"non-finite loss {row} at {phase.name} step {step}: lower optim.lr or set optim.grad_clip")
        now = time.perf_counter()
        metrics.write({"step": done_total, "phase": phase.name, "phase_step": step, **{k: round(v, 6) for k, v in row.items()},
                       "lr": lr, "img_per_s": round(n * t.batch_size / max(now - since, 1e-9), 2), "elapsed_s": round(now - t_run, 2)})
        if bar is not None:
            bar.set_postfix({k: f"{v:.4f}" for k, v in list(row.items())[:2]})

    def training_state(index: int, step: int, sums: dict[str, Tensor], n_sum: int, phase_elapsed: float) -> dict:
        """Everything the next step depends on: weights, Adam states, the sampler's generator, the
        phase and its clock, and the log row being summed (so it averages the same steps)."""
        return {"format": ckpt.STATE_FORMAT, "kind": "restore", "step": done_total, "ganforge_version": __version__,
                "config": dumps(cfg), "G": G.state_dict(), "ema": ema.state_dict() if ema is not None else {},
                **({"D": D.state_dict()} if D is not None else {}),
                "opt": {k: o.state_dict() for k, o in phases[index].optimizers.items()},
                "sampler": sampler.g.get_state(), "rng": ckpt.rng_state(), "photos": digest,
                "phase": index, "phase_step": step, "phase_elapsed_s": phase_elapsed, "elapsed_s": time.perf_counter() - t_run,
                "sums": sums, "n_sum": n_sum, "summary": summary, "start_val_psnr": first_val}

    def save_state(index: int, step: int, sums: dict[str, Tensor], n_sum: int, phase_elapsed: float) -> None:
        """Write a training state; on SIGTERM/SIGINT also the model so far, then stop."""
        saved = ckpt.save_state(ckpt_dir, done_total, training_state(index, step, sums, n_sum, phase_elapsed), cfg.checkpoint.keep_last)
        if stop.requested:
            save_model(interrupted_at_step=done_total)
            raise TrainingInterrupted(stop.signum or signal.SIGTERM, done_total, saved, run_dir, command=f"ganforge {cfg.task} train")

    def save_model(**extra) -> None:  # EMA weights preferred when loading
        save_restorer(run_dir / "model", cfg, G, ema.model if ema is not None else None,
                      preset=cfg.preset, phases=summary, start_val_psnr=first_val, **extra)

    if state is None:
        # the fresh net is the base estimate (bicubic, noisy input, filled holes)
        done_total, summary, first_val, start_index = 0, {}, validate_now(0, "start"), 0
    else:
        done_total, summary, first_val, start_index = int(state["step"]), state["summary"], state["start_val_psnr"], int(state["phase"])
    t_run = time.perf_counter() - (float(state["elapsed_s"]) if state else 0.0)  # the run's clock goes on across resumes
    stop = StopRequest()  # SIGTERM/SIGINT: finish the step, write a state and the model so far, raise TrainingInterrupted
    every = cfg.checkpoint.every_steps
    G.train()
    try:
        with stop.installed():
            for index, phase in enumerate(phases):
                if index < start_index:
                    continue
                resumed = state is not None and index == start_index
                used_s = sum(summary[p.name]["seconds"] for p in phases[:index])  # the finished phases' time
                phase_budget = phase_time_budget(budget_s, used_s, [p.steps for p in phases[index:]])
                sums: dict[str, Tensor] = state["sums"] if resumed else {}
                n_sum, step = (int(state["n_sum"]), int(state["phase_step"])) if resumed else (0, 0)
                t_phase = time.perf_counter() - (float(state["phase_elapsed_s"]) if resumed else 0.0)
                t_last = time.perf_counter()
                factor = lr_factor(cfg.optim.schedule, step / phase.steps, step, cfg.optim.step_every, cfg.optim.step_gamma)
                while step < phase.steps:
                    elapsed = time.perf_counter() - t_phase
                    progress = max(step / phase.steps, elapsed / phase_budget if phase_budget > 0 else math.inf)
                    if progress >= 1.0:
                        log.info("%s phase: time budget reached after %d of %d steps", phase.name, step, phase.steps)
                        break
                    factor = lr_factor(cfg.optim.schedule, progress, step, cfg.optim.step_every, cfg.optim.step_gamma)
                    batch = sampler.sample().to(device)  # a no-op with data.on_device
                    stats = phase.step(batch, factor)
                    if ema is not None:
                        ema.update(G)
                    for k, v in stats.items():
                        sums[k] = sums.get(k, 0) + v
                    n_sum += 1
                    step += 1
                    done_total += 1
                    if bar is not None:
                        bar.update(1)
                    if step % t.log_every == 0 or step == phase.steps:
                        write_row(phase, step, sums, n_sum, phase.lr * factor, t_last)
                        sums, n_sum, t_last = {}, 0, time.perf_counter()
                    if t.val_every and step % t.val_every == 0 and step < phase.steps:
                        validate_now(done_total, phase.name)
                    # a state holds every metrics row of its step (resuming drops the later ones), so the
                    # periodic state of a phase's last step is written after the phase's end rows, below
                    if stop.requested or (every and done_total % every == 0 and step < phase.steps):
                        save_state(index, step, sums, n_sum, time.perf_counter() - t_phase)
                if n_sum:  # stopped by the time budget between log rows
                    write_row(phase, step, sums, n_sum, phase.lr * factor, t_last)
                summary[phase.name] = {"steps": step, "of_steps": phase.steps, "seconds": round(time.perf_counter() - t_phase, 1),
                                       "val_psnr": validate_now(done_total, f"end-{phase.name}")}
                if index + 1 < len(phases) and (stop.requested or (every and done_total % every == 0)):
                    save_state(index + 1, 0, {}, 0, 0.0)  # at the start of the next phase
    finally:
        metrics.close()
        if bar is not None:
            bar.close()

    # --- what the run leaves behind: the model folder, then summary.json (the run is complete), then
    # the training states go: a finished run is continued with train.init_from, not resumed
    save_model()
    atomic_write_json(run_dir / "summary.json", {"phases": summary, "start_val_psnr": first_val,
                                                 "seconds": round(time.perf_counter() - t_run, 1), **resolved})
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return run_dir
