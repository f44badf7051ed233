"""Layers shared by the generators and discriminators in `ganforge.models`.

Shapes in comments use N = batch, C = channels, H, W = height, width, K = number of classes.
Layers that need the class labels `y` say so with the class attribute `takes_labels = True`;
`LabelSequential` passes `y` to exactly those layers, so a network is still a plain list of layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def call(layer: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """Run one layer, giving the labels only to layers that declare `takes_labels`."""
    return layer(x, y) if getattr(layer, "takes_labels", False) else layer(x)


class LabelSequential(nn.Sequential):
    """`nn.Sequential` whose forward also carries class labels y (N,) to the layers that use them."""

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = call(layer, x, y)
        return x


class ConditionalBatchNorm(nn.Module):
    """Batch norm with a per-class gain and bias (de Vries et al. 2017; Miyato & Koyama 2018).

    out = gain[y] * BN(x) + bias[y], with BN not affine. Gains start at 1 and biases at 0, so a fresh
    layer equals plain batch norm. They are raw (K, C) parameters rather than `nn.Embedding`s on
    purpose: weight init and spectral norm walk `nn.Embedding` modules and must leave these alone
    (spectral norm on an all-ones table would shrink every gain to ~1/sqrt(K*C)).
    Works on (N, C) when `spatial=False` and on (N, C, H, W) when `spatial=True`.
    """

    takes_labels = True

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        *,
        spatial: bool = True,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ):
        super().__init__()
        bn = nn.BatchNorm2d if spatial else nn.BatchNorm1d
        self.bn = bn(num_features, affine=False, momentum=momentum, eps=eps)
        self.gain = nn.Parameter(torch.ones(num_classes, num_features))  # (K, C)
        self.bias = nn.Parameter(torch.zeros(num_classes, num_features))  # (K, C)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)  # (N, C) or (N, C, 1, 1) for broadcasting
        return self.bn(x) * self.gain[y].view(shape) + self.bias[y].view(shape)


def make_norm(
    num_features: int,
    num_classes: int,
    *,
    spatial: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> nn.Module:
    """Plain affine batch norm for an unconditional net, conditional batch norm otherwise."""
    if num_classes > 0:
        return ConditionalBatchNorm(
            num_features, num_classes, spatial=spatial, momentum=momentum, eps=eps
        )
    bn = nn.BatchNorm2d if spatial else nn.BatchNorm1d
    return bn(num_features, momentum=momentum, eps=eps)


class LabelConcat(nn.Module):
    """Append a learned class embedding to a flat input: (N, F) → (N, F + dim) (Mirza & Osindero 2014)."""

    takes_labels = True

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.cat([x, self.embed(y)], dim=1)


class SelfAttention2d(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019), laid out as in BigGAN's PyTorch code.

    1x1 convs: theta, phi: C → C/8 (queries, keys), g: C → C/2 (values), o: C/2 → C.
    Keys and values are max-pooled 2x2, which cuts the attention matrix 4x (HW x HW/4).
    out = x + gamma * o(attention(x)); gamma starts at 0, so a fresh block is the identity and
    the net first learns local features, then gradually uses the non-local ones.
    Odd sizes (7x7) are pooled with ceil_mode so no border row is dropped.
    """

    def __init__(self, channels: int):
        super().__init__()
        c8, c2 = max(1, channels // 8), max(1, channels // 2)
        self.theta = nn.Conv2d(channels, c8, 1, bias=False)
        self.phi = nn.Conv2d(channels, c8, 1, bias=False)
        self.g = nn.Conv2d(channels, c2, 1, bias=False)
        self.o = nn.Conv2d(c2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        theta = self.theta(x).flatten(2)  # (N, C/8, HW)
        phi = F.max_pool2d(self.phi(x), 2, ceil_mode=True).flatten(2)  # (N, C/8, HW')
        g = F.max_pool2d(self.g(x), 2, ceil_mode=True).flatten(2)  # (N, C/2, HW')
        # unscaled dot products (no 1/sqrt(C/8) as in Transformers): SAGAN's and BigGAN's code do the same
        beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (N, HW, HW'), rows sum to 1
        attended = (g @ beta.transpose(1, 2)).view(n, -1, h, w)  # (N, C/2, H, W)
        return x + self.gamma * self.o(attended)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN), as in StyleGAN's code.

    The batch is split into groups of G = min(group_size, N) samples; sample n is grouped with
    samples n ± N/G, n ± 2N/G, ... For each group: std over the G samples of every feature
    (biased, +1e-8 inside the sqrt), averaged over all features → one number per group, appended
    as one constant extra channel: (N, C, H, W) → (N, C+1, H, W), or (N, F) → (N, F+1).
    It lets D see how varied a batch is, which penalises mode collapse.
    """

    def __init__(self, group_size: int):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n, rest = x.shape[0], x.shape[1:]
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(
                f"minibatch-stddev group size {g} does not divide the batch size {n}"
            )
        groups = x.reshape(g, n // g, *rest)  # (G, M, C, H, W)
        std = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (M, C, H, W)
        std = std.flatten(1).mean(dim=1)  # (M,)
        std = std.repeat(g)  # (N,): sample n gets the value of its group n % M
        extra = std.view(n, 1, *([1] * len(rest[1:]))).expand(n, 1, *rest[1:])
        return torch.cat([x, extra.to(x.dtype)], dim=1)


def _tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding: output ceil(size/stride); the odd pixel of padding goes last."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow/Keras padding="same", including its asymmetric case.

    A 5x5 stride-2 conv on 28x28 pads 1 pixel top/left and 2 bottom/right (28 → 14, and 14 → 7);
    PyTorch's symmetric padding=2 would sample the input shifted by one pixel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = _tf_same_pads(x.shape[-2], k, s)
        left, right = _tf_same_pads(x.shape[-1], k, s)
        return super().forward(F.pad(x, (left, right, top, bottom)))


class ConvTranspose2dSame(nn.ConvTranspose2d):
    """ConvTranspose2d with Keras Conv2DTranspose padding="same": (H, W) → (H*stride, W*stride).

    TF defines it as the adjoint of a SAME conv with that output size, which crops k-s pixels
    from the full (H-1)*s+k output: (k-s)//2 at the top/left and the rest at the bottom/right.
    For k=5, s=2 that is 1 and 2. PyTorch's padding=p crops p on both sides, so we use
    padding=(k-s)//2 and slice off the remainder at the end. (padding=2, output_padding=1 gives
    the right size but crops 2/1, i.e. the output is shifted by one pixel relative to Keras.)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        if kernel_size < stride:
            raise ValueError("ConvTranspose2dSame needs kernel_size >= stride")
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding=(kernel_size - stride) // 2, bias=bias
        )

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        s = self.stride[0]
        h, w = x.shape[-2] * s, x.shape[-1] * s
        out = super().forward(x)
        if out.shape[-2:] == (h, w):
            return out
        # The crop is a strided view; one dense copy in the input's layout here is cheaper than
        # the strided batch norm / activation passes that would otherwise follow (2-3× slower).
        return out[..., :h, :w].contiguous(memory_format=_memory_format(x))


def _memory_format(x: Tensor) -> torch.memory_format:
    """channels_last for a 4-D NHWC-strided tensor, else contiguous."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class _FlattenKeepFormat(torch.autograd.Function):
    """(N, C, H, W) → (N, C·H·W) in (c, h, w) order; the backward hands the gradient back in
    the input's memory layout, so a channels_last D runs its backward without layout mixing."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.shape, ctx.fmt = x.shape, _memory_format(x)
        return x.reshape(x.shape[0], -1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad.reshape(ctx.shape).contiguous(memory_format=ctx.fmt)


class Flatten(nn.Flatten):
    """nn.Flatten(1) whose gradient keeps a channels_last input's layout (see _FlattenKeepFormat);
    otherwise identical (same values, no state)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and self.start_dim == 1 and self.end_dim == -1 and _memory_format(x) == torch.channels_last:
            return _FlattenKeepFormat.apply(x)
        return super().forward(x)


class ProjectionHead(nn.Module):
    """Discriminator head: logit = linear(h) + <embed(y), h> (projection D, Miyato & Koyama 2018).

    h: (N, F) pooled/flattened features → logits (N,). Unconditional (num_classes=0): just linear(h).
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        self.embed = nn.Embedding(num_classes, in_features) if num_classes > 0 else None

    def forward(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.linear(h).squeeze(1)  # (N,)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1)  # (N,)
        return out


class GlobalSumPool(nn.Module):
    """(N, C, H, W) → (N, C), summing over space as SNGAN's discriminators do."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sum(dim=(2, 3))
