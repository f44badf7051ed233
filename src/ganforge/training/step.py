"""One training iteration (n_critic D steps + one G step, or one simultaneous step), as a callable.

``train()`` calls it once per G step; ``ganforge bench train`` calls the very same callable to
time ganforge's path, so the benchmark can never drift from the loop. The body is the loop's
former inner block, moved here unchanged (same ops in the same order, so runs are bit-identical)
apart from the hooks for multi-process runs, ``shard``, ``sync_grads`` and feature matching's
``ranks_mean``, which are the identity, a no-op and None in one process.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import nn

from ganforge.config import RunConfig
from ganforge.errors import UsageError
from ganforge.data import Batcher
from ganforge.training.distributed import DataParallel
from ganforge.training.ema import EMA
from ganforge.training.guard import NonFiniteGuard
from ganforge.training.objective import Objective
from ganforge.training.perf import resolve_compile
from ganforge.training.schedule import lr_factor
from ganforge.nn import has_batch_norm, set_fast_dropout, set_spectral_norm_auto_update, spectral_norm_power_step
from ganforge.training.stats import Accumulator, grad_norm
from ganforge.training.unroll import unrolled_discriminator

BATCH_STAT_LAYERS = (nn.modules.batchnorm._BatchNorm,)
log = logging.getLogger("ganforge.train")


def has_batch_statistics(D: nn.Module) -> bool:
    """True when D's output for one image depends on the other images of its batch (batch norm,
    minibatch stddev): real and fake must then go through D separately."""
    from ganforge.nn import MinibatchStdDev

    return any(isinstance(mod, (*BATCH_STAT_LAYERS, MinibatchStdDev)) for mod in D.modules())


def compiled(net: nn.Module, mode: str) -> nn.Module:
    """torch.compile(net) for the forward passes of the hot loop. dynamic=False: shapes are fixed
    per run (batch, resolution), so one specialised graph per call site."""
    return torch.compile(net, mode=mode, dynamic=False)


def make_iteration(
    cfg: RunConfig,
    *,
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    objective: Objective,
    batcher: Batcher,
    fake_labels: Callable[[], torch.Tensor | None],
    guard: NonFiniteGuard,
    acc: Accumulator,
    ema: EMA | None,
    autocast: Callable,
    device: torch.device,
    parallel: DataParallel | None = None,
) -> Callable[[int], None]:
    """Return ``iterate(step)``: set the LRs for G step ``step``, run its D and G updates, update EMA.

    ``parallel`` (multi-process runs only, training/distributed.py): every batch, noise vector
    and fake label is drawn for the global batch B and this process keeps its shard of B / N
    rows; gradients are averaged over processes after each backward. None: one process."""
    t, m, perf = cfg.train, cfg.model, cfg.perf
    batch = t.batch_size  # global batch: noise is drawn for all of it, so RNG streams agree across ranks
    msgan = objective.msgan_weight > 0
    shard = parallel.shard if parallel is not None else (lambda x: x)  # (B, ...) -> (B / N, ...)
    sync_grads = parallel.sync_grads if parallel is not None else (lambda params: None)
    ranks_mean = parallel.mean if parallel is not None else None  # feature matching's global batch means

    def set_lrs(step: int) -> None:
        for opt, base in ((opt_g, cfg.optim.lr_g), (opt_d, cfg.optim.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * lr_factor(cfg.optim.schedule, step, t.total_steps, cfg.optim.decay_start_step)

    def simultaneous(step: int) -> None:
        # The Keras tutorial's step: one G forward, D on real and fake, both losses from the
        # same forward, each net updated with its own gradients (no D update before G's).
        real, y_real = map(shard, next(batcher))
        y_fake = objective.paired_labels(shard(fake_labels()), msgan)
        z = shard(torch.randn(batch, m.z_dim, device=device))
        if perf.sn_once:
            spectral_norm_power_step(D)  # the step's one power iteration (D is updated once per step)
        with autocast():
            fake = G_f(z, y_fake)
            if perf.d_concat:  # one D forward over (2B, C, H, W); D has no batch statistics (checked below)
                y_both = None if y_real is None else torch.cat([y_real, y_fake])
                real_logits, fake_logits = D_f(torch.cat([real, fake]), y_both).float().chunk(2)
            else:
                real_logits = D_f(real, y_real).float()
                fake_logits = D_f(fake, y_fake).float()
        d_loss = objective.loss.d_loss(real_logits, fake_logits)
        g_loss, g_stats = objective.add_diversity(objective.loss.g_loss(fake_logits), {}, fake, z)
        d_params, g_params = [p for p in D.parameters()], [p for p in G.parameters()]
        grads_d = torch.autograd.grad(d_loss, d_params, retain_graph=True)
        grads_g = torch.autograd.grad(g_loss, g_params)
        for p, g in zip(d_params, grads_d):
            p.grad = g
        for p, g in zip(g_params, grads_g):
            p.grad = g
        sync_grads(d_params)
        sync_grads(g_params)
        stats = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **g_stats,
                 **objective.d_outputs(real_logits, fake_logits),
                 "grad_norm_d": grad_norm(d_params), "grad_norm_g": grad_norm(g_params)}
        d_ok = guard.allow(step, "d", d_loss, stats["grad_norm_d"])
        g_ok = guard.allow(step, "g", g_loss, stats["grad_norm_g"])
        if d_ok:
            opt_d.step()
            objective.after_d_step(D)
        if g_ok:
            opt_g.step()
        if d_ok and g_ok:
            acc.add(stats)

    def alternating(step: int) -> None:
        # --- D steps: fake images are detached, so only D learns here
        D.requires_grad_(True)
        for i in range(t.n_critic):
            real, y_real = map(shard, next(batcher))  # (B, C, H, W) in [-1, 1], labels (B,) or None
            y_fake = shard(fake_labels())
            z = shard(torch.randn(batch, m.z_dim, device=device))  # (B, z_dim)
            if perf.sn_once:
                spectral_norm_power_step(D)  # this D step's one power iteration (Miyato et al. run one per forward)
            with torch.no_grad(), autocast():
                fake = G_f(z, y_fake)
            with autocast():
                d_loss, stats = objective.discriminator_loss(D_f, real, fake, y_real, y_fake, step * t.n_critic + i,
                                                             concat=perf.d_concat, D_eager=D)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            sync_grads(D.parameters())
            stats["grad_norm_d"] = grad_norm(D.parameters())
            if guard.allow(step, "d", d_loss, stats["grad_norm_d"]):  # only `skip` ever refuses
                opt_d.step()
                objective.after_d_step(D)
                stats["d_loss"] = d_loss.detach()
                acc.add(stats)

        # --- G step: D frozen, so no D gradients are computed
        D.requires_grad_(False)
        y_fake = objective.paired_labels(shard(fake_labels()), msgan)
        z = shard(torch.randn(batch, m.z_dim, device=device))
        with autocast():
            fake = G_f(z, y_fake)
            D_g = D_f
            if t.unroll_steps:  # Metz et al.: G's loss at D after k differentiable Adam steps on this batch
                real_u, y_real_u = map(shard, next(batcher))
                D_g = unrolled_discriminator(D, opt_d, objective.loss, real_u, fake, y_real_u, y_fake, t.unroll_steps)
            g_loss, stats = objective.generator_loss(D_g, fake, y_fake, z, real=real, D_eager=D, mean_over_ranks=ranks_mean)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        sync_grads(G.parameters())
        stats["grad_norm_g"] = grad_norm(G.parameters())
        if guard.allow(step, "g", g_loss, stats["grad_norm_g"]):
            opt_g.step()
            stats["g_loss"] = g_loss.detach()
            acc.add(stats)

    # --- the fast-path switches (perf.*): each keeps the arithmetic of the plain path
    if perf.d_concat and has_batch_statistics(D):
        raise UsageError("perf.d_concat=true: this D has batch statistics (batch norm or minibatch stddev)")
    if objective.ac_weight and not objective.ac_on_fake and has_batch_norm(D):
        # Measured (docs/AUGMENTATION.md): cgan-mnist with d_cond=ac on 5000 digits kept G's class loss
        # at chance (≈ ln 10) for 1,200 steps; the class head only ever sees real-batch statistics.
        log.warning("model.d_cond=%r with batch norm in D: D's class head learns from real batches only, so it gives G "
                    "no usable class signal; set model.d_batchnorm=false", m.d_cond)
    if perf.fast_dropout:
        set_fast_dropout(G, True)
        set_fast_dropout(D, True)
    if perf.sn_once:
        set_spectral_norm_auto_update(D, False)  # forwards only read u, v; the D step updates them once
    # Forwards through these; the penalties (GP/R1: double backward) and everything else use G, D.
    mode = resolve_compile(perf.compile, perf.compile_mode, device, strict=perf.strict)  # None: eager
    G_f = compiled(G, mode) if mode else G
    D_f = compiled(D, mode) if mode else D

    body = simultaneous if t.update == "simultaneous" else alternating

    def iterate(step: int) -> None:
        set_lrs(step)
        body(step)
        if ema is not None:
            ema.update(G)

    return iterate
