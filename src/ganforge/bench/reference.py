"""The eager fp32 baseline: a GAN iteration written the way a user following the PyTorch DCGAN
example (pytorch/examples, dcgan/main.py) would write it, with none of ganforge's training
machinery (no Batcher, Objective, guard, statistics, EMA, autocast or channels_last).

Only the networks and the loss functions come from ganforge, so both paths do the same maths
and the benchmark's ratio measures the training machinery and speed settings, not the model.
"""

from __future__ import annotations

from typing import Callable

import torch

from ganforge.config import RunConfig
from ganforge.losses import LOSSES, gradient_penalty, r1_penalty
from ganforge.models import build_discriminator, build_generator


def make_reference_iteration(cfg: RunConfig, batch: int, device: torch.device) -> Callable[[], None]:
    """Return ``iterate()``: one G step of ``cfg`` in plain eager fp32 PyTorch on random data.

    alternating: n_critic D steps on (real, G(z).detach()), then one G step on fresh noise.
    simultaneous (the Keras tutorial): one G forward, both losses, two autograd.grad calls."""
    m, lo, o, t = cfg.model, cfg.loss, cfg.optim, cfg.train
    netG, netD = build_generator(m).to(device), build_discriminator(m).to(device)
    if o.optimizer == "rmsprop":
        optG = torch.optim.RMSprop(netG.parameters(), lr=o.lr_g, eps=o.eps)
        optD = torch.optim.RMSprop(netD.parameters(), lr=o.lr_d, eps=o.eps)
    else:
        optG = torch.optim.Adam(netG.parameters(), lr=o.lr_g, betas=(o.beta1_g, o.beta2_g), eps=o.eps)
        optD = torch.optim.Adam(netD.parameters(), lr=o.lr_d, betas=(o.beta1_d, o.beta2_d), eps=o.eps)
    loss = LOSSES[lo.kind]
    # Random "real" data, resident on the device: (B, C, R, R) in [-1, 1]; labels (B,) if conditional.
    real = torch.rand(batch, m.channels, m.resolution, m.resolution, device=device) * 2 - 1
    y = torch.randint(m.num_classes, (batch,), device=device) if m.num_classes else None
    d_steps = 0

    def d_step() -> None:
        nonlocal d_steps
        z = torch.randn(batch, m.z_dim, device=device)  # (B, z_dim)
        fake = netG(z, y)
        netD.zero_grad()
        errD = loss.d_loss(netD(real, y), netD(fake.detach(), y))  # (B,) logits each -> scalar
        if lo.gp_weight > 0 and d_steps % lo.reg_every == 0:
            errD = errD + lo.gp_weight * lo.reg_every * gradient_penalty(netD, real, fake, y, pack=m.pack)
        if lo.r1_gamma > 0 and d_steps % lo.reg_every == 0:
            errD = errD + 0.5 * lo.r1_gamma * lo.reg_every * r1_penalty(netD, real, y)
        errD.backward()
        optD.step()
        d_steps += 1
        if lo.clip_value > 0:
            with torch.no_grad():
                for p in netD.parameters():
                    p.clamp_(-lo.clip_value, lo.clip_value)

    def g_step() -> None:
        z = torch.randn(batch, m.z_dim, device=device)
        netG.zero_grad()
        errG = loss.g_loss(netD(netG(z, y), y))
        errG.backward()  # also fills D's .grad; the next D step zeroes it, as in the example
        optG.step()

    def alternating() -> None:
        for _ in range(t.n_critic):
            d_step()
        g_step()

    def simultaneous() -> None:
        z = torch.randn(batch, m.z_dim, device=device)
        fake = netG(z, y)
        real_out, fake_out = netD(real, y), netD(fake, y)
        d_params, g_params = list(netD.parameters()), list(netG.parameters())
        grads_d = torch.autograd.grad(loss.d_loss(real_out, fake_out), d_params, retain_graph=True)
        grads_g = torch.autograd.grad(loss.g_loss(fake_out), g_params)
        for p, g in zip(d_params + g_params, grads_d + grads_g):
            p.grad = g
        optD.step()
        optG.step()

    netG.train()
    netD.train()
    return simultaneous if t.update == "simultaneous" else alternating
