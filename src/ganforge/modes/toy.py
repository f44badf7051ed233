"""The 2D mode-collapse benchmarks and PacGAN's networks, with one small training function.

Shapes: N = batch, K = number of modes, Z = latent size (2), P = PacGAN pack degree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge.config import MAX_WIDTH, MAX_Z_DIM
from ganforge.errors import UsageError, is_int
from ganforge.losses import LOSSES, gradient_penalty, mode_seeking_loss, r1_penalty
from ganforge.nn.layers import MinibatchStdDev


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Benchmark:
    """A mixture of K equally weighted isotropic Gaussians."""

    name: str
    means: tuple[tuple[float, float], ...]  # (K, 2) mode centres
    sigma: float  # standard deviation of every mode

    def means_tensor(self) -> Tensor:
        return torch.tensor(self.means, dtype=torch.float32)  # (K, 2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples (N, 2): a uniformly chosen mode plus N(0, σ²I) noise."""
        means = self.means_tensor()
        k = torch.randint(len(self.means), (n,), generator=generator)
        return means[k] + self.sigma * torch.randn(n, 2, generator=generator)


# VEEGAN / PacGAN "2D-ring": 8 modes on the unit circle, σ = 0.01.
RING8 = Benchmark(
    "ring8",
    tuple((math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(8)),
    0.01,
)
# VEEGAN / PacGAN "2D-grid": 25 modes at {-4,-2,0,2,4}², σ = 0.05.
GRID25 = Benchmark("grid25", tuple((float(x), float(y)) for x in range(-4, 5, 2) for y in range(-4, 5, 2)), 0.05)

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (RING8, GRID25)}


# ----------------------------------------------------------------------------- networks


def toy_generator(z_dim: int = 2, width: int = 400, depth: int = 4) -> nn.Sequential:
    """PacGAN's 2D generator: `depth` × (Linear → BatchNorm → ReLU) of `width`, then Linear → 2."""
    layers: list[nn.Module] = []
    d = z_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, 2))
    return nn.Sequential(*layers)


class Maxout(nn.Module):
    """Goodfellow et al. 2013, "Maxout Networks": the max over `pieces` linear maps, (N, F) → (N, out)."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        h = self.linear(x).view(x.shape[0], self.out_features, self.pieces)  # (N, out, pieces)
        return h.amax(dim=2)


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """PacGAN (Lin et al. 2018): concatenate `pack` consecutive samples into one D input.
    (N, F) → (N/P, P·F); row j holds samples jP, …, jP+P-1."""
    n = x.shape[0]
    if n % pack:
        raise ValueError(f"pack degree {pack} does not divide the batch size {n}")
    return x.reshape(n // pack, pack * x.shape[1])


class ToyDiscriminator(nn.Module):
    """PacGAN's 2D discriminator: `depth` maxout layers (`pieces` pieces each) of `width`, then
    Linear → logit. Options: PacGAN packing of `pack` samples at the input, and a minibatch
    stddev feature (Karras et al. 2018) appended before the output layer."""

    def __init__(self, width: int = 200, depth: int = 3, pieces: int = 5, pack: int = 1, mbstd_group: int = 0):
        super().__init__()
        self.pack = pack
        layers: list[nn.Module] = []
        d = 2 * pack
        for _ in range(depth):
            layers.append(Maxout(d, width, pieces))
            d = width
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStdDev(mbstd_group) if mbstd_group > 0 else None
        self.out = nn.Linear(d + (1 if self.mbstd is not None else 0), 1)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], -1)  # (N, 2); also accepts (N, 2, 1, 1) from the image penalties
        h = self.body(pack_samples(x, self.pack))  # (N/P, width)
        if self.mbstd is not None:
            h = self.mbstd(h)  # (N/P, width + 1)
        return self.out(h).squeeze(1)  # (N/P,)


# ----------------------------------------------------------------------------- regularisers


# MSGAN's mode-seeking term is ganforge.losses.mode_seeking_loss (imported above).


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class ToyConfig:
    steps: int = 4000  # G updates (each preceded by n_critic D updates)
    batch_size: int = 100  # D inputs per step (packed inputs: batch_size·pack samples are drawn)
    z_dim: int = 2  # latent size; z ~ N(0, I)
    g_width: int = 400  # G hidden width
    g_depth: int = 4  # G hidden layers
    d_width: int = 200  # D hidden width (maxout units)
    d_depth: int = 3  # D hidden layers
    d_pieces: int = 5  # maxout pieces
    loss: str = "ns"  # adversarial loss, a key of ganforge.losses.LOSSES
    lr_g: float = 1e-4  # Adam learning rate of G
    lr_d: float = 1e-4  # Adam learning rate of D (TTUR: lr_d > lr_g)
    beta1: float = 0.8  # Adam β1 (PacGAN's 2D setting)
    beta2: float = 0.999  # Adam β2
    n_critic: int = 1  # D updates per G update
    pack: int = 1  # PacGAN pack degree P
    mbstd_group: int = 0  # minibatch-stddev group size (0 = off)
    msgan_weight: float = 0.0  # λ of the mode-seeking term (0 = off)
    gp_weight: float = 0.0  # WGAN-GP λ (0 = off)
    r1_gamma: float = 0.0  # R1 γ (0 = off); D loss adds γ/2 · R1
    unroll_steps: int = 0  # unrolled GAN k: G's loss at D after k look-ahead Adam steps (ensemble trainer only)
    lr_decay_frac: float = 0.0  # both learning rates decay linearly to 0 over this last fraction of the steps
    # discriminator rejection sampling after training (Azadi et al. 2019; ganforge.modes.drs)
    drs_steps: int = 0  # Adam steps of the fresh calibration D (0 = DRS off)
    drs_lr: float = 1e-3  # its learning rate (linear decay to 0 over the second half)
    drs_percentile: float = 0.0  # γ = this percentile of the burn-in F(x), higher = stricter; 0 = γ 0 (plain rejection sampling)

    def check(self) -> ToyConfig:
        """Refuse, before any training, a value that would crash mid-run or train something meaningless
        (a 0 width or a NaN rate trains and prints a '0.0 / 8 modes' row): one line naming the field,
        its value and what is allowed. Returns self."""
        for name, ok, allowed in _RULES:
            value = getattr(self, name)
            try:
                good = ok(value)
            except TypeError:  # a string in a hand-edited saved config.json
                good = False
            if not good:
                raise UsageError(f"{name} must be {allowed}, got {value!r}")
        group = min(self.mbstd_group, self.batch_size)  # the minibatch-stddev groups must tile D's batch
        if group and self.batch_size % group:
            raise UsageError(f"mbstd_group must divide batch_size={self.batch_size}, be >= it or be 0 (off), "
                             f"got {self.mbstd_group!r}")
        return self


def _rule(names: str, ok, allowed: str) -> list:
    return [(n, ok, allowed) for n in names.split()]


def _int_in(lo: int, hi: int | None = None):
    return lambda v: is_int(v) and lo <= v and (hi is None or v <= hi)


# Size caps, far above every method (z 2, widths 400 / 200, depths 4 / 3, 5 pieces, pack 4, batch 100,
# unroll 5): a value a digit too long otherwise ends as "can't allocate memory" or an OOM kill after the
# ensemble is built (z and widths as a GAN run's, ganforge.config). Counts of steps only cost time.
MAX_DEPTH = 64  # g_depth, d_depth
MAX_PIECES = 64  # d_pieces (D's layers are width · pieces wide)
MAX_PACK = 64  # pack (D's input is 2 · pack wide, each step draws batch_size · pack samples)
MAX_BATCH = 65_536  # batch_size
MAX_UNROLL = 100  # unroll_steps: G's graph holds every look-ahead step

# (field, ok(value), what is allowed) for every ToyConfig field; NaN fails every comparison
_RULES = [
    *_rule("steps n_critic", _int_in(1), "an integer >= 1"),
    *_rule("z_dim", _int_in(1, MAX_Z_DIM), f"an integer from 1 to {MAX_Z_DIM}"),
    *_rule("g_width d_width", _int_in(1, MAX_WIDTH), f"an integer from 1 to {MAX_WIDTH}"),
    *_rule("g_depth d_depth", _int_in(1, MAX_DEPTH), f"an integer from 1 to {MAX_DEPTH}"),
    *_rule("d_pieces", _int_in(1, MAX_PIECES), f"an integer from 1 to {MAX_PIECES}"),
    *_rule("pack", _int_in(1, MAX_PACK), f"an integer from 1 to {MAX_PACK}"),
    # batch norm's running variance divides by N - 1
    *_rule("batch_size", _int_in(2, MAX_BATCH), f"an integer from 2 to {MAX_BATCH}"),
    *_rule("mbstd_group drs_steps", _int_in(0), "an integer >= 0 (0 = off)"),
    *_rule("unroll_steps", _int_in(0, MAX_UNROLL), f"an integer from 0 to {MAX_UNROLL} (0 = off)"),
    *_rule("lr_g lr_d drs_lr", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    *_rule("beta1 beta2", lambda v: 0 <= v < 1, "in [0, 1)"),
    *_rule("msgan_weight gp_weight r1_gamma", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0 (0 = off)"),
    *_rule("lr_decay_frac", lambda v: 0 <= v <= 1, "in [0, 1] (0 = off)"),
    *_rule("drs_percentile", lambda v: 0 <= v < 100, "in [0, 100) (0 = γ 0, exact rejection sampling)"),
    *_rule("loss", lambda v: v in LOSSES, f"one of {', '.join(LOSSES)}"),
]


def lr_factor(step: int, steps: int, decay_frac: float) -> float:
    """The learning-rate multiplier at `step` (0-based) of `steps`: 1, then a linear decay to 0
    over the last `decay_frac` of the steps (0 = constant)."""
    if decay_frac <= 0:
        return 1.0
    start = steps * (1 - decay_frac)
    return 1.0 if step < start else max(0.0, (steps - step) / (steps - start))


def train_toy(bench: Benchmark, cfg: ToyConfig, seed: int = 0) -> nn.Module:
    """Train G on `bench` with `cfg`; returns G in eval mode. CPU, deterministic for a seed.
    The reference for ensemble.train_ensemble (which also implements unroll_steps)."""
    if cfg.unroll_steps > 0:
        raise ValueError("unroll_steps needs ganforge.modes.ensemble.train_ensemble")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    G = toy_generator(cfg.z_dim, cfg.g_width, cfg.g_depth)
    D = ToyDiscriminator(cfg.d_width, cfg.d_depth, cfg.d_pieces, cfg.pack, cfg.mbstd_group)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    loss = LOSSES[cfg.loss]
    n = cfg.batch_size * cfg.pack  # samples per step

    for step in range(cfg.steps):
        f = lr_factor(step, cfg.steps, cfg.lr_decay_frac)
        opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"] = cfg.lr_g * f, cfg.lr_d * f
        for _ in range(cfg.n_critic):
            real = bench.sample(n, gen)  # (N, 2)
            with torch.no_grad():
                fake = G(torch.randn(n, cfg.z_dim, generator=gen))  # (N, 2)
            d_loss = loss.d_loss(D(real), D(fake))
            if cfg.gp_weight > 0:  # the penalties expect image-shaped (N, C, H, W) inputs
                d_loss = d_loss + cfg.gp_weight * gradient_penalty(D, real[..., None, None], fake[..., None, None], pack=cfg.pack)
            if cfg.r1_gamma > 0:
                d_loss = d_loss + 0.5 * cfg.r1_gamma * r1_penalty(D, real)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

        z = torch.randn(n, cfg.z_dim, generator=gen)
        fake = G(z)
        g_loss = loss.g_loss(D(fake))
        if cfg.msgan_weight > 0:  # a second batch of latents; G sees both batches in one BN batch
            z2 = torch.randn(n, cfg.z_dim, generator=gen)
            fake2 = G(z2)
            g_loss = g_loss + cfg.msgan_weight * mode_seeking_loss(fake, fake2, z, z2)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return G.eval()


@torch.no_grad()
def generate(G: nn.Module, n: int, z_dim: int = 2, seed: int = 0) -> Tensor:
    """n samples (N, 2) from a trained G (eval mode: batch norm uses running statistics)."""
    gen = torch.Generator().manual_seed(seed)
    return G(torch.randn(n, z_dim, generator=gen))
