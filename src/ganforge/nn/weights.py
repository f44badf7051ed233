"""Weight initialisation and spectral normalisation, applied to a finished network.

Both walk the same set of "weight layers" (convs, transposed convs, linears, embeddings), so a
builder can build → init → (optionally) spectral-normalise. Conditional batch-norm gains and the
self-attention gamma are plain parameters, not weight layers, and keep their own init.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from torch import Tensor, nn
from torch.nn.utils import parametrizations

WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


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


def spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation of one layer (Miyato et al. 2018): W / sigma_max(W).

    sigma is estimated with one power iteration per forward pass in train mode (PyTorch's
    parametrization; transposed convs are normalised along their output dim). This is the only
    place ganforge calls it, so it can be swapped for a compile-friendly version.
    """
    return parametrizations.spectral_norm(module)


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral-normalise every weight layer of `net` in place (call after weight init)."""
    for _, module in list(weight_layers(net)):
        spectral_norm(module)
    return net
