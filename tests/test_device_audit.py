"""Code paths that run only on a CUDA GPU, checked without one: devices named by the user are refused
in one line, a generator runs where it is asked to, features are computed in true fp32 (no TF32),
torchrun's LOCAL_RANK must name a GPU, restoration training leaves cudnn.benchmark as it found it,
and the factory calls of the CUDA paths get a device. A GPU session runs these paths for real."""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn

import ganforge.device
from ganforge.errors import UsageError
from ganforge.metrics.extractors import FeatureExtractor, full_fp32, load_extractor
from ganforge.sampling import generate
from ganforge.training import distributed

SRC = Path(__file__).resolve().parents[1] / "src" / "ganforge"


# ----------------------------------------------------------------------------- load_extractor's device


@pytest.mark.parametrize("name", ["gpu", "Cuda", "cuda:01", "mps"])
def test_load_extractor_refuses_a_device_name_in_one_line(name):
    # was: torch.device's RuntimeError ("Expected one of cpu, cuda, ipu, xpu, ...") from deep inside
    with pytest.raises(UsageError, match=rf"device={name!r} is not a device: use cpu, cuda, cuda:N or auto"):
        load_extractor("mnist-clf", device=name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_load_extractor_refuses_cuda_without_a_gpu():
    # was: "AssertionError: Torch not compiled with CUDA enabled" with a traceback
    with pytest.raises(UsageError, match="device='cuda' but no CUDA device is available: use device=cpu or auto"):
        load_extractor("mnist-clf", device="cuda")


def test_load_extractor_takes_auto_and_spaces():
    assert load_extractor("mnist-clf", device=" auto").device.type in ("cpu", "cuda")
    assert load_extractor("mnist-clf", device=torch.device("cpu")).device == torch.device("cpu")


# ----------------------------------------------------------------------------- features in true fp32


class _Probe(nn.Module):
    """A stand-in network that records the TF32 switches while it computes features."""

    resolution, channels, feature_dim, num_classes = 4, 1, 2, 3

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(16, 2))
        self.seen: list[tuple] = []

    def features(self, x):
        conv = torch.backends.cudnn.conv.fp32_precision if hasattr(torch.backends.cudnn, "conv") else None
        legacy = None
        with contextlib.suppress(RuntimeError):  # a mixed per-op setting cannot be read as one flag
            legacy = torch.backends.cudnn.allow_tf32
        self.seen.append((legacy, conv, torch.get_float32_matmul_precision()))
        return x.flatten(1) @ self.w

    def head(self, f):
        return f @ torch.ones(2, 3)


def _probe_extractor() -> FeatureExtractor:
    net = _Probe()
    return FeatureExtractor(name="probe", network=net, weights_sha256="0", weights_source="test", resize="none",
                            normalize="x", dtype=torch.float32, preprocess=lambda x: x.float())


@contextlib.contextmanager
def _restored_tf32():
    """Put PyTorch's default TF32 switches back after a test that changes them."""
    matmul = torch.get_float32_matmul_precision()
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = True  # the default; sets conv and RNN consistently
        torch.set_float32_matmul_precision(matmul)


PER_OP = hasattr(torch.backends.cudnn, "conv")  # torch >= 2.9: cuDNN's convs read cudnn.conv.fp32_precision


def _conv_tf32_off(legacy, conv) -> bool:
    """Whether cuDNN's convs were kept off TF32, by the switch this torch's convs read."""
    return conv == "ieee" if PER_OP else legacy is False


def test_extract_computes_features_without_tf32_and_restores_the_settings():
    # cuDNN runs fp32 convs on TF32 tensor cores by default: features (and FID) on a GPU were not fp32
    ex = _probe_extractor()
    with _restored_tf32():
        torch.set_float32_matmul_precision("high")  # a user who allows TF32 matmuls for training
        assert torch.backends.cudnn.allow_tf32  # PyTorch's default
        conv_before = torch.backends.cudnn.conv.fp32_precision if PER_OP else None
        feats, probs = ex.extract(torch.zeros(5, 1, 4, 4, dtype=torch.uint8), batch_size=2)
        assert feats.shape == (5, 2) and probs.shape == (5, 3)
        assert len(ex.network.seen) == 3
        for legacy, conv, matmul in ex.network.seen:
            assert _conv_tf32_off(legacy, conv) and matmul == "highest"
        assert torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == "high"
        assert (torch.backends.cudnn.conv.fp32_precision if PER_OP else None) == conv_before


def test_full_fp32_restores_the_settings_when_the_network_fails():
    with _restored_tf32():
        with pytest.raises(ZeroDivisionError), full_fp32():
            assert torch.get_float32_matmul_precision() == "highest"
            1 / 0
        assert torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == "highest"


@pytest.mark.skipif(not PER_OP, reason="per-op TF32 settings: torch >= 2.9")
def test_full_fp32_keeps_a_users_per_op_settings():
    # conv and RNN set apart through the per-op API (the legacy flag can then not even be read): conv's
    # own switch is changed for the features and put back, RNN's is left alone
    with _restored_tf32():
        torch.backends.cudnn.conv.fp32_precision = "tf32"
        torch.backends.cudnn.rnn.fp32_precision = "ieee"
        ex = _probe_extractor()
        ex.extract(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))
        assert ex.network.seen[0][1:] == ("ieee", "highest")
        assert torch.backends.cudnn.conv.fp32_precision == "tf32" and torch.backends.cudnn.rnn.fp32_precision == "ieee"


# ----------------------------------------------------------------------------- generate()'s device


class _MovableG(nn.Module):
    """A generator that records where it is moved and on which device its noise arrives."""

    z_dim, num_classes = 4, 0

    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 16)
        self.moves: list[torch.device] = []
        self.noise_on: list[torch.device] = []

    def _apply(self, fn, recurse=True):  # Module.to -> _apply(convert): record the target, move nothing
        self.moves.append(fn(torch.empty(0)).device)
        return self

    def forward(self, z, y=None):
        self.noise_on.append(z.device)
        return torch.linspace(-1, 1, z.shape[0] * 16).view(-1, 1, 4, 4)  # on the CPU, whatever z's device


def test_generate_runs_G_on_the_asked_device_and_moves_it_back(monkeypatch):
    # evaluate(G_on_gpu) with its default device="cpu" (or the reverse) put the noise on one device and G
    # on another: "Expected all tensors to be on the same device" with a traceback
    monkeypatch.setattr(ganforge.device, "resolve_device", lambda name, option="": torch.device("meta"))
    G = _MovableG().train()
    images, labels = generate(G, 3, device="cuda", batch_size=2)
    assert images.shape == (3, 4, 4, 1) and labels is None
    assert G.noise_on == [torch.device("meta")] * 2  # where it was asked to run
    assert G.moves == [torch.device("meta"), torch.device("cpu")]  # there for the call, then back home
    assert G.training  # and back in its mode


def test_generate_leaves_G_where_it_is_without_a_device():
    G = _MovableG()
    generate(G, 2)
    assert G.moves == [] and G.noise_on == [torch.device("cpu")]
    generate(G, 2, device="cpu")  # already there: not moved
    assert G.moves == []


def test_generate_moves_G_back_when_it_fails(monkeypatch):
    monkeypatch.setattr(ganforge.device, "resolve_device", lambda name, option="": torch.device("meta"))
    G = _MovableG()
    G.forward = lambda z, y=None: torch.full((z.shape[0], 1, 4, 4), float("nan"))
    with pytest.raises(UsageError, match="NaN"):
        generate(G, 2, device="cuda")
    assert G.moves == [torch.device("meta"), torch.device("cpu")]


# ----------------------------------------------------------------------------- torchrun's LOCAL_RANK


def test_launched_refuses_a_local_rank_beyond_the_gpus(monkeypatch):
    # torchrun --nproc_per_node 2 on a one-GPU machine: rank 1 ended in "invalid device ordinal"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: pytest.fail("set_device before the check"))
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda *a, **k: pytest.fail("group started"))
    with pytest.raises(UsageError, match=r"LOCAL_RANK=1 but the machine shows 1 CUDA device\(s\) \(cuda:0\).*"
                                         r"--nproc_per_node.*train.device=cpu"):
        with distributed.launched("auto"):
            pass


def test_check_local_rank_takes_a_rank_the_machine_has(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.check_local_rank("cuda") == 1


# ----------------------------------------------------------------------------- restoration training


def test_train_restorer_puts_cudnn_benchmark_back(monkeypatch, tmp_path):
    # train_restorer set torch.backends.cudnn.benchmark for the whole process and never put it back
    from ganforge.apps import restore_train
    from ganforge.apps.restore_config import apply_overrides, get_preset

    monkeypatch.setattr(restore_train, "resolve_device", lambda name, option="": torch.device("cuda"))
    cfg = apply_overrides(get_preset("denoise-unet-s25"), [
        "model.width=8", "model.blocks=1", "train.batch_size=2", "data.patch_size=32", "train.progress=false",
        "train.device=cpu", "data.val_images=0", "perf.cudnn_benchmark=true", "train.total_steps=1"])
    photos = [torch.full((3, 40, 40), 100, dtype=torch.uint8) for _ in range(2)]
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        with pytest.raises((AssertionError, RuntimeError)):  # no CUDA here: moving the net fails after the switch
            restore_train.train_restorer(cfg, runs_root=tmp_path, photos=photos)
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = before


# ----------------------------------------------------------------------------- static: factory calls get a device

FACTORIES = {"zeros", "ones", "empty", "full", "arange", "randn", "rand", "randint", "randperm", "tensor", "linspace", "eye"}


def _undeviced_factories(path: Path) -> list[str]:
    """`torch.<factory>(...)` calls in ``path`` with neither device= nor a generator= (a CPU stream by design)
    nor a .to(...) right after them: on a CUDA run they make CPU tensors next to the CUDA ones."""
    tree = ast.parse(path.read_text())
    moved = {id(n.func.value) for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "to"}
    bad = []
    for n in ast.walk(tree):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in FACTORIES
                and isinstance(n.func.value, ast.Name) and n.func.value.id == "torch"
                and not {k.arg for k in n.keywords} & {"device", "generator"} and id(n) not in moved):
            bad.append(f"{path.name}:{n.lineno} torch.{n.func.attr}")
    return bad


@pytest.mark.parametrize("rel", ["training/step.py", "training/distributed.py", "apps/restore_train.py",
                                 "apps/restore_apply.py", "apps/restore_models.py"])
def test_cuda_path_factory_calls_name_their_device(rel):
    assert _undeviced_factories(SRC / rel) == []


def test_the_static_check_finds_an_undeviced_call(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import torch\na = torch.zeros(3)\nb = torch.zeros(3, device=d)\nc = torch.arange(3).to(d)\n")
    assert _undeviced_factories(f) == ["x.py:2 torch.zeros"]


# ----------------------------------------------------------------------------- on a GPU (skipped without one)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_features_on_cuda_match_the_cpus_in_fp32():
    # with cuDNN's default TF32 convs the features were ~1e-3 apart (10-bit mantissa inputs); fp32 is ~1e-6
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cpu, p_cpu = load_extractor("cifar10-clf").extract(images)
    gpu, p_gpu = load_extractor("cifar10-clf", device="cuda").extract(images)
    assert abs(gpu - cpu).max() / abs(cpu).max() < 1e-4
    assert abs(p_gpu - p_cpu).max() < 1e-4
    assert torch.backends.cudnn.allow_tf32  # PyTorch's default is back


@pytest.mark.gpu
@needs_cuda
def test_generate_and_evaluate_with_G_on_another_device():
    from ganforge import get_preset
    from ganforge.metrics import evaluate
    from ganforge.models import build_generator

    torch.manual_seed(0)
    G = build_generator(get_preset("dcgan-mnist").model)
    cpu, _ = generate(G, 8, seed=1)
    gpu, _ = generate(G, 8, seed=1, device="cuda")  # G on the CPU, run on the GPU, then put back
    assert next(G.parameters()).device.type == "cpu"
    assert abs(gpu.astype(int) - cpu.astype(int)).max() <= 2  # TF32 convs in G may move a pixel a level
    G.cuda()
    r = evaluate(G, metrics="fid", n=64, ref="mnist5k", n_ref=64)  # device="cpu" (the default) with G on the GPU
    assert r.values["fid"] > 0 and next(G.parameters()).device.type == "cuda"
