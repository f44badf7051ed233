"""Distribution metrics from feature arrays: FID, KID, IS, precision/recall, density/coverage, class coverage.

A distribution metric is features -> statistics -> value (as torch-fidelity): a feature network
(elsewhere) turns images into an (N, D) array, this module turns arrays into statistics and
values. Every function is pure, accepts numpy arrays or torch tensors (any device, any float
dtype) and computes in float64. Only FID has a compact statistic (``FeatureStats``: mean,
covariance, count) worth caching on its own; the others need the features themselves.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Union

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import UsageError, is_int

ArrayLike = Union[np.ndarray, Tensor]

# Pairwise-distance blocks hold at most this many float64 entries (128 MiB), whatever N and M.
DIST_CHUNK_ELEMS = 2**24


class MeanStd(NamedTuple):
    mean: float  # mean over subsets (KID) or splits (IS)
    std: float  # population standard deviation (ddof=0), as torch-fidelity and the original IS code


class PrecisionRecall(NamedTuple):
    precision: float  # fraction of fake samples inside the real manifold
    recall: float  # fraction of real samples inside the fake manifold


class DensityCoverage(NamedTuple):
    density: float  # mean number of real balls containing a fake sample, divided by k (can exceed 1)
    coverage: float  # fraction of real balls containing at least one fake sample


class ClassCoverage(NamedTuple):
    covered: int  # number of classes predicted for at least min_count samples (min_count[c] if per class)
    kl: float  # KL(predicted class histogram || reference histogram) in nats


# ---------------------------------------------------------------------------------------------
# Statistics: mean and covariance, streamed


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Mean and covariance of N feature vectors: the statistic behind FID.

    sigma is the unbiased covariance (divides by n - 1, like ``np.cov`` in pytorch-fid and
    torch-fidelity). Build it with ``FeatureStats.from_features`` or a ``FeatureStatsAccumulator``.
    """

    mu: np.ndarray  # (D,) float64 mean
    sigma: np.ndarray  # (D, D) float64 covariance
    n: int  # number of feature vectors

    @classmethod
    def from_features(cls, feats: ArrayLike, *, batch_size: int | None = None) -> FeatureStats:
        """Statistics of an (N, D) array, fed to the accumulator in batches of ``batch_size`` rows."""
        feats = _as_f64(feats, "feats")
        if batch_size is not None and not (is_int(batch_size) and batch_size >= 1):
            raise UsageError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
        acc = FeatureStatsAccumulator()
        step = batch_size or max(len(feats), 1)
        for start in range(0, len(feats), step):
            acc.update(feats[start : start + step])
        return acc.result()

    def save(self, path: str | os.PathLike) -> None:
        """Write ``mu``, ``sigma`` and ``n`` to an .npz file atomically (temporary file + os.replace)."""
        try:
            _atomic_savez(path, mu=self.mu, sigma=self.sigma, n=np.int64(self.n))
        except OSError as exc:  # a missing or read-only folder, a file in the way, a full disk
            raise UsageError(f"could not write feature statistics to {os.fspath(path)}: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        try:
            with np.load(path, allow_pickle=False) as z:
                mu, sigma, n = z["mu"], z["sigma"], int(z["n"])
        except FileNotFoundError:
            raise UsageError(f"feature statistics file not found: {os.fspath(path)}") from None
        except (KeyError, ValueError, OSError) as e:
            raise UsageError(f"not a ganforge feature statistics file: {os.fspath(path)} ({e})") from None
        if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)) or n < 2:
            raise UsageError(
                f"corrupt feature statistics in {os.fspath(path)}: mu {mu.shape}, sigma {sigma.shape}, n={n}"
            )
        return cls(mu=mu.astype(np.float64), sigma=sigma.astype(np.float64), n=n)


class FeatureStatsAccumulator:
    """Streaming mean and covariance in float64, independent of how the rows are batched.

    Keeps the count, the sum and the sum of outer products of the rows, shifted by the first
    row ever seen (a fixed shift changes nothing mathematically but avoids the cancellation
    of E[xx^T] - mu mu^T when the mean is large compared with the spread).
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: np.ndarray | None = None  # (D,) first row seen
        self._sum: np.ndarray | None = None  # (D,) sum of shifted rows
        self._outer: np.ndarray | None = None  # (D, D) sum of outer products of shifted rows

    def update(self, feats: ArrayLike) -> None:
        feats = _as_f64(feats, "feats")  # (B, D)
        if len(feats) == 0:
            return
        if self._shift is None:
            d = feats.shape[1]
            self._shift = feats[0].copy()
            self._sum = np.zeros(d)
            self._outer = np.zeros((d, d))
        elif feats.shape[1] != len(self._shift):
            raise UsageError(
                f"feature dimension changed between batches: {len(self._shift)} then {feats.shape[1]}"
            )
        x = feats - self._shift
        self.n += len(x)
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x

    def result(self) -> FeatureStats:
        if self.n < 2:
            raise UsageError(f"feature statistics need at least 2 feature vectors, got {self.n}")
        mean_shifted = self._sum / self.n
        sigma = (self._outer - self.n * np.outer(mean_shifted, mean_shifted)) / (self.n - 1)
        sigma = (sigma + sigma.T) / 2  # exact symmetry; BLAS may differ in the last bit
        return FeatureStats(mu=self._shift + mean_shifted, sigma=sigma, n=self.n)


# ---------------------------------------------------------------------------------------------
# FID


# Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
# Equilibrium": d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).
def frechet_distance(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike
) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    tr (S1 S2)^(1/2) is computed without a general matrix square root: S1 S2 is similar to the
    symmetric PSD matrix S1^(1/2) S2 S1^(1/2), so the trace is the sum of the square roots of
    its eigenvalues (two ``eigh`` calls, eigenvalues clamped at 0). This agrees with pytorch-fid's
    ``scipy.linalg.sqrtm`` route where that converges and stays real where it does not
    (singular covariances, fewer samples than dimensions). Covariances are symmetrised; the
    result is clamped at 0 (rounding can make identical inputs give -1e-12).
    """
    mu1, mu2 = _as_f64(mu1, "mu1", ndim=1), _as_f64(mu2, "mu2", ndim=1)
    sigma1, sigma2 = _as_f64(sigma1, "sigma1"), _as_f64(sigma2, "sigma2")
    d = len(mu1)
    for name, shape in [("mu2", mu2.shape), ("sigma1", sigma1.shape), ("sigma2", sigma2.shape)]:
        want = (d,) if name == "mu2" else (d, d)
        if shape != want:
            raise UsageError(f"frechet_distance: mu1 has dimension {d} but {name} has shape {shape}")
    for name, sig in (("sigma1", sigma1), ("sigma2", sigma2)):  # rounding leaves ~1e-16 relative asymmetry
        if np.abs(sig - sig.T).max() > 1e-6 * max(np.abs(sig).max(), 1e-300):
            raise UsageError(f"frechet_distance: {name} is not symmetric, so not a covariance (give FeatureStats.sigma)")
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * _trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """FID between two cached statistics (features must come from the same network and layer)."""
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr (s1 s2)^(1/2) for symmetric PSD s1, s2."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # s1^(1/2)
    m = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


# ---------------------------------------------------------------------------------------------
# KID


# KID subsets a call may ask for: 100 is usual (torch-fidelity, StyleGAN2-ADA), one subset of 1000 images
# takes ~10 ms, and a count a digit too long otherwise ends as numpy's "Unable to allocate 745 GiB".
MAX_KID_SUBSETS = 10_000


# Bińkowski et al. 2018, "Demystifying MMD GANs": the unbiased MMD^2 estimate with the cubic
# polynomial kernel k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/D, averaged over random
# subsets. Subsets are drawn exactly as torch-fidelity does (np.random.RandomState(seed), one
# choice without replacement for each set per subset), so equal seeds give equal numbers.
def kid(
    feats_a: ArrayLike,
    feats_b: ArrayLike,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> MeanStd:
    """Kernel Inception Distance: mean and std of MMD^2 over ``subsets`` random subsets."""
    a, b = _as_f64(feats_a, "feats_a"), _as_f64(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise UsageError(f"kid: feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    if not is_int(subsets) or not 1 <= subsets <= MAX_KID_SUBSETS:
        raise UsageError(f"kid: subsets must be an integer from 1 to {MAX_KID_SUBSETS:,}, got {subsets!r}")
    if not is_int(subset_size) or subset_size < 2:
        raise UsageError(f"kid: subset_size must be an integer >= 2, got {subset_size!r}")
    if not is_int(degree) or degree < 1:
        raise UsageError(f"kid: degree must be an integer >= 1 (3: the cubic kernel), got {degree!r}")
    if gamma is not None and not (_is_real(gamma) and math.isfinite(gamma) and gamma > 0):
        raise UsageError(f"kid: gamma must be a finite number > 0, or None for 1 / D, got {gamma!r}")
    if not (_is_real(coef0) and math.isfinite(coef0)):
        raise UsageError(f"kid: coef0 must be a finite number, got {coef0!r}")
    for name, n in [("feats_a", len(a)), ("feats_b", len(b))]:
        if subset_size > n:
            raise UsageError(f"kid: subset_size={subset_size} is larger than the {n} samples in {name}; "
                             f"lower subset_size to at most {n}")
    if not is_int(seed) or not 0 <= seed <= 2**32 - 1:
        raise UsageError(f"kid: seed must be an integer from 0 to 2**32 - 1 (numpy's RandomState), got {seed!r}")
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        x = a[rng.choice(len(a), subset_size, replace=False)]
        y = b[rng.choice(len(b), subset_size, replace=False)]
        mmds[i] = _polynomial_mmd2(x, y, degree=degree, gamma=gamma, coef0=coef0)
    return MeanStd(float(mmds.mean()), float(mmds.std()))


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray, *, degree: int, gamma: float | None, coef0: float) -> float:
    """Unbiased MMD^2 of two equal-size sets: diagonal terms of k(x, x) and k(y, y) dropped."""
    m = len(x)
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (g * (x @ x.T) + coef0) ** degree
    k_yy = (g * (y @ y.T) + coef0) ** degree
    k_xy = (g * (x @ y.T) + coef0) ** degree
    off_xx = k_xx.sum() - np.trace(k_xx)
    off_yy = k_yy.sum() - np.trace(k_yy)
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


# ---------------------------------------------------------------------------------------------
# Inception Score


# Salimans et al. 2016, "Improved Techniques for Training GANs": IS = exp E_x KL(p(y|x) || p(y)),
# computed as the original code and torch-fidelity do: split the N samples into ``splits``
# consecutive chunks, estimate p(y) per chunk, report mean and std of the per-chunk scores.
def inception_score(probs: ArrayLike, splits: int = 10, *, shuffle_seed: int | None = None) -> MeanStd:
    """Inception Score from class probabilities (N, K) (softmax outputs, not logits).

    shuffle_seed: None keeps the given order (original code); an int permutes the rows with
    np.random.RandomState(shuffle_seed) first (torch-fidelity, which uses 2020).
    Terms with p(y|x) = 0 contribute 0 (0 log 0 = 0).
    """
    p = _as_f64(probs, "probs")
    n = len(p)
    if not is_int(splits) or not 1 <= splits <= n:
        raise UsageError(f"inception_score: splits must be an integer between 1 and the {n} samples, got {splits!r}")
    if shuffle_seed is not None and not (is_int(shuffle_seed) and 0 <= shuffle_seed <= 2**32 - 1):
        raise UsageError(f"inception_score: shuffle_seed must be None or an integer from 0 to 2**32 - 1, got {shuffle_seed!r}")
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise UsageError("inception_score needs class probabilities (rows >= 0 summing to 1), not logits")
    if shuffle_seed is not None:
        p = p[np.random.RandomState(shuffle_seed).permutation(n)]
    scores = np.empty(splits)
    for i in range(splits):
        chunk = p[i * n // splits : (i + 1) * n // splits]  # (n_i, K)
        marginal = chunk.mean(axis=0, keepdims=True)  # (1, K) p(y) estimate
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(marginal)), 0.0)
        scores[i] = np.exp(kl.sum(axis=1).mean())
    return MeanStd(float(scores.mean()), float(scores.std()))


# ---------------------------------------------------------------------------------------------
# Manifold metrics: precision/recall, density/coverage


# Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative
# Models": each sample's ball has radius = distance to its k-th nearest neighbour in its own set
# (self excluded). precision = fraction of fakes inside some real ball, recall = fraction of reals
# inside some fake ball; "inside" includes the boundary (<=), as the paper's code.
def precision_recall(
    real: ArrayLike, fake: ArrayLike, *, k: int = 3, device: str | torch.device = "cpu"
) -> PrecisionRecall:
    """Improved precision and recall; distances are computed in float64 blocks on ``device``."""
    r, f = _pair_as_torch(real, fake, k=k, device=device, name="precision_recall")
    real_r2 = _kth_nn_sq_radius(r, k)  # (N,)
    fake_r2 = _kth_nn_sq_radius(f, k)  # (M,)
    # One pass over the real-fake distances answers both questions: rows for recall, columns for precision.
    in_real = torch.zeros(len(f), dtype=torch.bool, device=f.device)  # (M,) fake inside some real ball
    in_fake = []  # (rows,) per block: real inside some fake ball
    for s, d2 in _sq_dist_blocks(r, f):  # d2: (rows of real, M)
        in_real |= (d2 <= real_r2[s : s + len(d2), None]).any(dim=0)
        in_fake.append((d2 <= fake_r2).any(dim=1))
    return PrecisionRecall(in_real.double().mean().item(), torch.cat(in_fake).double().mean().item())


# Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models": only the
# real balls are used (k-th neighbour radius, self excluded). density = mean over fakes of the
# number of real balls containing it, divided by k; coverage = fraction of real balls whose
# nearest fake lies inside. "Inside" is strict (<), as the authors' prdc package.
def density_coverage(
    real: ArrayLike, fake: ArrayLike, *, k: int = 5, device: str | torch.device = "cpu"
) -> DensityCoverage:
    """Density and coverage; distances are computed in float64 blocks on ``device``."""
    r, f = _pair_as_torch(real, fake, k=k, device=device, name="density_coverage")
    real_r2 = _kth_nn_sq_radius(r, k)  # (N,)
    counts = torch.zeros(len(f), dtype=torch.int64, device=f.device)  # (M,) real balls holding each fake
    covered = []  # (rows,) per block: nearest fake inside the real ball
    for s, d2 in _sq_dist_blocks(r, f):  # d2: (rows of real, M)
        inside = d2 < real_r2[s : s + len(d2), None]
        counts += inside.sum(dim=0)
        covered.append(inside.any(dim=1))  # same as: nearest fake distance < radius
    return DensityCoverage(counts.double().mean().item() / k, torch.cat(covered).double().mean().item())


def _pair_as_torch(real: ArrayLike, fake: ArrayLike, *, k: int, device, name: str) -> tuple[Tensor, Tensor]:
    from ganforge.device import resolve_device

    if not is_int(k) or k < 1:
        raise UsageError(f"{name}: k must be an integer >= 1, got {k!r}")
    device = resolve_device(str(device), "device")  # "gpu", cuda without CUDA: one line
    r = torch.from_numpy(_as_f64(real, "real")).to(device)
    f = torch.from_numpy(_as_f64(fake, "fake")).to(device)
    if r.shape[1] != f.shape[1]:
        raise UsageError(f"{name}: feature dimensions differ: real {r.shape[1]}, fake {f.shape[1]}")
    for set_name, n in [("real", len(r)), ("fake", len(f))]:
        if k >= n:
            raise UsageError(f"{name}: k={k} needs more than k samples, but {set_name} has {n}")
    return r, f


def _sq_dist_blocks(a: Tensor, b: Tensor) -> Iterator[tuple[int, Tensor]]:
    """Yield (first row, squared Euclidean distances of a block of rows of a to all of b)."""
    rows = max(1, DIST_CHUNK_ELEMS // len(b))
    b_sq = (b * b).sum(dim=1)  # (M,)
    for start in range(0, len(a), rows):
        x = a[start : start + rows]  # (rows, D)
        d2 = (x * x).sum(dim=1, keepdim=True) + b_sq - 2.0 * (x @ b.T)  # (rows, M)
        yield start, d2.clamp_min_(0.0)


def _kth_nn_sq_radius(x: Tensor, k: int) -> Tensor:
    """Squared distance from each row of x to its k-th nearest other row: (N,)."""
    out = []
    for start, d2 in _sq_dist_blocks(x, x):
        idx = torch.arange(len(d2), device=x.device)
        d2[idx, start + idx] = -1.0  # self sorts first, so the (k+1)-th smallest is the k-th neighbour
        out.append(d2.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Class coverage (mode counting, e.g. on Stacked MNIST with a pretrained classifier)


def class_coverage(
    pred_labels_or_probs: ArrayLike,
    num_classes: int,
    ref_hist: ArrayLike | None = None,
    *,
    min_count: int | ArrayLike = 1,
    eps: float = 1e-10,
) -> ClassCoverage:
    """Number of classes covered and KL(p || q) between predicted and reference class frequencies.

    pred_labels_or_probs: (N,) integer labels, or (N, num_classes) probabilities/logits whose
    argmax is the label. p_c = (number of samples labelled c) / N. q = ref_hist / sum(ref_hist)
    (counts or frequencies), uniform if None. covered = #{c : count_c >= min_count}, with min_count
    one number or (num_classes,) thresholds (see ``coverage_thresholds``).

    KL = sum over classes with p_c > 0 of p_c log(p_c / q~_c), in nats. Classes with p_c = 0
    contribute exactly 0 (0 log 0 = 0, no epsilon on p). The reference is smoothed,
    q~ = (q + eps) / (1 + num_classes * eps), so a class the reference never shows costs a large
    finite log(p_c / eps)-sized penalty instead of inf; a uniform q is left exactly uniform.
    """
    if not is_int(num_classes) or num_classes < 1:
        raise UsageError(f"class_coverage: num_classes must be an integer >= 1, got {num_classes!r}")
    if not (_is_real(eps) and math.isfinite(eps) and 0 < eps < 1):
        raise UsageError(f"class_coverage: eps must be a small number > 0 (default 1e-10), got {eps!r}")
    min_count = _check_min_count(min_count, num_classes)
    x = _as_f64(pred_labels_or_probs, "pred_labels_or_probs", ndim=None)
    if x.ndim == 2:
        if x.shape[1] != num_classes:
            raise UsageError(f"class_coverage: probabilities have {x.shape[1]} columns, num_classes={num_classes}")
        labels = x.argmax(axis=1)
    elif x.ndim == 1:
        if (x != np.round(x)).any() or (x < 0).any() or (x >= num_classes).any():
            raise UsageError(f"class_coverage: labels must be integers in [0, {num_classes}), got {x.min()}..{x.max()}")
        labels = x.astype(np.int64)
    else:
        raise UsageError(f"class_coverage: expected labels (N,) or probabilities (N, K), got shape {x.shape}")
    if len(labels) == 0:
        raise UsageError("class_coverage: no predictions given")
    counts = np.bincount(labels, minlength=num_classes)
    p = counts / counts.sum()
    if ref_hist is None:
        q = np.full(num_classes, 1.0 / num_classes)
    else:
        q = _as_f64(ref_hist, "ref_hist", ndim=1)
        if q.shape != (num_classes,) or (q < 0).any() or q.sum() <= 0:
            raise UsageError(
                f"class_coverage: ref_hist must be {num_classes} non-negative numbers with a positive sum"
            )
        q = q / q.sum()
    q = (q + eps) / (1.0 + num_classes * eps)
    nz = p > 0
    kl = float(np.sum(p[nz] * np.log(p[nz] / q[nz])))
    return ClassCoverage(int((counts >= min_count).sum()), kl)


def _check_min_count(min_count, num_classes: int) -> np.ndarray:
    """min_count -> int64 () or (num_classes,), each an integer >= 1 (0 would count every class as covered)."""
    m = np.asarray(min_count)
    if not np.issubdtype(m.dtype, np.integer) or m.shape not in ((), (num_classes,)) or (m < 1).any():
        raise UsageError(f"class_coverage: min_count must be one integer >= 1 or {num_classes} of them (one per "
                         f"class), got {min_count!r}")
    return m.astype(np.int64)


def coverage_thresholds(n: int, num_classes: int, fraction: float, ref_hist: ArrayLike | None = None) -> np.ndarray:
    """Images a class needs among ``n`` to count as covered: (num_classes,) int64.

    A fraction of a uniform share, max(1, ceil(fraction * n / K)), as mode counting on Stacked MNIST
    assumes. A skewed reference lowers it to the class's own share: a class the reference shows at
    q_c < 1/K needs max(1, ceil(fraction * n * q_c)), so a generator that matches the reference
    covers every class it shows (with the uniform rule a class under a tenth of a uniform share
    counted as missed even when drawn in exactly the reference's frequency). Classes the reference
    never shows keep the uniform threshold; no class needs more than it.
    """
    uniform = max(1, math.ceil(fraction * n / max(num_classes, 1)))
    out = np.full(num_classes, uniform, dtype=np.int64)
    if ref_hist is not None:
        q = np.asarray(ref_hist, dtype=np.float64)
        q = q / q.sum()
        own = np.maximum(1, np.ceil(fraction * n * q - 1e-9)).astype(np.int64)  # 1e-9: 0.1 * 1000 * 0.1 is 10
        shown = q > 0
        out[shown] = np.minimum(out[shown], own[shown])
    return out


# ---------------------------------------------------------------------------------------------
# Helpers


def _as_f64(x: ArrayLike, name: str, ndim: int | None = 2) -> np.ndarray:
    """A finite float64 numpy array (torch tensors are detached and copied to the CPU)."""
    try:  # strings, ragged lists, objects, complex numbers: one line
        if np.iscomplexobj(x) or (isinstance(x, Tensor) and x.is_complex()):
            raise ValueError("complex numbers")
        x = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name} must be an array of real numbers, got {type(x).__name__} ({str(exc)[:80]})") from None
    if ndim is not None and x.ndim != ndim:
        want = "(N, D)" if ndim == 2 else "(D,)"
        raise UsageError(f"{name} must have shape {want}, got {x.shape}")
    if x.ndim == 2 and x.shape[1] == 0:
        raise UsageError(f"{name} has no feature dimensions: shape {x.shape}")
    if not np.isfinite(x).all():
        raise UsageError(f"{name} contains NaN or infinite values")
    return x


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)  # numpy's floats and ints too


def _atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
