"""The CPU fast path of the Keras-tutorial DCGAN (perf.fast_dropout, layout-keeping Flatten and
TF-"same" transposed conv, simultaneous step with d_concat / sn_once): same values as the plain
layers, same distributions, and the right memory layouts (docs/BENCHMARKS.md, "CPU")."""

import math

import pytest
import torch
from torch import nn

from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.nn import ConvTranspose2dSame, Dropout, Flatten, fast_keep_mask, set_fast_dropout
from ganforge.nn.dropout import LANES, drop_threshold
from ganforge.training import train
from ganforge.training.logger import read_metrics

CL = torch.channels_last


# ----------------------------------------------------------------------------- dropout masks


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_fast_mask_drop_rate_and_unbiased_scale(p):
    torch.manual_seed(0)
    n = 1 << 20
    mask = fast_keep_mask((n,), p, torch.float32)
    k = drop_threshold(p)
    q = (LANES - k) / LANES  # keep probability actually used
    assert abs(k / LANES - p) <= 0.5 / LANES  # 0.3 → 0.3000031
    values = mask.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / q, rel=1e-6)
    kept = (mask > 0).double().mean().item()
    se = math.sqrt(q * (1 - q) / n)
    assert abs(kept - q) < 5 * se  # binomial: within 5 standard errors
    assert abs(mask.double().mean().item() - 1.0) < 5 * se / q  # E[mask] = 1: dropout keeps the mean


def test_fast_mask_lanes_are_independent():
    """The four 16-bit lanes of one 64-bit draw are used for four neighbouring elements: their
    drop decisions must be uncorrelated (and each lane's rate right)."""
    torch.manual_seed(1)
    keep = (fast_keep_mask((1 << 20,), 0.5, torch.float32) > 0).view(-1, 4).double()  # (words, 4 lanes)
    rates = keep.mean(0)
    assert torch.all((rates - 0.5).abs() < 0.005)
    corr = torch.corrcoef(keep.T)
    off_diag = corr[~torch.eye(4, dtype=torch.bool)]
    assert off_diag.abs().max() < 0.01


def test_fast_mask_is_seeded():
    torch.manual_seed(5)
    a = fast_keep_mask((3, 7, 5), 0.3, torch.bfloat16)
    torch.manual_seed(5)
    b = fast_keep_mask((3, 7, 5), 0.3, torch.bfloat16)
    assert torch.equal(a, b) and a.dtype == torch.bfloat16 and a.shape == (3, 7, 5)


def test_dropout_module_fast_only_when_asked_and_training():
    x = torch.randn(8, 6, 5, 5)
    d = Dropout(0.3)
    torch.manual_seed(0)
    plain = d(x)
    torch.manual_seed(0)
    assert torch.equal(plain, nn.Dropout(0.3)(x))  # off: exactly PyTorch's dropout and RNG stream
    assert set_fast_dropout(nn.Sequential(d, nn.ReLU()), True) == 1
    torch.manual_seed(0)
    fast = d(x)
    zeroed = fast == 0
    q = (LANES - drop_threshold(0.3)) / LANES
    torch.testing.assert_close(fast[~zeroed], x[~zeroed] / q)
    d.eval()
    assert torch.equal(d(x), x)


def test_fast_dropout_gradient_is_the_mask_and_keeps_layout():
    x = torch.randn(4, 8, 6, 6).to(memory_format=CL).requires_grad_(True)
    d = Dropout(0.5)
    d.fast = True
    y = d(x)
    assert y.is_contiguous(memory_format=CL)  # the mask was drawn in NHWC order, no layout mixing
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, (y.detach() / x.detach()).nan_to_num(0.0), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- layouts


def test_flatten_same_values_and_gradient_layout():
    x = torch.randn(3, 5, 4, 4)
    ref = nn.Flatten()(x)
    xc = x.to(memory_format=CL).requires_grad_(True)
    out = Flatten()(xc)
    assert torch.equal(out, ref)  # (c, h, w) order whatever the layout: weights stay interchangeable
    g = torch.randn_like(out)
    out.backward(g)
    assert xc.grad.is_contiguous(memory_format=CL)
    assert torch.equal(xc.grad, g.view(3, 5, 4, 4))


def test_conv_transpose_same_crop_is_dense_in_the_input_layout():
    torch.manual_seed(0)
    conv = ConvTranspose2dSame(6, 4, 5, stride=2)
    x = torch.randn(2, 6, 7, 7)
    full = nn.functional.conv_transpose2d(x, conv.weight, conv.bias, stride=2, padding=1)  # (2, 4, 15, 15)
    out = conv(x)
    assert out.shape == (2, 4, 14, 14) and out.is_contiguous()
    torch.testing.assert_close(out, full[..., :14, :14])  # TF crop: 1 top/left, the rest bottom/right
    out_cl = conv.to(memory_format=CL)(x.to(memory_format=CL))
    assert out_cl.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out_cl, out)


# ----------------------------------------------------------------------------- the simultaneous step


def keras_cfg(*extra):
    """The Keras-tutorial DCGAN (simultaneous updates, dropout 0.3) shrunk to 8 px digits."""
    sets = ["data.source=digits", "model.arch=keras-dcgan", "model.resolution=8", "model.channels=1",
            "model.z_dim=16", "model.g_width=8", "model.d_width=8", "model.d_dropout=0.3",
            "train.update=simultaneous", "train.total_steps=12", "train.batch_size=16", "train.progress=false",
            "train.log_every=1", "train.sample_every=0", "checkpoint.every_steps=0", "train.sample_grid=4",
            "train.seed=3", "train.threads=1"]
    return apply_overrides(RunConfig(preset="test-keras"), sets + list(extra))


def losses(run_dir):
    return torch.tensor([[r["d_loss"], r["g_loss"]] for r in read_metrics(run_dir / "metrics.jsonl") if "d_loss" in r])


@pytest.fixture(scope="module")
def digits8():
    return load_images("digits", resolution=8, channels=1)


def test_simultaneous_d_concat_matches_two_forwards(tmp_path, digits8):
    """Without dropout D is deterministic, so one D forward over real+fake must give the same
    losses as two forwards (up to summation order)."""
    a = losses(train(keras_cfg("model.d_dropout=0"), data=digits8, out=tmp_path / "a"))
    b = losses(train(keras_cfg("model.d_dropout=0", "perf.d_concat=true"), data=digits8, out=tmp_path / "b"))
    assert a.shape == b.shape == (12, 2)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-4)


def test_simultaneous_fast_path_trains_and_is_seeded(tmp_path, digits8):
    cfg = ["perf.fast_dropout=true", "perf.channels_last=true"]
    a = losses(train(keras_cfg(*cfg), data=digits8, out=tmp_path / "a"))
    b = losses(train(keras_cfg(*cfg), data=digits8, out=tmp_path / "b"))
    assert torch.equal(a, b) and torch.isfinite(a).all()
    plain = losses(train(keras_cfg(), data=digits8, out=tmp_path / "c"))
    assert not torch.equal(a, plain)  # a different (faster) mask stream, same distribution
    # Step 1 draws its masks after identical weights: the losses differ only by the dropout
    # draw, so they stay close (losses are ~0.7 at init).
    assert (a[0] - plain[0]).abs().max() < 0.1


def test_simultaneous_sn_once_runs_the_power_iteration():
    """With sn_once the forwards do not touch u; the simultaneous step must run the power
    iteration itself (once per step), or σ would never be re-estimated."""
    from ganforge.bench.run import make_ganforge_iteration
    from ganforge.models import build_discriminator

    cfg = keras_cfg("model.d_spectral_norm=true", "perf.sn_once=true")
    torch.manual_seed(0)
    D = build_discriminator(cfg.model)
    # u of a layer with one output unit is ±1 whatever happens: only the others can show the update
    us = lambda: [b.clone() for n, b in D.named_buffers() if n.endswith("_u") and b.numel() > 1]  # noqa: E731
    with torch.no_grad():  # start u away from its fixed point (registration already iterated 15 times)
        for n, b in D.named_buffers():
            if n.endswith("_u"):
                b.copy_(torch.nn.functional.normalize(torch.randn_like(b), dim=0))
    before = us()
    assert before, "no spectral-norm layers"
    step, _, _ = make_ganforge_iteration(cfg, torch.device("cpu"), D=D)
    step()
    after = us()
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
