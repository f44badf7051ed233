"""Multi-process training (training/distributed.py) on CPU with gloo and 2 processes.

1. ``torch.multiprocessing.spawn`` runs the loop's own iteration (training/step.py) sharded over
   2 ranks: parameters must be bit-identical across ranks after k steps (ns + batch norm, and
   WGAN-GP with its double backward), and, for nets without batch norm, dropout or a penalty,
   equal to one process on the same global batch up to float summation order.
2. ``python -m torch.distributed.run --nproc_per_node 2 -m ganforge train``: exit code 0 and one
   run folder written by rank 0; a usage error on rank 0 ends both ranks with exit code 2.
3. (slow) SIGTERM to torchrun: both ranks stop after the same step, rank 0's checkpoint is on
   disk, and the run resumes in one process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from ganforge.config import apply_overrides
from ganforge.presets import get_preset

SRC = str(Path(__file__).resolve().parents[1] / "src")
STEPS = 4  # G steps per case
# Adam divides by sqrt(v): a 1-ulp gradient difference can move a parameter by ~lr·1e-3 early on.
NO_BN_ATOL = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyG(nn.Module):
    """z (N, 8) -> images (N, 1, 16, 16): no batch norm, so a shard's forward is a slice of the batch's."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.LeakyReLU(0.2), nn.Linear(32, 256), nn.Tanh())

    def forward(self, z, y=None):
        return self.net(z).view(-1, 1, 16, 16)


class TinyD(nn.Module):
    """images (N, 1, 16, 16) -> logits (N,)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def embed(self, x):  # (N, 32) penultimate features, for feature matching
        return self.net[:3](x)

    def head(self, h, y=None):
        return self.net[3](h).squeeze(1)

    def forward(self, x, y=None):
        return self.head(self.embed(x), y)


def case_config(name: str):
    """Tiny configs: 'ns-bn' (DCGAN, BN in G and D), 'wgan-gp' (double backward, 2 critic steps),
    'ns-nobn' / 'keras-nobn' (alternating / simultaneous updates for the TinyG/TinyD nets), 'fm-nobn'
    (ns-nobn with feature matching), 'ac-gan' (cgan-mnist with an AC-GAN class head on D)."""
    tiny = ["model.resolution=16", "model.g_width=8", "model.d_width=8", "model.z_dim=8", "train.batch_size=16",
            "optim.lr_g=1e-3", "optim.lr_d=1e-3"]
    if name == "ns-bn":
        return apply_overrides(get_preset("dcgan-mnist"), tiny)
    if name == "wgan-gp":
        return apply_overrides(get_preset("wgan-gp-mnist"), [*tiny, "train.n_critic=2"])
    if name == "ac-gan":  # class-conditional, projection + class head on D (no BN in D), G and D class losses
        return apply_overrides(get_preset("cgan-mnist"), [*tiny, "model.d_cond=proj+ac", "model.d_batchnorm=false",
                                                           "loss.ac_on_fake=true"])
    base = apply_overrides(get_preset("dcgan-mnist"), [*tiny, "train.ema_decay=0"])
    if name == "keras-nobn":
        return apply_overrides(base, ["train.update=simultaneous"])
    if name == "fm-nobn":  # feature matching: a square of batch means, made global over the ranks
        return apply_overrides(base, ["train.n_critic=2", "loss.fm_weight=10"])
    return apply_overrides(base, ["train.n_critic=2"])


def build_nets(name: str):
    from ganforge.models import build_discriminator, build_generator

    if name.endswith("nobn"):
        return TinyG(), TinyD()
    m = case_config(name).model
    return build_generator(m), build_discriminator(m)


def params_after(name: str, parallel) -> torch.Tensor:
    from ganforge.bench.run import make_ganforge_iteration

    torch.manual_seed(0)
    G, D = build_nets(name)
    one, _, guard = make_ganforge_iteration(case_config(name), torch.device("cpu"), parallel, G=G, D=D)
    for _ in range(STEPS):
        one()
    assert guard.poll() is None
    return torch.cat([p.detach().reshape(-1) for p in [*G.parameters(), *D.parameters()]])


CASES = ("ns-bn", "wgan-gp", "ns-nobn", "keras-nobn", "fm-nobn", "ac-gan")


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from ganforge.training.distributed import DataParallel

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        parallel = DataParallel(rank=rank, world_size=world, device=torch.device("cpu"))
        for name in CASES:
            flat = params_after(name, parallel)
            gathered = [torch.empty_like(flat) for _ in range(world)]
            dist.all_gather(gathered, flat)
            if rank == 0:
                torch.save(gathered, Path(out) / f"{name}.pt")
        dist.barrier()  # every result is on disk once all ranks pass this point
    except BaseException:
        dist.destroy_process_group()
        raise
    # gloo's teardown can still abort one rank (SIGABRT, "terminate called without an active
    # exception") when its peer disconnects first: leave without running destructors, as
    # cli.entry ends a process that torchrun launched
    os._exit(0)


def _init(name: str) -> torch.Tensor:
    torch.manual_seed(0)
    G, D = build_nets(name)
    return torch.cat([p.detach().reshape(-1) for p in [*G.parameters(), *D.parameters()]])


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    torch.multiprocessing.spawn(_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    # One-process references are computed here: inside a worker the guard's all_ranks hook
    # would all-reduce (the process group is up) and wait for the other rank forever.
    return {name: {"ranks": torch.load(out / f"{name}.pt"), "single": params_after(name, None), "init": _init(name)}
            for name in CASES}


@pytest.mark.parametrize("name", CASES)
def test_parameters_identical_across_ranks_and_trained(spawned, name):
    r0, r1 = spawned[name]["ranks"]
    assert torch.equal(r0, r1)  # bit-identical: every rank applies the same averaged gradients
    assert (r0 - spawned[name]["init"]).abs().max() > 1e-4  # and the steps did train


@pytest.mark.parametrize("name", ["ns-nobn", "keras-nobn", "fm-nobn"])
def test_two_processes_equal_one_process_on_the_global_batch(spawned, name):
    # No BN, dropout or penalty: the mean loss over B equals the mean of the two shards' mean
    # losses, so the averaged gradient is the one-process gradient up to summation order.
    # Feature matching is a square of batch means; it matches because its means are all-reduced.
    ddp, single = spawned[name]["ranks"][0], spawned[name]["single"]
    torch.testing.assert_close(ddp, single, rtol=0, atol=NO_BN_ATOL)


def test_batch_norm_shards_differ_from_one_process_on_cpu(spawned):
    # Documented limit: gloo has no SyncBatchNorm, so BN normalises each shard separately.
    assert not torch.allclose(spawned["ns-bn"]["ranks"][0], spawned["ns-bn"]["single"], atol=NO_BN_ATOL)


def torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "ganforge", "train", "--preset", "dcgan-mnist", "--data", "digits", "--set", "model.resolution=16",
           "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "train.total_steps=3",
           "--set", "train.batch_size=32", "--set", "train.progress=false", "--set", "train.sample_grid=4",
           "--set", "train.threads=1", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_torchrun_trains_and_rank0_writes_one_run(tmp_path):
    r = torchrun(tmp_path, "--out", "run")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # rank 1 wrote nothing elsewhere
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())["resolved"]
    assert resolved["world_size"] == 2 and resolved["per_process_batch"] == 16
    assert (tmp_path / "run" / "model" / "generator.safetensors").exists()
    assert len(list((tmp_path / "run" / "checkpoints").glob("state-*"))) == 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "event" not in row] == [3]  # one writer: no duplicated rows
    assert [row["step"] for row in rows if row.get("event") == "eval"] == [3]  # mnist-clf reads the 16 px digits
    assert "2 processes x 16 images = global batch 32" in r.stderr
    assert "differ from rank 0" not in r.stderr  # the end-of-run check found identical parameters


def test_torchrun_dry_run_checks_on_every_rank_and_writes_nothing(tmp_path):
    r = torchrun(tmp_path, "--out", "run", "--dry-run")  # the process group, data and nets, then no step
    assert r.returncode == 0, r.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []
    assert r.stdout.count('"preset"') == 1 and r.stderr.count("dry run: ") == 1  # rank 0 reports, once
    assert r.stderr.count("eval.evaluator=auto") == 1
    r = torchrun(tmp_path, "--out", "run", "--dry-run", "--set", "train.batch_size=33")
    assert r.returncode != 0 and "train.batch_size=33 must be divisible by train.world_size=2" in r.stderr, r.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []


def test_torchrun_usage_error_on_rank0_ends_every_rank_cleanly(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    r = torchrun(tmp_path, "--out", "taken")  # only rank 0 creates the folder and fails; rank 1 must not hang
    assert r.returncode != 0
    assert r.stderr.count("ganforge: error:") == 2, r.stderr[-3000:]
    r = torchrun(tmp_path, "--set", "train.batch_size=33")
    assert "train.batch_size=33 must be divisible by train.world_size=2" in r.stderr, r.stderr[-3000:]


def test_a_launched_process_ends_without_interpreter_teardown_and_keeps_its_output_and_code():
    # entry() under WORLD_SIZE > 1 ends with os._exit (gloo's teardown can abort a finished rank):
    # buffered stdout and stderr must still come out whole, with the command's exit code
    env = {**os.environ, "WORLD_SIZE": "2", "PYTHONPATH": SRC}
    plain = subprocess.run([sys.executable, "-m", "ganforge", "presets"], env={**env, "WORLD_SIZE": "1"},
                           capture_output=True, text=True, timeout=120)
    r = subprocess.run([sys.executable, "-m", "ganforge", "presets"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == plain.stdout and "dcgan-mnist" in r.stdout
    r = subprocess.run([sys.executable, "-m", "ganforge", "sample", "/no/such/run"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("ganforge sample: error:") == 1 and r.stdout == ""


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_at_the_same_step_then_resumes_in_one_process(tmp_path):
    import re
    import signal
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "ganforge", "train", "--preset", "dcgan-mnist", "--data", "digits", "--set", "model.resolution=16",
           "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "train.total_steps=100000",
           "--set", "train.batch_size=32", "--set", "train.progress=false", "--set", "train.log_every=10",
           "--set", "train.sample_grid=4", "--set", "train.threads=1", "--out", "run"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 90
    while not (metrics.exists() and metrics.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)  # torchrun forwards one SIGTERM to each worker
    _, err = proc.communicate(timeout=90)
    steps = re.findall(r"stopped by SIGTERM after step (\d+)", err)
    assert len(steps) == 2 and steps[0] == steps[1], err[-3000:]  # both ranks stopped after the same step
    done = int(steps[0])
    assert (tmp_path / "run" / "checkpoints" / f"state-{done:08d}.pt").exists()
    r = subprocess.run([sys.executable, "-m", "ganforge", "train", "--resume", "run", "--set",
                        f"train.total_steps={done + 2}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
