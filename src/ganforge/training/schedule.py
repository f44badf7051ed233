"""Learning-rate schedules as multiplicative factors of the base LR, per G step."""

from __future__ import annotations

import math


def lr_factor(schedule: str, step: int, total_steps: int, decay_start_step: int = 0) -> float:
    """Factor in [0, 1] at G step ``step`` (0-based).

    constant: 1.  linear: 1 until decay_start_step, then straight down to 0 at total_steps
    (SNGAN/Mimicry). cosine: half-cosine annealing from 1 to 0 over the same span
    (Loshchilov & Hutter 2017, without restarts).
    """
    if schedule == "constant" or step < decay_start_step:
        return 1.0
    span = max(1, total_steps - decay_start_step)
    progress = min(1.0, (step - decay_start_step) / span)
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}")
