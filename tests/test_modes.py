"""The 2D mode-collapse benchmarks: metrics on samples with known answers, each remedy's term
against a hand-computed value, and the `ganforge modes` command."""

import json
import math

import pytest
import torch

from ganforge.cli import main
from ganforge.modes.bench import mean_se
from ganforge.modes.metrics import mode_stats, reverse_kl
from ganforge.modes.methods import METHODS
from ganforge.modes.toy import (
    GRID25,
    RING8,
    ToyConfig,
    ToyDiscriminator,
    generate,
    mode_seeking_loss,
    pack_samples,
    train_toy,
)
from ganforge.nn.layers import MinibatchStdDev

# ----------------------------------------------------------------------------- data


def test_benchmarks_match_pacgan():
    assert len(RING8.means) == 8 and RING8.sigma == 0.01
    assert torch.allclose(RING8.means_tensor().norm(dim=1), torch.ones(8))
    assert len(GRID25.means) == 25 and GRID25.sigma == 0.05
    assert sorted({x for x, _ in GRID25.means}) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    # real data scores as a perfect generator would (3σ holds 98.9% of a 2D Gaussian)
    s = mode_stats(GRID25.sample(2500, torch.Generator().manual_seed(0)), GRID25)
    assert s.modes == 25 and 0.97 < s.hq < 1.0 and s.kl < 0.02


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("bench", [RING8, GRID25])
def test_samples_at_every_mode(bench):
    x = bench.means_tensor().repeat(100, 1)  # balanced, exactly at the modes
    s = mode_stats(x, bench)
    assert s.modes == len(bench.means) and s.hq == 1.0 and s.kl == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bench", [RING8, GRID25])
def test_samples_far_away(bench):
    s = mode_stats(torch.full((50, 2), 10.0), bench)
    assert s.modes == 0 and s.hq == 0.0 and s.kl == pytest.approx(math.log(len(bench.means)))


@pytest.mark.parametrize("bench", [RING8, GRID25])
def test_one_mode_only(bench):
    x = bench.means_tensor()[3].repeat(40, 1)
    s = mode_stats(x, bench)
    assert s.modes == 1 and s.hq == 1.0 and s.kl == pytest.approx(math.log(len(bench.means)))


def test_hq_threshold_is_three_sigma():
    m = RING8.means_tensor()[0]
    x = torch.stack([m + torch.tensor([0.0, 2.9 * RING8.sigma]), m + torch.tensor([0.0, 3.1 * RING8.sigma])])
    s = mode_stats(x, RING8)
    assert s.modes == 1 and s.hq == 0.5


def test_reverse_kl_hand_computed():
    # p = (3/4, 1/4, 0) over K = 3 modes: Σ p log(pK), the empty mode contributes 0
    want = 0.75 * math.log(0.75 * 3) + 0.25 * math.log(0.25 * 3)
    assert reverse_kl(torch.tensor([3, 1, 0])) == pytest.approx(want, rel=1e-12)


def test_mean_se():
    m, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(math.sqrt(5 / 3 / 4))
    assert mean_se([7.0]) == (7.0, 0.0)


# ----------------------------------------------------------------------------- remedies


def test_mode_seeking_term_hand_computed():
    x1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x2 = torch.tensor([[1.0, 0.0], [1.0, 3.0]])  # mean |Δx| = (1 + 0 + 0 + 2) / 4 = 0.75
    z1 = torch.zeros(2, 2)
    z2 = torch.tensor([[1.0, 1.0], [0.5, 0.5]])  # mean |Δz| = 0.75
    assert mode_seeking_loss(x1, x2, z1, z2).item() == pytest.approx(1 / (1 + 1e-5))
    # minimising it pushes the two outputs apart
    x2 = x2.clone().requires_grad_(True)
    mode_seeking_loss(x1, x2, z1, z2).backward()
    assert x2.grad[1, 1] < 0  # x2[1,1] = 3 > x1[1,1] = 1: increasing it lowers the loss


def test_packing_reshape():
    x = torch.arange(12.0).view(6, 2)
    assert torch.equal(pack_samples(x, 3), torch.tensor([[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))
    D = ToyDiscriminator(width=8, depth=1, pieces=2, pack=3)
    assert D(x).shape == (2,)
    with pytest.raises(ValueError):
        pack_samples(torch.zeros(5, 2), 2)


def test_mbstd_feature_hand_computed():
    # group size 2 over N = 4: sample n is grouped with n ± 2
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0], [3.0, 2.0]])
    out = MinibatchStdDev(2)(x)
    # rows 0,2: std(0,2)=1, std(0,4)=2 → 1.5;  rows 1,3: std(1,3)=1, std(2,2)=√1e-8 → 0.50005
    assert torch.allclose(out[:, 2], torch.tensor([1.5, 0.50005, 1.5, 0.50005]), atol=1e-6)
    D = ToyDiscriminator(width=8, depth=1, pieces=2, mbstd_group=2)
    assert D.out.in_features == 9 and D(x).shape == (4,)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_a_few_steps(name):
    cfg = METHODS[name].config(steps=3)
    tiny = dict(batch_size=8, g_width=8, g_depth=1, d_width=8, d_depth=1, d_pieces=2)
    from dataclasses import replace

    G = train_toy(GRID25, replace(cfg, **tiny), seed=0)
    x = generate(G, 16, seed=1)
    assert x.shape == (16, 2) and torch.isfinite(x).all()


def test_training_is_seeded():
    cfg = ToyConfig(steps=3, batch_size=8, g_width=8, g_depth=1, d_width=8, d_depth=1, d_pieces=2)
    a = generate(train_toy(RING8, cfg, seed=5), 16, seed=0)
    b = generate(train_toy(RING8, cfg, seed=5), 16, seed=0)
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- CLI


def test_cli_short_run_json(capsys, tmp_path):
    code = main(["modes", "--benchmark", "ring8", "--method", "vanilla", "--trials", "1", "--steps", "50", "--out", str(tmp_path), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("modes_mean", "modes_se", "hq_mean", "hq_se", "kl_mean", "kl_se", "trials", "method", "benchmark"):
        assert key in out
    assert out["trials"] == 1 and out["method"] == "vanilla" and out["benchmark"] == "ring8"
    assert 0 <= out["modes_mean"] <= 8 and 0.0 <= out["hq_mean"] <= 1.0 and out["kl_mean"] >= 0.0
    assert (tmp_path / "ring8-vanilla.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--benchmark", "ring9"], "unknown benchmark"),
        (["--method", "magic"], "unknown method"),
        (["--trials", "0"], "--trials"),
        (["--steps", "0"], "--steps"),
    ],
)
def test_cli_bad_input(capsys, args, needle):
    assert main(["modes", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_cli_all_prints_markdown_table(capsys, tmp_path):
    assert main(["modes", "--all", "--trials", "1", "--steps", "2", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| benchmark | method") and len(lines) == 2 + 2 * len(METHODS)
    assert all(line.startswith("| ring8 |") or line.startswith("| grid25 |") for line in lines[2:])
