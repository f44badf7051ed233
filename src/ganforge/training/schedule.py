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


def schedule_notes(schedule: str, total_steps: int, decay_start_step: int, *, step: int = 0,
                   trained_total: int | None = None) -> list[str]:
    """What a user should hear about the LR schedule a run (resumed at G step ``step``) trains with:
    a decay that never starts (``decay_start_step`` at or past ``total_steps``: the preset's decay is
    silently gone when only train.total_steps is lowered), and, for a resumed run whose
    train.total_steps changed from ``trained_total``, the jump in the LR factor at ``step``: the
    schedule is a function of total_steps, so the steps ahead follow the new one."""
    if schedule == "constant":
        return []
    notes = []
    if decay_start_step >= total_steps:
        notes.append(f"optim.schedule={schedule} starts its decay at optim.decay_start_step={decay_start_step}, which "
                     f"a run of train.total_steps={total_steps} never reaches: the learning rates stay constant; "
                     f"lower optim.decay_start_step (e.g. --set optim.decay_start_step={total_steps // 2})")
    if trained_total is not None and trained_total != total_steps and step < total_steps:
        was = lr_factor(schedule, step, trained_total, decay_start_step)  # 0 past its end
        now = lr_factor(schedule, step, total_steps, decay_start_step)
        if abs(now - was) > 1e-9:
            notes.append(f"train.total_steps={total_steps} (the run had {trained_total}) with optim.schedule={schedule}: "
                         f"the learning rates follow the new schedule from step {step} on, at {now:.3g} x their base "
                         f"value where the old one had {was:.3g} x")
    return notes
