"""Architecture settings shared by every generator/discriminator builder."""

from __future__ import annotations

from dataclasses import dataclass

from ganforge.errors import UsageError

D_CONDS = ("proj", "ac", "proj+ac")  # how a conditional D reads the label (ModelConfig.d_cond)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "dcgan"  # mlp | keras-dcgan | dcgan | resnet
    resolution: int = 32  # output side length in pixels (square images)
    channels: int = 1  # image channels: 1 (grayscale) or 3 (RGB)
    z_dim: int = 100  # latent vector size
    g_width: int = 64  # base width of G (units for MLP, channels for conv nets)
    d_width: int = 64  # base width of D
    num_classes: int = 0  # 0 = unconditional; >0 = conditional BN in G, D conditioned as d_cond says
    # how a conditional D uses the label: proj (projection head, Miyato & Koyama 2018) | ac (an
    # auxiliary class head, AC-GAN, Odena et al. 2017; loss.ac_weight) | proj+ac (both heads)
    d_cond: str = "proj"
    attention_res: int = 0  # SAGAN self-attention at this feature resolution in G and D; 0 = none
    g_spectral_norm: bool = False  # spectral norm on G's layers (SAGAN uses it in both nets)
    d_spectral_norm: bool = False  # spectral norm on D's layers (SNGAN, Miyato et al. 2018)
    d_batchnorm: bool = True  # batch norm in D where the architecture has it (off for WGAN-GP)
    d_dropout: float = 0.0  # dropout after D's activations (the Keras tutorial uses 0.3)
    mbstd_group: int = 0  # minibatch standard deviation layer before D's head; group size, 0 = off
    pack: int = 1  # PacGAN packing degree: D judges `pack` samples concatenated on channels


def check_d_cond(cfg: ModelConfig) -> None:
    """model.d_cond is one of D_CONDS, and anything but "proj" comes with labels (config.validate too)."""
    if cfg.d_cond not in D_CONDS:
        raise UsageError(f"model.d_cond={cfg.d_cond!r} is not allowed: use one of {', '.join(D_CONDS)}")
    if cfg.d_cond != "proj" and cfg.num_classes == 0:
        raise UsageError(f"model.d_cond={cfg.d_cond!r} needs labels: set model.num_classes > 0 (or keep 'proj')")
