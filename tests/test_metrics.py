"""Metric math against reference implementations (scikit-image, scipy, pytorch_msssim, brute force)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import skimage.data
import skimage.metrics
import torch

from ganforge.errors import UsageError
from ganforge.metrics import (
    FeatureStats,
    FeatureStatsAccumulator,
    class_coverage,
    density_coverage,
    fid_from_stats,
    frechet_distance,
    inception_score,
    kid,
    ms_ssim,
    precision_recall,
    psnr,
    rgb_to_y,
    ssim,
)
from ganforge.metrics import distribution


def _nchw(x: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) numpy -> (N, C, H, W) torch."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _noisy_pair(rng, n=3, h=32, w=40, c=3, data_range=1.0, noise=0.1):
    target = rng.uniform(0, data_range, size=(n, h, w, c))
    pred = np.clip(target + rng.normal(0, noise * data_range, size=target.shape), 0, data_range)
    return pred, target


# ---------------------------------------------------------------------------------------------
# Full-reference metrics


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_matches_skimage(data_range):
    pred, target = _noisy_pair(np.random.default_rng(0), data_range=data_range)
    ours = psnr(_nchw(pred), _nchw(target), data_range=data_range).numpy()
    ref = [skimage.metrics.peak_signal_noise_ratio(t, p, data_range=data_range) for p, t in zip(pred, target)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


def test_psnr_identical_is_inf_and_uint8_does_not_wrap():
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    assert torch.isinf(psnr(x, x, data_range=255)).all()
    a = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    b = torch.full((1, 1, 4, 4), 10, dtype=torch.uint8)  # a - b would wrap to 246 in uint8
    assert psnr(a, b, data_range=255).item() == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-9)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage_random(channels):
    pred, target = _noisy_pair(np.random.default_rng(1), c=channels, noise=0.2)
    ours = ssim(_nchw(pred), _nchw(target), data_range=1.0).numpy()
    ref = [
        skimage.metrics.structural_similarity(
            t, p, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
        )
        for p, t in zip(pred, target)
    ]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("image", ["astronaut", "camera"])
def test_ssim_matches_skimage_real_image(image):
    img = getattr(skimage.data, image)()[100:260, 150:310].astype(np.float64)  # 160x160 crop, 0..255
    img = img if img.ndim == 3 else img[..., None]
    rng = np.random.default_rng(2)
    noisy = np.clip(img + rng.normal(0, 20, img.shape), 0, 255)
    ours = ssim(_nchw(noisy[None]), _nchw(img[None]), data_range=255).item()
    ref = skimage.metrics.structural_similarity(
        img, noisy, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert 0.2 < ref < 0.9  # a meaningful, not degenerate, SSIM
    assert ours == pytest.approx(ref, abs=1e-4)


def test_ssim_float32_matches_float64_and_identity_is_one():
    pred, target = _noisy_pair(np.random.default_rng(3), data_range=255.0)
    p64, t64 = _nchw(pred), _nchw(target)
    s64 = ssim(p64, t64, data_range=255)
    s32 = ssim(p64.float(), t64.float(), data_range=255)
    assert s32.dtype == torch.float32 and s64.dtype == torch.float64
    np.testing.assert_allclose(s32.double().numpy(), s64.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(ssim(t64, t64, data_range=255).numpy(), 1.0, rtol=0, atol=1e-12)
    # per-image values do not depend on the rest of the batch
    np.testing.assert_allclose(ssim(p64[1:2], t64[1:2], data_range=255).numpy(), s64[1:2].numpy(), atol=1e-12)


def _ms_ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Direct numpy/scipy MS-SSIM of one (H, W) pair whose sides stay even for four halvings."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    win = np.outer(g, g) / g.sum() ** 2
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def filt(a):
        return scipy.signal.convolve2d(a, win, mode="valid")

    terms = []
    for scale in range(5):
        mx, my = filt(x), filt(y)
        vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        terms.append(max(cs.mean(), 0.0) if scale < 4 else max((lum * cs).mean(), 0.0))
        if scale == 4:
            break
        h, w = x.shape
        x = x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        y = y.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return float(np.prod(np.array(terms) ** np.array(weights)))


def test_ms_ssim_matches_numpy_reference():
    pred, target = _noisy_pair(np.random.default_rng(4), n=2, h=176, w=192, c=2, noise=0.3)
    # smooth the targets a little so the coarse scales carry structure
    target = (target + np.roll(target, 1, axis=1) + np.roll(target, 1, axis=2)) / 3
    ours = ms_ssim(_nchw(pred), _nchw(target), data_range=1.0).numpy()
    ref = [
        np.mean([_ms_ssim_reference(p[..., ch], t[..., ch], 1.0) for ch in range(p.shape[-1])])
        for p, t in zip(pred, target)
    ]
    assert all(0.05 < r < 0.99 for r in ref)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_ms_ssim_matches_pytorch_msssim():
    pytorch_msssim = pytest.importorskip("pytorch_msssim", reason="pytorch-msssim not installed")
    pred, target = _noisy_pair(np.random.default_rng(5), n=2, h=165, w=183, c=3, data_range=255.0, noise=0.2)
    p, t = _nchw(pred), _nchw(target)  # odd sides exercise the padded pooling
    ours = ms_ssim(p, t, data_range=255).numpy()
    ref = pytorch_msssim.ms_ssim(p, t, data_range=255, size_average=False).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


def test_ms_ssim_small_image_error_names_minimum():
    x = torch.rand(1, 3, 160, 300)
    with pytest.raises(UsageError, match="at least 161x161"):
        ms_ssim(x, x, data_range=1.0)
    with pytest.raises(UsageError, match="at least 11x11"):
        ssim(x[..., :10, :10], x[..., :10, :10], data_range=1.0)


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_rgb_to_y_hand_values(data_range):
    white = torch.full((1, 3, 2, 2), data_range, dtype=torch.float64)
    black = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    red = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    red[:, 0] = data_range
    scale = data_range / 255.0
    np.testing.assert_allclose(rgb_to_y(white, data_range=data_range).numpy(), 235.0 * scale, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(black, data_range=data_range).numpy(), 16.0 * scale, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(red, data_range=data_range).numpy(), (16 + 65.481) * scale, atol=1e-9)
    assert rgb_to_y(white, data_range=data_range).shape == (1, 1, 2, 2)


def test_y_channel_psnr_and_ssim_use_luma():
    pred, target = _noisy_pair(np.random.default_rng(6), data_range=255.0)
    y = lambda a: 16 + a @ np.array([65.481, 128.553, 24.966]) / 255.0  # (N, H, W) on 0..255
    ours = psnr(_nchw(pred), _nchw(target), data_range=255, y_channel=True).numpy()
    ref = [skimage.metrics.peak_signal_noise_ratio(y(t), y(p), data_range=255) for p, t in zip(pred, target)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)
    ours_ssim = ssim(_nchw(pred), _nchw(target), data_range=255, y_channel=True).numpy()
    ref_ssim = [
        skimage.metrics.structural_similarity(
            y(t), y(p), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        for p, t in zip(pred, target)
    ]
    np.testing.assert_allclose(ours_ssim, ref_ssim, rtol=0, atol=1e-4)


def test_crop_removes_border():
    pred, target = _noisy_pair(np.random.default_rng(7), h=30, w=34)
    p, t = _nchw(pred), _nchw(target)
    inner = (..., slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(
        psnr(p, t, data_range=1.0, crop=4).numpy(), psnr(p[inner], t[inner], data_range=1.0).numpy(), atol=1e-12
    )
    np.testing.assert_allclose(
        ssim(p, t, data_range=1.0, crop=4).numpy(), ssim(p[inner], t[inner], data_range=1.0).numpy(), atol=1e-12
    )
    # a corrupted border does not change the cropped score
    p2 = p.clone()
    p2[..., :4, :] = 0
    assert torch.equal(psnr(p2, t, data_range=1.0, crop=4), psnr(p, t, data_range=1.0, crop=4))


def test_fullref_usage_errors():
    a, b = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 18)
    with pytest.raises(UsageError, match=r"\(2, 3, 16, 16\) and \(2, 3, 16, 18\)"):
        psnr(a, b, data_range=1.0)
    with pytest.raises(UsageError, match="crop=8"):
        psnr(a, a, data_range=1.0, crop=8)
    with pytest.raises(UsageError, match="crop"):
        psnr(a, a, data_range=1.0, crop=-1)
    with pytest.raises(UsageError, match="C=1"):
        psnr(a[:, :1], a[:, :1], data_range=1.0, y_channel=True)
    with pytest.raises(UsageError, match="data_range"):
        ssim(a, a, data_range=0)
    with pytest.raises(UsageError, match=r"\(N, C, H, W\)"):
        psnr(a[0], a[0], data_range=1.0)


# ---------------------------------------------------------------------------------------------
# Feature statistics and FID


def _two_feature_sets(n=300, d=24, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.5
    b = rng.normal(0.3, 1.2, size=(n + 50, d)) @ rng.normal(size=(d, d)) * 0.5
    return a, b


def _scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def test_feature_stats_match_numpy_and_ignore_batch_size():
    a, _ = _two_feature_sets()
    full = FeatureStats.from_features(a)
    np.testing.assert_allclose(full.mu, a.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(full.sigma, np.cov(a, rowvar=False), rtol=1e-10, atol=1e-12)
    assert full.n == len(a)
    for batch_size in [1, 7, 64]:
        s = FeatureStats.from_features(torch.from_numpy(a), batch_size=batch_size)
        np.testing.assert_allclose(s.mu, full.mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(s.sigma, full.sigma, rtol=1e-10, atol=1e-12)
    # a mean far from zero does not cost precision (the accumulator is shifted)
    offset = a[:50, :4] * 1e-3 + 1e4
    np.testing.assert_allclose(
        FeatureStats.from_features(offset, batch_size=8).sigma, np.cov(offset, rowvar=False), rtol=1e-7
    )


def test_feature_stats_save_load_roundtrip(tmp_path):
    a, _ = _two_feature_sets()
    stats = FeatureStats.from_features(a)
    path = tmp_path / "cache" / "stats.npz"
    stats.save(path)
    assert os.listdir(path.parent) == ["stats.npz"]  # no temporary file left behind
    back = FeatureStats.load(path)
    assert back.n == stats.n
    np.testing.assert_array_equal(back.mu, stats.mu)
    np.testing.assert_array_equal(back.sigma, stats.sigma)
    with pytest.raises(UsageError, match="not found"):
        FeatureStats.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(UsageError, match="junk.npz"):
        FeatureStats.load(tmp_path / "junk.npz")


def test_frechet_distance_matches_scipy_sqrtm():
    a, b = _two_feature_sets()
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    ref = _scipy_fid(sa.mu, sa.sigma, sb.mu, sb.sigma)
    ours = frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert ref > 1.0
    assert ours == pytest.approx(ref, rel=1e-6)
    assert fid_from_stats(sa, sb) == ours
    # torch inputs work the same
    assert frechet_distance(*(torch.from_numpy(v) for v in (sa.mu, sa.sigma, sb.mu, sb.sigma))) == pytest.approx(ours)


def test_fid_of_identical_and_singular_statistics():
    a, _ = _two_feature_sets()
    s = FeatureStats.from_features(a)
    assert 0.0 <= frechet_distance(s.mu, s.sigma, s.mu, s.sigma) < 1e-8
    few = FeatureStats.from_features(a[:10])  # rank-9 covariance in 24 dimensions
    value = frechet_distance(few.mu, few.sigma, s.mu, s.sigma)
    assert np.isfinite(value) and value > 0
    assert frechet_distance(few.mu, few.sigma, few.mu, few.sigma) < 1e-6


def test_feature_stats_usage_errors():
    acc = FeatureStatsAccumulator()
    acc.update(np.zeros((3, 4)))
    with pytest.raises(UsageError, match="4 then 5"):
        acc.update(np.zeros((3, 5)))
    with pytest.raises(UsageError, match="at least 2"):
        FeatureStats.from_features(np.zeros((1, 4)))
    with pytest.raises(UsageError, match="dimension 4"):
        frechet_distance(np.zeros(4), np.eye(4), np.zeros(5), np.eye(5))
    with pytest.raises(UsageError, match="NaN"):
        FeatureStats.from_features(np.full((3, 2), np.nan))


# ---------------------------------------------------------------------------------------------
# KID


def _direct_mmd2(x, y):
    """Unbiased MMD^2 with k(u, v) = (u.v / d + 1)^3, written out pair by pair."""
    m, d = x.shape
    k = lambda u, v: (float(u @ v) / d + 1.0) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_direct_mmd():
    a, b = _two_feature_sets(n=60, d=6, seed=1)
    subsets, size, seed = 3, 20, 7
    rng = np.random.RandomState(seed)  # the documented (torch-fidelity) subset sampling
    ref = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        ref.append(_direct_mmd2(x, y))
    mean, std = kid(a, torch.from_numpy(b), subsets=subsets, subset_size=size, seed=seed)
    assert mean == pytest.approx(np.mean(ref), rel=1e-9)
    assert std == pytest.approx(np.std(ref), rel=1e-9)
    assert mean > 0


def test_kid_same_distribution_near_zero_and_errors():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    mean, std = kid(a, b, subsets=10, subset_size=200)
    assert abs(mean) < 3 * std + 1e-3
    with pytest.raises(UsageError, match=r"subset_size=500.*400"):
        kid(a, b, subset_size=500)


# ---------------------------------------------------------------------------------------------
# Inception Score


def test_inception_score_hand_cases():
    k = 7
    mean, std = inception_score(np.full((50, k), 1.0 / k), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    one_hot = np.eye(k)[np.tile(np.arange(k), 10)]  # every split of 7 rows holds each class once
    mean, std = inception_score(torch.from_numpy(one_hot).float(), splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    # two samples: p1 = (1, 0), p2 = (1/2, 1/2), marginal (3/4, 1/4)
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    kl = (np.log(1 / 0.75) + 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)) / 2
    assert inception_score(p, splits=1).mean == pytest.approx(np.exp(kl), rel=1e-12)


def test_inception_score_shuffle_and_errors():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(40, 5)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    perm = np.random.RandomState(2020).permutation(40)
    assert inception_score(probs, 4, shuffle_seed=2020) == inception_score(probs[perm], 4)
    with pytest.raises(UsageError, match="not logits"):
        inception_score(logits)
    with pytest.raises(UsageError, match="splits"):
        inception_score(probs, splits=41)


# ---------------------------------------------------------------------------------------------
# Precision / recall, density / coverage


def _brute_prdc(real, fake, k):
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    d_rf = np.linalg.norm(real[:, None] - fake[None], axis=-1)  # (N, M)
    r_real = np.sort(d_rr, axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(d_ff, axis=1)[:, k]
    precision = np.mean([(d_rf[:, j] <= r_real).any() for j in range(len(fake))])
    recall = np.mean([(d_rf[i] <= r_fake).any() for i in range(len(real))])
    density = np.mean([(d_rf[:, j] < r_real).sum() for j in range(len(fake))]) / k
    coverage = np.mean([d_rf[i].min() < r_real[i] for i in range(len(real))])
    return precision, recall, density, coverage


@pytest.mark.parametrize("chunk_elems", [2**24, 37])  # one block, and many ragged blocks
def test_prdc_matches_brute_force(monkeypatch, chunk_elems):
    monkeypatch.setattr(distribution, "DIST_CHUNK_ELEMS", chunk_elems)
    rng = np.random.default_rng(5)
    real = rng.normal(size=(80, 5))
    fake = rng.normal(1.0, 1.0, size=(64, 5))
    for k in (3, 5):
        p, r, d, c = _brute_prdc(real, fake, k)
        assert 0 < p < 1 and 0 < r < 1 and 0 < c < 1  # a non-trivial case
        assert precision_recall(real, torch.from_numpy(fake).float().double(), k=k) == pytest.approx((p, r), abs=1e-12)
        assert density_coverage(real, fake, k=k) == pytest.approx((d, c), abs=1e-12)


def test_prdc_identical_sets_and_errors():
    x = np.random.default_rng(6).normal(size=(30, 4))
    assert precision_recall(x, x, k=3) == (1.0, 1.0)
    assert density_coverage(x, x, k=5).coverage == 1.0
    with pytest.raises(UsageError, match=r"k=10.*fake has 10"):
        precision_recall(x, x[:10], k=10)
    with pytest.raises(UsageError, match="dimensions differ"):
        density_coverage(x, x[:, :3])


# ---------------------------------------------------------------------------------------------
# Class coverage


def test_class_coverage_hand_cases():
    labels = np.array([0, 0, 1, 2, 2, 2])
    covered, kl = class_coverage(labels, num_classes=4)
    p = np.array([2, 1, 3]) / 6
    assert covered == 3
    assert kl == pytest.approx(float(np.sum(p * np.log(p * 4))), rel=1e-9)
    # probabilities are reduced to their argmax; a perfect uniform histogram has KL 0
    probs = np.eye(4)[np.arange(8) % 4] * 0.7 + 0.075
    assert class_coverage(torch.from_numpy(probs), 4) == (4, pytest.approx(0.0, abs=1e-12))
    assert class_coverage(labels, 4, min_count=2).covered == 2
    # reference histogram given as counts; a class the reference lacks gives a finite penalty
    ref = np.array([10, 10, 0, 20])
    eps, q = 1e-10, np.array([0.25, 0.25, 0.0, 0.5])
    q = (q + eps) / (1 + 4 * eps)
    _, kl_ref = class_coverage(labels, 4, ref_hist=ref)
    assert kl_ref == pytest.approx(float(np.sum(p * np.log(p / q[:3]))), rel=1e-9)
    assert np.isfinite(kl_ref)


def test_coverage_thresholds_follow_a_skewed_reference():
    from ganforge.metrics.distribution import coverage_thresholds

    # uniform (or no) reference: a tenth of a uniform share, ceil(0.1 * 1000 / 10) = 10, never below 1
    assert coverage_thresholds(1000, 10, 0.1).tolist() == [10] * 10
    assert coverage_thresholds(1000, 10, 0.1, np.full(10, 7)).tolist() == [10] * 10
    assert coverage_thresholds(5, 10, 0.1).tolist() == [1] * 10
    # a class shown at q_c < 1/K needs a tenth of its own share; an unshown class keeps the uniform bar;
    # a common class is never asked for more than the uniform bar
    ref = np.array([700, 200, 60, 30, 8, 2, 0, 0, 0, 0])  # q = 0.7, 0.2, 0.06, 0.03, 0.008, 0.002, 0...
    assert coverage_thresholds(1000, 10, 0.1, ref).tolist() == [10, 10, 6, 3, 1, 1, 10, 10, 10, 10]
    # a generator drawing exactly the reference's mix covers every class the reference shows
    labels = np.repeat(np.arange(10), ref)
    assert class_coverage(labels, 10, min_count=10).covered == 4  # the uniform bar misses the rare two
    t = coverage_thresholds(len(labels), 10, 0.1, ref)
    assert class_coverage(labels, 10, ref_hist=ref, min_count=t).covered == 6


def test_class_coverage_errors():
    with pytest.raises(UsageError, match=r"\[0, 3\)"):
        class_coverage(np.array([0, 3]), 3)
    with pytest.raises(UsageError, match="columns"):
        class_coverage(np.zeros((4, 5)), 3)
    with pytest.raises(UsageError, match="ref_hist"):
        class_coverage(np.array([0, 1]), 3, ref_hist=np.ones(2))


# ---------------------------------------------------------------------------------------------
# Device invariance (needs CUDA)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_agree_on_cuda():
    pred, target = _noisy_pair(np.random.default_rng(8), n=2, h=170, w=176, data_range=255.0)
    p, t = _nchw(pred), _nchw(target)
    for fn in (psnr, ssim, ms_ssim):
        for dtype, atol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
            cpu = fn(p.to(dtype), t.to(dtype), data_range=255)
            gpu = fn(p.to("cuda", dtype), t.to("cuda", dtype), data_range=255)
            assert gpu.device.type == "cuda"
            np.testing.assert_allclose(gpu.cpu().double().numpy(), cpu.double().numpy(), rtol=0, atol=atol)
    real, fake = _two_feature_sets(n=200, d=16)
    assert precision_recall(real, fake, device="cuda") == pytest.approx(precision_recall(real, fake), abs=1e-12)
    assert density_coverage(real, fake, device="cuda") == pytest.approx(density_coverage(real, fake), abs=1e-12)
