"""Deep convolutional GANs: the Keras/TensorFlow tutorial net and Radford et al.'s DCGAN.

Both are plain stacks of (transposed) convolutions; resolution and width are arguments.
"""

from __future__ import annotations

from torch import nn

from ganforge.models.base import Arch, Discriminator, Generator, attention, dropout, mbstd
from ganforge.models.config import ModelConfig
from ganforge.nn import (
    Conv2dSame,
    ConvTranspose2dSame,
    Flatten,
    LabelSequential,
    init_weights,
    make_norm,
)

# ---------------------------------------------------------------------------------------------
# keras-dcgan: the TensorFlow "Deep Convolutional Generative Adversarial Network" tutorial (MNIST)
#
# Layer for layer the tutorial's make_generator_model / make_discriminator_model, with Keras
# semantics: LeakyReLU slope 0.3 (Keras default), BatchNormalization(momentum=0.99, epsilon=1e-3)
# = PyTorch momentum 0.01, eps 1e-3, padding="same" including TF's asymmetric padding
# (Conv2dSame / ConvTranspose2dSame), glorot-uniform kernels and zero biases.
# At resolution 28 and g_width = d_width = 64 it is exactly the tutorial (2,330,944 and 212,865
# params as Keras counts them, BN moving statistics included). Other widths scale every channel
# count by width/64; other resolutions R (multiples of 4) start from a base = R/4 map.
# Weight import note: Keras is NHWC, so its Reshape((7,7,256)) after the first Dense and its
# Flatten before D's last Dense order units (h, w, c) where ours are (c, h, w): permute those
# two weight matrices (and the first BatchNorm's vectors) when loading Keras weights.
# Dropout(0.3) in the tutorial's D is model.d_dropout here (presets set 0.3).
# ---------------------------------------------------------------------------------------------

KERAS_BN = {"momentum": 0.01, "eps": 1e-3}  # Keras BatchNormalization defaults in PyTorch terms


def build_keras_generator(cfg: ModelConfig) -> Generator:
    g, k, b = cfg.g_width, cfg.num_classes, cfg.resolution // 4  # b = 7 for MNIST
    layers = [
        nn.Linear(cfg.z_dim, b * b * 4 * g, bias=False),  # Dense(7*7*256): (N, z) → (N, 12544)
        make_norm(b * b * 4 * g, k, spatial=False, **KERAS_BN),
        nn.LeakyReLU(0.3),
        nn.Unflatten(1, (4 * g, b, b)),  # Reshape: → (N, 256, 7, 7)
        ConvTranspose2dSame(4 * g, 2 * g, 5, stride=1, bias=False),  # → (N, 128, 7, 7)
        make_norm(2 * g, k, **KERAS_BN),
        nn.LeakyReLU(0.3),
        *attention(cfg, b, 2 * g),
        ConvTranspose2dSame(2 * g, g, 5, stride=2, bias=False),  # → (N, 64, 14, 14)
        make_norm(g, k, **KERAS_BN),
        nn.LeakyReLU(0.3),
        *attention(cfg, 2 * b, g),
        ConvTranspose2dSame(g, cfg.channels, 5, stride=2, bias=False),  # → (N, C, 28, 28)
        nn.Tanh(),
    ]
    net = Generator(cfg, LabelSequential(*layers))
    init_weights(net, nn.init.xavier_uniform_)  # = Keras glorot_uniform (same fan_in + fan_out)
    return net


def build_keras_discriminator(cfg: ModelConfig) -> Discriminator:
    d, b = cfg.d_width, cfg.resolution // 4
    layers = [
        Conv2dSame(cfg.pack * cfg.channels, d, 5, stride=2),  # (N/m, m*C, 28, 28) → (.., 64, 14, 14)
        nn.LeakyReLU(0.3),
        *dropout(cfg),
        *attention(cfg, 2 * b, d),
        Conv2dSame(d, 2 * d, 5, stride=2),  # → (.., 128, 7, 7)
        nn.LeakyReLU(0.3),
        *dropout(cfg),
        *attention(cfg, b, 2 * d),
        *mbstd(cfg),  # → (.., 128 + 1, 7, 7)
        Flatten(),  # → (.., 6272 [+ 49]); then Dense(1) in the head
    ]
    feature_dim = b * b * (2 * d + (cfg.mbstd_group > 0))
    net = Discriminator(cfg, nn.Sequential(*layers), feature_dim)
    init_weights(net, nn.init.xavier_uniform_)
    return net


KERAS_DCGAN = Arch(
    build_generator=build_keras_generator,
    build_discriminator=build_keras_discriminator,
    resolution_ok=lambda r: r >= 4 and r % 4 == 0,
    resolutions_hint="a multiple of 4 (28 reproduces the TensorFlow tutorial)",
    attention_sizes=lambda r: tuple(s for s in (r // 4, r // 2) if s >= 4),
)

# ---------------------------------------------------------------------------------------------
# dcgan: Radford, Metz & Chintala 2016, as in the PyTorch DCGAN example.
#
# Resolution R = base * 2^n with base 4 (16, 32, 64, 128) or base 7 (28, 56, 112, for MNIST).
# G: z → ConvT(base x base kernel) to a base x base map, then n-1 [ConvT 4x4 s2 p1, BN, ReLU]
#    blocks doubling the size, then ConvT 4x4 s2 p1 to C channels and tanh.
# D: the mirror image: Conv 4x4 s2 p1 + LReLU(0.2) (no BN on the first), n-1 [Conv, BN, LReLU],
#    then a linear head on the flattened base x base map (= the paper's final valid conv).
# Width w: the map next to the image has w channels, each halving of the size doubles them,
# capped at 8w. At 64 px: G 8w→4w→2w→w, D w→2w→4w→8w, exactly the PyTorch example (whose
# ngf = ndf = 64 are g_width = d_width = 64). Convs followed by BN have no bias (as there).
# Init: N(0, 0.02) weights, BN gains N(1, 0.02), zero biases (Radford et al.).
# ---------------------------------------------------------------------------------------------

DCGAN_RESOLUTIONS = (16, 28, 32, 56, 64, 112, 128)


def _dcgan_plan(resolution: int) -> tuple[int, int]:
    """(base, n): resolution = base * 2^n."""
    base = 7 if resolution % 7 == 0 else 4
    return base, (resolution // base).bit_length() - 1


def _dcgan_width(w: int, doublings: int) -> int:
    return w * min(8, 2**doublings)


def _init_dcgan(net: nn.Module) -> None:
    init_weights(net, lambda t: nn.init.normal_(t, 0.0, 0.02))
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_dcgan_generator(cfg: ModelConfig) -> Generator:
    base, n = _dcgan_plan(cfg.resolution)
    w, k = cfg.g_width, cfg.num_classes
    ch = _dcgan_width(w, n - 1)  # e.g. 8w at 64 px
    layers = [
        nn.Unflatten(1, (cfg.z_dim, 1, 1)),  # (N, z) → (N, z, 1, 1)
        nn.ConvTranspose2d(cfg.z_dim, ch, base, 1, 0, bias=False),  # → (N, 8w, 4, 4)
        make_norm(ch, k),
        nn.ReLU(),
        *attention(cfg, base, ch),
    ]
    for i in range(1, n):  # maps of size base * 2^i
        cout = _dcgan_width(w, n - 1 - i)
        layers += [
            nn.ConvTranspose2d(ch, cout, 4, 2, 1, bias=False),  # (N, ch, s, s) → (N, ch/2, 2s, 2s)
            make_norm(cout, k),
            nn.ReLU(),
            *attention(cfg, base << i, cout),
        ]
        ch = cout
    layers += [nn.ConvTranspose2d(ch, cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]  # → (N, C, R, R)
    net = Generator(cfg, LabelSequential(*layers))
    _init_dcgan(net)
    return net


def build_dcgan_discriminator(cfg: ModelConfig) -> Discriminator:
    base, n = _dcgan_plan(cfg.resolution)
    w = cfg.d_width
    layers = [
        nn.Conv2d(cfg.pack * cfg.channels, w, 4, 2, 1, bias=False),  # (N/m, m*C, R, R) → (.., w, R/2, R/2)
        nn.LeakyReLU(0.2),
        *dropout(cfg),
        *attention(cfg, cfg.resolution // 2, w),
    ]
    ch = w
    for j in range(1, n):  # maps of size R / 2^(j+1)
        cout = _dcgan_width(w, j)
        norm = [nn.BatchNorm2d(cout)] if cfg.d_batchnorm else []
        layers += [
            nn.Conv2d(ch, cout, 4, 2, 1, bias=not norm),  # (.., ch, s, s) → (.., 2ch, s/2, s/2)
            *norm,
            nn.LeakyReLU(0.2),
            *dropout(cfg),
            *attention(cfg, cfg.resolution >> (j + 1), cout),
        ]
        ch = cout
    layers += [*mbstd(cfg), Flatten()]  # (.., 8w [+1], 4, 4) → (.., (8w [+1]) * 16)
    feature_dim = (ch + (cfg.mbstd_group > 0)) * base * base
    net = Discriminator(cfg, nn.Sequential(*layers), feature_dim)
    _init_dcgan(net)
    return net


def _dcgan_attention_sizes(resolution: int) -> tuple[int, ...]:
    base, n = _dcgan_plan(resolution)
    return tuple(base << i for i in range(n))  # G's hidden maps = D's hidden maps


RADFORD_DCGAN = Arch(
    build_generator=build_dcgan_generator,
    build_discriminator=build_dcgan_discriminator,
    resolution_ok=lambda r: r in DCGAN_RESOLUTIONS,
    resolutions_hint=", ".join(map(str, DCGAN_RESOLUTIONS)),
    attention_sizes=_dcgan_attention_sizes,
)
