"""`mlp`: the simplest GAN (Goodfellow et al. 2014 style), fully connected, for learners.

G: z (N, z_dim) [+ class embedding] → Linear(w) → BN → ReLU → Linear(2w) → BN → ReLU
   → Linear(4w) → BN → ReLU → Linear(C*R*R) → tanh → (N, C, R, R)          (w = g_width)
D: flatten → Linear(4w) → LReLU(0.2) → Linear(2w) → LReLU → Linear(w) → LReLU → head  (w = d_width)

Conditional G: a learned K-dimensional class embedding is concatenated to z (Mirza & Osindero
2014) *and* its batch norms are conditional, like every other ganforge generator.
Init: Keras defaults (glorot-uniform weights, zero biases).
Any resolution >= 4; no attention (there are no feature maps).
"""

from __future__ import annotations

from torch import nn

from ganforge.models.base import Arch, Discriminator, Generator, dropout, mbstd
from ganforge.models.config import ModelConfig
from ganforge.nn import Flatten, LabelConcat, LabelSequential, init_weights, make_norm


def build_generator(cfg: ModelConfig) -> Generator:
    w, k, c, r = cfg.g_width, cfg.num_classes, cfg.channels, cfg.resolution
    layers: list[nn.Module] = []
    z_in = cfg.z_dim
    if k > 0:
        layers.append(LabelConcat(k, k))  # (N, z) → (N, z + K)
        z_in += k
    for cin, cout in ((z_in, w), (w, 2 * w), (2 * w, 4 * w)):
        # no bias: the batch norm right after removes it anyway
        layers += [nn.Linear(cin, cout, bias=False), make_norm(cout, k, spatial=False), nn.ReLU()]
    layers += [
        nn.Linear(4 * w, c * r * r),  # (N, 4w) → (N, C*R*R)
        nn.Tanh(),
        nn.Unflatten(1, (c, r, r)),  # → (N, C, R, R)
    ]
    net = Generator(cfg, LabelSequential(*layers))
    init_weights(net, nn.init.xavier_uniform_)
    return net


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    w, r = cfg.d_width, cfg.resolution
    layers: list[nn.Module] = [Flatten()]  # (N/m, m*C, R, R) → (N/m, m*C*R*R)
    for cin, cout in ((cfg.pack * cfg.channels * r * r, 4 * w), (4 * w, 2 * w), (2 * w, w)):
        layers += [nn.Linear(cin, cout), nn.LeakyReLU(0.2), *dropout(cfg)]
    layers += mbstd(cfg)  # (N/m, w) → (N/m, w + 1)
    net = Discriminator(cfg, nn.Sequential(*layers), w + (cfg.mbstd_group > 0))
    init_weights(net, nn.init.xavier_uniform_)
    return net


MLP = Arch(
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    resolution_ok=lambda r: r >= 4,
    resolutions_hint="any resolution >= 4",
    attention_sizes=lambda r: (),
)
