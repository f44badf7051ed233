"""Adversarial losses and discriminator penalties."""

from ganforge.losses.adversarial import LOSSES, AdversarialLoss, logit_to_prob
from ganforge.losses.penalties import gradient_penalty, r1_penalty

__all__ = ["LOSSES", "AdversarialLoss", "gradient_penalty", "logit_to_prob", "r1_penalty"]
