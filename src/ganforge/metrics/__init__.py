"""Image-quality metrics: full-reference (PSNR, SSIM, MS-SSIM) and distribution metrics
(FID, KID, IS, precision/recall, density/coverage, class coverage) computed from features.

    evaluate(target, metrics="fid,kid")   # images -> features -> stats -> values + protocol (a run: its own evaluator and data)
    compare([run_a, run_b], metrics="fid", seeds=[0, 1, 2])   # several targets under one protocol
    evaluate_pairs(pred, gt, metrics="psnr,ssim")                # per-image and mean full-reference metrics
    load_extractor("inception-v3-fid", weights=PATH)             # the feature-extractor registry

``evaluate``, ``evaluate_pairs`` and the extractors are imported lazily: they pull in the
evaluator networks, which themselves import this package.
"""

from ganforge.metrics.distribution import (
    ClassCoverage,
    DensityCoverage,
    FeatureStats,
    FeatureStatsAccumulator,
    MeanStd,
    PrecisionRecall,
    class_coverage,
    density_coverage,
    fid_from_stats,
    frechet_distance,
    inception_score,
    kid,
    precision_recall,
)
from ganforge.metrics.fullref import ms_ssim, psnr, rgb_to_y, ssim

_LAZY = {
    "evaluate": "ganforge.metrics.evaluation",
    "EvalResult": "ganforge.metrics.evaluation",
    "MetricOptions": "ganforge.metrics.evaluation",
    "compare": "ganforge.metrics.comparison",
    "Comparison": "ganforge.metrics.comparison",
    "evaluate_pairs": "ganforge.metrics.pairs",
    "PairResult": "ganforge.metrics.pairs",
    "EXTRACTORS": "ganforge.metrics.extractors",
    "FeatureExtractor": "ganforge.metrics.extractors",
    "load_extractor": "ganforge.metrics.extractors",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganforge.metrics' has no attribute {name!r}")


__all__ = [
    "EXTRACTORS",
    "ClassCoverage",
    "DensityCoverage",
    "EvalResult",
    "FeatureExtractor",
    "FeatureStats",
    "FeatureStatsAccumulator",
    "MeanStd",
    "MetricOptions",
    "PairResult",
    "PrecisionRecall",
    "class_coverage",
    "density_coverage",
    "evaluate",
    "evaluate_pairs",
    "fid_from_stats",
    "frechet_distance",
    "inception_score",
    "kid",
    "load_extractor",
    "ms_ssim",
    "precision_recall",
    "psnr",
    "rgb_to_y",
    "ssim",
]
