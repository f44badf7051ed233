"""The two network shells every architecture fills in, and the per-architecture description.

A generator is a `LabelSequential` body: z (N, z_dim) [+ y (N,)] → images (N, C, R, R) in [-1, 1].
A discriminator is a feature extractor x → h (N', F) plus a `ProjectionHead` h → logits (N',),
with PacGAN packing done here once for all architectures (N' = N / pack). An AC-GAN D
(`d_cond` "ac" or "proj+ac") also has a linear class head h → class logits (N, K).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge.models.config import ModelConfig
from ganforge.nn import Dropout, LabelSequential, MinibatchStdDev, ProjectionHead, SelfAttention2d


@dataclass(frozen=True)
class Arch:
    """What the registry knows about one architecture family."""

    build_generator: Callable[[ModelConfig], nn.Module]  # builds and initialises G (no spectral norm)
    build_discriminator: Callable[[ModelConfig], nn.Module]  # same for D
    resolution_ok: Callable[[int], bool]  # can this family produce/judge R x R images?
    resolutions_hint: str  # the allowed resolutions, for error messages
    attention_sizes: Callable[[int], tuple[int, ...]]  # feature sizes valid for attention_res at R


def check_labels(y: Tensor | None, num_classes: int, batch: int) -> None:
    """Labels must be given exactly when the net is conditional (a missing or stray y is a bug)."""
    if num_classes == 0:
        if y is not None:
            raise ValueError("this network is unconditional (num_classes=0) but labels y were given")
        return
    if y is None:
        raise ValueError(f"this network is conditional (num_classes={num_classes}): pass labels y")
    if y.shape != (batch,) or y.dtype != torch.long:
        raise ValueError(
            f"labels y must be int64 of shape ({batch},), got {y.dtype} of shape {tuple(y.shape)}"
        )


class Generator(nn.Module):
    """z (N, z_dim) [+ labels y (N,) int64] → images (N, channels, resolution, resolution) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, body: LabelSequential):
        super().__init__()
        self.config = cfg
        self.z_dim = cfg.z_dim
        self.num_classes = cfg.num_classes
        self.resolution = cfg.resolution
        self.channels = cfg.channels
        self.body = body

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        check_labels(y, self.num_classes, z.shape[0])
        return self.body(z, y)


class Discriminator(nn.Module):
    """x (N, C, R, R) [+ y (N,)] → raw logits (N / pack,).

    PacGAN (Lin et al. 2018): consecutive groups of `pack` samples are judged together by stacking
    them on channels, (N, C, R, R) → (N/pack, pack*C, R, R); the first layer of `features` must
    therefore take pack*C channels. `features` maps that to h (N/pack, feature_dim).
    """

    def __init__(self, cfg: ModelConfig, features: nn.Module, feature_dim: int):
        super().__init__()
        if cfg.pack > 1 and cfg.num_classes > 0:
            raise ValueError("packing (pack > 1) cannot be combined with a projection discriminator")
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.resolution = cfg.resolution
        self.channels = cfg.channels
        self.pack = cfg.pack
        self.features = features
        # d_cond "ac": the adversarial head is unconditional and the label is learnt by the class head
        self.head = ProjectionHead(feature_dim, cfg.num_classes if "proj" in cfg.d_cond else 0)
        self.classifier = nn.Linear(feature_dim, cfg.num_classes) if "ac" in cfg.d_cond and cfg.num_classes else None

    def forward(self, x: Tensor, y: Tensor | None = None, with_classes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """logits (N/m,); with_classes (an AC-GAN D only): (logits, class logits (N, K)) from one pass."""
        check_labels(y, self.num_classes, x.shape[0])
        h = self.embed(x)  # (N/m, F)
        logits = self.head(h, y)  # (N/m,); an unconditional head ignores y
        if not with_classes:
            return logits
        if self.classifier is None:
            raise ValueError("with_classes=True needs an auxiliary class head (model.d_cond='ac' or 'proj+ac')")
        return logits, self.classifier(h)  # (N, K): packing is off for conditional nets, so N/m = N

    def embed(self, x: Tensor) -> Tensor:
        """x (N, C, R, R) → the penultimate features h (N/pack, feature_dim) the head scores
        (feature matching reads them)."""
        n, r = x.shape[0], self.resolution
        if tuple(x.shape[1:]) != (self.channels, r, r):
            raise ValueError(f"x must have shape (N, {self.channels}, {r}, {r}), got {tuple(x.shape)}")
        if n % self.pack:
            raise ValueError(f"batch size {n} is not divisible by pack={self.pack}")
        x = x.reshape(n // self.pack, self.pack * self.channels, r, r)  # (N/m, m*C, R, R)
        return self.features(x)  # (N/m, feature_dim)


# Optional pieces, each returned as a (possibly empty) list to splice into a layer list.


def attention(cfg: ModelConfig, size: int, channels: int) -> list[nn.Module]:
    """A self-attention block if `size` is the configured attention resolution."""
    return [SelfAttention2d(channels)] if cfg.attention_res == size else []


def mbstd(cfg: ModelConfig) -> list[nn.Module]:
    """The minibatch-stddev layer if enabled (it adds one channel / feature)."""
    return [MinibatchStdDev(cfg.mbstd_group)] if cfg.mbstd_group > 0 else []


def dropout(cfg: ModelConfig) -> list[nn.Module]:
    """Dropout after a D activation if enabled."""
    return [Dropout(cfg.d_dropout)] if cfg.d_dropout > 0 else []
