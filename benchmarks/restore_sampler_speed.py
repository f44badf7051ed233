"""Speed of the restoration trainer's batch sampler: the per-patch Python loop it replaced against
the gathered PatchSampler, on the CPU and, where there is one, on the CUDA device.

Each round times every variant once (interleaved, so machine noise hits them alike); the report
gives the median ms per batch and the ratio to the loop. The loop is the reference implementation
of tests/test_restore_train.py (which also checks that both give the same batches bit for bit).
On CUDA the gathered sampler is timed to a synchronize, i.e. until the batch is ready on the GPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/restore_sampler_speed.py --data ../shared/data/restoration/sun_hays80
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from ganforge.apps.restore_config import apply_overrides, get_preset
from ganforge.apps.restore_data import PatchSampler, load_photos

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_restore_train import loop_reference_batches  # noqa: E402  (the reference sampler)

PRESETS = ("sr-x4", "denoise-s25", "inpaint-center")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder or .zip of training photos")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=10, help="batches per variant per round")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    photos = load_photos(args.data)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    for name in PRESETS:
        cfg = apply_overrides(get_preset(name), args.overrides)
        samplers = {dev: PatchSampler(photos, cfg, seed=0, device=dev) for dev in devices}
        times: dict[str, list[float]] = {"loop": [], **{f"gather-{d}": [] for d in devices}}
        for s in samplers.values():  # warm-up (CUDA context, allocator)
            s.sample()
        for r in range(args.rounds):
            t0 = time.perf_counter()
            loop_reference_batches(photos, cfg, r, args.batches)
            times["loop"].append((time.perf_counter() - t0) / args.batches * 1000)
            for dev, s in samplers.items():
                t0 = time.perf_counter()
                for _ in range(args.batches):
                    b = s.sample()
                if dev == "cuda":
                    torch.cuda.synchronize()
                del b
                times[f"gather-{dev}"].append((time.perf_counter() - t0) / args.batches * 1000)
        base = statistics.median(times["loop"])
        results.append({"preset": name, "batch": cfg.train.batch_size, "patch": cfg.data.patch_size,
                        **{f"{k}_ms": round(statistics.median(v), 2) for k, v in times.items()},
                        **{f"{k}_speedup": round(base / statistics.median(v), 2) for k, v in times.items() if k != "loop"}})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    print(json.dumps({"photos": len(photos), "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "cpu": platform.processor() or platform.machine(), "gpu": gpu, "commit": commit,
                      "date": datetime.date.today().isoformat(), "rows": results}, indent=1))


if __name__ == "__main__":
    main()
