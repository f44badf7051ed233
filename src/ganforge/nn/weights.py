"""Weight initialisation and spectral normalisation, applied to a finished network.

Both walk the same set of "weight layers" (convs, transposed convs, linears, embeddings), so a
builder can build → init → (optionally) spectral-normalise. Conditional batch-norm gains and the
self-attention gamma are plain parameters, not weight layers, and keep their own init.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def has_batch_norm(*nets: nn.Module) -> bool:
    """True when any of ``nets`` holds a batch-norm layer (any ``_BatchNorm``, conditional BN's too)."""
    return any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for net in nets for mod in net.modules())


def weight_layers(net: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(qualified name, module) for every conv / transposed conv / linear / embedding in `net`."""
    for name, module in net.named_modules():
        if isinstance(module, WEIGHT_LAYERS):
            yield name, module


def init_weights(net: nn.Module, init_fn: Callable[[Tensor], object]) -> nn.Module:
    """Apply `init_fn` in place to every weight layer's weight and zero its bias."""
    for _, module in weight_layers(net):
        init_fn(module.weight)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    return net


class SpectralNorm(_SpectralNorm):
    """PyTorch's spectral-norm parametrization (same buffers ``_u``/``_v``, same state-dict keys,
    same arithmetic) with one switch, ``auto_update``:

    - True (default, PyTorch's behaviour): one power iteration inside every train-mode forward.
      SNGAN's D step calls D twice (real, fake) and the G step once more: three in-place
      updates of u, v per iteration, in the middle of the autograd graph.
    - False (the fast path): forwards only *read* u, v, and :func:`spectral_norm_power_step`
      runs the power iteration explicitly, once per D step. Forwards are then pure functions of
      the weights, which is what torch.compile and CUDA-graph capture need (an in-place buffer
      update inside a compiled graph is what broke autograd in a naive compile).
    """

    auto_update: bool = True

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)  # (out, in * k * k)
        if self.training and self.auto_update:
            self._power_method(weight_mat, self.n_power_iterations)
        # Clones, as in PyTorch: the autograd graph must not see later in-place updates of u, v.
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        sigma = torch.vdot(u, torch.mv(weight_mat, v))  # estimate of the largest singular value
        return weight / sigma


def spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation of one layer (Miyato et al. 2018): W / sigma_max(W).

    sigma is estimated with one power iteration per train-mode forward, as PyTorch's
    ``parametrizations.spectral_norm`` (whose state-dict layout this keeps); transposed convs are
    normalised along their output dim. See :class:`SpectralNorm` for the explicit-update mode."""
    weight = module.weight
    dim = 1 if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, "weight", SpectralNorm(weight, 1, dim, 1e-12))
    return module


def _spectral_norms(net: nn.Module) -> Iterator[tuple[nn.Module, SpectralNorm]]:
    for module in net.modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations.weight:
                if isinstance(p, SpectralNorm):
                    yield module, p


def set_spectral_norm_auto_update(net: nn.Module, auto: bool) -> int:
    """Switch every SpectralNorm of ``net`` between per-forward (True) and explicit (False)
    power iterations; returns how many layers it switched."""
    count = 0
    for _, p in _spectral_norms(net):
        p.auto_update = auto
        count += 1
    return count


@torch.no_grad()
def spectral_norm_power_step(net: nn.Module) -> None:
    """One power iteration for every spectral-normalised layer of ``net`` (explicit mode)."""
    for module, p in _spectral_norms(net):
        weight = module.parametrizations.weight.original
        p._power_method(p._reshape_weight_to_matrix(weight), p.n_power_iterations)


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral-normalise every weight layer of `net` in place (call after weight init)."""
    for _, module in list(weight_layers(net)):
        spectral_norm(module)
    return net
