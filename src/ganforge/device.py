"""Device names as users write them (a config key such as train.device, or a --device flag) -> torch.device.

One place, light to import (the metrics, sampling, restoration and every CLI command need it, and
none of them should import the training loop for it)."""

from __future__ import annotations

import re

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
