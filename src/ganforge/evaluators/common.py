"""What every fitted evaluator shares: top-1 accuracy, and writing weights + their JSON sidecar."""

from __future__ import annotations

import platform
from pathlib import Path

import torch
from safetensors.torch import save
from torch import Tensor, nn

from ganforge import __version__
from ganforge.io import atomic_write_bytes, atomic_write_json, sha256_file


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, *, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on uint8 (N, C, R, R) images and int labels (N,)."""
    from ganforge.data import to_float

    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        pred = model.logits(to_float(images[i : i + batch_size].to(device))).argmax(dim=1).cpu()
        correct += int((pred == labels[i : i + batch_size]).sum())
    return correct / len(images)


def save_with_sidecar(out_path: str | Path, model: nn.Module, arch: str, meta: dict) -> dict:
    """Write ``model``'s weights to ``out_path`` (safetensors) and ``out_path.with_suffix('.json')``
    (``meta`` plus the version, platform, size and sha256 that ``load_evaluator`` checks); return the sidecar."""
    out_path = Path(out_path)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write_bytes(out_path, save(state, metadata={"arch": arch}))
    meta = {
        "name": model.name,
        "architecture": arch,
        "ganforge_version": __version__,
        **meta,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.machine(),
        "weights_bytes": out_path.stat().st_size,
        "sha256": sha256_file(out_path),
    }
    atomic_write_json(out_path.with_suffix(".json"), meta)
    return meta
