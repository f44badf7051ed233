"""Mode-collapse metrics of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018),
decomposed as features → statistics → value:

    nearest_mode(samples)      → (mode index, distance in σ) per sample         (features)
    hq_counts(...)             → high-quality samples per mode, (K,)            (statistics)
    mode_stats(samples, bench) → modes captured, HQ fraction, reverse KL        (values)

Definitions (isotropic modes, so the Mahalanobis distance is the Euclidean distance / σ):
  * a sample is *high quality* (HQ) when its nearest mode is within 3σ;
  * a mode is *captured* when at least one HQ sample lies at it;
  * reverse KL = KL(p ‖ u) = Σ_k p_k log(p_k · K), where p_k = c_k / Σ_j c_j is the share of the
    HQ samples at mode k and u the uniform distribution over the K modes. Modes with c_k = 0
    contribute 0 (the limit of p log p; no epsilon is added). 0 for a balanced histogram,
    log K when every HQ sample is at one mode. With no HQ sample at all p is undefined and we
    report the worst case log K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import UsageError
from ganforge.modes.toy import Benchmark

HQ_SIGMAS = 3.0  # a sample is high quality within this many σ of its nearest mode


def nearest_mode(samples: Tensor, means: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """samples (N, 2), means (K, 2) → nearest mode index (N,) and its distance in units of σ (N,)."""
    dist = torch.cdist(samples.double(), means.double())  # (N, K)
    d, idx = dist.min(dim=1)
    return idx, d / sigma


def hq_counts(idx: Tensor, dist_sigmas: Tensor, k: int) -> Tensor:
    """Number of high-quality samples at each of the k modes: (K,) int64."""
    hq = dist_sigmas <= HQ_SIGMAS
    return torch.bincount(idx[hq], minlength=k)


def reverse_kl(counts: Tensor) -> float:
    """KL(p ‖ uniform) of the HQ histogram `counts` (K,), as defined in the module docstring. Counts may
    be fractional weights (a mean softmax, say): p is counts / counts.sum() either way."""
    k = counts.numel()
    total = float(counts.double().sum())
    if total <= 0:
        return math.log(k)
    p = counts[counts > 0].double() / total
    return float((p * (p * k).log()).sum())


def _is_int_dtype(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


@dataclass(frozen=True)
class ModeStats:
    modes: int  # modes captured (out of K)
    hq: float  # fraction of high-quality samples, in [0, 1]
    kl: float  # reverse KL of the HQ histogram to uniform (nats)


def mode_stats(samples: Tensor, bench: Benchmark) -> ModeStats:
    """The three numbers of the VEEGAN/PacGAN tables for generated samples (N, 2) (a tensor or array).
    A NaN sample (a diverged trial) is near no mode, so it counts as low quality."""
    if not isinstance(bench, Benchmark):
        raise UsageError(f"bench must be a ganforge.modes.Benchmark (e.g. BENCHMARKS['ring8']), got {type(bench).__name__}")
    try:
        samples = torch.as_tensor(np.asarray(samples) if not isinstance(samples, Tensor) else samples)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"samples must be an (N, 2) array of points, got {type(samples).__name__} ({exc})") from None
    dims = len(bench.means[0])
    real = samples.is_floating_point() or _is_int_dtype(samples.dtype)
    if samples.ndim != 2 or samples.shape[1] != dims or not len(samples) or not real:
        raise UsageError(f"samples must be real points of shape (N, {dims}), N >= 1, for {bench.name}; "
                         f"got {str(samples.dtype).removeprefix('torch.')} {tuple(samples.shape)}")
    idx, d = nearest_mode(samples, bench.means_tensor(), bench.sigma)
    counts = hq_counts(idx, d, len(bench.means))
    return ModeStats(modes=int((counts > 0).sum()), hq=float(counts.sum()) / samples.shape[0], kl=reverse_kl(counts))
