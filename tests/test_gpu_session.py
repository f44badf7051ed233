"""benchmarks/gpu_session.py, the one prepared call of a lent GPU: every command of its real plan
is a valid ganforge command (checked with --dry-run, without a GPU), and the whole plan runs end to
end on a CPU with tiny nets (--smoke) and leaves a summary with scores."""

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gpu_session", ROOT / "benchmarks" / "gpu_session.py")
gpu_session = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_session)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The layout `gpu_session.py prepare` copies, with random images: photo folders and CIFAR-like zips."""
    root = tmp_path_factory.mktemp("gpu-data")
    rng = np.random.default_rng(0)
    for folder, n, side in (("sun_hays80", 6, 256), ("Set5", 2, 240), ("Set14", 2, 248)):
        (root / folder).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)).save(root / folder / f"{i}.png")
    for name, n in (("cifar10-train20k.zip", 100), ("cifar10-test10k.zip", 20)):
        with zipfile.ZipFile(root / name, "w") as z:
            for i in range(n):
                path = root / "tmp.png"
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
                z.write(path, f"{('cat', 'dog')[i % 2]}/{i}.png")
    return root


def without_set(argv, prefix):
    """argv without its `--set KEY=VALUE` pairs whose KEY=VALUE starts with prefix."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--set" and argv[i + 1].startswith(prefix):
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def test_every_training_command_of_the_gpu_plan_validates(data, tmp_path, capsys):
    from ganforge.modes.stacked import stacked_config

    for job in gpu_session.JOBS:
        steps = gpu_session.plan(job, data, tmp_path / "runs", 6.5, "cuda", smoke=False)
        assert steps, job
        for name, argv in steps:
            if job.startswith("stacked"):
                sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
                cfg = stacked_config("best", int(argv[argv.index("--steps") + 1]), 0, tuple(sets))
                length = {"stacked": 32000, "stacked16": 16000}[job]  # best's length until 2026-12-05, and until 2026-12-04
                assert (cfg.model.g_width, cfg.model.d_width, cfg.train.total_steps) == (64, 64, length)
                assert cfg.optim.decay_start_step == length // 2
            elif job == "bench":
                assert argv[:2] in (["bench", "train"], ["bench", "sample"])
                assert main([*argv[:2], "--help"]) == 0
                capsys.readouterr()
                assert "--json" in argv and argv[argv.index("--device") + 1] == "cuda"
            elif name.startswith("train"):
                argv = without_set(argv, "train.init_from=")  # the L2 cycle starts from the L1 run, not made here
                assert "train.device=cuda" in argv, (job, name)
                # the dry run builds the data and nets, so on this CPU machine it runs them on the CPU
                argv = ["train.device=cpu" if a == "train.device=cuda" else a for a in argv]
                assert main([*argv, "--dry-run"]) == 0, (job, name, capsys.readouterr().err)
                resolved = capsys.readouterr().out
                assert '"fused_optim": true' in resolved
            else:
                assert "--json" in argv and argv[argv.index("--device") + 1] == "cuda"
    sr = dict(gpu_session.plan("sr", data, tmp_path, 6.5, "cuda", smoke=False))
    assert "train.max_minutes=6.5" in sr["train"] and "sr-x4" in sr["train"]
    inpaint = dict(gpu_session.plan("inpaint", data, tmp_path, 8.0, "cuda", smoke=False))
    assert "train.max_minutes=6.000" in inpaint["train"] and "train.max_minutes=2.000" in inpaint["train-l2"]


def test_smoke_plan_runs_on_cpu_and_reports(data, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_session.py"), "run", "--out", str(out), "--runs", str(tmp_path / "runs"),
         "--data", str(data), "--device", "cpu", "--smoke", "--minutes", "0.03", "--jobs", "sr,inpaint"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["smoke"] is True
    jobs = summary["jobs"]
    assert set(jobs) == {"sr", "inpaint"}  # denoise's plan has sr's shape
    for job, steps in jobs.items():
        assert all(s.get("rc") == 0 for s in steps.values()), (job, steps)
    assert jobs["sr"]["train"]["phases"]["pixel"]["steps"] >= 1
    assert set(jobs["sr"]) == {"train", "Set5", "Set5-se", "Set14", "Set14-se"}
    assert jobs["inpaint"]["train-l2"]["phases"]["pixel"]["steps"] >= 1
    for job, step in (("sr", "Set14"), ("sr", "Set5-se"), ("inpaint", "cifar")):
        assert 5 < jobs[job][step]["mean"]["psnr_rgb"] < 60
    # few files come back from the device (8 at most): the logs in one archive, the trained models exported
    assert {p.name for p in out.iterdir()} == {"summary.json", "logs.tar.gz", "models.tar", "inpaint-model.tar"}
    assert summary["bundled"] == ["models.tar", "inpaint-model.tar", "logs.tar.gz"]
    import tarfile

    with tarfile.open(out / "logs.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["inpaint.log", "sr.log"]
    with tarfile.open(out / "models.tar") as tar:
        assert sorted(tar.getnames()) == ["sr", "sr/config.json", "sr/generator.safetensors"]
    with tarfile.open(out / "inpaint-model.tar") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    from ganforge.apps.restore_apply import load_restorer

    assert load_restorer(tmp_path / "back" / "inpaint").task == "inpaint"
    # the run folders stay outside $OUT (the device tool returns 8 files at most), and are never reused
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_session.py"), "run", "--out", str(out),
                            "--runs", str(tmp_path / "runs"), "--data", str(data), "--device", "cpu", "--smoke"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "is not empty" in again.stderr
