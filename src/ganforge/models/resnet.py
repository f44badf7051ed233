"""`resnet`: the SNGAN ResNets (Miyato et al. 2018; Miyato & Koyama 2018), as in the Chainer
sngan_projection code and its Mimicry port, for 32, 64 and 128 px.

G: z → Linear → (N, c0, 4, 4) → GBlocks (each doubles the size) → BN → ReLU → conv3x3 → tanh.
D: OptimizedDisBlock → DisBlocks → ReLU → global sum pool → linear (+ projection if conditional).

Width convention: g_width (d_width) is the channel count at full resolution, i.e. in the last
G block (first D block). Going away from full resolution the channels follow SNGAN:
  32 px  G: 4x4 w | w, w, w (8→16→32)              D: w, w, w, w (16, 8, 8, 8)
  64 px  G: 4x4 16w | 8w, 4w, 2w, w                D: w, 2w, 4w, 8w, 16w (32 … 2)
  128 px G: 4x4 16w | 16w, 8w, 4w, 2w, w           D: w, 2w, 4w, 8w, 16w, 16w (64 … 4, 4)
So SNGAN's CIFAR nets (ngf=256, ndf=128) are g_width=256, d_width=128, and its 64/128 px nets
(ngf = ndf = 1024) are g_width = d_width = 64.
Upsampling is nearest-neighbour as in the Chainer original (Mimicry uses bilinear).
mbstd, when on, is inserted before D's last block (where StyleGAN puts it: before the final conv).
Init: xavier-uniform, gain sqrt(2) for the convs inside residual paths and 1 elsewhere, zero biases.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.models.base import Arch, Discriminator, Generator, attention, dropout, mbstd
from ganforge.models.config import ModelConfig
from ganforge.nn import Dropout, GlobalSumPool, LabelSequential, call, make_norm, weight_layers

# resolution → (channel multiplier of the 4x4 map, multipliers of the G blocks' outputs)
G_PLANS = {32: (1, (1, 1, 1)), 64: (16, (8, 4, 2, 1)), 128: (16, (16, 8, 4, 2, 1))}
# resolution → (channel multiplier, downsample?) per D block; the first block is the optimized one
D_PLANS = {
    32: ((1, True), (1, True), (1, False), (1, False)),
    64: ((1, True), (2, True), (4, True), (8, True), (16, True)),
    128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
}


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")  # (N, C, s, s) → (N, C, 2s, 2s)


class GBlock(nn.Module):
    """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, shortcut up-conv1x1: (N, cin, s, s) → (N, cout, 2s, 2s)."""

    takes_labels = True  # for its (conditional) batch norms

    def __init__(self, cin: int, cout: int, num_classes: int):
        super().__init__()
        self.b1, self.b2 = make_norm(cin, num_classes), make_norm(cout, num_classes)
        self.c1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.c_sc = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.c1(_up(F.relu(call(self.b1, x, y))))
        h = self.c2(F.relu(call(self.b2, h, y)))
        return h + self.c_sc(_up(x))


class DBlock(nn.Module):
    """SNGAN discriminator block: (N, cin, s, s) → (N, cout, s/2 or s, s/2 or s).

    optimized=True is the first block (OptimizedDisBlock): no ReLU on the image input,
    conv-ReLU-conv-avgpool, shortcut avgpool-conv1x1 (pool first: 4x cheaper). Otherwise
    ReLU-conv-ReLU-conv[-avgpool], shortcut conv1x1[-avgpool] when the shape changes.
    Dropout (if any) follows each ReLU.
    """

    def __init__(self, cin: int, cout: int, *, downsample: bool, optimized: bool, p_drop: float):
        super().__init__()
        self.downsample, self.optimized = downsample or optimized, optimized
        hidden = cout if optimized else cin
        self.c1 = nn.Conv2d(cin, hidden, 3, 1, 1)
        self.c2 = nn.Conv2d(hidden, cout, 3, 1, 1)
        self.c_sc = nn.Conv2d(cin, cout, 1) if (cin != cout or self.downsample) else None
        self.drop = Dropout(p_drop) if p_drop > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.optimized else self.drop(F.relu(x))
        h = self.c2(self.drop(F.relu(self.c1(h))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.optimized:
            return h + self.c_sc(F.avg_pool2d(x, 2))
        sc = x if self.c_sc is None else self.c_sc(x)
        return h + (F.avg_pool2d(sc, 2) if self.downsample else sc)


def _init_sngan(net: nn.Module) -> None:
    for name, m in weight_layers(net):
        gain = math.sqrt(2.0) if name.rsplit(".", 1)[-1] in ("c1", "c2") else 1.0
        nn.init.xavier_uniform_(m.weight, gain)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


def build_generator(cfg: ModelConfig) -> Generator:
    w, k = cfg.g_width, cfg.num_classes
    m0, mults = G_PLANS[cfg.resolution]
    ch, size = m0 * w, 4
    layers: list[nn.Module] = [
        nn.Linear(cfg.z_dim, 4 * 4 * ch),  # (N, z) → (N, 16*c0)
        nn.Unflatten(1, (ch, 4, 4)),  # → (N, c0, 4, 4)
        *attention(cfg, 4, ch),
    ]
    for m in mults:
        size *= 2
        layers += [GBlock(ch, m * w, k), *attention(cfg, size, m * w)]
        ch = m * w
    layers += [
        # Chainer's and Mimicry's conditional G use a plain BN here; ours is class-conditional like every
        # BN of a conditional ganforge G (equal to plain BN at init), and kept so for saved checkpoints.
        make_norm(ch, k),
        nn.ReLU(),
        nn.Conv2d(ch, cfg.channels, 3, 1, 1),  # (N, w, R, R) → (N, C, R, R)
        nn.Tanh(),
    ]
    net = Generator(cfg, LabelSequential(*layers))
    _init_sngan(net)
    return net


def build_discriminator(cfg: ModelConfig) -> Discriminator:
    w, plan = cfg.d_width, D_PLANS[cfg.resolution]
    ch, size, attended = cfg.pack * cfg.channels, cfg.resolution, False
    layers: list[nn.Module] = []
    for i, (m, down) in enumerate(plan):
        if i == len(plan) - 1 and cfg.mbstd_group > 0:
            layers += mbstd(cfg)  # (.., ch, s, s) → (.., ch + 1, s, s)
            ch += 1
        layers.append(DBlock(ch, m * w, downsample=down, optimized=i == 0, p_drop=cfg.d_dropout))
        ch, size = m * w, size // 2 if down else size
        if size == cfg.attention_res and not attended:  # after the first block of that size
            layers += attention(cfg, size, ch)
            attended = True
    layers += [nn.ReLU(), *dropout(cfg), GlobalSumPool()]  # (.., ch, s, s) → (.., ch)
    net = Discriminator(cfg, nn.Sequential(*layers), ch)
    _init_sngan(net)
    return net


def _attention_sizes(resolution: int) -> tuple[int, ...]:
    g_sizes = {4 << i for i in range(len(G_PLANS[resolution][1]) + 1)}
    d_sizes, s = set(), resolution
    for _, down in D_PLANS[resolution]:
        s = s // 2 if down else s
        d_sizes.add(s)
    return tuple(sorted(s for s in g_sizes & d_sizes if s >= 4))


SNGAN_RESNET = Arch(
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    resolution_ok=lambda r: r in G_PLANS,
    resolutions_hint=", ".join(map(str, G_PLANS)),
    attention_sizes=_attention_sizes,
)
