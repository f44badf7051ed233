"""Unrolled GAN in the image loop (train.unroll_steps, training/unroll.py): the functional Adam
step equals torch.optim.Adam, the G gradient flows through the look-ahead (checked against
finite differences), k = 0 is the plain loop, and D's real state is left untouched."""

import copy

import pytest
import torch
from torch import nn

from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.losses import LOSSES
from ganforge.training import train
from ganforge.training.logger import read_metrics
from ganforge.training.unroll import adam_step, unrolled_discriminator


class TinyD(nn.Module):
    """(N, 1, 2, 2) images → (N,) logits, with batch norm (its buffers must not move)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.out = nn.Linear(3, 1)

    def forward(self, x, y=None):
        return self.out(torch.tanh(self.bn(self.lin(x.flatten(1))))).squeeze(1)


def adam_with_history(D, real, fake, steps=2, lr=0.05):
    """A torch Adam that has taken `steps` real D steps (so the look-ahead continues a state)."""
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.9), eps=1e-8)
    for _ in range(steps):
        opt.zero_grad()
        LOSSES["ns"].d_loss(D(real), D(fake)).backward()
        opt.step()
    return opt


def test_functional_adam_equals_torch_adam():
    torch.manual_seed(0)
    D = TinyD().double()
    real, fake = torch.randn(8, 1, 2, 2, dtype=torch.float64), torch.randn(8, 1, 2, 2, dtype=torch.float64)
    opt = adam_with_history(D, real, fake)
    named = dict(D.named_parameters())
    m = {n: opt.state[p]["exp_avg"].clone() for n, p in named.items()}
    v = {n: opt.state[p]["exp_avg_sq"].clone() for n, p in named.items()}
    step = int(opt.state[named["lin.weight"]]["step"])
    D_ref = copy.deepcopy(D)
    opt.zero_grad()
    LOSSES["ns"].d_loss(D(real), D(fake)).backward()
    grads = tuple(p.grad.clone() for p in named.values())
    ours, _, _ = adam_step({n: p.detach() for n, p in named.items()}, grads, m, v, step + 1, lr=0.05,
                           betas=(0.5, 0.9), eps=1e-8)
    opt.step()
    for n, p in D.named_parameters():
        torch.testing.assert_close(ours[n], p.detach(), rtol=1e-10, atol=1e-12)
    assert D_ref is not D


def unrolled_g_loss(w, D, opt, real, z, k):
    fake = (z @ w).view(-1, 1, 2, 2)  # a linear "G": (N, 3) @ (3, 4)
    D_k = unrolled_discriminator(D, opt, LOSSES["ns"], real, fake, None, None, k)
    return LOSSES["ns"].g_loss(D_k(fake, None))


@pytest.mark.parametrize("k", [1, 3])
def test_g_gradient_through_the_lookahead_matches_finite_differences(k):
    torch.manual_seed(1)
    D = TinyD().double()
    real, z = torch.randn(8, 1, 2, 2, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    opt = adam_with_history(D, real, (z @ w).detach().view(-1, 1, 2, 2))
    state_before = {n: b.clone() for n, b in D.named_buffers()}
    params_before = {n: p.detach().clone() for n, p in D.named_parameters()}
    (grad,) = torch.autograd.grad(unrolled_g_loss(w, D, opt, real, z, k), w)
    h = 1e-6
    num = torch.zeros_like(w)
    with torch.no_grad():
        for i in range(3):
            for j in range(4):
                wp, wm = w.detach().clone(), w.detach().clone()
                wp[i, j] += h
                wm[i, j] -= h
                with torch.enable_grad():
                    num[i, j] = (unrolled_g_loss(wp, D, opt, real, z, k) - unrolled_g_loss(wm, D, opt, real, z, k)) / (2 * h)
    torch.testing.assert_close(grad, num, rtol=1e-5, atol=1e-7)
    # the look-ahead differs from the plain G gradient (D's reaction is part of it)
    (plain,) = torch.autograd.grad(unrolled_g_loss(w, D, opt, real, z, 0), w)
    assert (plain - grad).abs().max() > 1e-6
    # and D's real parameters, buffers (BN statistics) and Adam state are untouched
    for n, b in D.named_buffers():
        assert torch.equal(b, state_before[n])
    for n, p in D.named_parameters():
        assert torch.equal(p, params_before[n])


def mlp_cfg(*extra):
    sets = ["data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=8",
            "model.g_width=32", "model.d_width=32", "train.total_steps=4", "train.batch_size=16",
            "train.progress=false", "train.log_every=1", "train.sample_every=0", "checkpoint.every_steps=0",
            "train.sample_grid=4", "train.threads=1"]
    return apply_overrides(RunConfig(), sets + list(extra))


def losses(run_dir):
    return [(r["d_loss"], r["g_loss"]) for r in read_metrics(run_dir / "metrics.jsonl") if "g_loss" in r]


def test_unroll_zero_is_the_plain_loop_and_k_changes_training(tmp_path):
    data = load_images("digits", resolution=8, channels=1)
    plain = losses(train(mlp_cfg(), data=data, out=tmp_path / "a"))
    zero = losses(train(mlp_cfg("train.unroll_steps=0"), data=data, out=tmp_path / "b"))
    assert plain == zero
    unrolled = losses(train(mlp_cfg("train.unroll_steps=2"), data=data, out=tmp_path / "c"))
    assert len(unrolled) == 4 and all(map(lambda r: all(map(torch.isfinite, map(torch.tensor, r))), unrolled))
    assert unrolled[0][0] == plain[0][0]  # the first D step is the same; G's step is not
    assert unrolled[0][1] != plain[0][1]


def test_unroll_with_spectral_norm_d_trains(tmp_path):
    data = load_images("digits", resolution=8, channels=1)
    run = train(mlp_cfg("train.unroll_steps=2", "model.d_spectral_norm=true", "loss.kind=hinge"), data=data,
                out=tmp_path / "sn")
    assert len(losses(run)) == 4


@pytest.mark.parametrize("sets, match", [
    (["train.unroll_steps=-1"], "train.unroll_steps=-1"),
    (["train.unroll_steps=2", "train.update=simultaneous"], "needs train.update=alternating"),
    (["train.unroll_steps=2", "optim.optimizer=rmsprop"], "unrolls Adam steps"),
    (["train.unroll_steps=2", "perf.compile=true"], "perf.compile=false"),
])
def test_bad_settings_are_usage_errors(sets, match):
    with pytest.raises(UsageError, match=match):
        apply_overrides(RunConfig(), sets)


def test_unroll_with_a_batch_norm_d_warns(tmp_path, caplog):
    # measured to collapse on Stacked MNIST (docs/MODE_COLLAPSE.md): the run goes on, with one warning
    data = load_images("digits", resolution=16, channels=1)
    dcgan = ["model.arch=dcgan", "model.resolution=16", "model.g_width=8", "model.d_width=8", "train.total_steps=1"]
    with caplog.at_level("WARNING", logger="ganforge.train"):
        train(mlp_cfg("train.unroll_steps=1", *dcgan), data=data, out=tmp_path / "bn")
    assert sum("model.d_batchnorm=false" in r.getMessage() for r in caplog.records) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="ganforge.train"):
        train(mlp_cfg("train.unroll_steps=1", *dcgan, "model.d_batchnorm=false"), data=data, out=tmp_path / "plain")
    assert not any("d_batchnorm" in r.getMessage() for r in caplog.records)
