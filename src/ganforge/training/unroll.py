"""Unrolled GAN (Metz et al. 2017, ICLR) for the image training loop: ``train.unroll_steps=k``.

In the G step, G's loss is taken at the discriminator D_k that k more Adam steps on the current
batch would produce, and differentiated *through* those steps: the G gradient then anticipates
how D will react, which is what discourages G from hopping between modes.

    θ_D^0 = θ_D (constants: only G is being trained here)
    θ_D^{i} = Adam(θ_D^{i-1}, ∇ d_loss(D(real; θ_D^{i-1}), D(G(z); θ_D^{i-1})))   i = 1..k
    g_loss = g_loss(D(G(z); θ_D^k))          (graph kept through all k steps: create_graph)

The Adam steps continue D's real optimiser state (moments, step count, lr, betas, eps of its
param group, so TTUR and LR schedules apply), computed functionally with
``torch.func.functional_call``. D's real parameters, Adam state and buffers are not changed:
batch-norm running statistics are updated on copies. The look-ahead runs in fp32 (outside
autocast) and uses only the adversarial loss (penalties are not unrolled, as in the paper).
Cost: each look-ahead step is a D forward/backward with a double-backward graph (about 8× a plain
step at k = 5 in the 2D benchmark, docs/MODE_COLLAPSE.md).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ganforge.losses import AdversarialLoss

Params = dict[str, Tensor]


def adam_step(params: Params, grads: tuple[Tensor, ...], m: Params, v: Params, step: int, *, lr: float,
              betas: tuple[float, float], eps: float) -> tuple[Params, Params, Params]:
    """One differentiable Adam step, as torch.optim.Adam computes it (bias-corrected moments,
    eps added to the corrected √v); ``step`` is the new step number (1 for the first). Returns
    (params, m, v), all new tensors (nothing is modified in place)."""
    b1, b2 = betas
    out, m2, v2 = {}, {}, {}
    for (name, w), g in zip(params.items(), grads):
        m2[name] = b1 * m[name] + (1 - b1) * g
        v2[name] = b2 * v[name] + (1 - b2) * g * g
        # +1e-24 inside the root keeps ∂√v finite where v = 0 (a parameter with no gradient yet)
        denom = (v2[name] + 1e-24).sqrt() / math.sqrt(1 - b2**step) + eps
        out[name] = w - (lr / (1 - b1**step)) * m2[name] / denom
    return out, m2, v2


def _fp32_at_least(x: Tensor) -> Tensor:
    """bf16/fp16 (autocast outputs) → fp32; fp32 and fp64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _adam_state(opt: torch.optim.Optimizer, named: dict[str, nn.Parameter]) -> tuple[Params, Params, int]:
    """D's Adam moments by parameter name and its step count (zeros / 0 before the first step)."""
    m, v, step = {}, {}, 0
    for name, p in named.items():
        st = opt.state.get(p, {})
        m[name] = st["exp_avg"].detach() if "exp_avg" in st else torch.zeros_like(p)
        v[name] = st["exp_avg_sq"].detach() if "exp_avg_sq" in st else torch.zeros_like(p)
        if "step" in st:
            step = int(st["step"])
    return m, v, step


def unrolled_discriminator(
    D: nn.Module, opt_d: torch.optim.Optimizer, loss: AdversarialLoss, real: Tensor, fake: Tensor,
    y_real: Tensor | None, y_fake: Tensor | None, steps: int,
) -> Callable[[Tensor, Tensor | None], Tensor]:
    """D_k as a callable ``(x, y) -> logits``. ``fake`` (B, C, H, W) keeps its graph to G, so
    ∂θ_D^k/∂θ_G reaches G's gradient; ``real`` is a batch of training images."""
    named = dict(D.named_parameters())
    group = opt_d.param_groups[0]
    m, v, step = _adam_state(opt_d, named)
    buffers = {name: b.clone() for name, b in D.named_buffers()}  # BN statistics move on copies
    q: Params = {name: p.detach().requires_grad_(True) for name, p in named.items()}

    def D_at(params: Params, x: Tensor, y: Tensor | None) -> Tensor:
        return _fp32_at_least(functional_call(D, (params, buffers), (x, y)))

    with torch.autocast(real.device.type, enabled=False):
        real, fake = _fp32_at_least(real), _fp32_at_least(fake)
        for i in range(1, steps + 1):
            d_loss = loss.d_loss(D_at(q, real, y_real), D_at(q, fake, y_fake))
            grads = torch.autograd.grad(d_loss, list(q.values()), create_graph=True)
            q, m, v = adam_step(q, grads, m, v, step + i, lr=group["lr"], betas=group["betas"], eps=group["eps"])
    return lambda x, y: D_at(q, _fp32_at_least(x), y)
