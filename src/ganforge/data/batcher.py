"""Training batches from an in-memory dataset, with exactly resumable shuffling.

Small datasets live on the training device as one uint8 tensor (moved once); a batch is
a gather plus a conversion to float, with no DataLoader workers or host->device copies
of pixels. All randomness (per-epoch permutation, flips) comes from one CPU
torch.Generator owned by the Batcher, so batches are identical on CPU and GPU and a
restored `state_dict()` continues bit-identically.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import UsageError, is_int
from .image_data import ImageData, to_float


class Batcher:
    """Infinite iterator of `(x, y)`: x float32 (B, C, H, W) in [-1, 1], y int64 (B,) or None.

    Every epoch is a fresh seeded permutation; the last incomplete batch of an epoch is
    dropped, so every batch has exactly `batch_size` images and each image appears at
    most once per epoch.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
        hflip: bool = False,
        out_device: torch.device | str | None = None,
    ) -> None:
        num_images = len(data)
        if not is_int(batch_size) or batch_size < 1:  # a numpy integer is one too
            raise UsageError(f"batch size must be a positive integer; got {batch_size!r}")
        if batch_size > num_images:
            raise UsageError(
                f"batch size {batch_size} is larger than the dataset ({num_images} images); "
                f"use a batch size of at most {num_images}"
            )
        self.batch_size = int(batch_size)  # images per batch
        self.hflip = hflip  # mirror each image left-right with probability 1/2
        self.device = torch.device(device)  # where the uint8 dataset lives
        # where batches are delivered: the training device, also when the dataset stays on the CPU
        # (data.on_device=false), so a GPU step is never handed CPU tensors; None: `device`
        self.out_device = self.device if out_device is None else torch.device(out_device)
        self.num_images = num_images
        # the dataset's identity (ImageData.content_sha256), saved with the state: a resume that
        # reads the data from another path (data.source moved) must find the same images there
        self.data_sha256 = data.content_sha256()
        self.images = data.images.to(self.device)  # uint8 (N, C, H, W), on the device once
        self.labels = None if data.labels is None else data.labels.to(self.device)  # int64 (N,)
        # CPU generator: the same draws whatever the training device is.
        self._generator = torch.Generator(device="cpu").manual_seed(seed)
        self.epoch = 0  # completed epochs
        self.position = 0  # images of the current permutation already served
        self._permutation = torch.randperm(num_images, generator=self._generator)  # int64 (N,)

    @property
    def batches_per_epoch(self) -> int:
        return self.num_images // self.batch_size

    def __iter__(self) -> Batcher:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        size = self.batch_size
        if self.position + size > self.num_images:  # drop_last: the remainder is never served
            self.epoch += 1
            self.position = 0
            self._permutation = torch.randperm(self.num_images, generator=self._generator)
        index = self._permutation[self.position : self.position + size]  # int64 (B,) on CPU
        self.position += size
        flip = torch.rand(size, generator=self._generator) < 0.5 if self.hflip else None  # bool (B,)

        index = index.to(self.device, non_blocking=True)
        images = self.images[index]  # uint8 (B, C, H, W)
        if flip is not None:
            flip = flip.to(self.device, non_blocking=True).view(size, 1, 1, 1)
            images = torch.where(flip, images.flip(-1), images)
        labels = None if self.labels is None else self.labels[index]  # int64 (B,)
        if self.out_device != self.device:  # moved as uint8: 4x fewer bytes than the float batch
            images = images.to(self.out_device, non_blocking=True)
            labels = None if labels is None else labels.to(self.out_device, non_blocking=True)
        return to_float(images), labels

    def state_dict(self) -> dict[str, Any]:
        """Plain ints and CPU tensors (safetensors/json friendly) that pin down every future batch."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "num_images": self.num_images,
            "permutation": self._permutation.clone(),  # int64 (N,)
            "generator_state": self._generator.get_state(),  # uint8 (K,)
            "data_sha256": self.data_sha256,  # str; states written before 2026-12-07 lack it
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state_dict(); the next batches equal those of the uninterrupted run."""
        missing = {"epoch", "position", "num_images", "permutation", "generator_state"} - set(state)
        if missing:
            raise UsageError(f"data loader state lacks {', '.join(sorted(missing))}; the checkpoint is incomplete")
        num_images = int(state["num_images"])
        if num_images != self.num_images:
            raise UsageError(
                f"checkpoint was trained on {num_images} images but the dataset has {self.num_images}; "
                "resume with the same dataset"
            )
        permutation = torch.as_tensor(state["permutation"], dtype=torch.int64).cpu()
        position = int(state["position"])
        if not torch.equal(permutation.sort().values, torch.arange(num_images)) or not 0 <= position <= num_images:
            raise UsageError("data loader state in the checkpoint is corrupt (bad permutation or position)")
        self._generator.set_state(torch.as_tensor(state["generator_state"], dtype=torch.uint8).cpu())
        self._permutation = permutation.clone()
        self.epoch = int(state["epoch"])
        self.position = position
