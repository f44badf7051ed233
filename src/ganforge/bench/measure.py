"""Timing, FLOP counting, matmul peak and peak memory: the measurement half of the benchmark.

Definitions (all per process, one device):
- rate: an iteration is timed over ``steps`` calls after ``warmup`` calls, ``repeats`` times;
  the reported rate is the median over repeats (CUDA is synchronised before each clock read).
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one iteration, forward + backward
  (matmuls and convolutions only: element-wise ops, norms and optimiser updates count 0).
- peak: the best of a few large square matmuls in fp32 and bf16 on the device, i.e. what this
  software stack reaches, not the datasheet number. On CUDA an "fp32" convolution runs on TF32
  tensor cores by default (``torch.backends.cudnn.allow_tf32``), so the fp32 peak is taken with
  the convolutions' math (``fp32_math``): a true-fp32 peak (51 TFLOP/s on an H200) put the eager
  reference at 214 % "utilisation" in the first GPU run.
- memory: CUDA ``max_memory_allocated`` per path; on CPU the process's ``ru_maxrss`` high-water
  mark, which covers everything the process did so far (``peak_mem_kind`` says which).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_rate(fn: Callable[[], None], device: torch.device, *, steps: int, repeats: int, warmup: int) -> float:
    """Median calls per second of ``fn`` over ``repeats`` runs of ``steps`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        sync(device)
        rates.append(steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def count_flops(fn: Callable[[], None]) -> int | None:
    """FLOPs of one call of ``fn`` (forward and backward matmuls/convs; a multiply-add is 2), or None
    where PyTorch's counter cannot follow the call: its module hooks reject the ``autograd.grad`` of
    a gradient penalty (R1, WGAN-GP) with "A leaf node was passed to _will_engine_execute_node"
    (torch 2.13). The call may then stop half-way; the timing that follows does not depend on it."""
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    except RuntimeError as exc:
        if "_will_engine_execute_node" not in str(exc):
            raise
        return None
    return int(counter.get_total_flops())


def fp32_math(device: torch.device) -> str:
    """What an fp32 convolution computes in: "tf32" on CUDA while cuDNN may use TF32 (PyTorch's default)."""
    return "tf32" if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """Best TFLOP/s of an n×n @ n×n matmul (n = 8192 on CUDA, 2048 on CPU): 2n³ FLOPs per call.
    fp32 is timed in the math fp32 convolutions use (``fp32_math``)."""
    if device.type == "cuda" and dtype == torch.float32:
        saved = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = fp32_math(device) == "tf32"
        try:
            return _matmul_peak(device, dtype)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = saved
    return _matmul_peak(device, dtype)


def _matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps = 10 if device.type == "cuda" else 2
    best = 0.0
    torch.matmul(a, b)  # warm-up (library initialisation, kernel selection)
    sync(device)
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12)
    return best


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def peak_memory_kind(device: torch.device) -> str:
    return "cuda-max-allocated" if device.type == "cuda" else "cpu-process-maxrss"
