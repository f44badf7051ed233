"""What every fitted evaluator shares: the epoch loop, top-1 accuracy, and writing weights + their JSON sidecar."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save
from torch import Tensor, nn

from ganforge import __version__
from ganforge.errors import UsageError
from ganforge.io import atomic_write_bytes, atomic_write_json, check_can_write, sha256_file


def check_fit_args(fit_name: str, out_path: str | Path, epochs: int, batch_size: int) -> Path:
    """The argument checks every ``fit_*`` function starts with; returns out_path as a Path."""
    if epochs < 1 or batch_size < 1:
        raise UsageError(f"{fit_name}: epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    out_path = Path(out_path)
    if out_path.suffix != ".safetensors":
        raise UsageError(f"{fit_name}: out_path must end in .safetensors, got {out_path}")
    check_can_write(out_path.parent, f"{fit_name}: out_path {out_path}")  # before the fit, not after it
    return out_path


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


def fit_epochs(
    model: nn.Module,
    x_all: Tensor,  # (N, C, R, R) training images, as ``augment`` expects them
    y_all: Tensor,  # (N,) int64 labels
    *,
    augment: Callable[[Tensor], Tensor],  # batch of x_all -> float network input, drawing from the seeded generator
    opt: torch.optim.Optimizer,
    sched,  # stepped once per optimiser step
    epochs: int,
    batch_size: int,
    gen: torch.Generator,  # batch order (and, through ``augment``, augmentation)
    label_smoothing: float,
    test: tuple[Tensor, Tensor] | None,  # uint8 images, labels: accuracy every 10 epochs and at the end
    log: Callable[[str], None],
) -> None:
    """Cross-entropy training, one shuffled pass over the data per epoch; one line logged per epoch."""
    device = next(model.parameters()).device
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_all), generator=gen)
        loss_sum = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x = augment(x_all[idx]).to(device)  # (B, C, R, R)
            loss = F.cross_entropy(model.logits(x), y_all[idx].to(device), label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
        msg = f"epoch {epoch + 1}/{epochs} loss {loss_sum / len(x_all):.4f} ({time.perf_counter() - start:.0f} s)"
        if test is not None and (epoch + 1 == epochs or (epoch + 1) % 10 == 0):
            msg += f" test acc {accuracy(model, *test):.4f}"
        log(msg)


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
