"""The fast path (perf.*) keeps the arithmetic of the plain loop: each switch is checked against
the eager fp32 reference from the same seed, loss by loss over the first 50 steps."""

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrizations

from ganforge.config import RunConfig, apply_overrides
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.nn import set_spectral_norm_auto_update, spectral_norm, spectral_norm_power_step
from ganforge.training import train
from ganforge.training.logger import read_metrics


@pytest.fixture(scope="module")
def digits32():
    return load_images("digits", resolution=8, channels=1)


def sngan_cfg(steps, *extra):
    """SNGAN's recipe on a small MLP (spectral-norm D, hinge, Adam(0, 0.9), n_critic 2) so 50
    steps take seconds on CPU. Differences between two runs grow with the steps (GAN dynamics
    amplify float reassociation), so tolerances are stated for step 50."""
    sets = ["data.source=digits", "model.arch=mlp", "model.resolution=8", "model.channels=1", "model.z_dim=16",
            "model.g_width=64", "model.d_width=64", "model.d_spectral_norm=true",
            "loss.kind=hinge", "optim.beta1_g=0", "optim.beta1_d=0", "optim.beta2_g=0.9", "optim.beta2_d=0.9",
            f"train.total_steps={steps}", "train.batch_size=32", "train.n_critic=2", "train.progress=false",
            "train.log_every=1", "train.sample_every=0", "checkpoint.every_steps=0", "train.sample_grid=4", "train.seed=7"]
    return apply_overrides(RunConfig(preset="test-fast"), sets + list(extra))


def losses(run_dir) -> np.ndarray:
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "d_loss" in r]
    return np.array([[r["d_loss"], r["g_loss"]] for r in rows])  # (steps, 2)


def run(tmp_path, name, data, steps, *extra):
    return losses(train(sngan_cfg(steps, *extra), data=data, out=tmp_path / name))


# ----------------------------------------------------------------------------- spectral norm


@pytest.mark.parametrize("make", [lambda: torch.nn.Conv2d(3, 8, 3), lambda: torch.nn.ConvTranspose2d(8, 4, 4),
                                  lambda: torch.nn.Linear(5, 7)])
def test_spectral_norm_is_pytorchs_bit_for_bit(make):
    torch.manual_seed(0)
    ref = parametrizations.spectral_norm(make())
    torch.manual_seed(0)
    ours = spectral_norm(make())
    assert ours.state_dict().keys() == ref.state_dict().keys()  # checkpoints stay interchangeable
    for _ in range(3):  # each train-mode access runs one power iteration in both
        assert torch.equal(ours.weight, ref.weight)


def test_explicit_power_iteration_runs_only_when_asked():
    torch.manual_seed(0)
    net = torch.nn.Sequential(spectral_norm(torch.nn.Linear(6, 5)), torch.nn.ReLU(), spectral_norm(torch.nn.Linear(5, 1)))
    assert set_spectral_norm_auto_update(net, False) == 2
    u0 = [m.parametrizations.weight[0]._u.clone() for m in (net[0], net[2])]
    net(torch.randn(4, 6)).sum().backward()  # forwards read u, v only...
    assert all(torch.equal(a, m.parametrizations.weight[0]._u) for a, m in zip(u0, (net[0], net[2])))
    spectral_norm_power_step(net)  # ...the explicit step moves them
    assert not torch.equal(u0[0], net[0].parametrizations.weight[0]._u)
    # sigma converges to the top singular value under repeated explicit steps
    for _ in range(200):
        spectral_norm_power_step(net)
    w = net[0].parametrizations.weight.original
    assert torch.linalg.matrix_norm(net[0].weight, ord=2).item() == pytest.approx(1.0, abs=1e-4)
    assert torch.linalg.matrix_norm(w, ord=2).item() > 0


# ----------------------------------------------------------------------------- 50-step fidelity


def test_concat_d_forward_matches_two_forwards(tmp_path, digits32):
    # Same power-iteration schedule in both (sn_once), so the only difference is one D call on
    # 2B images instead of two on B: identical up to float summation order.
    a = run(tmp_path, "two", digits32, 50, "perf.sn_once=true")
    b = run(tmp_path, "concat", digits32, 50, "perf.sn_once=true", "perf.d_concat=true")
    np.testing.assert_allclose(b[:10], a[:10], rtol=0, atol=1e-4)  # measured: <= 4e-6 up to step 10
    # Later steps: GAN dynamics amplify the reassociation (measured 5e-4 to 1.6e-2 by step 50,
    # depending on the thread count), on losses of order 1.
    np.testing.assert_allclose(b, a, rtol=0, atol=5e-2)


def test_sn_once_stays_close_to_per_forward_updates(tmp_path, digits32):
    # One power iteration per D step instead of three per iteration: sigma estimates differ
    # slightly, so the trajectories drift apart slowly; 50 steps stay within a few percent.
    a = run(tmp_path, "auto", digits32, 50)
    b = run(tmp_path, "once", digits32, 50, "perf.sn_once=true")
    assert np.abs(b[0] - a[0]).max() < 1e-3  # the first step differs only by the G step's extra update
    assert np.abs(b - a).max() < 0.15  # measured: at most 0.031 over 50 steps


def test_fused_adam_matches_plain_adam(tmp_path, digits32):
    a = run(tmp_path, "adam", digits32, 50)
    b = run(tmp_path, "fused", digits32, 50, "perf.fused_optim=true")
    np.testing.assert_allclose(b[:10], a[:10], rtol=0, atol=1e-4)
    np.testing.assert_allclose(b, a, rtol=0, atol=5e-2)  # measured: 2e-5 at step 50 on one thread


@pytest.mark.slow  # compiling takes minutes on a 2-core CPU
def test_compiled_fp32_matches_eager(tmp_path, digits32):
    a = run(tmp_path, "eager", digits32, 50, "perf.sn_once=true", "perf.d_concat=true")
    b = run(tmp_path, "compiled", digits32, 50, "perf.sn_once=true", "perf.d_concat=true", "perf.compile=true")
    np.testing.assert_allclose(b[:10], a[:10], rtol=0, atol=1e-3)  # measured: 6e-5
    np.testing.assert_allclose(b, a, rtol=0, atol=5e-2)  # measured: 1.1e-3 at step 50 on one thread


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_fp32_matches_eager_on_cuda(tmp_path, digits32, mode):
    # train.device=auto is CUDA here; reduce-overhead adds CUDA-graph capture of the compiled forwards.
    # Same tolerances as on CPU (matmuls stay fp32: PyTorch leaves TF32 off for them by default).
    a = run(tmp_path, "eager", digits32, 50, "perf.sn_once=true", "perf.d_concat=true")
    b = run(tmp_path, mode, digits32, 50, "perf.sn_once=true", "perf.d_concat=true", "perf.compile=true",
            f"perf.compile_mode={mode}")
    np.testing.assert_allclose(b[:10], a[:10], rtol=0, atol=1e-3)
    np.testing.assert_allclose(b, a, rtol=0, atol=5e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_conditional_sqrt_labels_on_cuda_with_cuda_graphs(tmp_path, digits32):
    # the digits hold 174 to 183 a class, so fake labels come from label_sampler's inverse CDF
    # (rand + searchsorted on the GPU, train.fake_labels=sqrt) beside compiled, graph-captured nets
    from ganforge.training.loop import label_sampler

    out = run(tmp_path, "cond", digits32, 20, "model.num_classes=10", "perf.compile=true",
              "perf.compile_mode=reduce-overhead")
    assert out.shape == (20, 2) and np.isfinite(out).all()
    counts = torch.tensor([900.0, 0.0, 60.0, 40.0]).sqrt()
    torch.manual_seed(0)
    labels = label_sampler(4, 100_000, torch.device("cuda"), counts)()
    assert labels.device.type == "cuda"
    freq = torch.bincount(labels.cpu(), minlength=4).double() / 1e5
    assert torch.allclose(freq, counts.double() / counts.sum(), atol=0.004) and freq[1] == 0


def test_fast_path_settings_are_checked():
    with pytest.raises(UsageError, match="d_concat"):
        apply_overrides(RunConfig(), ["model.arch=dcgan", "model.d_batchnorm=true", "perf.d_concat=true"])
    with pytest.raises(UsageError, match="sn_once"):
        apply_overrides(RunConfig(), ["perf.sn_once=true"])
    with pytest.raises(UsageError, match="fused_optim"):
        apply_overrides(RunConfig(), ["optim.optimizer=rmsprop", "perf.fused_optim=true"])
    with pytest.raises(UsageError, match="compile_mode"):
        apply_overrides(RunConfig(), ["perf.compile_mode=fast"])


def test_unavailable_fast_path_falls_back_with_one_warning_or_fails_strictly(monkeypatch, caplog):
    from ganforge.training import perf

    cpu = torch.device("cpu")
    monkeypatch.setattr(perf.shutil, "which", lambda name: None)  # no C++ compiler on PATH
    assert perf.resolve_compile(True, "default", cpu) is None
    assert "needs a C++ compiler" in caplog.text and "running eager" in caplog.text
    with pytest.raises(UsageError, match="perf.strict=true"):
        perf.resolve_compile(True, "default", cpu, strict=True)
    monkeypatch.setattr(perf.shutil, "which", lambda name: "/usr/bin/g++")
    assert perf.resolve_compile(True, "reduce-overhead", cpu) == "default"  # CUDA graphs need CUDA
    assert "CUDA graphs need a CUDA device" in caplog.text
    assert perf.resolve_compile(False, "default", cpu) is None
    monkeypatch.setattr(perf, "bf16_is_native", lambda device: False)
    assert perf.resolve_precision("bf16", cpu) == "fp32"
    with pytest.raises(UsageError, match="perf.precision=bf16"):
        perf.resolve_precision("bf16", cpu, strict=True)
