"""Speed settings resolved against the machine: which precision and which compile mode actually
run. A setting the machine cannot honour falls back with one warning naming what was disabled,
or, with ``perf.strict=true``, is a usage error (exit code 2)."""

from __future__ import annotations

import logging
import shutil

import torch

from ganforge.errors import UsageError

log = logging.getLogger("ganforge.perf")


def bf16_is_native(device: torch.device) -> bool:
    """True where bf16 matmuls/convs run on hardware units: CUDA GPUs with bf16 (Ampere+), or
    CPUs whose oneDNN has bf16 kernels (AVX512-BF16 / AMX). Elsewhere bf16 is emulated and slow.
    For CUDA the GPU asked about is ``device`` (cuda:1 is not cuda:0): torch.cuda.is_bf16_supported()
    asks the current GPU, and says True for a pre-Ampere one that only emulates bf16."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        if torch.version.hip:  # ROCm: every GPU it supports has bf16 (as torch.cuda.is_bf16_supported says)
            return True
        return torch.cuda.get_device_capability(device)[0] >= 8  # Ampere (compute capability 8.0) or newer
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def _fallback(strict: bool, message: str) -> None:
    if strict:
        raise UsageError(f"{message} (perf.strict=true: set perf.strict=false to fall back instead)")
    log.warning("%s", message)


def resolve_precision(requested: str, device: torch.device, *, strict: bool = False) -> str:
    """perf.precision -> the precision used: 'auto' picks bf16 where it is native, else fp32;
    an explicit 'bf16' on hardware without it falls back to fp32 with one warning."""
    native = bf16_is_native(device)
    if requested == "auto":
        return "bf16" if native else "fp32"
    if requested == "bf16" and not native:
        _fallback(strict, f"perf.precision=bf16 is not native on this {device.type}: running fp32 instead")
        return "fp32"
    return requested


def resolve_compile(enabled: bool, mode: str, device: torch.device, *, strict: bool = False) -> str | None:
    """perf.compile/compile_mode -> the torch.compile mode to use, or None for eager.

    TorchInductor needs a C++ compiler on CPU (and Triton on CUDA); CUDA graphs
    (reduce-overhead, max-autotune) exist only on CUDA, so on CPU those modes compile without them."""
    if not enabled:
        return None
    if not hasattr(torch, "compile"):
        _fallback(strict, "perf.compile=true: this torch has no torch.compile; running eager")
        return None
    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        _fallback(strict, "perf.compile=true: TorchInductor needs a C++ compiler (g++) on CPU and none is on PATH; running eager")
        return None
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            _fallback(strict, "perf.compile=true: TorchInductor needs triton on CUDA and it is not installed; running eager")
            return None
    if device.type != "cuda" and mode in ("reduce-overhead", "max-autotune"):
        _fallback(strict, f"perf.compile_mode={mode}: CUDA graphs need a CUDA device; compiling without them (mode default)")
        return "default"
    return mode
