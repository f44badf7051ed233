"""Adversarial losses, discriminator penalties and generator diversity terms."""

from ganforge.losses.adversarial import LOSSES, AdversarialLoss, logit_to_prob
from ganforge.losses.diversity import feature_matching_loss, mode_seeking_halves, mode_seeking_loss
from ganforge.losses.penalties import gradient_penalty, r1_penalty

__all__ = ["LOSSES", "AdversarialLoss", "feature_matching_loss", "gradient_penalty", "logit_to_prob",
           "mode_seeking_halves", "mode_seeking_loss", "r1_penalty"]
