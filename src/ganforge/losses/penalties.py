"""Regularisers of the discriminator, as pure functions of (D, real, fake, labels).

They return a scalar tensor (unweighted); the caller multiplies by the weight. They run
in fp32 and build a double-backward graph (create_graph=True) so the penalty's gradient
reaches D's parameters.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def _fp32_at_least(x: Tensor) -> Tensor:
    """Penalties are numerically sensitive: lift half/bfloat16 inputs to fp32, keep fp64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _grad_norm_sq(outputs: Tensor, inputs: Tensor) -> Tensor:
    """Squared L2 norm of d(sum outputs)/d(inputs) per sample: (N,)."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(dim=1)


# Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (WGAN-GP):
# E[(|∇D(x̂)|₂ - 1)²] at x̂ = αx + (1-α)G(z), α ~ U(0, 1) per sample.
def gradient_penalty(
    D: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor,
    labels: Tensor | None = None,
    *,
    center: float = 1.0,
    pack: int = 1,
) -> Tensor:
    # real, fake: (N, C, H, W). With PacGAN packing D sees N/pack packed samples, so the
    # interpolation weight and the gradient norm are taken per packed sample.
    n = real.shape[0]
    alpha = torch.rand(n // pack, 1, 1, 1, device=real.device).repeat_interleave(pack, dim=0)
    real, fake = _fp32_at_least(real.detach()), _fp32_at_least(fake.detach())
    alpha = alpha.to(real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    logits = D(x_hat, labels) if labels is not None else D(x_hat)
    norm_sq = _grad_norm_sq(logits, x_hat).reshape(n // pack, pack).sum(dim=1)
    return ((norm_sq + 1e-12).sqrt() - center).pow(2).mean()


# Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?":
# R1 = E_real[|∇D(x)|²]; the loss adds (γ/2)·R1.
def r1_penalty(D: Callable[..., Tensor], real: Tensor, labels: Tensor | None = None) -> Tensor:
    x = _fp32_at_least(real.detach()).requires_grad_(True)
    logits = D(x, labels) if labels is not None else D(x)
    return _grad_norm_sq(logits, x).mean()
