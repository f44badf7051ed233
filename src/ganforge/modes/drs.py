"""Discriminator rejection sampling (DRS; Azadi et al. 2019, ICLR) for the 2D benchmarks.

A GAN's discriminator estimates the density ratio: the optimal D for a fixed G is
D*(x) = p_data(x) / (p_data(x) + p_g(x)), so its logit is D̃(x) = log p_data(x) / p_g(x).
Rejection sampling from p_g with acceptance p_data / (M p_g) = exp(D̃(x) − D̃_M) then yields
p_data, if M bounds the ratio. DRS (their Algorithm 1) accepts a sample with probability

    σ(F(x)),   F(x) = D̃(x) − D̃_M − log(1 − exp(D̃(x) − D̃_M − ε)) − γ,

where D̃_M is the largest logit seen so far (a burn-in set first, then every candidate batch).
At γ = 0, σ(F) ≈ exp(D̃ − D̃_M): plain rejection sampling. γ shifts every acceptance logit
(larger = stricter, smaller = accepts more); the paper sets it to a percentile of F.

As in the paper, D is first *calibrated*: trained further against the frozen G. PacGAN's packed
D (and a minibatch-stddev D) judges groups of samples, not one, so we always calibrate a fresh
unpacked D of the benchmark's architecture for ``drs_steps`` Adam steps against G in eval mode,
the very sampler being corrected. Post-hoc: G is unchanged, the sampler becomes G + D.

Shapes: T trials, B calibration batch per side, C candidates per sampling round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import UsageError
from ganforge.modes.ensemble import Ensemble, Params, sample_real, d_apply, g_apply, stack_discriminators
from ganforge.modes.toy import Benchmark, ToyConfig, ToyDiscriminator

CALIB_BATCH = 256  # real and fake samples per calibration step (each side)
BURN_IN = 10_000  # candidates per trial that set the first D̃_M (Azadi et al. use 10,000 too)
CANDIDATES = 10_000  # candidates per trial per sampling round
MAX_CANDIDATES_PER_SAMPLE = 1000  # give up (UsageError) beyond n · this many candidates
EPS = 1e-6  # ε of F(x): keeps log(1 − exp(·)) finite at the running maximum


@dataclass
class DRSResult:
    samples: Tensor  # (T, n, 2) accepted samples
    acceptance: list[float]  # per trial: accepted / candidates (after burn-in)


def calibrate_discriminator(ens: Ensemble, bench: Benchmark, cfg: ToyConfig, seeds: list[int]) -> Params:
    """A fresh unpacked D per trial (initialised under torch.manual_seed(seed + 50_000)), trained
    with the non-saturating GAN loss (= binary cross-entropy, whose optimum's logit is the log
    density ratio) for cfg.drs_steps Adam steps against G in eval mode; the LR decays linearly to 0
    over the second half so the estimate settles. Returns the stacked D parameters."""
    dcfg = replace(cfg, pack=1, mbstd_group=0)
    nets = []
    for s in seeds:
        torch.manual_seed(s + 50_000)
        nets.append(ToyDiscriminator(dcfg.d_width, dcfg.d_depth, dcfg.d_pieces, 1, 0))
    pd = stack_discriminators(nets)
    for v in pd.values():
        v.requires_grad_(True)
    opt = torch.optim.Adam(list(pd.values()), lr=cfg.drs_lr, betas=(0.5, 0.999))
    gens = [torch.Generator().manual_seed(s + 50_000) for s in seeds]
    means, t = bench.means_tensor(), len(seeds)
    half = cfg.drs_steps / 2
    for step in range(cfg.drs_steps):
        opt.param_groups[0]["lr"] = cfg.drs_lr * min(1.0, (cfg.drs_steps - step) / half)
        real = torch.stack([sample_real(bench, means, CALIB_BATCH, g) for g in gens])  # (T, B, 2)
        z = torch.stack([torch.randn(CALIB_BATCH, ens.z_dim, generator=g) for g in gens])
        with torch.no_grad():
            fake = g_apply(ens.params, ens.buffers, z, ens.depth, train=False)  # (T, B, 2)
        logits_r, logits_f = d_apply(pd, real, dcfg), d_apply(pd, fake, dcfg)  # (T, B) each
        # BCE with real = 1, fake = 0, summed over trials so each trial's gradient is its own
        loss = t * (F.softplus(-logits_r).mean() + F.softplus(logits_f).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in pd.items()}


def acceptance_logit(logits: Tensor, d_max: Tensor, gamma: Tensor | float = 0.0) -> Tensor:
    """F(x) of Azadi et al. (Algorithm 1): logits (…, C), d_max broadcastable → (…, C).
    σ(F) is the acceptance probability; at γ = 0 it is ≈ exp(D̃ − D̃_M), plain rejection sampling."""
    delta = logits - d_max  # ≤ 0 once d_max is the running maximum
    return delta - torch.log1p(-torch.exp(delta - EPS)) - gamma


@torch.no_grad()
def rejection_sample(propose: Callable[[int], Tensor], log_ratio: Callable[[Tensor], Tensor], n: int,
                     gens: list[torch.Generator], percentile: float = 0.0) -> DRSResult:
    """DRS's sampling loop for T independent samplers. propose(c) → candidates (T, c, D) (drawn
    from `gens`), log_ratio(x) → D̃ (T, c). Burn-in: D̃_M, and γ as the `percentile`-th percentile
    of the burn-in F (0: γ = 0); then rounds of candidates until every trial has n accepted ones.
    Each round's uniforms come from gens[t] after that round's candidates."""
    t = len(gens)
    burn = log_ratio(propose(BURN_IN))  # (T, BURN_IN)
    d_max = burn.amax(dim=1, keepdim=True)  # (T, 1)
    gamma = torch.zeros(t, 1, dtype=burn.dtype)
    if percentile > 0:
        gamma = torch.quantile(acceptance_logit(burn, d_max), percentile / 100, dim=1, keepdim=True)
    kept: list[list[Tensor]] = [[] for _ in range(t)]
    have, tried = [0] * t, [0] * t
    while min(have) < n:
        x = propose(CANDIDATES)  # (T, C, D)
        logits = log_ratio(x)  # (T, C)
        d_max = torch.maximum(d_max, logits.amax(dim=1, keepdim=True))
        p = torch.sigmoid(acceptance_logit(logits, d_max, gamma))  # (T, C)
        accept = torch.stack([torch.rand(CANDIDATES, generator=g, dtype=p.dtype) for g in gens]) < p
        for i in range(t):
            if have[i] < n:
                kept[i].append(x[i][accept[i]])
                have[i] += int(accept[i].sum())
                tried[i] += CANDIDATES
        worst = min(range(t), key=lambda i: have[i])
        if have[worst] < n and tried[worst] >= n * MAX_CANDIDATES_PER_SAMPLE:
            raise UsageError(
                f"discriminator rejection sampling accepted only {have[worst]} of {tried[worst]} candidates "
                f"(trial {worst}); raise drs_percentile (now {percentile:g}) to accept more")
    return DRSResult(torch.stack([torch.cat(k)[:n] for k in kept]), [have[i] / tried[i] for i in range(t)])


def drs_sample(ens: Ensemble, d_params: Params, cfg: ToyConfig, n: int, seeds: list[int]) -> DRSResult:
    """n DRS samples per trial from G (eval mode) with the calibrated D's logit as D̃; trial t's
    latents and uniforms come from a generator seeded with seeds[t]."""
    dcfg = replace(cfg, pack=1, mbstd_group=0)
    gens = [torch.Generator().manual_seed(s) for s in seeds]

    def propose(c: int) -> Tensor:
        z = torch.stack([torch.randn(c, ens.z_dim, generator=g) for g in gens])  # (T, c, Z)
        return g_apply(ens.params, ens.buffers, z, ens.depth, train=False)  # (T, c, 2)

    return rejection_sample(propose, lambda x: d_apply(d_params, x, dcfg), n, gens, cfg.drs_percentile)

