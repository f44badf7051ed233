"""Named starting points, written in Python: each is a RunConfig plus a one-line description.

Hyper-parameters follow the paper (or tutorial) each preset is named after; where a value
was chosen for this project (CPU-friendly widths, step counts) the comment says so.
"""

from __future__ import annotations

from dataclasses import replace

from ganforge.config import (
    CheckpointConfig, DataConfig, EvalConfig, LossConfig, OptimConfig, PerfConfig, RunConfig, TrainConfig, validate,
)
from ganforge.errors import UsageError
from ganforge.models.config import ModelConfig

MNIST = DataConfig(source="mnist5k")
# Presets for datasets that ganforge cannot embed: the user gives --data.
NEEDS_DATA = ""


def _dcgan28(**kw) -> ModelConfig:
    """A Radford-style DCGAN at MNIST's native 28 px (7 -> 14 -> 28)."""
    base = dict(arch="dcgan", resolution=28, channels=1, z_dim=64, g_width=32, d_width=32)
    return ModelConfig(**{**base, **kw})


PRESETS: dict[str, RunConfig] = {
    "mlp-mnist": RunConfig(
        description="The simplest GAN (Goodfellow et al. 2014): dense G and D on MNIST digits, for learners.",
        data=MNIST,
        model=ModelConfig(arch="mlp", resolution=28, channels=1, z_dim=64, g_width=256, d_width=256),
        loss=LossConfig(kind="ns"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1_g=0.5, beta1_d=0.5),
        train=TrainConfig(total_steps=5000, batch_size=64, ema_decay=0.999),
    ),
    "keras-dcgan-mnist": RunConfig(
        description="The TensorFlow/Keras DCGAN tutorial, exactly: same nets, Adam 1e-4, batch 256, simultaneous updates.",
        data=MNIST,
        model=ModelConfig(arch="keras-dcgan", resolution=28, channels=1, z_dim=100, g_width=64, d_width=64, d_dropout=0.3),
        loss=LossConfig(kind="ns"),
        # Keras Adam defaults: β1 0.9, β2 0.999, ε 1e-7.
        optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, beta1_g=0.9, beta1_d=0.9, eps=1e-7),
        # The tutorial trains 50 epochs; 50 epochs of the 5000 embedded digits at batch 256 ≈ 1000 steps.
        train=TrainConfig(total_steps=1000, batch_size=256, update="simultaneous", sample_every=200, log_every=20),
    ),
    "dcgan-mnist": RunConfig(
        description="A DCGAN sized to draw clear digits in a few CPU minutes (the demo).",
        data=MNIST,
        model=_dcgan28(),
        loss=LossConfig(kind="ns"),
        # Chosen with the mnist-clf evaluator (docs/BENCHMARKS.md): at equal steps lr 1e-3 beat
        # 2e-4 and 5e-4, and a linear decay over the second half sharpens the final samples.
        optim=OptimConfig(lr_g=1e-3, lr_d=1e-3, beta1_g=0.5, beta1_d=0.5, schedule="linear", decay_start_step=4000),
        train=TrainConfig(total_steps=8000, batch_size=64, ema_decay=0.999, sample_every=1000, log_every=100),
        # FID / precision-recall / class coverage with mnist-clf every 2000 steps; best/ keeps the best FID.
        eval=EvalConfig(every=2000),
    ),
    "sagan-mnist": RunConfig(
        description="Self-attention GAN (Zhang et al. 2019): attention at 14 px, spectral norm in G and D, hinge loss, TTUR.",
        data=MNIST,
        model=_dcgan28(attention_res=14, g_spectral_norm=True, d_spectral_norm=True, d_batchnorm=False),
        loss=LossConfig(kind="hinge"),
        optim=OptimConfig(lr_g=1e-4, lr_d=4e-4, beta1_g=0.0, beta2_g=0.9, beta1_d=0.0, beta2_d=0.9),
        train=TrainConfig(total_steps=3000, batch_size=64, ema_decay=0.999),
    ),
    "lsgan-mnist": RunConfig(
        description="Least-squares GAN (Mao et al. 2017) with a DCGAN on MNIST.",
        data=MNIST,
        model=_dcgan28(),
        loss=LossConfig(kind="lsgan"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1_g=0.5, beta1_d=0.5),
        train=TrainConfig(total_steps=3000, batch_size=64, ema_decay=0.999),
    ),
    "wgan-mnist": RunConfig(
        description="Wasserstein GAN with weight clipping (Arjovsky et al. 2017): RMSprop 5e-5, 5 critic steps, clip 0.01.",
        data=MNIST,
        model=_dcgan28(),
        loss=LossConfig(kind="wgan", clip_value=0.01),
        optim=OptimConfig(optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5),
        train=TrainConfig(total_steps=3000, batch_size=64, n_critic=5),
    ),
    "wgan-gp-mnist": RunConfig(
        description="WGAN-GP, the improved WGAN (Gulrajani et al. 2017): gradient penalty 10, Adam(1e-4, 0, 0.9), 5 critic steps.",
        data=MNIST,
        model=_dcgan28(d_batchnorm=False),  # the paper: no batch norm in the critic (the penalty is per sample)
        loss=LossConfig(kind="wgan", gp_weight=10.0),
        optim=OptimConfig(lr_g=1e-4, lr_d=1e-4, beta1_g=0.0, beta2_g=0.9, beta1_d=0.0, beta2_d=0.9),
        train=TrainConfig(total_steps=3000, batch_size=64, n_critic=5),
    ),
    "cgan-mnist": RunConfig(
        description="Class-conditional DCGAN: conditional batch norm in G, projection D (Miyato & Koyama 2018); dcgan-mnist's schedule.",
        data=MNIST,
        model=_dcgan28(num_classes=10),
        loss=LossConfig(kind="ns"),
        # dcgan-mnist's schedule. Measured on the 5000 digits (docs/AUGMENTATION.md): mnist-clf reads
        # the asked class on 99.2 % of the samples; the earlier 2e-4 for 3000 steps reached 31 %.
        optim=OptimConfig(lr_g=1e-3, lr_d=1e-3, beta1_g=0.5, beta1_d=0.5, schedule="linear", decay_start_step=4000),
        train=TrainConfig(total_steps=8000, batch_size=64, ema_decay=0.999, sample_every=1000, log_every=100),
        eval=EvalConfig(every=2000),
    ),
    "dcgan-cifar10": RunConfig(
        description="Radford et al. DCGAN at 32 px RGB; give CIFAR-10 (a folder or zip of images) with --data.",
        data=DataConfig(source=NEEDS_DATA, hflip=True),
        model=ModelConfig(arch="dcgan", resolution=32, channels=3, z_dim=100, g_width=64, d_width=64),
        loss=LossConfig(kind="ns"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1_g=0.5, beta1_d=0.5),
        train=TrainConfig(total_steps=50000, batch_size=64, ema_decay=0.9999, sample_every=2000, log_every=100),
        checkpoint=CheckpointConfig(every_steps=5000),
        perf=PerfConfig(precision="auto", channels_last=True, fused_optim=True),
    ),
    "sngan-cifar10": RunConfig(
        description="SNGAN (Miyato et al. 2018) ResNet at 32 px: spectral norm D, hinge, n_dis 5, Adam(2e-4, 0, 0.9), linear decay.",
        data=DataConfig(source=NEEDS_DATA, hflip=True),
        model=ModelConfig(arch="resnet", resolution=32, channels=3, z_dim=128, g_width=256, d_width=128,
                          d_spectral_norm=True, d_batchnorm=False),
        loss=LossConfig(kind="hinge"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1_g=0.0, beta2_g=0.9, beta1_d=0.0, beta2_d=0.9, schedule="linear"),
        train=TrainConfig(total_steps=100000, batch_size=64, n_critic=5, ema_decay=0.9999, sample_every=2000, log_every=100),
        checkpoint=CheckpointConfig(every_steps=5000),
        # bf16 autocast + NHWC where the hardware has bf16 units: 2.9x faster on this project's
        # 2-core CPU (docs/BENCHMARKS.md); losses and penalties stay fp32. D has no batch
        # statistics, so real and fake share one D forward, with one power iteration per D step.
        perf=PerfConfig(precision="auto", channels_last=True, fused_optim=True, d_concat=True, sn_once=True),
    ),
    "faces-lfw": RunConfig(
        description="Faces from the 100 LFW face crops in scikit-image: DCGAN 32 px with DiffAugment for tiny datasets.",
        data=DataConfig(source="lfw-faces", hflip=True),
        model=ModelConfig(arch="dcgan", resolution=32, channels=1, z_dim=64, g_width=32, d_width=32),
        loss=LossConfig(kind="ns"),
        optim=OptimConfig(lr_g=2e-4, lr_d=2e-4, beta1_g=0.5, beta1_d=0.5),
        # 10,000 steps, where DiffAugment pays (docs/EVALUATION.md, "Faces"): at 3000 steps augmentation off
        # scored better (KID 0.021 against 0.27 with it, three runs each); at 10,000 the augmented run reached
        # KID 0.013 while the unaugmented one fell to 0.35 (one run each, mnist-clf against the 100 faces).
        train=TrainConfig(total_steps=10000, batch_size=32, ema_decay=0.999, augment="translation,cutout,color"),
    ),
}
PRESETS = {name: validate(replace(cfg, preset=name)) for name, cfg in PRESETS.items()}


def get_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)} (list them with `ganforge presets`)")
    return PRESETS[name]
