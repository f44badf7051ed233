"""A GAN family as an object: an adversarial loss, optional penalties on D, optional weight
clipping and optional differentiable augmentation. The training loop calls
``discriminator_loss`` and ``generator_loss``; it never branches on the family."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.config import RunConfig
from ganforge.errors import UsageError
from ganforge.losses import (
    LOSSES, AdversarialLoss, feature_matching_loss, gradient_penalty, logit_to_prob, mode_seeking_halves, r1_penalty,
)
from ganforge.training.augment import make_augment

log = logging.getLogger("ganforge.train")


def check_update_supports(cfg: RunConfig) -> None:
    """UsageError for a setting that train.update=simultaneous would silently drop.

    The simultaneous (Keras) step takes both losses from one shared forward of real and fake
    (training/step.py): it applies the adversarial loss, MSGAN and weight clipping, but not the
    penalties nor DiffAugment, which only `discriminator_loss` / `generator_loss` add. WGAN-GP run
    that way is an unconstrained WGAN."""
    if cfg.train.update != "simultaneous":
        return
    lo = cfg.loss
    dropped = [f"loss.gp_weight={lo.gp_weight}" if lo.gp_weight > 0 else "",
               f"loss.r1_gamma={lo.r1_gamma}" if lo.r1_gamma > 0 else "",
               f"train.augment={cfg.train.augment!r}" if cfg.train.augment.strip(" ,") else ""]
    dropped = [d for d in dropped if d]
    if dropped:
        raise UsageError(f"{' and '.join(dropped)} would be ignored by train.update='simultaneous' (its shared "
                         "forward applies only the adversarial loss, MSGAN and clipping): use train.update=alternating, "
                         "or turn the setting off")


def objective_notes(cfg: RunConfig) -> list[str]:
    """Warnings for an objective that trains but departs from its method: the Wasserstein critic maximises
    E[D(x)] − E[D(G(z))], which is unbounded without a Lipschitz constraint (Arjovsky et al. 2017; measured:
    wgan-mnist with loss.clip_value=0 at 16 px, D(x) rose 1.8 → 3.2 → 4.0 over 60 steps), and WGAN-GP's
    per-sample penalty assumes a critic without batch norm."""
    lo, m = cfg.loss, cfg.model
    notes = []
    if lo.kind == "wgan" and not (lo.clip_value > 0 or lo.gp_weight > 0 or lo.r1_gamma > 0 or m.d_spectral_norm):
        notes.append("loss.kind='wgan' without a Lipschitz constraint or penalty on the critic (loss.clip_value, "
                     "loss.gp_weight, loss.r1_gamma and model.d_spectral_norm are all off): its scores grow without "
                     "bound; set loss.clip_value=0.01 (as wgan-mnist) or loss.gp_weight=10 (as wgan-gp-mnist)")
    if lo.gp_weight > 0 and m.arch == "dcgan" and m.d_batchnorm:  # the only D with batch norm
        # Gulrajani et al. 2017, section 4: the penalty constrains each input's gradient on its own, which batch
        # norm (one sample's score depends on its batch) makes invalid; the paper drops it from the critic.
        notes.append(f"loss.gp_weight={lo.gp_weight} with batch norm in D (model.d_batchnorm=true): the gradient "
                     "penalty is per sample, and WGAN-GP's critic has no batch norm; set model.d_batchnorm=false "
                     "(as wgan-gp-mnist)")
    return notes


@dataclass
class Objective:
    loss: AdversarialLoss
    gp_weight: float = 0.0  # WGAN-GP λ
    r1_gamma: float = 0.0  # R1 γ (loss adds γ/2 · R1)
    reg_every: int = 1  # lazy regularisation interval (penalty scaled by it to keep its strength)
    clip_value: float = 0.0  # WGAN weight clipping bound
    augment: Callable[[Tensor], Tensor] | None = None  # DiffAugment, applied to real and fake alike
    pack: int = 1  # PacGAN degree, for the per-packed-sample gradient penalty
    msgan_weight: float = 0.0  # MSGAN λ: G's loss adds λ / (r + eps), r = mean|ΔG(z)| / mean|Δz| over batch halves
    fm_weight: float = 0.0  # feature matching λ: G's loss adds λ · mean((E h(real) − E h(fake))²), h = D.embed
    # AC-GAN λ (0 = D has no class head): D's loss adds λ·CE(D's class logits of real, y_real), G's
    # λ·CE(of fake, y_fake). ac_on_fake: D's also adds λ·CE(of fake, y_fake) (Odena et al.).
    ac_weight: float = 0.0
    ac_on_fake: bool = False

    @classmethod
    def from_config(cls, cfg: RunConfig) -> "Objective":
        check_update_supports(cfg)
        for note in objective_notes(cfg):
            log.warning("%s", note)
        lo = cfg.loss
        return cls(
            loss=LOSSES[lo.kind],
            gp_weight=lo.gp_weight,
            r1_gamma=lo.r1_gamma,
            reg_every=lo.reg_every,
            clip_value=lo.clip_value,
            augment=make_augment(cfg.train.augment),
            pack=cfg.model.pack,
            msgan_weight=lo.msgan_weight,
            fm_weight=lo.fm_weight,
            ac_weight=lo.ac_weight if "ac" in cfg.model.d_cond else 0.0,
            ac_on_fake=lo.ac_on_fake,
        )

    def _aug(self, x: Tensor) -> Tensor:
        return self.augment(x) if self.augment is not None else x

    def discriminator_loss(
        self, D: nn.Module, real: Tensor, fake: Tensor, y_real: Tensor | None, y_fake: Tensor | None, d_step: int,
        *, concat: bool = False, D_eager: nn.Module | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """real, fake: (B, C, H, W); fake is detached from G. Returns the scalar loss and
        detached statistics (no host sync).

        concat: one D forward over the 2B images (real first) instead of two; identical logits
        for a D without batch statistics, half the launches. D_eager: the uncompiled D, for the
        penalties (their double backward cannot run through a compiled graph); default D."""
        real_a, fake_a = self._aug(real), self._aug(fake)
        if concat:
            y_both = torch.cat([y_real, y_fake]) if y_real is not None else None
            both, both_cls = self._judge(D, torch.cat([real_a, fake_a]), y_both)
            real_logits, fake_logits = both.chunk(2)  # 2 x (B/pack,)
            real_cls, fake_cls = (None, None) if both_cls is None else both_cls.chunk(2)  # 2 x (B, K)
        else:
            real_logits, real_cls = self._judge(D, real_a, y_real)  # (B/pack,), (B, K) | None
            fake_logits, fake_cls = self._judge(D, fake_a, y_fake)
        loss = self.loss.d_loss(real_logits, fake_logits)
        D = D_eager if D_eager is not None else D
        stats = {"d_adv": loss.detach(), **self.d_outputs(real_logits, fake_logits)}
        if real_cls is not None:
            ac = F.cross_entropy(real_cls, y_real)
            stats["ac_real"] = ac.detach()
            if self.ac_on_fake:
                ac_fake = F.cross_entropy(fake_cls, y_fake)
                stats["ac_fake_d"] = ac_fake.detach()
                ac = ac + ac_fake
            loss = loss + self.ac_weight * ac
        lazy = d_step % self.reg_every == 0
        # GP and R1 are taken at the augmented images, i.e. on the distribution D is trained to judge.
        # (The DiffAugment/ADA StyleGAN2 code runs the augmentation inside D and differentiates w.r.t.
        # the un-augmented reals: its R1 sees the augmentation's Jacobian too, e.g. a contrast factor.)
        if self.gp_weight > 0 and lazy:
            with torch.autocast(real.device.type, enabled=False):
                gp = gradient_penalty(D, real_a, fake_a, y_real, pack=self.pack)
            loss = loss + self.gp_weight * self.reg_every * gp
            stats["gp"] = gp.detach()
        if self.r1_gamma > 0 and lazy:
            with torch.autocast(real.device.type, enabled=False):
                r1 = r1_penalty(D, real_a, y_real, pack=self.pack)
            loss = loss + 0.5 * self.r1_gamma * self.reg_every * r1
            stats["r1"] = r1.detach()
        return loss, stats

    def _judge(self, D: nn.Module, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """x (N, C, H, W) -> D's logits (N/pack,) in fp32 and, with AC-GAN, its class logits (N, K)
        in fp32 from the same forward (else None)."""
        if not self.ac_weight:
            return D(x, y).float(), None
        logits, classes = D(x, y, with_classes=True)
        return logits.float(), classes.float()

    def d_outputs(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        """Mean D(x) and D(G(z)) for the log: probabilities for BCE losses, raw scores otherwise."""
        kind = self.loss.name
        return {"d_real": logit_to_prob(real_logits.detach(), kind).mean(), "d_fake": logit_to_prob(fake_logits.detach(), kind).mean()}

    def generator_loss(self, D: nn.Module, fake: Tensor, y_fake: Tensor | None, z: Tensor | None = None,
                       *, real: Tensor | None = None, D_eager: nn.Module | None = None,
                       mean_over_ranks: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """fake: (B, C, H, W) from latents z: (B, Z) (z is needed only for MSGAN). Feature matching
        needs real: (B, C, H, W), the D step's last real batch, and D_eager, the uncompiled D whose
        `embed` and `head` it calls apart (default D); in data-parallel runs, mean_over_ranks makes its
        batch means global (see feature_matching_loss)."""
        fake_a = self._aug(fake)
        if self.fm_weight == 0:
            logits, classes = self._judge(D, fake_a, y_fake)
            loss = self.loss.g_loss(logits)
            return self.add_diversity(*self._add_ac(loss, {"g_adv": loss.detach()}, classes, y_fake), fake, z)
        D = D_eager if D_eager is not None else D
        with torch.no_grad():
            h_real = D.embed(self._aug(real))  # (B/pack, F); D is frozen in G's step
        h_fake = D.embed(fake_a)  # (B/pack, F), with gradient to G
        adv = self.loss.g_loss(D.head(h_fake, y_fake).float())
        fm = feature_matching_loss(h_fake, h_real, mean_over_ranks)
        classes = D.classifier(h_fake).float() if self.ac_weight else None  # (B, K)
        loss, stats = self._add_ac(adv + self.fm_weight * fm, {"g_adv": adv.detach(), "fm": fm.detach()}, classes, y_fake)
        return self.add_diversity(loss, stats, fake, z)

    def _add_ac(self, loss: Tensor, stats: dict[str, Tensor], classes: Tensor | None,
                y_fake: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss plus λ·CE(D's class logits of the fakes (B, K), the asked labels), for AC-GAN."""
        if classes is None:
            return loss, stats
        ac = F.cross_entropy(classes, y_fake)
        return loss + self.ac_weight * ac, {**stats, "ac_fake": ac.detach()}

    def add_diversity(self, loss: Tensor, stats: dict[str, Tensor], fake: Tensor,
                      z: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """G's loss plus the MSGAN term (on the un-augmented samples), if enabled."""
        if self.msgan_weight > 0:
            ms = mode_seeking_halves(fake, z)
            loss = loss + self.msgan_weight * ms
            stats["ms"] = ms.detach()
        return loss, stats

    @staticmethod
    def paired_labels(y_fake: Tensor | None, msgan: bool) -> Tensor | None:
        """MSGAN compares two latents under one condition: the second half of the fake labels
        repeats the first (B even), so sample i and i + B/2 share a class."""
        if y_fake is None or not msgan:
            return y_fake
        half = y_fake.shape[0] // 2
        return y_fake[:half].repeat(2)

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        if self.clip_value > 0:  # Arjovsky et al. 2017: keep the critic K-Lipschitz by clipping
            for p in D.parameters():
                p.clamp_(-self.clip_value, self.clip_value)
