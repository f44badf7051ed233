"""`ganforge bench`: measurement helpers against hand-computed values, the JSON contract, and bad input."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from ganforge.bench.measure import count_flops, peak_memory_mb, time_rate
from ganforge.cli import main

TINY = ["--steps", "1", "--repeats", "1"]


def test_flop_count_of_a_linear_layer_forward_and_backward():
    # y = x W^T with x (8, 16), W (32, 16): forward 2·8·16·32 FLOPs; backward computes dW only
    # (x needs no gradient), another 2·8·16·32.
    lin = torch.nn.Linear(16, 32, bias=False)
    x = torch.randn(8, 16)
    assert count_flops(lambda: lin(x).sum().backward()) == 2 * (2 * 8 * 16 * 32)


def test_time_rate_is_the_median_of_calls_per_second(monkeypatch):
    # a fake clock (no timed assertion): a call takes 10 ms in the first repeat, 20 ms in the
    # second and 40 ms in the third, so the rates are 100, 50 and 25 per second
    from ganforge.bench import measure

    clock, calls = [0.0], [0]

    def fn():
        calls[0] += 1
        repeat = (calls[0] - 2) // 5  # after the one warmup call, 5 calls per repeat
        clock[0] += 0.01 * 2 ** max(repeat, 0)

    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    rate = time_rate(fn, torch.device("cpu"), steps=5, repeats=3, warmup=1)
    assert calls[0] == 16 and rate == pytest.approx(50.0)


def test_peak_memory_is_reported_in_megabytes():
    assert 10 < peak_memory_mb(torch.device("cpu")) < 1e6  # a Python process with torch: tens of MB at least


def test_bench_train_json_contract(capsys):
    code = main(["bench", "train", "--preset", "mlp-mnist", "--batch", "8", "--warmup", "1", *TINY, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    r = json.loads(out)
    for key in ("ratio", "device", "preset", "batch", "flops_per_iter", "peak_tflops"):
        assert key in r
    assert r["preset"] == "mlp-mnist" and r["batch"] == 8 and r["device"] == "cpu"
    assert r["flops_per_iter"] > 0 and r["peak_tflops"]["fp32"] > 0
    assert r["fp32_math"] == "fp32"  # TF32 is a CUDA matter: the fp32 peak is timed in the convolutions' math
    for path in ("reference", "fast"):
        p = r[path]
        assert set(p) >= {"img_per_s", "steps_per_s", "tflops", "util", "peak_mem_mb"}
        assert p["img_per_s"] == pytest.approx(p["steps_per_s"] * 8, rel=1e-3)  # n_critic 1: B real images per step
        assert p["tflops"] == pytest.approx(r["flops_per_iter"] * p["steps_per_s"] / 1e12, rel=1e-2)
    assert r["ratio"] == pytest.approx(r["fast"]["img_per_s"] / r["reference"]["img_per_s"], rel=1e-2)


@pytest.mark.parametrize("penalty", ["loss.r1_gamma=1", "loss.gp_weight=10"])
def test_bench_train_with_a_gradient_penalty_times_without_flops(capsys, penalty):
    """PyTorch's FLOP counter cannot follow a penalty's autograd.grad (torch 2.13: "A leaf node was
    passed to _will_engine_execute_node"): the step is still timed, the FLOP fields are None, and
    the text output says why instead of a traceback."""
    args = ["bench", "train", "--preset", "dcgan-mnist", "--batch", "8", "--warmup", "0", *TINY, "--set", "model.g_width=8",
            "--set", "model.d_width=8", "--set", penalty]
    assert main([*args, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["fast"]["img_per_s"] > 0 and r["reference"]["img_per_s"] > 0
    if r["flops_per_iter"] is None:
        assert r["fast"]["tflops"] is None and r["fast"]["util"] is None
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "img/s" in text and ("FLOPs not counted" in text) == (r["flops_per_iter"] is None)


def test_bench_sample_json_contract(capsys):
    code = main(["bench", "sample", "--preset", "mlp-mnist", "--batch", "8", *TINY, "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0
    assert r["eager_fp32"]["img_per_s"] > 0 and r["fast"]["img_per_s"] > 0 and r["time_to_first_batch_s"] > 0
    assert r["ratio"] == pytest.approx(r["fast"]["img_per_s"] / r["eager_fp32"]["img_per_s"], rel=2e-2)


def test_bench_sample_takes_config_overrides(capsys, monkeypatch):
    # the DCGAN 64 px generator of issue 4's table is dcgan-cifar10 at model.resolution=64
    import ganforge.bench.run as bench_run

    seen = []
    real = bench_run.build_generator
    monkeypatch.setattr(bench_run, "build_generator", lambda m: seen.append(m.resolution) or real(m))
    args = ["bench", "sample", "--preset", "dcgan-cifar10", "--set", "model.resolution=16", "--set", "model.g_width=4",
            "--batch", "2", *TINY, "--json"]
    assert main(args) == 0 and seen == [16]
    capsys.readouterr()


BAD = [
    (["train", "--preset", "no-such", "--batch", "8"], "unknown preset 'no-such'"),
    (["train", "--preset", "mlp-mnist", "--batch", "0"], "--batch 0 must be >= 1"),
    (["sample", "--preset", "mlp-mnist", "--batch", "-1"], "--batch -1 must be >= 1"),
    (["train", "--preset", "mlp-mnist", "--batch", "8", "--steps", "0"], "--steps 0 must be >= 1"),
    (["sample", "--preset", "mlp-mnist", "--batch", "8", "--set", "model.nope=1"], "unknown key 'nope' in 'model'"),
    (["sample", "--preset", "mlp-mnist", "--batch", "8", "--device", "tpu"], "is not a device: use cpu, cuda, cuda:N or auto"),
    (["train", "--preset", "mlp-mnist", "--batch", "8", "--device", "cuda:01"], "'cuda:01' is not a device"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code = main(["bench", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_a_usage_error(capsys):
    code = main(["bench", "train", "--preset", "mlp-mnist", "--batch", "8", "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA device is available" in err and err.count("\n") == 1, err
