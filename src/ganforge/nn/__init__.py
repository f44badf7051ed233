"""Layers for GAN networks: conditional BN, self-attention, minibatch-stddev, TF-"same" convs,
projection head, weight init and spectral norm."""

from ganforge.nn.dropout import Dropout, fast_keep_mask, set_fast_dropout
from ganforge.nn.layers import (
    ConditionalBatchNorm,
    Conv2dSame,
    ConvTranspose2dSame,
    Flatten,
    GlobalSumPool,
    LabelConcat,
    LabelSequential,
    MinibatchStdDev,
    ProjectionHead,
    SelfAttention2d,
    call,
    make_norm,
)
from ganforge.nn.weights import (
    WEIGHT_LAYERS,
    apply_spectral_norm,
    has_batch_norm,
    init_weights,
    set_spectral_norm_auto_update,
    spectral_norm,
    spectral_norm_power_step,
    weight_layers,
)

__all__ = [
    "ConditionalBatchNorm",
    "Conv2dSame",
    "ConvTranspose2dSame",
    "Dropout",
    "Flatten",
    "GlobalSumPool",
    "has_batch_norm",
    "LabelConcat",
    "LabelSequential",
    "MinibatchStdDev",
    "ProjectionHead",
    "SelfAttention2d",
    "WEIGHT_LAYERS",
    "apply_spectral_norm",
    "call",
    "fast_keep_mask",
    "init_weights",
    "make_norm",
    "set_fast_dropout",
    "set_spectral_norm_auto_update",
    "spectral_norm",
    "spectral_norm_power_step",
    "weight_layers",
]
