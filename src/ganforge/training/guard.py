"""What may stop a training step, as two small objects the loop consults.

``StopRequest``: SIGTERM / SIGINT only set a flag; the loop finishes the current step,
writes a checkpoint and raises :class:`TrainingInterrupted` (exit code 143 / 130). A second
signal stops at once, without a checkpoint (the previous one is still valid).

``NonFiniteGuard``: every optimizer update hands it the loss and the gradient norm (the norm
is NaN/Inf whenever any gradient is). Its cost per update depends on the policy:

- ``skip`` must decide before ``opt.step()`` whether to apply the update, so it reads one
  flag back from the device: one host sync per update (unmeasurable on CPU; on a GPU it
  stops the host from queueing work ahead, which matters only for tiny, launch-bound nets).
- ``abort`` and ``rollback`` keep the values on the device (one tiny ``stack`` kernel per
  update, no sync) and check them all in one sync at the next log/checkpoint step, *before*
  anything is written, so a NaN never reaches metrics or a checkpoint.

Under DDP every rank must take the same decision: :func:`all_ranks` is where the flags are
combined (an all-reduce with MIN, inert while torch.distributed is not initialised); the stop
flag will need the same one-liner.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from dataclasses import dataclass

import torch
from torch import Tensor

from ganforge.config import NONFINITE_POLICIES
from ganforge.errors import GanforgeError

log = logging.getLogger("ganforge.train")


class TrainingInterrupted(GanforgeError):
    """A signal stopped training after a checkpoint was written; exit code 128 + signal number."""

    def __init__(self, signum: int, step: int, checkpoint, run_dir, command: str = "ganforge train") -> None:
        self.exit_code = 128 + signum
        self.step = step
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} after step {step}; checkpoint {checkpoint} written; "
            f"continue with: {command} --resume {run_dir}"
        )


class NonFiniteError(GanforgeError):
    """Training produced NaN/Inf and the policy says stop (exit code 1: not a usage error)."""

    exit_code = 1


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop checks at step boundaries."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def installed(self):
        # Python only lets the main thread install handlers; elsewhere signals keep their default.
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        self._previous = {s: signal.getsignal(s) for s in self.SIGNALS}
        for s in self.SIGNALS:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            self._restore()

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
            log.warning("received %s: finishing this step and writing a checkpoint (send it again to stop at once)",
                        signal.Signals(signum).name)
            return
        previous = self._previous.get(signum, signal.SIG_DFL)
        self._restore()
        if callable(previous):
            previous(signum, frame)  # SIGINT: Python's default raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signum)


def all_ranks(ok: Tensor) -> Tensor:
    """Combine per-rank "all finite" flags so every rank decides alike (the DDP one-liner)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        ok = ok.to(torch.int32)
        torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
    return ok.bool()


@dataclass
class NonFinite:
    """The first non-finite update found: its G step, which net, its loss and gradient norm."""

    step: int  # 0-based G step during which the update happened
    net: str  # "d" or "g"
    loss: float
    grad_norm: float

    def __str__(self) -> str:
        return f"non-finite {self.net}_loss={self.loss} (gradient norm {self.grad_norm}) at step {self.step + 1}"


class NonFiniteGuard:
    """Applies ``train.on_nonfinite``; see the module docstring for what each policy costs."""

    def __init__(self, policy: str, max_rollbacks: int = 3) -> None:
        if policy not in NONFINITE_POLICIES:
            raise ValueError(f"unknown non-finite policy {policy!r}")
        self.policy = policy
        self.max_rollbacks = max_rollbacks
        self.skipped = 0  # updates not applied (skip)
        self.rollbacks = 0  # rollbacks done (rollback)
        self._pending: list[tuple[int, str, Tensor]] = []  # (step, net, [loss, grad_norm]) since the last poll

    def allow(self, step: int, net: str, loss: Tensor, grad_norm: Tensor) -> bool:
        """May this update be applied? Only ``skip`` ever says no (and only it syncs here)."""
        values = torch.stack([loss.detach().float(), grad_norm.detach().float()])  # (2,) on the device
        if self.policy != "skip":
            self._pending.append((step, net, values))
            return True
        if bool(all_ranks(torch.isfinite(values).all())):  # the one host sync per update
            return True
        self.skipped += 1
        loss_v, norm_v = values.tolist()
        log.warning("skipping the %s update of step %d: loss %s, gradient norm %s (%d skipped so far)",
                    net.upper(), step + 1, loss_v, norm_v, self.skipped)
        return False

    def poll(self) -> NonFinite | None:
        """The first non-finite update since the last poll (one host sync), or None.

        Raises NonFiniteError if the policy is abort, or if rollback has used up max_rollbacks;
        otherwise the caller rolls back."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, []
        values = torch.stack([v for _, _, v in pending])  # (K, 2)
        ok = all_ranks(torch.isfinite(values).all(dim=1))  # (K,)
        if bool(ok.all()):
            return None
        i = int((~ok).nonzero()[0, 0])
        loss, norm = values[i].tolist()
        event = NonFinite(pending[i][0], pending[i][1], loss, norm)
        if self.policy == "abort":
            raise NonFiniteError(f"training diverged: {event}; train.on_nonfinite=abort, so nothing after the last "
                                 "checkpoint was saved (lower the learning rates, or use skip / rollback)")
        if self.rollbacks >= self.max_rollbacks:
            raise NonFiniteError(f"training diverged: {event} after {self.rollbacks} rollback(s); "
                                 f"giving up (train.max_rollbacks={self.max_rollbacks})")
        self.rollbacks += 1
        return event

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped, "rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped = int(state.get("skipped", 0))
        self.rollbacks = int(state.get("rollbacks", 0))
