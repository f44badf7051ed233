"""Losses of restoration training beside ganforge.losses' adversarial ones: the pixel loss, the
VGG perceptual loss (from a local weights file only; never downloaded) and discriminator feature
matching (the perceptual stand-in when no VGG weights are given). Pure functions of tensors, or a
frozen module; no logging or AMP inside."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UsageError


# The "psnr" loss's floor on each image's MSE (NAFNet's PSNRLoss uses the same 1e-8): it keeps the
# log finite for a perfect patch and caps an image's weight at 80 dB.
PSNR_LOSS_EPS = 1e-8


def pixel_loss(kind: str, pred: Tensor, target: Tensor) -> Tensor:
    """The pixel loss of pred and target (N, C, H, W) in [0, 1], a scalar in fp32:
    ``l1``: mean absolute error over every pixel and channel; ``l2``: mean squared error;
    ``psnr``: the mean over the N images of -PSNR in dB, 10 * log10(MSE_i + 1e-8) (Chen et al. 2022,
    NAFNet's PSNRLoss). The test tables average PSNR per image in dB, and l2 does not: its gradient
    weighs every image's squared error alike, so the hard, textured images that gain few dB per unit of
    error dominate it; psnr's gradient is l2's divided by each image's own MSE. That is the tables'
    weighting only where a training patch is a whole scored image (CIFAR: +0.04 dB over l2; on photo
    patches it lost 0.01; docs/RESTORATION_training.md, "A PSNR loss")."""
    diff = pred.float() - target.float()
    if kind == "l1":
        return diff.abs().mean()
    if kind == "l2":
        return diff.pow(2).mean()
    if kind != "psnr":
        raise ValueError(f"pixel loss {kind!r}: choose l1, l2 or psnr")
    mse = diff.pow(2).flatten(1).mean(dim=1)  # (N,)
    return 10.0 * torch.log10(mse + PSNR_LOSS_EPS).mean()


# Salimans et al. 2016, "Improved Techniques for Training GANs": match D's intermediate
# activations on real and generated images (here per image pair, L1, averaged over layers,
# as pix2pixHD's feature-matching loss). The real features carry no gradient.
def feature_matching(fake_feats: list[Tensor], real_feats: list[Tensor]) -> Tensor:
    losses = [(f.float() - r.detach().float()).abs().mean() for f, r in zip(fake_feats, real_feats)]
    return torch.stack(losses).mean()


# VGG19 "E" configuration (Simonyan & Zisserman 2015): channels per conv, "M" = 2x2 max pool.
_VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
# Feature layer: conv5_4 before its ReLU (index 34 of torchvision's vgg19().features), as ESRGAN
# (Wang et al. 2018) uses: features before activation keep more information than SRGAN's φ5,4.
VGG_FEATURE_INDEX = 34
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features(last_index: int = VGG_FEATURE_INDEX) -> nn.Sequential:
    """torchvision's ``vgg19().features`` layer list (same indices, so its state dict loads),
    cut after layer ``last_index``."""
    layers: list[nn.Module] = []
    c_in = 3
    for v in _VGG19:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    return nn.Sequential(*layers[: last_index + 1])


def _read_state(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code runs
    return state.get("state_dict", state) if isinstance(state, dict) else state


class VGGPerceptual(nn.Module):
    """L1 distance of frozen VGG19 conv5_4 features (Johnson et al. 2016; SRGAN/ESRGAN's content
    loss). Weights come only from ``weights_path``: torchvision's ImageNet VGG19 state dict saved
    as .safetensors or .pth, keys ``features.N.weight`` (or without the ``features.`` prefix;
    classifier keys are ignored). Inputs are [0, 1] RGB, normalised with ImageNet's mean/std."""

    def __init__(self, weights_path: str | Path):
        super().__init__()
        path = Path(weights_path)
        if not path.is_file():
            raise UsageError(
                f"loss.perceptual_weights={str(weights_path)!r} does not exist: give a local VGG19 state dict "
                "(.safetensors or .pth), or leave loss.perceptual_weights empty for D feature matching (nothing is downloaded)"
            )
        self.features = vgg19_features()
        try:
            raw = _read_state(path)
        except Exception as exc:  # corrupt file, pickled code refused by weights_only, ...
            raise UsageError(f"loss.perceptual_weights={str(path)!r} is not a readable state dict: {exc}") from None
        own = self.features.state_dict()
        state = {k.removeprefix("features."): v for k, v in raw.items() if k.removeprefix("features.") in own}
        missing = sorted(set(own) - set(state))
        bad = [k for k in state if tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or bad:
            raise UsageError(f"loss.perceptual_weights={str(path)!r} is not a VGG19 state dict: missing {missing[:3]}, wrong shapes {bad[:3]}")
        self.features.load_state_dict(state)
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        f_pred = self.features((pred - self.mean) / self.std)
        with torch.no_grad():
            f_target = self.features((target - self.mean) / self.std)
        return F.l1_loss(f_pred.float(), f_target.float())
