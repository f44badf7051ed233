"""Restoration networks: fully convolutional, so any input size works (training patches, whole
photos, tiles).

    G = build_restorer(cfg)       # sr: G(lr (N,3,h,w)) -> (N,3,s h,s w); denoise: G(noisy, sigma) -> (N,3,H,W);
                                  # inpaint: G(image (N,3,H,W), mask (N,1,H,W)) -> (N,3,H,W), known pixels untouched
    D = build_discriminator(cfg)  # PatchGAN: D(x (N,3,H,W)) -> patch logits (N * h' * w',)

Images are floats in [0, 1]. Every generator ends in a zero-initialised conv that adds a
residual to a fixed estimate (bicubic upscale, the noisy input, the hole-filled input), so a
fresh network is exactly that estimate and training only has to learn the correction.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.apps.restore_config import RestoreConfig, arch_of
from ganforge.nn import apply_spectral_norm, init_weights


def _conv(c_in: int, c_out: int, k: int = 3, *, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """A 'same' conv for odd k (stride 1): output size = input size."""
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)


def _he_init(net: nn.Module) -> nn.Module:
    """He (Kaiming) normal init of every conv, zero biases. PyTorch's default conv init multiplies
    the signal's variance by about 1/6 per conv + ReLU, so a plain 17-layer stack (DnCNN, the
    completion net) starts with vanishing activations and gradients and barely trains; He init
    keeps the variance (He et al. 2015). Call before zeroing the residual head."""
    return init_weights(net, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"))


def _denoiser_input(noisy: Tensor, sigma: Tensor | None, noise_map: bool) -> Tensor:
    """noisy (N, 3, H, W) - 0.5, with FFDNet's sigma map (sigma (N,) on the 0..1 scale) as a 4th
    channel when ``noise_map``: (N, 3 or 4, H, W). Shared by the denoisers."""
    x = noisy - 0.5
    if not noise_map:
        return x
    if sigma is None:
        raise ValueError("this denoiser takes a noise-level map: pass sigma (N,) on the 0..1 scale")
    level = sigma.to(noisy.dtype).view(-1, 1, 1, 1).expand(noisy.shape[0], 1, *noisy.shape[-2:])
    return torch.cat([x, level], dim=1)


def _pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad the bottom and right of x (N, C, H, W) to sides that are multiples of ``multiple``
    (nets with stride-2 levels); the caller crops the output back to H x W."""
    ph, pw = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _zero_head(c_in: int, c_out: int) -> nn.Conv2d:
    """The residual output conv, zero-initialised: a fresh network adds exactly 0."""
    conv = _conv(c_in, c_out, 3)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


# ----------------------------------------------------------------------------- super-resolution


class ResBlock(nn.Module):
    """conv3x3 - PReLU - conv3x3 + skip (SRGAN's block without batch norm, as EDSR: BN normalises
    away the range of the features, costs memory and makes train/eval outputs differ; removing it
    raised PSNR in Lim et al. 2017)."""

    def __init__(self, width: int, res_scale: float = 1.0, act: str = "prelu"):
        super().__init__()
        # relu: DRUNet's block (DenoiseUNet); elu: InpaintUNet's refine blocks
        a = {"prelu": lambda: nn.PReLU(width), "relu": lambda: nn.ReLU(inplace=True), "elu": nn.ELU}[act]()
        self.body = nn.Sequential(_conv(width, width), a, _conv(width, width))
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:  # (N, W, h, w) -> same
        return x + self.res_scale * self.body(x)


def shuffle_factors(scale: int) -> list[int]:
    """Pixel-shuffle stages for an upscaling factor: 4 -> [2, 2], 8 -> [2, 2, 2], 3 -> [3]."""
    if scale == 3:
        return [3]
    n = int(math.log2(scale))
    if 2**n != scale or n < 1:
        raise ValueError(f"SR scale must be 2, 3, 4 or 8, got {scale}")
    return [2] * n


class SRResNet(nn.Module):
    """SRResNet (Ledig et al. 2017) without batch norm, predicting the residual over bicubic:

        out = bicubic(lr, s) + tail(up(h + body(h))),  h = PReLU(conv9x9(lr - 0.5))

    The bicubic base is F.interpolate(mode="bicubic", align_corners=False): fast on any device, and
    slightly different from MATLAB's imresize kernel (no antialiasing is involved when enlarging,
    only the edge handling and a=-0.75 vs -0.5 differ); the learned residual absorbs the difference.
    The tail is a 3x3 conv rather than SRResNet's 9x9: at HR resolution a 9x9 conv costs 9x as much
    for no measurable gain (EDSR uses 3x3 throughout).
    """

    def __init__(self, scale: int, width: int = 64, blocks: int = 16, res_scale: float = 1.0, channels: int = 3):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(_conv(channels, width, 9), nn.PReLU(width))
        self.body = nn.Sequential(*[ResBlock(width, res_scale) for _ in range(blocks)], _conv(width, width))
        up: list[nn.Module] = []
        for f in shuffle_factors(scale):  # (N, W, h, w) -> (N, W f^2, h, w) -> (N, W, f h, f w)
            up += [_conv(width, width * f * f), nn.PixelShuffle(f), nn.PReLU(width)]
        self.up = nn.Sequential(*up)
        self.tail = _zero_head(width, channels)

    def forward(self, lr: Tensor) -> Tensor:  # (N, 3, h, w) -> (N, 3, s h, s w)
        base = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        h = self.head(lr - 0.5)  # (N, W, h, w)
        h = h + self.body(h)  # the global skip
        return base + self.tail(self.up(h))


# ----------------------------------------------------------------------------- denoising


class DnCNN(nn.Module):
    """DnCNN (Zhang et al. 2017): conv-ReLU, (depth - 2) x conv-ReLU, conv; the net predicts the
    noise and the output is noisy - noise (residual learning). Batch norm is left out (as in
    later DnCNN re-implementations and FFDNet's successors) so that the output does not depend on
    batch statistics and tiles equal the whole image. With ``noise_map`` a 4th input channel holds
    sigma / 255 everywhere (FFDNet, Zhang et al. 2018): one model for a range of noise levels that
    is told the level."""

    def __init__(self, width: int = 64, depth: int = 17, noise_map: bool = False, channels: int = 3):
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN depth must be >= 2, got {depth}")
        self.noise_map = noise_map
        layers: list[nn.Module] = [_conv(channels + int(noise_map), width), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [_conv(width, width), nn.ReLU(inplace=True)]
        _he_init(nn.Sequential(*layers))
        layers.append(_zero_head(width, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, noisy: Tensor, sigma: Tensor | None = None) -> Tensor:
        # noisy (N, 3, H, W); sigma (N,) on the 0..1 scale (sigma_255 / 255), used with noise_map
        return noisy - self.body(_denoiser_input(noisy, sigma, self.noise_map))


class DenoiseUNet(nn.Module):
    """A DRUNet-style denoiser (Zhang et al. 2021, "Plug-and-Play Image Restoration with Deep
    Denoiser Prior"), smaller: 4 levels of width w, 2w, 4w, 8w, each ``blocks`` residual blocks
    (conv-ReLU-conv + skip, no batch norm); 2x2 stride-2 convs down, 2x2 stride-2 transposed convs
    up, and each decoder level adds the encoder's features of its size (skips by addition, as
    DRUNet). Like DnCNN it predicts the noise: out = noisy - tail(...), the tail zero-initialised.

    Why: DnCNN spends 15 full-resolution 64-channel convs per pixel (553k multiply-adds) for a
    receptive field of 35 px. Here most convs run at 1/4, 1/16, 1/64 of the pixels: at w = 32 and 2
    blocks, about 180k multiply-adds per pixel, and the 1/8 level sees over 100 px. ``noise_map``
    adds the FFDNet sigma channel as in DnCNN. Sides that are not multiples of 8 are
    replicate-padded and cropped back, so any input size works; the output depends on the pixel
    position modulo 8 and on context far away, so tiled inference is close to, not equal to,
    untiled (docs/RESTORATION_training.md gives the measured difference).
    """

    multiple = 8
    # tile context (Restorer's default overlap): with 64 px, tiles of 128 gave the untiled 8-bit output on Set14
    # (max 0.001 level apart), with 32 px up to 0.56 level
    tile_overlap = 64

    def __init__(self, width: int = 32, blocks: int = 2, noise_map: bool = False, channels: int = 3):
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.noise_map = noise_map

        def res(c: int) -> list[nn.Module]:
            return [ResBlock(c, act="relu") for _ in range(blocks)]

        self.head = _conv(channels + int(noise_map), w[0])
        # down[i]: (N, w[i], H/2^i, W/2^i) -> (N, w[i+1], H/2^(i+1), W/2^(i+1))
        self.down = nn.ModuleList(nn.Sequential(*res(w[i]), nn.Conv2d(w[i], w[i + 1], 2, stride=2)) for i in range(3))
        self.middle = nn.Sequential(*res(w[3]))
        # up[i]: (N, w[i+1], H/2^(i+1), ...) -> (N, w[i], H/2^i, ...)
        self.up = nn.ModuleList(nn.Sequential(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2), *res(w[i])) for i in range(3))
        # PyTorch's default init, not He's: with He, every residual block and every 2x2 stride-2 conv (no ReLU
        # after it) roughly doubles the variance, and the decoder's features start at std ~1,700 (measured,
        # w 32, 2 blocks), so the first Adam steps of the tail throw the output far off. The default keeps
        # every level's features at std 0.06-0.2; the skips carry the gradient that He init is there for.
        self.tail = _zero_head(w[0], channels)

    def forward(self, noisy: Tensor, sigma: Tensor | None = None) -> Tensor:
        # noisy (N, 3, H, W); sigma (N,) on the 0..1 scale, used with noise_map
        h, w = noisy.shape[-2:]
        x = _pad_to_multiple(_denoiser_input(noisy, sigma, self.noise_map), self.multiple)  # (N, 3|4, H', W')
        feats = [self.head(x)]  # (N, w, H', W')
        for down in self.down:
            feats.append(down(feats[-1]))  # (N, 2w, H'/2, W'/2), (N, 4w, ...), (N, 8w, H'/8, W'/8)
        y = self.middle(feats[3])
        for i in (2, 1, 0):
            y = self.up[i](y + feats[i + 1])  # (N, w[i], H'/2^i, W'/2^i)
        noise = self.tail(y + feats[0])[..., :h, :w]  # (N, 3, H, W)
        return noisy - noise


DENOISE_ARCHS = {"dncnn": DnCNN, "unet": DenoiseUNet}


# ----------------------------------------------------------------------------- inpainting


def fill_holes(image: Tensor, mask: Tensor, fill: str) -> Tensor:
    """image (N,3,H,W) with its holes (mask (N,1,H,W) = 1) set to 0 or to the per-image, per-channel
    mean of the known pixels."""
    known = 1.0 - mask
    if fill == "zero":
        return image * known
    mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    return image * known + mean * mask


def _completion_reach(blocks: int, refine: int = 0) -> int:
    """Tile context (input pixels) at which tiled inpainting equals untiled: a multiple of 8 at least
    the receptive-field radius of both completion nets. Their dilated convs sum to 8 (2^blocks - 1)
    pixels of reach (at 1/4 with dilations 2..2^blocks, or at 1/8 with 1..2^(blocks-1)); the encoder,
    decoder and tail add about 32, and the alignment to the 1/8 grid up to 7 more. Measured by
    gradient on random nets (tests/test_restore_models.py): radius 151-158 px at blocks=4, so 160.
    Each InpaintUNet refine block adds two 3x3 convs at 1/4 and two at 1/2: 8 + 4 = 12 px more."""
    return 8 * (2**blocks + 4) + 8 * ((12 * refine + 5) // 8)  # the radius (8 (2^blocks + 4) - 2 + 12 refine), rounded up


class _Completion(nn.Module):
    """What every inpainting net shares: the input (hole-filled image - 0.5, mask), replicate
    padding to a multiple of ``multiple``, a zero-initialised ``tail`` adding a residual to the
    filled holes, and the composite that passes the known pixels through exactly. Subclasses
    define ``body`` (and set fill, multiple, tail)."""

    fill: str
    multiple: int
    tail: nn.Conv2d
    body: Callable[[Tensor], Tensor]  # (N, 4, H, W) padded -> (N, C, H, W) features for the tail

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        # image (N, 3, H, W) in [0, 1] (hole values are ignored); mask (N, 1, H, W), 1 = missing
        h, w = image.shape[-2:]
        filled = fill_holes(image, mask, self.fill)
        x = torch.cat([filled - 0.5, mask], dim=1)  # (N, 4, H, W)
        y = self.tail(self.body(_pad_to_multiple(x, self.multiple)))[..., :h, :w]  # (N, 3, H, W)
        return mask * (filled + y) + (1.0 - mask) * image


class CompletionNet(_Completion):
    """Iizuka et al. 2017 ("Globally and Locally Consistent Image Completion") completion network,
    scaled by ``width``: an encoder down to 1/4 resolution, ``blocks`` dilated 3x3 convs (dilation
    2, 4, 8, ...; they widen the receptive field without losing resolution), a decoder back up
    (nearest upsampling + conv instead of transposed convs: no checkerboard), then

        out = mask * (filled + tail(...)) + (1 - mask) * image

    so the known pixels are passed through exactly. ELU activations (DeepFill) and no batch norm.
    Input sides that are not multiples of 4 are replicate-padded and cropped back.
    """

    def __init__(self, width: int = 64, blocks: int = 4, fill: str = "zero", channels: int = 3):
        super().__init__()
        w1, w2, w4 = width, 2 * width, 4 * width
        act = nn.ELU
        self.fill, self.multiple = fill, 4
        self.tile_overlap = _completion_reach(blocks)
        self.encoder = nn.Sequential(
            _conv(channels + 1, w1, 5), act(),
            _conv(w1, w2, 3, stride=2), act(), _conv(w2, w2), act(),  # 1/2
            _conv(w2, w4, 3, stride=2), act(), _conv(w4, w4), act(), _conv(w4, w4), act(),  # 1/4
        )
        self.dilated = nn.Sequential(*[m for k in range(blocks) for m in (_conv(w4, w4, dilation=2 ** (k + 1)), act())])
        self.decoder = nn.Sequential(
            _conv(w4, w4), act(), _conv(w4, w4), act(),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(w4, w2), act(), _conv(w2, w2), act(),  # 1/2
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(w2, w1), act(), _conv(w1, max(w1 // 2, 1)), act(),  # 1/1
        )
        _he_init(self)
        self.tail = _zero_head(max(w1 // 2, 1), channels)

    def body(self, x: Tensor) -> Tensor:  # (N, 4, H, W), H and W multiples of 4 -> (N, w/2, H, W)
        return self.decoder(self.dilated(self.encoder(x)))


class InpaintUNet(_Completion):
    """A U-Net completion net: the CompletionNet's input, compositing and ELU, but three stride-2
    levels (down to 1/8) with skip connections from each encoder level to the decoder, and the
    ``blocks`` dilated convs (dilation 1, 2, 4, ...) at 1/8. The skips carry the full-resolution
    pixels next to the hole to the output without squeezing them through the bottleneck, which the
    Iizuka net must do (it has no skips); the 1/8 level gives a 32 px image a 4 x 4 code whose
    3 x 3 convs see the whole image. Input sides that are not multiples of 8 are replicate-padded.

    ``refine`` adds that many residual blocks (conv-ELU-conv + skip) after the decoder's 1/4 and 1/2
    levels, their second conv zero-initialised, so the weights of a net with fewer load into it
    (``growable``: train.init_from) and it computes exactly what they did: a trained net can be given
    more depth and trained on. Why: the shipped CIFAR net scores its training images as its test
    images, so more data would not help it, and more capacity might; measured on the CPU, grown by
    one block per level it scored the same as the ungrown net trained for the same time
    (docs/RESTORATION_training.md). Each refine step (a block at each level) costs 1.47M parameters
    at width 64 and about 150M multiply-adds on a 32 px image (the net without them: 6.6M and 680M).
    """

    growable = ("refine3.", "refine2.")  # state-dict prefixes of the blocks a grown net adds (train.init_from)

    def __init__(self, width: int = 64, blocks: int = 4, fill: str = "zero", channels: int = 3, refine: int = 0):
        super().__init__()
        w1, w2, w4 = width, 2 * width, 4 * width
        act = nn.ELU
        self.fill, self.multiple = fill, 8
        self.tile_overlap = _completion_reach(blocks, refine)
        self.enc1 = nn.Sequential(_conv(channels + 1, w1, 5), act(), _conv(w1, w1), act())  # 1/1
        self.enc2 = nn.Sequential(_conv(w1, w2, 3, stride=2), act(), _conv(w2, w2), act())  # 1/2
        self.enc3 = nn.Sequential(_conv(w2, w4, 3, stride=2), act(), _conv(w4, w4), act())  # 1/4
        self.enc4 = nn.Sequential(_conv(w4, w4, 3, stride=2), act())  # 1/8
        self.middle = nn.Sequential(*[m for k in range(blocks) for m in (_conv(w4, w4, dilation=2 ** k), act())])
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec3 = nn.Sequential(_conv(w4 + w4, w4), act(), _conv(w4, w4), act())  # 1/4
        self.dec2 = nn.Sequential(_conv(w4 + w2, w2), act(), _conv(w2, w2), act())  # 1/2
        self.dec1 = nn.Sequential(_conv(w2 + w1, w1), act(), _conv(w1, max(w1 // 2, 1)), act())  # 1/1
        self.refine3 = nn.Sequential(*[ResBlock(w4, act="elu") for _ in range(refine)])  # 1/4, after dec3
        self.refine2 = nn.Sequential(*[ResBlock(w2, act="elu") for _ in range(refine)])  # 1/2, after dec2
        _he_init(self)
        for block in [*self.refine3, *self.refine2]:
            nn.init.zeros_(block.body[2].weight)  # the block adds 0 until trained: refine-0 weights compute the same
            nn.init.zeros_(block.body[2].bias)
        self.tail = _zero_head(max(w1 // 2, 1), channels)

    def body(self, x: Tensor) -> Tensor:  # (N, 4, H, W), H and W multiples of 8 -> (N, w/2, H, W)
        e1 = self.enc1(x)  # (N, w, H, W)
        e2 = self.enc2(e1)  # (N, 2w, H/2, W/2)
        e3 = self.enc3(e2)  # (N, 4w, H/4, W/4)
        m = self.middle(self.enc4(e3))  # (N, 4w, H/8, W/8)
        d3 = self.refine3(self.dec3(torch.cat([self.up(m), e3], dim=1)))  # (N, 4w, H/4, W/4)
        d2 = self.refine2(self.dec2(torch.cat([self.up(d3), e2], dim=1)))  # (N, 2w, H/2, W/2)
        return self.dec1(torch.cat([self.up(d2), e1], dim=1))  # (N, w/2, H, W)


INPAINT_ARCHS = {"iizuka": CompletionNet, "unet": InpaintUNet}


# ----------------------------------------------------------------------------- discriminator


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017, pix2pix): ``layers`` stride-2 4x4 convs, one stride-1 4x4 conv,
    then a 4x4 conv to one logit per patch; with layers=3 each logit sees a 70x70 patch. Widths
    double per layer up to 8 x ``width``. LeakyReLU(0.2); spectral norm on every conv, or batch
    norm after every conv but the first and the last (pix2pix) when ``spectral_norm`` is off.

    forward(x) -> patch logits flattened to (N * h' * w',), the shape ganforge.losses take (their
    mean is over patches and images); forward(x, features=True) also returns the activations of
    every hidden layer (for feature matching, Salimans et al. 2016)."""

    def __init__(self, width: int = 64, layers: int = 3, spectral_norm: bool = True, channels: int = 3):
        super().__init__()
        chans = [channels] + [width * min(2**i, 8) for i in range(layers + 1)]
        blocks = []
        for i in range(layers + 1):
            stride = 2 if i < layers else 1
            conv = nn.Conv2d(chans[i], chans[i + 1], 4, stride=stride, padding=1)
            norm = [] if (i == 0 or spectral_norm) else [nn.BatchNorm2d(chans[i + 1])]
            blocks.append(nn.Sequential(conv, *norm, nn.LeakyReLU(0.2, inplace=True)))
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(chans[-1], 1, 4, stride=1, padding=1)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, features: bool = False):
        h = x * 2.0 - 1.0  # [0, 1] -> [-1, 1]
        feats = []
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        logits = self.out(h).flatten()  # (N * h' * w',)
        return (logits, feats) if features else logits


# ----------------------------------------------------------------------------- builders


def build_restorer(cfg: RestoreConfig) -> nn.Module:
    """The generator for cfg.task at cfg.model's width and depth."""
    m = cfg.model
    if cfg.task == "sr":
        return SRResNet(cfg.degrade.scale, m.width, m.blocks, m.res_scale)
    arch = arch_of(cfg)
    if cfg.task == "denoise":
        return DENOISE_ARCHS[arch](m.width, m.blocks, m.noise_map)
    if cfg.task == "inpaint":
        kw = {"refine": m.refine} if arch == "unet" else {}
        return INPAINT_ARCHS[arch](m.width, m.blocks, cfg.degrade.fill, **kw)
    raise ValueError(f"unknown task {cfg.task!r}")


def build_discriminator(cfg: RestoreConfig) -> PatchDiscriminator:
    m = cfg.model
    return PatchDiscriminator(m.d_width, m.d_layers, m.d_spectral_norm)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
