"""Device names as users write them (a config key such as train.device, or a --device flag) -> torch.device.

One place, light to import (the metrics, sampling, restoration and every CLI command need it, and
none of them should import the training loop for it)."""

from __future__ import annotations

import functools
import re
from typing import Callable, TypeVar

import torch

from ganforge.errors import UsageError

# auto, or a CPU/CUDA name torch.device takes (it refuses "cuda:01", "cuda:-1" and non-ASCII digits too)
_NAME = re.compile(r"auto|cpu|cuda(:(0|[1-9][0-9]*))?", flags=re.ASCII)


def is_device_name(name: object) -> bool:
    """Whether ``name`` is auto | cpu | cuda | cuda:N, whatever this machine has: a config is checked
    where it is written and may run on another machine (resolve_device checks the machine)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def resolve_device(name: str, option: str = "train.device") -> torch.device:
    """cpu | cuda | cuda:N | auto -> a torch.device; ``option`` names the setting in the errors
    (a config key such as train.device, or a CLI flag such as --device)."""
    if isinstance(name, str):  # --device " cuda" as --set "train.device= cuda" is: the spaces are dropped
        name = name.strip()
    sep = " " if option.startswith("-") else "="  # --device cuda, train.device=cuda
    shown, use = f"{option}{sep}{name!r}", f"{option}{sep}cpu or auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not is_device_name(str(name)):
        raise UsageError(f"{shown} is not a device: use cpu, cuda, cuda:N or auto")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"{shown} but no CUDA device is available: use {use}")
    count = torch.cuda.device_count() if name.startswith("cuda:") else 0
    if name.startswith("cuda:") and int(name[5:]) >= count:
        have = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise UsageError(f"{shown} but this machine has {count} CUDA device(s): use {have}, cuda or auto")
    return torch.device(name)


F = TypeVar("F", bound=Callable)


def keeps_current_cuda_device(fn: F) -> F:
    """Decorates a function that makes cuda:N the current GPU (training does, so that the calls that
    ask the current GPU, bf16 support and CUDA graphs, ask that one): the caller's current GPU is
    current again when it returns or raises. Before CUDA is initialised the current GPU is 0 (the
    first visible one), and that is what is restored; checking does not initialise CUDA."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = torch.cuda.current_device() if torch.cuda.is_initialized() else 0
        try:
            return fn(*args, **kwargs)
        finally:
            if torch.cuda.is_initialized() and torch.cuda.current_device() != before:
                torch.cuda.set_device(before)

    return wrapper  # type: ignore[return-value]


# torch.set_num_threads' cap here: OpenMP fails to start far fewer threads than an int64 holds (20,000:
# "libgomp: Thread creation failed"; 100,000: a segfault), and no CPU this runs on has more cores
MAX_THREADS = 1024
