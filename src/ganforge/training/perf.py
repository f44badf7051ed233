"""Speed settings resolved against the machine: which precision actually runs."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("ganforge.perf")


def bf16_is_native(device: torch.device) -> bool:
    """True where bf16 matmuls/convs run on hardware units: CUDA GPUs with bf16 (Ampere+), or
    CPUs whose oneDNN has bf16 kernels (AVX512-BF16 / AMX). Elsewhere bf16 is emulated and slow."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """perf.precision -> the precision used: 'auto' picks bf16 where it is native, else fp32;
    an explicit 'bf16' on hardware without it falls back to fp32 with one warning."""
    native = bf16_is_native(device)
    if requested == "auto":
        return "bf16" if native else "fp32"
    if requested == "bf16" and not native:
        log.warning("perf.precision=bf16 is not native on this %s: running fp32 instead", device.type)
        return "fp32"
    return requested
