"""Feature matching (Salimans et al. 2016) in ganforge's main training loop: `loss.fm_weight`."""

import pytest
import torch

from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.losses import feature_matching_loss
from ganforge.models import build_discriminator
from ganforge.models.config import ModelConfig
from ganforge.training import train
from ganforge.training.logger import read_metrics
from ganforge.training.objective import Objective


def test_loss_hand_computed():
    h_fake = torch.tensor([[0.0, 2.0], [2.0, 0.0]], requires_grad=True)  # batch mean (1, 1)
    h_real = torch.tensor([[1.0, 3.0], [3.0, 5.0], [2.0, 4.0]], requires_grad=True)  # batch mean (2, 4)
    loss = feature_matching_loss(h_fake, h_real)
    assert loss.item() == pytest.approx((1 + 9) / 2)  # mean of (1 − 2)², (1 − 4)² over the 2 features
    loss.backward()
    # d/dh_fake[i, f] = 2 (m_fake − m_real)_f / (F · N) = (−1, −3) / 2 for each of the N = 2 rows
    assert h_fake.grad.tolist() == [[-0.5, -1.5], [-0.5, -1.5]]
    assert h_real.grad is None  # the real features are a target, not trained through


def test_shards_with_global_means_equal_the_whole_batch():
    """Two data-parallel shards of 4 (mean_over_ranks played by hand): each shard's loss is the whole
    batch's, and the average of the shards' gradients (what the gradient all-reduce does) is the
    whole batch's gradient. Per-shard means alone would give neither."""
    torch.manual_seed(0)
    h_fake, h_real = torch.randn(8, 5, requires_grad=True), torch.randn(8, 5)
    whole = feature_matching_loss(h_fake, h_real)
    (g_whole,) = torch.autograd.grad(whole, h_fake)
    halves = [slice(0, 4), slice(4, 8)]
    means = [(h_real[s].mean(0), h_fake[s].detach().mean(0)) for s in halves]  # (F,) real, fake per shard
    grads = torch.zeros_like(h_fake)
    for r, s in enumerate(halves):
        other = torch.stack(means[1 - r])  # (2, F): the other rank's real and fake means

        def mean_over_ranks(x, other=other):
            return (x + other) / 2

        loss = feature_matching_loss(h_fake[s], h_real[s], mean_over_ranks)
        assert loss.item() == pytest.approx(whole.item(), rel=1e-6)
        grads += torch.autograd.grad(loss, h_fake)[0] / 2
    torch.testing.assert_close(grads, g_whole)
    assert feature_matching_loss(h_fake[:4], h_real[:4]).item() != pytest.approx(whole.item(), rel=1e-3)


def test_bf16_features_are_matched_in_fp32():
    torch.manual_seed(0)
    h_fake, h_real = torch.randn(8, 16), torch.randn(8, 16)
    low = feature_matching_loss(h_fake.bfloat16(), h_real.bfloat16())
    assert low.dtype == torch.float32 and low.item() == pytest.approx(feature_matching_loss(h_fake, h_real).item(), rel=2e-2)


@pytest.mark.parametrize("pack", [1, 2])
def test_embed_then_head_is_the_forward(pack):
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(arch="dcgan", resolution=16, channels=3, d_width=8, pack=pack))
    x = torch.randn(8, 3, 16, 16)
    h = D.embed(x)
    assert h.shape[0] == 8 // pack and h.ndim == 2
    assert torch.equal(D.head(h, None), D(x))


def test_generator_loss_adds_weighted_term():
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(arch="mlp", resolution=4, channels=1, d_width=16))
    fake, real, z = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4), torch.randn(6, 3)
    cfg = apply_overrides(RunConfig(), ["loss.fm_weight=2.5"])
    with_fm, stats = Objective.from_config(cfg).generator_loss(D, fake, None, z, real=real)
    plain, plain_stats = Objective.from_config(RunConfig()).generator_loss(D, fake, None, z)
    fm = feature_matching_loss(D.embed(fake), D.embed(real)).item()
    assert with_fm.item() == pytest.approx(plain.item() + 2.5 * fm, rel=1e-6)
    assert stats["fm"].item() == pytest.approx(fm) and stats["g_adv"].item() == pytest.approx(plain_stats["g_adv"].item())
    assert "fm" not in plain_stats


def test_bad_settings_are_usage_errors():
    with pytest.raises(UsageError, match="loss.fm_weight"):
        apply_overrides(RunConfig(), ["loss.fm_weight=-1"])
    with pytest.raises(UsageError, match="needs train.update=alternating"):
        apply_overrides(RunConfig(), ["loss.fm_weight=1", "train.update=simultaneous"])
    with pytest.raises(UsageError, match="train.unroll_steps=0"):
        apply_overrides(RunConfig(), ["loss.fm_weight=1", "train.unroll_steps=2"])


@pytest.mark.parametrize("pack", [1, 2])
def test_training_logs_the_term_and_changes_the_run(tmp_path, pack):
    data = load_images("digits", resolution=8, channels=1)
    sets = ["data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=8",
            "model.g_width=32", "model.d_width=32", "train.total_steps=5", "train.batch_size=16",
            "train.progress=false", "train.log_every=1", "train.sample_every=0", "checkpoint.every_steps=0",
            "train.sample_grid=4", "train.threads=1", f"model.pack={pack}"]
    rows = lambda d: [r for r in read_metrics(d / "metrics.jsonl") if "g_loss" in r]  # noqa: E731
    fm = rows(train(apply_overrides(RunConfig(), sets + ["loss.fm_weight=1"]), data=data, out=tmp_path / "fm"))
    plain = rows(train(apply_overrides(RunConfig(), sets), data=data, out=tmp_path / "plain"))
    assert all("fm" in r and r["fm"] > 0 for r in fm) and not any("fm" in r for r in plain)
    assert fm[0]["g_adv"] == pytest.approx(plain[0]["g_adv"], rel=1e-5)  # the same first G step, plus the term
    assert fm[-1]["g_loss"] != plain[-1]["g_loss"]
