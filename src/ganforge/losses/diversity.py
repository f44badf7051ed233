"""Generator-side diversity regularisers, as pure functions of samples and their latents."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


# Mao et al. 2019, "Mode Seeking Generative Adversarial Networks for Diverse Image Synthesis"
# (MSGAN, CVPR): the ratio
#     r = mean|G(z1) - G(z2)| / mean|z1 - z2|
# is maximised, so that distinct latents cannot map to the same image (a collapsed G has r ≈ 0).
# As in the authors' code the generator minimises 1 / (r + eps), weighted by λ.
def mode_seeking_loss(x1: Tensor, x2: Tensor, z1: Tensor, z2: Tensor, eps: float = 1e-5) -> Tensor:
    """x1, x2: (N, ...) samples from latents z1, z2: (N, Z). Returns a scalar (unweighted)."""
    diff = x1 - x2
    if diff.dtype in (torch.float16, torch.bfloat16):  # bf16 autocast: the ratio is taken in fp32
        diff = diff.float()
    ratio = diff.abs().mean() / (z1 - z2).abs().mean()
    return 1.0 / (ratio + eps)


def mode_seeking_halves(fake: Tensor, z: Tensor) -> Tensor:
    """MSGAN on one batch: pairs sample i with sample i + B/2 (fake: (B, ...), z: (B, Z), B even),
    so the regulariser costs no extra G forward. For a conditional G the caller draws the same
    labels for both halves (MSGAN compares two latents under one condition)."""
    half = fake.shape[0] // 2
    return mode_seeking_loss(fake[:half], fake[half:2 * half], z[:half], z[half:2 * half])


# Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.1: G matches the mean of
# D's penultimate features over a batch of real images,
#     || E_x h(x) − E_z h(G(z)) ||²,
# a statistic D keeps informative, so a G that draws one kind of sample too often (too many 7s)
# pays for the shift of the batch mean even while each sample fools D. Here the squared distance is
# averaged over the feature dimensions (not summed), so λ does not scale with D's width.
def feature_matching_loss(h_fake: Tensor, h_real: Tensor,
                          mean_over_ranks: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """h_fake: (N, F) D features of generated images (with gradient to G); h_real: (M, F) of real
    images (no gradient). Returns a scalar in fp32 (unweighted).

    mean_over_ranks (data-parallel runs): averages a tensor over processes, without gradient.
    Each process holds a shard of the global batch, and the loss is a square of batch means, so it is
    not the mean of per-shard losses: the means are made global first. The fake mean's value becomes
    the global one while its gradient stays this shard's (straight through), so after the gradient
    all-reduce (an average over N shards of b = B/N) each sample gets 2·(μ_fake − μ_real)/(F·B),
    exactly as in one process on the whole batch."""
    mu_fake = h_fake.float().mean(dim=0)  # (F,)
    mu_real = h_real.detach().float().mean(dim=0)  # (F,)
    if mean_over_ranks is not None:
        g_real, g_fake = mean_over_ranks(torch.stack([mu_real, mu_fake.detach()]))  # (2, F): one all-reduce
        mu_real, mu_fake = g_real, mu_fake + (g_fake - mu_fake.detach())
    return (mu_fake - mu_real).pow(2).mean()
