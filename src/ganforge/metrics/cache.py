"""The on-disk cache of reference statistics, keyed on everything that affects them.

Reference features are the expensive, repeated part of an evaluation (50k images through
Inception for every checkpoint scored), so ``evaluate`` keeps, per reference set:

    mu, sigma, n        FeatureStats of the reference features (FID)
    feats               the raw (n_ref, D) features in the extractor's dtype (KID, P/R, D/C)
                        - only written when a metric needed them
    class_hist          (K,) predicted-class counts of the reference (class KL)

The key is the sha256 of a JSON object holding the extractor identity (name, weights sha256,
resize, normalisation, dtype, input size), the sha256 of the exact reference *pixels* that were
featurised (so the source, subset, n_ref and seed are all covered, and a file edited in place
misses) and the cache format. Files are written atomically (temporary file, fsync, os.replace)
under ``$GANFORGE_CACHE`` or ``~/.cache/ganforge``; a corrupt file counts as a miss, and a cache
that cannot be written is warned about and skipped: it only saves time, so it never ends an
evaluation (or the training run evaluating itself).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforge.errors import UsageError
from ganforge.io import atomic_write
from ganforge.metrics.distribution import FeatureStats

log = logging.getLogger("ganforge.eval")

CACHE_ENV = "GANFORGE_CACHE"  # overrides ~/.cache/ganforge
CACHE_FORMAT = 2  # bump when what is stored, or how it is computed, changes (2: features in true fp32 on GPUs, standard strides)


def cache_root() -> Path:
    """``$GANFORGE_CACHE``, or ``~/.cache/ganforge`` (``$XDG_CACHE_HOME/ganforge`` when that is set)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "ganforge"


def cache_key(fields: dict) -> str:
    """sha256 of the canonical JSON of ``fields`` (plus the cache format)."""
    blob = json.dumps({"format": CACHE_FORMAT, **fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class RefEntry:
    """Cached statistics of one featurised reference set."""

    stats: FeatureStats  # mean/covariance of the reference features
    feats: np.ndarray | None  # (n_ref, D) raw features, or None when no metric needed them
    class_hist: np.ndarray | None  # (K,) int64 predicted-class counts, or None without a classifier


def ref_path(key: str) -> Path:
    return cache_root() / "ref-stats" / f"{key[:32]}.npz"


def load_ref(key: str, *, need_feats: bool) -> RefEntry | None:
    """The cached entry for ``key``, or None (absent, lacking features that are needed, or unreadable)."""
    path = ref_path(key)
    try:
        if not path.is_file():  # inside the try: an unreadable cache folder is a miss too
            return None
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:  # a 128-bit prefix collision, or a hand-copied file
                return None
            if need_feats and "feats" not in z.files:
                return None
            stats = FeatureStats(mu=z["mu"], sigma=z["sigma"], n=int(z["n"]))
            feats = z["feats"] if "feats" in z.files else None
            hist = z["class_hist"] if "class_hist" in z.files else None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable reference cache %s (%s); recomputing", path, exc)
        return None
    return RefEntry(stats, feats, hist)


def save_ref(key: str, entry: RefEntry, fields: dict) -> Path | None:
    """Write ``entry`` atomically; ``fields`` (what the key was made of) is stored for inspection.
    None, with a warning, when the cache cannot be written (read-only, full, not a folder)."""
    arrays = {"key": np.array(key), "fields": np.array(json.dumps(fields, sort_keys=True)),
              "mu": entry.stats.mu, "sigma": entry.stats.sigma, "n": np.int64(entry.stats.n)}
    if entry.feats is not None:
        arrays["feats"] = entry.feats
    if entry.class_hist is not None:
        arrays["class_hist"] = entry.class_hist
    path = ref_path(key)
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except (UsageError, OSError) as exc:  # atomic_write reports an OSError as a UsageError naming the path
        # the same text for every key, so a caller's logs.WarnOnce (periodic evaluation, compare) shows it once
        log.warning("cannot cache reference statistics under %s (%s); going on without the cache (set %s to a "
                    "writable folder to keep them)", cache_root(), _reason(exc), CACHE_ENV)
        return None
    return path


def _reason(exc: BaseException) -> str:
    """``exc``'s OS reason ("Permission denied"), without the path, which varies with the key."""
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    return (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(exc)
