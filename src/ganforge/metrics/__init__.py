"""Image-quality metrics: full-reference (PSNR, SSIM, MS-SSIM) and distribution metrics
(FID, KID, IS, precision/recall, density/coverage, class coverage) computed from features."""

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

__all__ = [
    "ClassCoverage",
    "DensityCoverage",
    "FeatureStats",
    "FeatureStatsAccumulator",
    "MeanStd",
    "PrecisionRecall",
    "class_coverage",
    "density_coverage",
    "fid_from_stats",
    "frechet_distance",
    "inception_score",
    "kid",
    "ms_ssim",
    "precision_recall",
    "psnr",
    "rgb_to_y",
    "ssim",
]
