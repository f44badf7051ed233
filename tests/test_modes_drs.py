"""Discriminator rejection sampling (ganforge.modes.drs): the acceptance formula, the sampling loop
against an analytic density ratio, and the benchmark / CLI plumbing."""

import json
import math

import pytest
import torch

from ganforge.cli import main
from ganforge.errors import UsageError
from ganforge.modes.drs import EPS, acceptance_logit, calibrate_discriminator, rejection_sample
from ganforge.modes.ensemble import d_apply, train_ensemble
from ganforge.modes.toy import BENCHMARKS, ToyConfig


def test_acceptance_logit_hand_computed():
    # σ(F) with γ = 0 is exp(Δ) / (exp(Δ) + 1 − exp(Δ − ε)) ≈ exp(Δ): plain rejection sampling
    logits = torch.tensor([[-3.0, -0.5, 0.0]])
    d_max = torch.tensor([[0.0]])
    f = acceptance_logit(logits, d_max)
    delta = logits - d_max
    expected = delta - torch.log(1 - torch.exp(delta - EPS))
    torch.testing.assert_close(f, expected)
    torch.testing.assert_close(torch.sigmoid(f)[0, :2], torch.exp(delta)[0, :2], atol=1e-5, rtol=1e-4)
    assert torch.sigmoid(f)[0, 2] > 0.999  # the maximum itself is always accepted
    torch.testing.assert_close(acceptance_logit(logits, d_max, gamma=2.0), f - 2.0)


def _gaussian_sampler(seeds, s=0.5):
    """Proposal N(0, I₂) per trial; the exact log ratio to the target N(0, s² I₂)."""
    gens = [torch.Generator().manual_seed(x) for x in seeds]

    def propose(c):
        return torch.stack([torch.randn(c, 2, generator=g, dtype=torch.float64) for g in gens])

    def log_ratio(x):  # log N(x; 0, s²I) − log N(x; 0, I)
        r2 = x.pow(2).sum(dim=-1)
        return -r2 / (2 * s * s) + r2 / 2 - 2 * math.log(s)

    return gens, propose, log_ratio


def test_rejection_sampling_recovers_the_target():
    # with the exact ratio, γ = 0 gives the target: per-coordinate variance s² = 0.25, acceptance ≈ 1/M = s²
    gens, propose, log_ratio = _gaussian_sampler([0, 1])
    out = rejection_sample(propose, log_ratio, 20_000, gens)
    assert out.samples.shape == (2, 20_000, 2)
    var = out.samples.var(dim=1)  # (T, 2); s.e. of each ≈ 0.25 · √(2 / 20000) = 0.0025
    torch.testing.assert_close(var, torch.full_like(var, 0.25), atol=0.012, rtol=0)
    assert all(0.22 < a < 0.28 for a in out.acceptance)
    # γ = the 10th percentile of the burn-in F: ~90 % of F exceed γ, so most candidates are
    # accepted and the samples move toward the proposal (higher percentiles are stricter)
    gens, propose, log_ratio = _gaussian_sampler([0, 1])
    shifted = rejection_sample(propose, log_ratio, 20_000, gens, percentile=10)
    assert min(shifted.acceptance) > max(out.acceptance)
    assert (shifted.samples.var(dim=1) > var + 0.05).all()
    # seeded: the same generators give the same samples
    gens, propose, log_ratio = _gaussian_sampler([0, 1])
    again = rejection_sample(propose, log_ratio, 20_000, gens)
    assert torch.equal(again.samples, out.samples)


def test_rejection_sampling_gives_up_with_a_clear_error():
    gens, propose, _ = _gaussian_sampler([0])
    # a ratio that is tiny except at the burn-in maximum: almost nothing is accepted
    with pytest.raises(UsageError, match="raise drs_percentile"):
        rejection_sample(propose, lambda x: -1e3 * x.pow(2).sum(dim=-1), 2500, gens)


def test_calibrated_discriminator_learns_the_ratio_sign():
    # an untrained G puts its samples near the origin, far from the ring: the calibrated D
    # must score real ring points above G's samples
    bench = BENCHMARKS["ring8"]
    cfg = ToyConfig(steps=1, drs_steps=60)
    ens = train_ensemble(bench, cfg, [0])
    d = calibrate_discriminator(ens, bench, cfg, [0])
    real = bench.sample(200, torch.Generator().manual_seed(3))[None]  # (1, 200, 2)
    fake = 0.05 * torch.randn(1, 200, 2, generator=torch.Generator().manual_seed(4))
    assert d_apply(d, real, cfg).mean() > d_apply(d, fake, cfg).mean() + 1.0


def test_cli_drs_json_and_bad_values(capsys, tmp_path):
    args = ["modes", "--benchmark", "ring8", "--method", "vanilla", "--trials", "2", "--steps", "20", "--out", str(tmp_path)]
    assert main([*args, "--set", "drs_steps=20", "--set", "drs_percentile=90", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["before_drs"]) == {"modes_mean", "modes_se", "hq_mean", "hq_se", "kl_mean", "kl_se"}
    assert 0 < out["drs_acceptance_mean"] <= 1 and out["overrides"]["drs_steps"] == 20
    for bad, needle in [("drs_percentile=100", "drs_percentile must be in [0, 100)"),
                        ("drs_steps=-1", "--set 'drs_steps=-1': must be >= 0"), ("drs_lr=0", "drs_lr must be")]:
        assert main([*args, "--set", bad]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, (bad, err)
