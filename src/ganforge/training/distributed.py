"""Data-parallel training across processes, launched by PyTorch's own engine:

    torchrun --nproc_per_node 2 -m ganforge train --preset dcgan-mnist

``launched()`` (the CLI wraps ``train()`` in it) starts the process group from torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; gloo on CPU, nccl on CUDA) and
always destroys it again, on success and on error. Inside it, ``train()`` finds the group with
``current()`` and becomes data-parallel:

- ``train.batch_size`` stays the *global* batch; each of the N processes takes batch_size / N
  images. Every rank runs the same seeded Batcher (so the same permutation) and takes its
  rank-offset slice of each global batch (``shard``); noise and fake labels are drawn for the
  global batch and sliced the same way, so all RNG streams stay in step across ranks and
  rank r's rows are exactly rows [r·b, (r+1)·b) of what one process would draw.
- Gradients are averaged with one flattened all-reduce after each backward (``sync_grads``), the
  collective DistributedDataParallel's reducer runs, but issued by hand because the reducer
  does not fit a GAN step: it does not support double backward (WGAN-GP, R1 build
  ``create_graph=True`` graphs), it expects gradients for every parameter it was built with
  (the loop freezes D with ``requires_grad_(False)`` during the G step), and the simultaneous
  (Keras) update takes gradients with ``autograd.grad``, which bypasses its hooks. Averaging
  after the full backward is correct for all of them, at the price of not overlapping
  communication with the backward pass.
- Batch norm: on CUDA every BatchNorm (D and G, conditional BN included) becomes SyncBatchNorm,
  so statistics are those of the global batch, as in one process. PyTorch's SyncBatchNorm has
  no CPU kernel, so under gloo BN normalises each rank's shard (warned once): parameters stay
  identical across ranks, but BN nets then differ from a single-process run.
- Draws made inside the step for a shard (WGAN-GP's α, dropout masks, DiffAugment) come from
  the same stream on every rank, so ranks reuse the same values for different images: the RNG
  streams stay in step, but these draws (and so the result) differ from a one-process run.
- Only rank 0 writes files (its logged losses are those of its shard); the non-finite guard's
  flags (``guard.all_ranks``) and the stop request (one 4-byte all-reduce per G step) are
  combined across ranks, so every rank takes the same decision at the same step.
- Not supported across processes (a UsageError before anything is built): ``--resume`` (resume
  in one process instead), ``train.on_nonfinite=rollback`` and ``train.device=cuda:N`` (each
  process takes cuda:LOCAL_RANK: use cuda or auto).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ganforge.config import check_batch_split
from ganforge.errors import GanforgeError, UsageError
from ganforge.nn.weights import has_batch_norm

T = TypeVar("T")

log = logging.getLogger("ganforge.train")


def launcher_world_size() -> int:
    """WORLD_SIZE set by torchrun (1 when started as a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_launcher_device(device: str) -> None:
    """Refuse train.device=cuda:N under torchrun: every process would train on that one GPU (with gloo),
    where torchrun means one GPU per process, cuda:LOCAL_RANK, which train.device=cuda or auto gives."""
    if launcher_world_size() > 1 and str(device).startswith("cuda:"):
        raise UsageError(f"train.device={device!r} under torchrun: torchrun assigns one GPU per process by "
                         "LOCAL_RANK; use train.device=cuda or auto (CUDA_VISIBLE_DEVICES picks the GPUs)")


def check_local_rank(device: str) -> int:
    """LOCAL_RANK, the GPU this process takes, refused (UsageError) where this machine has no such GPU:
    torchrun --nproc_per_node 4 on a 2-GPU machine, or CUDA_VISIBLE_DEVICES naming fewer GPUs than processes,
    would otherwise end every rank in a CUDA "invalid device ordinal" traceback."""
    local_rank, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
    if local_rank >= count:
        have = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise UsageError(f"train.device={device!r} under torchrun: this process has LOCAL_RANK={local_rank} but the "
                         f"machine shows {count} CUDA device(s) ({have}): start at most {count} "
                         "process(es) per node (--nproc_per_node), or set train.device=cpu")
    return local_rank


@contextlib.contextmanager
def launched(device: str = "auto", timeout_s: float = 600.0) -> Iterator[None]:
    """Start the process group if torchrun launched more than one process; always tear it down.

    ``device`` is train.device: cuda or auto on a machine with a GPU use nccl and pin this process
    to cuda:LOCAL_RANK; otherwise gloo (train() then reports train.device=cuda without a GPU as a
    UsageError on every rank). cuda:N is a UsageError here, before any group is started."""
    check_launcher_device(device)
    if launcher_world_size() <= 1 or dist.is_initialized():
        yield
        return
    use_cuda = device in ("cuda", "auto") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(check_local_rank(device))
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    try:
        yield
        dist.barrier()  # success: tear down together (gloo can abort a rank whose peer disconnects first)
    finally:
        dist.destroy_process_group()


@dataclass(frozen=True)
class DataParallel:
    """This process's place in the group, and the collectives the training step needs."""

    rank: int  # 0 .. world_size-1; rank 0 writes every file
    world_size: int  # number of processes sharing train.batch_size
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, x: Tensor | None) -> Tensor | None:
        """Rows [rank·b, (rank+1)·b) of a global-batch tensor (B, ...) -> (b, ...), b = B / world_size."""
        if x is None:
            return None
        b = x.shape[0] // self.world_size
        return x[self.rank * b : (self.rank + 1) * b]

    def sync_grads(self, params: Iterable[nn.Parameter]) -> None:
        """Average .grad over ranks (one all-reduce of all gradients flattened into one buffer)."""
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # (P,) fp32
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:  # copy_ keeps each gradient's own memory format (channels_last)
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, x: Tensor) -> Tensor:
        """The average of x over ranks, as a new tensor without gradient (every rank gets it)."""
        x = x.detach().clone()
        dist.all_reduce(x)
        return x / self.world_size

    def any_rank(self, flag: bool) -> bool:
        """True on every rank if it is True on any (the stop request: one tiny all-reduce)."""
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        dist.barrier()

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only (creating the run folder) and return its result on every rank;
        a GanforgeError it raises is raised on every rank, so no rank waits for a dead one."""
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except GanforgeError as exc:
                error = exc
        box = [(result, error)]
        dist.broadcast_object_list(box, src=0)
        result, error = box[0]
        if error is not None:
            raise error
        return result  # type: ignore[return-value]

    def prepare(self, G: nn.Module, D: nn.Module) -> tuple[nn.Module, nn.Module]:
        """SyncBatchNorm where it exists (CUDA), then rank 0's weights and buffers on every rank."""
        if self.device.type == "cuda":
            G, D = (nn.SyncBatchNorm.convert_sync_batchnorm(net) for net in (G, D))
        elif self.is_main and has_batch_norm(G, D):
            log.warning("batch norm on CPU normalises each process's own shard of the batch (PyTorch's "
                        "SyncBatchNorm needs CUDA): results differ from a single-process run")
        for net in (G, D):
            for tensor in [*net.parameters(), *net.buffers()]:
                dist.broadcast(tensor.data, src=0)
        return G, D

    def max_param_difference(self, *nets: nn.Module) -> float:
        """Largest |p - p on rank 0| over all parameters of ``nets`` (0.0 when ranks agree)."""
        worst = torch.zeros((), device=self.device)
        for net in nets:
            for p in net.parameters():
                ref = p.detach().clone()
                dist.broadcast(ref, src=0)
                worst = torch.maximum(worst, (p.detach() - ref).abs().max())
        dist.all_reduce(worst, op=dist.ReduceOp.MAX)
        return float(worst)


def current(device: torch.device, batch_size: int, pack: int = 1, *, resume: bool = False,
            on_nonfinite: str = "abort") -> DataParallel | None:
    """The DataParallel of this process if a multi-process group is running, else None.

    Checks, before anything is built, that the global batch splits evenly and that the run uses
    only what is supported across processes."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    world = dist.get_world_size()
    check_batch_split(batch_size, world, pack)
    if resume:
        raise UsageError("--resume with more than one process is not supported: resume the run in one process "
                         "(its train.batch_size is the global batch, so the step is the same)")
    if on_nonfinite == "rollback":
        raise UsageError("train.on_nonfinite=rollback is not supported with more than one process: use abort or skip")
    return DataParallel(rank=dist.get_rank(), world_size=world, device=device)


class NullLog:
    """Stands in for MetricsLog on ranks other than 0 (which write nothing)."""

    def write(self, row: dict) -> None:
        pass

    def close(self) -> None:
        pass
