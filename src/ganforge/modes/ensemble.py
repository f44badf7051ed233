"""Train T independent trials of the 2D benchmark at once, as one batched ensemble.

Every weight of PacGAN's G and D is stacked over the trials, (T, in, out), and each layer is one
`torch.baddbmm`; batch norm normalises each trial's batch on its own. The trials share nothing
but the kernels: trial t is initialised exactly as `toy.train_toy(seed=seeds[t])` initialises its
nn.Modules, draws its data and latents from its own generator in the same order, and its loss is
a sum over trials, so its gradient (and Adam's elementwise update) is that of the unbatched
trial. `tests/test_modes.py` checks the two trainers agree to rounding (float64). (WGAN-GP's
interpolation weights are the one exception: drawn from each trial's generator here, from the
global RNG in train_toy, so those trials agree in distribution only.)

Speed: on one CPU thread the step is bound by matrix-multiply FLOPs, so batching saves only the
per-call overhead: 10 trials took 23.9 ms per trial-step against 29.9 ms unbatched (1.25×,
docs/MODE_COLLAPSE.md). On a GPU, where these small matmuls are launch-bound, it saves far more.

Shapes: T trials, N samples per trial, M = N / P D inputs (PacGAN pack P), Z latent size, F width.

Unrolled GAN (Metz et al. 2017, ICLR): G's loss is taken at D's parameters after k look-ahead
Adam steps, θ_D^k(θ_G), each on the D step's real batch and the G step's fake batch, starting from
D's current parameters and Adam moments; G's gradient flows through those steps (create_graph),
so G anticipates how D will react to it. D itself takes only its ordinary step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.losses import LOSSES
from ganforge.modes.toy import (
    Benchmark,
    Maxout,
    ToyConfig,
    ToyDiscriminator,
    lr_factor,
    mode_seeking_loss,
    toy_generator,
)

Params = dict[str, Tensor]  # name → tensor stacked over trials, (T, ...)

BN_EPS, BN_MOMENTUM = 1e-5, 0.1  # nn.BatchNorm1d's defaults, as in the unbatched G


# ----------------------------------------------------------------------------- stacking


def stack_generators(gens: list[nn.Sequential]) -> tuple[Params, Params]:
    """T toy generators → (parameters, batch-norm buffers), each stacked over the trials.
    Linear i: w{i} (T, in, out) = weightᵀ, b{i} (T, 1, out); batch norm i: g{i}, be{i},
    and buffers rm{i}, rv{i} (running mean / var), all (T, 1, F)."""
    p: Params = {}
    buf: Params = {}
    i = 0
    for layers in zip(*(g for g in gens)):
        m = layers[0]
        if isinstance(m, nn.Linear):
            p[f"w{i}"] = torch.stack([l.weight.detach().t() for l in layers]).contiguous()
            p[f"b{i}"] = torch.stack([l.bias.detach()[None] for l in layers]).contiguous()
        elif isinstance(m, nn.BatchNorm1d):
            p[f"g{i}"] = torch.stack([l.weight.detach()[None] for l in layers]).contiguous()
            p[f"be{i}"] = torch.stack([l.bias.detach()[None] for l in layers]).contiguous()
            buf[f"rm{i}"] = torch.stack([l.running_mean[None] for l in layers]).clone()
            buf[f"rv{i}"] = torch.stack([l.running_var[None] for l in layers]).clone()
            i += 1
    return p, buf


def stack_discriminators(ds: list[ToyDiscriminator]) -> Params:
    """T toy discriminators → m{i}w (T, in, out·pieces), m{i}b (T, 1, out·pieces) per maxout
    layer (the columns keep nn.Linear's order, so view(…, out, pieces) groups the pieces),
    then ow (T, F, 1), ob (T, 1, 1) for the output layer."""
    p: Params = {}
    for i, layers in enumerate(zip(*(d.body for d in ds))):
        assert all(isinstance(l, Maxout) for l in layers)
        p[f"m{i}w"] = torch.stack([l.linear.weight.detach().t() for l in layers]).contiguous()
        p[f"m{i}b"] = torch.stack([l.linear.bias.detach()[None] for l in layers]).contiguous()
    p["ow"] = torch.stack([d.out.weight.detach().t() for d in ds]).contiguous()
    p["ob"] = torch.stack([d.out.bias.detach()[None] for d in ds]).contiguous()
    return p


# ----------------------------------------------------------------------------- networks


def g_apply(p: Params, buf: Params, z: Tensor, depth: int, train: bool) -> Tensor:
    """Batched toy generator: z (T, N, Z) → (T, N, 2). In training mode batch norm uses each
    trial's batch statistics and updates its running ones (unbiased variance, as nn.BatchNorm1d)."""
    h = z
    for i in range(depth):
        h = torch.baddbmm(p[f"b{i}"], h, p[f"w{i}"])  # (T, N, F)
        if train:
            mean = h.mean(dim=1, keepdim=True)  # (T, 1, F)
            var = h.var(dim=1, unbiased=False, keepdim=True)
            with torch.no_grad():
                n = h.shape[1]
                buf[f"rm{i}"].lerp_(mean, BN_MOMENTUM)
                buf[f"rv{i}"].lerp_(var * n / (n - 1), BN_MOMENTUM)
        else:
            mean, var = buf[f"rm{i}"], buf[f"rv{i}"]
        h = F.relu((h - mean) * torch.rsqrt(var + BN_EPS) * p[f"g{i}"] + p[f"be{i}"])
    return torch.baddbmm(p[f"b{depth}"], h, p[f"w{depth}"])  # (T, N, 2)


def mbstd_batched(h: Tensor, group: int) -> Tensor:
    """MinibatchStdDev per trial (same grouping as ganforge.nn.layers): (T, M, F) → (T, M, F+1)."""
    t, m, f = h.shape
    g = min(group, m)
    std = (h.reshape(t, g, m // g, f).var(dim=1, unbiased=False) + 1e-8).sqrt()  # (T, M/G, F)
    std = std.mean(dim=2).repeat(1, g)  # (T, M): sample n gets its group n % (M/G)
    return torch.cat([h, std[..., None]], dim=2)


def d_apply(p: Params, x: Tensor, cfg: ToyConfig) -> Tensor:
    """Batched toy discriminator: x (T, N, 2) → logits (T, M), M = N / pack."""
    t, n, _ = x.shape
    h = x.reshape(t, n // cfg.pack, 2 * cfg.pack)  # PacGAN: P consecutive samples per input
    for i in range(cfg.d_depth):
        h = torch.baddbmm(p[f"m{i}b"], h, p[f"m{i}w"])  # (T, M, width · pieces)
        h = h.view(t, h.shape[1], cfg.d_width, cfg.d_pieces).amax(dim=3)  # (T, M, width)
    if cfg.mbstd_group > 0:
        h = mbstd_batched(h, cfg.mbstd_group)
    return torch.baddbmm(p["ob"], h, p["ow"]).squeeze(2)  # (T, M)


# ----------------------------------------------------------------------------- losses


def d_objective(p: Params, real: Tensor, fake: Tensor, cfg: ToyConfig, gens: list[torch.Generator]) -> Tensor:
    """Σ_t (D loss of trial t + its penalties): the gradient w.r.t. trial t's D is its own."""
    loss = LOSSES[cfg.loss]
    t = real.shape[0]
    # every loss is a mean over the batch, so T · mean over all (T, M) = Σ_t mean over trial t
    total = t * loss.d_loss(d_apply(p, real, cfg).flatten(), d_apply(p, fake, cfg).flatten())
    if cfg.gp_weight > 0:
        total = total + cfg.gp_weight * t * gradient_penalty_batched(p, real, fake, cfg, gens)
    if cfg.r1_gamma > 0:
        x = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(d_apply(p, x, cfg).sum(), x, create_graph=True)  # (T, N, 2)
        total = total + 0.5 * cfg.r1_gamma * t * grad.pow(2).sum(dim=2).mean()
    return total


def gradient_penalty_batched(p: Params, real: Tensor, fake: Tensor, cfg: ToyConfig, gens: list[torch.Generator]) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017) per trial, as ganforge.losses.gradient_penalty: α ~ U(0, 1)
    per packed sample (from each trial's generator); returns the mean over all (T, M)."""
    t, n, _ = real.shape
    m = n // cfg.pack
    alpha = torch.stack([torch.rand(m, 1, generator=g, dtype=real.dtype) for g in gens])  # (T, M, 1)
    alpha = alpha.repeat_interleave(cfg.pack, dim=1)  # (T, N, 1)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(d_apply(p, x_hat, cfg).sum(), x_hat, create_graph=True)  # (T, N, 2)
    norm_sq = grad.pow(2).sum(dim=2).reshape(t, m, cfg.pack).sum(dim=2)  # (T, M)
    return ((norm_sq + 1e-12).sqrt() - 1.0).pow(2).mean()


def mode_seeking_batched(x1: Tensor, x2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """Σ_t of toy.mode_seeking_loss for each trial: x (T, N, 2), z (T, N, Z)."""
    return sum(mode_seeking_loss(a, b, c, d) for a, b, c, d in zip(x1, x2, z1, z2))


# ----------------------------------------------------------------------------- unrolling


def adam_lookahead(p: Params, grads: tuple[Tensor, ...], state: dict, lr: float, cfg: ToyConfig, k: int) -> Params:
    """One differentiable Adam step of D from its optimiser state, as torch.optim.Adam computes it
    (bias-corrected moments; this is the k-th step after the real ones). `state` holds the
    moments m, v per name (updated functionally, returned in the new dict under "_m"/"_v")."""
    b1, b2 = cfg.beta1, cfg.beta2
    out: Params = {}
    for (name, w), g in zip(p.items(), grads):
        m = b1 * state["m"][name] + (1 - b1) * g
        v = b2 * state["v"][name] + (1 - b2) * g * g
        step = state["step"] + k
        denom = (v + 1e-24).sqrt() / math.sqrt(1 - b2**step) + 1e-8  # +1e-24: finite ∂√v at v = 0
        out[name] = w - (lr / (1 - b1**step)) * m / denom
        state["m"][name], state["v"][name] = m, v
    return out


def unrolled_d_params(p: Params, opt_d: torch.optim.Adam, real: Tensor, fake: Tensor, cfg: ToyConfig, lr: float, gens) -> Params:
    """θ_D after cfg.unroll_steps differentiable Adam steps on (real, fake), starting from the
    current parameters and Adam state; `fake` keeps its graph to G, so ∂θ_D^k/∂θ_G is kept."""
    names = list(p)
    st = [opt_d.state[p[nm]] for nm in names]
    state = {
        "m": {nm: s["exp_avg"] for nm, s in zip(names, st)},
        "v": {nm: s["exp_avg_sq"] for nm, s in zip(names, st)},
        "step": int(st[0]["step"]),
    }
    q = {nm: w.detach().requires_grad_(True) for nm, w in p.items()}  # G's gradient is all we need
    for k in range(1, cfg.unroll_steps + 1):
        loss = d_objective(q, real, fake, cfg, gens)
        grads = torch.autograd.grad(loss, list(q.values()), create_graph=True)
        q = adam_lookahead(q, grads, state, lr, cfg, k)
    return q


# ----------------------------------------------------------------------------- training


@dataclass
class Ensemble:
    """T trained generators, stacked: sample with `generate_ensemble`."""

    params: Params
    buffers: Params
    depth: int
    z_dim: int

    @property
    def trials(self) -> int:
        return next(iter(self.params.values())).shape[0]


def sample_real(bench: Benchmark, means: Tensor, n: int, gen: torch.Generator) -> Tensor:
    # Benchmark.sample, drawn in the same order from the same generator: (N, 2)
    k = torch.randint(len(bench.means), (n,), generator=gen)
    return means[k] + bench.sigma * torch.randn(n, 2, generator=gen)


def train_ensemble(
    bench: Benchmark,
    cfg: ToyConfig,
    seeds: list[int],
    monitor: Callable[[int, Ensemble], None] | None = None,
    monitor_every: int = 1000,
) -> Ensemble:
    """Train len(seeds) independent trials of `cfg` on `bench` at once; trial t equals
    toy.train_toy(bench, cfg, seeds[t]) up to floating-point rounding. `monitor(step, ensemble)`
    is called every `monitor_every` steps (learning curves; it must not touch the RNGs)."""
    gens, nets_g, nets_d = [], [], []
    for s in seeds:  # initialise each trial exactly as train_toy does
        torch.manual_seed(s)
        gens.append(torch.Generator().manual_seed(s))
        nets_g.append(toy_generator(cfg.z_dim, cfg.g_width, cfg.g_depth))
        nets_d.append(ToyDiscriminator(cfg.d_width, cfg.d_depth, cfg.d_pieces, cfg.pack, cfg.mbstd_group))
    pg, buf = stack_generators(nets_g)
    pd = stack_discriminators(nets_d)
    for v in (*pg.values(), *pd.values()):
        v.requires_grad_(True)
    opt_g = torch.optim.Adam(list(pg.values()), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(list(pd.values()), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    loss = LOSSES[cfg.loss]
    means = bench.means_tensor()
    n, t = cfg.batch_size * cfg.pack, len(seeds)

    def draw_z() -> Tensor:
        return torch.stack([torch.randn(n, cfg.z_dim, generator=g) for g in gens])  # (T, N, Z)

    for step in range(cfg.steps):
        f = lr_factor(step, cfg.steps, cfg.lr_decay_frac)
        opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"] = cfg.lr_g * f, cfg.lr_d * f
        for _ in range(cfg.n_critic):
            real, zs = [], []
            for g in gens:  # per trial: real batch, then latents (train_toy's order)
                real.append(sample_real(bench, means, n, g))
                zs.append(torch.randn(n, cfg.z_dim, generator=g))
            real = torch.stack(real)  # (T, N, 2)
            with torch.no_grad():
                fake = g_apply(pg, buf, torch.stack(zs), cfg.g_depth, train=True)  # (T, N, 2)
            d_loss = d_objective(pd, real, fake, cfg, gens)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

        z = draw_z()
        fake = g_apply(pg, buf, z, cfg.g_depth, train=True)
        d_params = {k: v.detach() for k, v in pd.items()}  # G's step needs no gradient for D
        if cfg.unroll_steps > 0:
            d_params = unrolled_d_params(pd, opt_d, real, fake, cfg, cfg.lr_d * f, gens)
        g_loss = t * loss.g_loss(d_apply(d_params, fake, cfg).flatten())
        if cfg.msgan_weight > 0:  # a second batch of latents, in its own batch-norm batch
            z2 = draw_z()
            fake2 = g_apply(pg, buf, z2, cfg.g_depth, train=True)
            g_loss = g_loss + cfg.msgan_weight * mode_seeking_batched(fake, fake2, z, z2)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if monitor is not None and (step + 1) % monitor_every == 0 and step + 1 < cfg.steps:
            monitor(step + 1, Ensemble({k: v.detach() for k, v in pg.items()}, buf, cfg.g_depth, cfg.z_dim))
    return Ensemble({k: v.detach() for k, v in pg.items()}, buf, cfg.g_depth, cfg.z_dim)


@torch.no_grad()
def generate_ensemble(ens: Ensemble, n: int, seeds: list[int]) -> Tensor:
    """n samples per trial (T, N, 2), batch norm in eval mode; trial t's latents come from a
    generator seeded with seeds[t] (as toy.generate)."""
    z = torch.stack([torch.randn(n, ens.z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])
    return g_apply(ens.params, ens.buffers, z, ens.depth, train=False)
