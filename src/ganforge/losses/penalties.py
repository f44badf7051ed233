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


def _check_pack(name: str, n: int, pack: int) -> None:
    """D sees n / pack packed samples: pack must be a positive integer dividing the batch."""
    if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
        raise ValueError(f"{name}: pack={pack!r} is invalid: use an integer >= 1 (the PacGAN degree)")
    if n % pack:
        raise ValueError(f"{name}: pack={pack} does not divide the batch of {n} samples: use a batch that is a multiple of it")


def _per_packed_sample(norm_sq: Tensor, pack: int) -> Tensor:
    """(N,) squared gradient norms per image → (N/pack,) per packed sample: D's input is the pack's
    images stacked on channels, so its gradient is theirs side by side and the squares add up."""
    return norm_sq.reshape(norm_sq.shape[0] // pack, pack).sum(dim=1)


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
    # real, fake: (N, ...), images (N, C, H, W) or points (N, F). With PacGAN packing D sees N/pack
    # packed samples, so the interpolation weight and the gradient norm are taken per packed sample.
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape")
    n = real.shape[0]
    _check_pack("gradient_penalty", n, pack)
    # α: (N, 1, ..., 1), one draw per packed sample, broadcast over every non-batch dim of any rank
    alpha = torch.rand(n // pack, device=real.device).repeat_interleave(pack).view(n, *[1] * (real.dim() - 1))
    real, fake = _fp32_at_least(real.detach()), _fp32_at_least(fake.detach())
    alpha = alpha.to(real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    logits = D(x_hat, labels) if labels is not None else D(x_hat)
    norm_sq = _per_packed_sample(_grad_norm_sq(logits, x_hat), pack)  # (N/pack,)
    return ((norm_sq + 1e-12).sqrt() - center).pow(2).mean()


# Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?":
# R1 = E_real[|∇D(x)|²]; the loss adds (γ/2)·R1 (the paper's and StyleGAN2's convention).
# With PacGAN packing the expectation is over the packed samples D judges, as in the gradient
# penalty: |∇D|² of a packed sample sums its pack's images, so R1 is pack times the per-image mean
# (a per-image mean would weaken γ by the factor pack).
def r1_penalty(D: Callable[..., Tensor], real: Tensor, labels: Tensor | None = None, *, pack: int = 1) -> Tensor:
    _check_pack("r1_penalty", real.shape[0], pack)
    x = _fp32_at_least(real.detach()).requires_grad_(True)
    logits = D(x, labels) if labels is not None else D(x)
    return _per_packed_sample(_grad_norm_sq(logits, x), pack).mean()
