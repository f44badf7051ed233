"""Peak memory and time of one restoration call, untiled (--tile 0) against --tile auto, side by side.

    OMP_NUM_THREADS=2 python benchmarks/restore_memory.py sr-x4:750x1000 denoise-s25:2048x2048 \\
        denoise-s25:3000x4000 inpaint-center:2048x2048 [--only auto] [--threads 2]

Each case runs in a fresh process (so its peak RSS is its own): ``load_restorer(MODEL, tile=T)`` on one
smooth random (1, 3, H, W) input (inpainting: with the centre mask), timed around the call, peak RSS from
getrusage. The two 8-bit outputs are then compared. Prints a markdown table with the command, CPU,
commit and date (docs/RESTORATION.md, "--tile auto").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine()


def _torch_version() -> str:
    import torch

    return torch.__version__


def one_call(model: str, h: int, w: int, tile: str, out: str, threads: int) -> dict:
    import torch

    from ganforge.apps.degrade import make_mask
    from ganforge.apps.restore_apply import load_restorer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # smooth content (a bilinear upscale of noise), so the nets see image-like input
    x = torch.nn.functional.interpolate(torch.rand(1, 3, h // 16 + 1, w // 16 + 1), size=(h, w), mode="bilinear")
    r = load_restorer(model, tile=tile if tile == "auto" else int(tile))
    mask = make_mask("center", 1, h, w, torch.Generator()) if r.task == "inpaint" else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    t = time.perf_counter()
    y = r(x * (1 - mask) if mask is not None else x, mask)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    np.save(out, (y[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    tiles = r.tile_for(h, w)
    return {"seconds": seconds, "peak_gib": peak, "before_gib": before, "tile_used": tiles, "out": list(y.shape)}


def run_case(model: str, h: int, w: int, tile: str, out: Path, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--one", model, str(h), str(w), tile, str(out), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1][:200]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", help="MODEL:HxW (input size)")
    ap.add_argument("--only", choices=["auto", "0"], default=None, help="Run one tiling only (e.g. auto where untiled cannot fit).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", nargs=5, metavar=("MODEL", "H", "W", "TILE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        model, h, w, tile, out = args.one
        print(json.dumps(one_call(model, int(h), int(w), tile, out, args.threads)))
        return

    tilings = [args.only] if args.only else ["0", "auto"]
    print("| model, input | " + " | ".join(f"--tile {t}" for t in tilings) + (" | auto vs 0, 8-bit |" if len(tilings) == 2 else " |"))
    print("|---" * (len(tilings) + 1 + (len(tilings) == 2)) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            model, size = case.split(":")
            h, w = (int(v) for v in size.lower().split("x"))
            cells, outs = [], []
            for t in tilings:
                out = Path(tmp) / f"{t}.npy"
                r = run_case(model, h, w, t, out, args.threads)
                cells.append(r["error"] if "error" in r else
                             f"{r['seconds']:.1f} s, {r['peak_gib']:.2f} GiB" + (f" (tiles of {r['tile_used']})" if r["tile_used"] else ""))
                outs.append(out if "error" not in r else None)
            if len(tilings) == 2 and all(outs):
                d = np.abs(np.load(outs[0]).astype(int) - np.load(outs[1]).astype(int))
                cells.append("identical" if d.max() == 0 else f"max {d.max()} level(s) at {(d > 0).mean():.1e} of the values")
            print(f"| `{model}`, {w} x {h} | " + " | ".join(cells) + " |", flush=True)
    cmd = shlex.join(["python", "benchmarks/restore_memory.py", *sys.argv[1:]])
    print(f"\nCommand: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} {cmd}`  ")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    print(f"CPU: {_cpu_name()}, {args.threads} thread(s); torch {_torch_version()}; commit {commit}; {datetime.date.today()}")


if __name__ == "__main__":
    main()
