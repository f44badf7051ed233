"""MSGAN (mode seeking, Mao et al. 2019) in ganforge's main training loop: `loss.msgan_weight`."""

import pytest
import torch

from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.losses import mode_seeking_halves, mode_seeking_loss
from ganforge.training import train
from ganforge.training.logger import read_metrics
from ganforge.training.objective import Objective


def test_halves_hand_computed():
    # B = 4 images of 1 pixel: pairs (0, 2) and (1, 3)
    fake = torch.tensor([0.0, 1.0, 2.0, 5.0]).view(4, 1, 1, 1)  # mean |Δx| = (2 + 4) / 2 = 3
    z = torch.tensor([[0.0], [0.0], [1.0], [2.0]])  # mean |Δz| = (1 + 2) / 2 = 1.5
    assert mode_seeking_halves(fake, z).item() == pytest.approx(1 / (3 / 1.5 + 1e-5))
    assert mode_seeking_halves(fake, z).item() == mode_seeking_loss(fake[:2], fake[2:], z[:2], z[2:]).item()


def test_bf16_samples_are_scored_in_fp32():
    torch.manual_seed(0)
    fake, z = torch.randn(8, 3, 4, 4), torch.randn(8, 5)
    ref = mode_seeking_halves(fake, z)
    low = mode_seeking_halves(fake.bfloat16(), z)
    assert low.dtype == torch.float32 and low.item() == pytest.approx(ref.item(), rel=1e-2)


def test_generator_loss_adds_weighted_term():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1), torch.nn.Flatten(0))
    D_y = lambda x, y: D(x)  # noqa: E731
    fake, z = torch.randn(6, 1, 4, 4), torch.randn(6, 3)
    cfg = apply_overrides(RunConfig(), ["loss.msgan_weight=2.5"])
    with_ms, stats = Objective.from_config(cfg).generator_loss(D_y, fake, None, z)
    plain, _ = Objective.from_config(RunConfig()).generator_loss(D_y, fake, None, z)
    assert with_ms.item() == pytest.approx(plain.item() + 2.5 * mode_seeking_halves(fake, z).item(), rel=1e-6)
    assert stats["ms"].item() == pytest.approx(mode_seeking_halves(fake, z).item())


def test_paired_labels_share_a_class():
    y = torch.tensor([3, 1, 4, 1, 5, 9])
    assert Objective.paired_labels(y, True).tolist() == [3, 1, 4, 3, 1, 4]
    assert Objective.paired_labels(y, False) is y and Objective.paired_labels(None, True) is None


def test_odd_batch_is_a_usage_error():
    with pytest.raises(UsageError, match="train.batch_size=7 must be even"):
        apply_overrides(RunConfig(), ["loss.msgan_weight=1", "train.batch_size=7"])
    with pytest.raises(UsageError, match="msgan_weight"):
        apply_overrides(RunConfig(), ["loss.msgan_weight=-1"])


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_training_logs_the_term_and_changes_the_run(tmp_path, update):
    data = load_images("digits", resolution=8, channels=1)
    sets = ["data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=8",
            "model.g_width=32", "model.d_width=32", "train.total_steps=5", "train.batch_size=16",
            "train.progress=false", "train.log_every=1", "train.sample_every=0", "checkpoint.every_steps=0",
            "train.sample_grid=4", f"train.update={update}", "train.threads=1"]
    rows = lambda d: [r for r in read_metrics(d / "metrics.jsonl") if "g_loss" in r]  # noqa: E731
    ms = rows(train(apply_overrides(RunConfig(), sets + ["loss.msgan_weight=1"]), data=data, out=tmp_path / "ms"))
    plain = rows(train(apply_overrides(RunConfig(), sets), data=data, out=tmp_path / "plain"))
    assert all("ms" in r and r["ms"] > 0 for r in ms) and not any("ms" in r for r in plain)
    assert ms[0]["g_loss"] != plain[0]["g_loss"]
