"""Exponential moving average of the generator's weights (Yazıcı et al. 2019,
"The Unusual Effectiveness of Averaging in GAN Training"; used by ProGAN/StyleGAN/BigGAN)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``self.model``, a frozen copy of G whose parameters track G's.

    With warm-up the decay at update t is min(decay, (1 + t) / (10 + t)), the schedule of
    TensorFlow's ExponentialMovingAverage(num_updates=t): early on the average follows G
    closely instead of being dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            # 1 would freeze the copy at G's random init, > 1 extrapolates away from G
            raise ValueError(f"EMA decay={decay!r} is invalid: use a number in [0, 1) (e.g. 0.999)")
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        t = self.num_updates
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        ema_p = [p for p in self.model.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - d)  # ema = d·ema + (1-d)·p
        # Buffers (BN running stats, spectral-norm vectors) are copied, not averaged.
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.num_updates = int(state["num_updates"])


def ema_notes(decay: float, warmup: bool, total_steps: int) -> list[str]:
    """A warning for an EMA that cannot follow G within the run: without warm-up the copy keeps a share
    decay**t of G's random initial weights after t updates (0.905 after 100 at 0.999), and the EMA copy
    is what the run's samples, evaluation and `ganforge sample` use."""
    if decay <= 0 or warmup or decay ** total_steps < 0.5:
        return []
    return [f"train.ema_decay={decay} with train.ema_warmup=false keeps {decay ** total_steps:.0%} of G's random "
            f"initial weights in the EMA copy after train.total_steps={total_steps}, and that copy draws the samples "
            f"and is evaluated: set train.ema_warmup=true, or a lower train.ema_decay"]
