"""Each loss against hand-computed values; penalties against direct autograd computations."""

import math

import pytest
import torch

from ganforge.losses import LOSSES, gradient_penalty, r1_penalty
from ganforge.losses.adversarial import d_bce, g_minimax, g_nonsaturating

REAL = [1.0, -2.0]
FAKE = [0.5, -1.0]


def sig(x):
    return 1 / (1 + math.exp(-x))


def mean(xs):
    return sum(xs) / len(xs)


# Expected values written from the papers' formulas with plain math, not with the code's softplus.
EXPECTED = {
    "minimax": (
        mean([-math.log(sig(r)) for r in REAL]) + mean([-math.log(1 - sig(f)) for f in FAKE]),
        mean([math.log(1 - sig(f)) for f in FAKE]),
    ),
    "ns": (
        mean([-math.log(sig(r)) for r in REAL]) + mean([-math.log(1 - sig(f)) for f in FAKE]),
        mean([-math.log(sig(f)) for f in FAKE]),
    ),
    "lsgan": (
        0.5 * mean([(r - 1) ** 2 for r in REAL]) + 0.5 * mean([f**2 for f in FAKE]),
        0.5 * mean([(f - 1) ** 2 for f in FAKE]),
    ),
    "wgan": (mean(FAKE) - mean(REAL), -mean(FAKE)),
    "hinge": (
        mean([max(0, 1 - r) for r in REAL]) + mean([max(0, 1 + f) for f in FAKE]),
        -mean(FAKE),
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_values(name):
    loss = LOSSES[name]
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    d_expected, g_expected = EXPECTED[name]
    assert loss.d_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-12, abs=1e-12)
    assert loss.g_loss(fake).item() == pytest.approx(g_expected, rel=1e-12, abs=1e-12)


def test_hand_numbers():
    # A few numbers computed by hand, so a wrong formula in EXPECTED would also be caught.
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert LOSSES["hinge"].d_loss(real, fake).item() == pytest.approx((0 + 3) / 2 + (1.5 + 0) / 2)
    assert LOSSES["wgan"].d_loss(real, fake).item() == pytest.approx(-0.25 - (-0.5))
    assert LOSSES["lsgan"].g_loss(fake).item() == pytest.approx(0.5 * (0.25 + 4) / 2)
    assert d_bce(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(2 * math.log(2))


def test_bce_losses_are_stable_for_extreme_logits():
    big = torch.tensor([80.0, -80.0])
    for fn in (g_minimax, g_nonsaturating):
        assert torch.isfinite(fn(big))
    assert torch.isfinite(d_bce(big, -big))
    assert d_bce(torch.tensor([100.0]), torch.tensor([-100.0])).item() == pytest.approx(0.0, abs=1e-30)


def test_nonsaturating_gradient_does_not_vanish():
    # When D rejects fakes confidently (logit -10), minimax G's gradient vanishes, NS's does not.
    f = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(g_minimax(f), f)
    f2 = torch.tensor([-10.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(g_nonsaturating(f2), f2)
    assert abs(g_mm.item()) < 1e-4 and abs(g_ns.item()) > 0.99


class Quadratic(torch.nn.Module):
    """D(x) = sum(w * x²) + b·sum(x): a non-linear critic whose gradient is 2w·x + b."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64))

    def forward(self, x, y=None):
        return (self.w * x**2).flatten(1).sum(1) + 0.3 * x.flatten(1).sum(1)


def test_gradient_penalty_matches_direct_autograd():
    D = Quadratic()
    g = torch.Generator().manual_seed(1)
    real = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(5, 2, 3, 3, generator=g, dtype=torch.float64)
    torch.manual_seed(7)
    gp = gradient_penalty(D, real, fake)
    torch.manual_seed(7)  # same α draw as inside gradient_penalty
    alpha = torch.rand(5, 1, 1, 1)
    expected = 0.0
    for i in range(5):
        xi = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(xi).sum(), xi)
        closed_form = 2 * D.w[0] * xi[0].detach() + 0.3  # analytic gradient of the quadratic critic
        torch.testing.assert_close(grad[0], closed_form)
        expected += (grad.norm() - 1) ** 2
    assert gp.item() == pytest.approx((expected / 5).item(), rel=1e-6)
    # the penalty must be differentiable w.r.t. D's parameters (double backward)
    (gw,) = torch.autograd.grad(gp, D.w)
    assert torch.isfinite(gw).all() and gw.abs().sum() > 0


def test_gradient_penalty_of_linear_critic():
    w = torch.full((1, 1, 2, 2), 0.25)  # |∇D| = |w| = 0.5 everywhere -> GP = (0.5 - 1)² = 0.25
    D = lambda x, y=None: (w * x).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    assert gradient_penalty(D, real, fake).item() == pytest.approx(0.25, rel=1e-5)
    # packed (PacGAN m=2): each packed sample has gradient norm sqrt(2)·0.5
    assert gradient_penalty(D, real, fake, pack=2).item() == pytest.approx((math.sqrt(2) * 0.5 - 1) ** 2, rel=1e-5)


def test_r1_penalty_matches_direct_autograd():
    D = Quadratic()
    real = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    expected = torch.stack([(2 * D.w[0] * real[i] + 0.3).pow(2).sum() for i in range(4)]).mean()
    assert r1_penalty(D, real).item() == pytest.approx(expected.item(), rel=1e-10)


def test_penalties_pass_labels():
    seen = {}

    def D(x, y=None):
        seen["y"] = y
        return x.flatten(1).sum(1)

    y = torch.tensor([1, 2])
    r1_penalty(D, torch.randn(2, 1, 2, 2), y)
    assert seen["y"] is y
