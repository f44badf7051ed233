"""Adversarial losses as small pure functions of D's raw logits.

Every function takes logits of shape (N,) and returns a scalar tensor (the batch mean).
``d_*`` is minimised by the discriminator, ``g_*`` by the generator. softplus is the
numerically stable form of the log-sigmoid terms: -log σ(x) = softplus(-x) and
-log(1 - σ(x)) = softplus(x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


# Goodfellow et al. 2014, "Generative Adversarial Nets": D maximises
# log D(x) + log(1 - D(G(z))), i.e. minimises binary cross-entropy.
def d_bce(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


# Goodfellow et al. 2014, the original minimax G objective: minimise log(1 - D(G(z))).
# It saturates (vanishing gradient) when D confidently rejects fakes.
def g_minimax(fake: Tensor) -> Tensor:
    return -F.softplus(fake).mean()


# Goodfellow et al. 2014, the "non-saturating" heuristic: maximise log D(G(z)).
def g_nonsaturating(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()


# Mao et al. 2017, "Least Squares GANs", with a=0 (fake), b=1 (real), c=1 (G's target);
# the 1/2 factors follow the paper's eq. (2).
def d_lsgan(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def g_lsgan(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1.0) ** 2).mean()


# Arjovsky et al. 2017, "Wasserstein GAN": the critic estimates E[D(x)] - E[D(G(z))];
# it needs a Lipschitz constraint (weight clipping, or the gradient penalty of WGAN-GP).
def d_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def g_wasserstein(fake: Tensor) -> Tensor:
    return -fake.mean()


# Lim & Ye 2017 "Geometric GAN"; used by SNGAN (Miyato et al. 2018) and SAGAN (Zhang et al. 2019).
def d_hinge(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


# G's hinge loss is the Wasserstein one: -E[D(G(z))].
g_hinge = g_wasserstein


@dataclass(frozen=True)
class AdversarialLoss:
    """A named pair (d_loss, g_loss)."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]


LOSSES: dict[str, AdversarialLoss] = {
    "minimax": AdversarialLoss("minimax", d_bce, g_minimax),
    "ns": AdversarialLoss("ns", d_bce, g_nonsaturating),
    "lsgan": AdversarialLoss("lsgan", d_lsgan, g_lsgan),
    "wgan": AdversarialLoss("wgan", d_wasserstein, g_wasserstein),
    "hinge": AdversarialLoss("hinge", d_hinge, g_hinge),
}


def logit_to_prob(logits: Tensor, kind: str) -> Tensor:
    """D(x) as a number users read in logs: σ(logit) for BCE-style losses, the raw score otherwise."""
    return torch.sigmoid(logits) if kind in ("minimax", "ns") else logits
