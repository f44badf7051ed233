"""Dropout whose CPU mask costs a tenth of PyTorch's (``perf.fast_dropout``).

On CPU, ``nn.Dropout`` draws one Bernoulli variable per element with a 32-bit Mersenne-Twister
call per element: for the Keras-tutorial DCGAN's D at batch 256 (two dropouts over 3.2 M and
1.6 M activations, D run on real and fake) that is a quarter of the whole training step (23 ms
per 3.2 M-element mask on this machine's 2 cores).

The fast mask draws 64-bit words (``random_`` over the full int64 range: one generator call per
word) and reads each word as four independent uniform 16-bit lanes: element i is dropped when
its lane is below ``k = round(p · 65536)``. So one draw serves four elements (2.2 ms for the
same mask). The drop probability is ``k / 65536`` (0.3 → 0.3000031), and survivors are scaled
by ``65536 / (65536 − k)``, the exact inverse keep probability, so E[output] = input as with
PyTorch's dropout. The draws come from torch's default CPU generator: seeded runs repeat exactly.

Off by default (a run keeps torch's RNG stream unless asked); on CUDA, in eval mode, and inside
``torch.compile`` (Inductor generates its own vectorised RNG) it is PyTorch's dropout.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

LANES = 65536  # a uniform 16-bit lane takes this many values


def drop_threshold(p: float) -> int:
    """k: a 16-bit lane (as an unsigned value in [0, 65536)) below k drops its element."""
    return round(p * LANES)


def fast_keep_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype,
                   generator: torch.Generator | None = None) -> Tensor:
    """(shape) mask of 0 and 1 / keep-probability in ``dtype``, drawn 4 elements per 64-bit word."""
    n = 1
    for s in shape:
        n *= s
    k = drop_threshold(p)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None, generator=generator)
    lanes = words.view(torch.int16)[:n]  # int16 in [-32768, 32767]: lane + 32768 is uniform on [0, 65536)
    keep = lanes >= k - 32768
    return keep.to(dtype).mul_(LANES / (LANES - k)).view(shape)


def _fast_dropout(x: Tensor, p: float) -> Tensor:
    """x * mask with the mask laid out like x: a channels_last x gets an NHWC mask, because an
    elementwise op over mixed layouts takes PyTorch's slow strided path (3× slower here)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        n, c, h, w = x.shape
        return x * fast_keep_mask((n, h, w, c), p, x.dtype).permute(0, 3, 1, 2)  # (N, C, H, W), NHWC strides
    return x * fast_keep_mask(x.shape, p, x.dtype)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, no state) with an optional fast CPU mask, ``fast``."""

    fast: bool = False  # set per instance by set_fast_dropout

    def forward(self, x: Tensor) -> Tensor:
        use_fast = (self.fast and self.training and x.device.type == "cpu" and 0.0 < self.p < 1.0
                    and not self.inplace and not torch.compiler.is_compiling())
        if not use_fast:
            return super().forward(x)
        return _fast_dropout(x, self.p)  # autograd: d/dx = the same mask


def set_fast_dropout(net: nn.Module, fast: bool) -> int:
    """Switch every ganforge Dropout of ``net`` to the fast CPU mask (True) or PyTorch's (False);
    returns how many layers it switched."""
    count = 0
    for module in net.modules():
        if isinstance(module, Dropout):
            module.fast = fast
            count += 1
    return count
