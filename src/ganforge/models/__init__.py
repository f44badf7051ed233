"""Generators and discriminators, built from a `ModelConfig`.

    G = build_generator(cfg)      # G(z (N, z_dim), y (N,) | None) → images (N, C, R, R) in [-1, 1]
    D = build_discriminator(cfg)  # D(x (N, C, R, R), y (N,) | None) → logits (N / cfg.pack,)

Architectures (`cfg.arch`): mlp, keras-dcgan, dcgan, resnet; see each module's docstring for
its layers, width convention and init. `check_model_config(cfg)` runs every validation the
builders run, without building anything (for --dry-run).
"""

from __future__ import annotations

from torch import nn

from ganforge.errors import UsageError
from ganforge.models.base import Arch, Discriminator, Generator
from ganforge.models.config import ModelConfig, check_d_cond
from ganforge.models.dcgan import KERAS_DCGAN, RADFORD_DCGAN
from ganforge.models.mlp import MLP
from ganforge.models.resnet import SNGAN_RESNET
from ganforge.nn import apply_spectral_norm

ARCHS: dict[str, Arch] = {
    "mlp": MLP,
    "keras-dcgan": KERAS_DCGAN,
    "dcgan": RADFORD_DCGAN,
    "resnet": SNGAN_RESNET,
}

# (field, smallest allowed value) for the integer fields
_INT_FIELDS = (
    ("resolution", 1),
    ("channels", 1),
    ("z_dim", 1),
    ("g_width", 1),
    ("d_width", 1),
    ("num_classes", 0),
    ("attention_res", 0),
    ("mbstd_group", 0),
    ("pack", 1),
)


def check_model_config(cfg: ModelConfig) -> None:
    """Raise `UsageError` (one line naming the value and what is allowed) if `cfg` cannot be built."""
    arch = ARCHS.get(cfg.arch)
    if arch is None:
        allowed = ", ".join(repr(a) for a in ARCHS)
        raise UsageError(f"model.arch={cfg.arch!r} is unknown: use one of {allowed}")
    for name, low in _INT_FIELDS:
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UsageError(f"model.{name}={value!r} is invalid: use an integer >= {low}")
    if not 0.0 <= cfg.d_dropout < 1.0:
        raise UsageError(f"model.d_dropout={cfg.d_dropout!r} is invalid: use a value in [0, 1)")
    if not arch.resolution_ok(cfg.resolution):
        raise UsageError(
            f"model.resolution={cfg.resolution} is not supported by arch {cfg.arch!r}: "
            f"use {arch.resolutions_hint}"
        )
    sizes = arch.attention_sizes(cfg.resolution)
    if cfg.attention_res and cfg.attention_res not in sizes:
        allowed = ", ".join(["0 (off)", *map(str, sizes)])
        raise UsageError(
            f"model.attention_res={cfg.attention_res} is not a feature-map size of arch "
            f"{cfg.arch!r} at resolution {cfg.resolution}: use {allowed}"
        )
    check_d_cond(cfg)
    if cfg.pack > 1 and cfg.num_classes > 0:
        raise UsageError(
            f"model.pack={cfg.pack} cannot be combined with model.num_classes={cfg.num_classes} "
            "(a conditional discriminator scores one label per sample): use model.pack=1"
        )


def build_generator(cfg: ModelConfig) -> nn.Module:
    """Validate `cfg`, build and initialise G, then spectral-normalise it if cfg.g_spectral_norm."""
    check_model_config(cfg)
    net = ARCHS[cfg.arch].build_generator(cfg)
    return apply_spectral_norm(net) if cfg.g_spectral_norm else net


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """Validate `cfg`, build and initialise D, then spectral-normalise it if cfg.d_spectral_norm."""
    check_model_config(cfg)
    net = ARCHS[cfg.arch].build_discriminator(cfg)
    return apply_spectral_norm(net) if cfg.d_spectral_norm else net


__all__ = [
    "ARCHS",
    "Arch",
    "Discriminator",
    "Generator",
    "ModelConfig",
    "build_discriminator",
    "build_generator",
    "check_model_config",
]
