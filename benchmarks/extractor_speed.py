"""Feature-extractor throughput and the end-to-end cost of a 50k-image FID, printed as markdown.

    OMP_NUM_THREADS=1 python benchmarks/extractor_speed.py                       # 1 thread, random-init generator
    OMP_NUM_THREADS=1 python benchmarks/extractor_speed.py --generator runs/00001-dcgan-mnist --threads 1

Measures, on the current device (CPU by default):
  * images/s of mnist-clf (28x28 grey) and inception-v3-fid (32x32 RGB resized to 299, random weights:
    the speed does not depend on the values) at the given batch size;
  * a 50k-image FID with mnist-clf measured end to end: generate 50k + features + statistics + FID
    against mnist5k (reference features included, no cache), split into its parts;
  * for Inception on a CPU only a few hundred images are timed; the 50k time is extrapolated from them
    and labelled so.
"""

from __future__ import annotations

import datetime
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import torch


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    try:
        repo = Path(__file__).resolve().parents[1]
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _throughput(ex, images: torch.Tensor, batch_size: int, repeats: int) -> float:
    ex.extract(images[:batch_size], batch_size=batch_size)  # warm-up (allocator, oneDNN kernels)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        ex.extract(images, batch_size=batch_size)
        best = min(best, time.perf_counter() - t)
    return len(images) / best


def _random_inception(tmp: Path):
    from ganforge.evaluators.inception import FIDInceptionV3
    from ganforge.io import sha256_file
    from ganforge.metrics.extractors import load_extractor

    torch.manual_seed(0)
    path = tmp / "random-inception.pth"
    torch.save(FIDInceptionV3().state_dict(), path)
    return load_extractor("inception-v3-fid", weights=path, sha256=sha256_file(path))


@click.command(context_settings={"show_default": True})
@click.option("--threads", type=click.IntRange(min=1), default=1, help="torch intra-op threads.")
@click.option("--generator", type=click.Path(path_type=Path), default=None, help="Run folder for the 50k FID (default: a random-init dcgan-mnist generator).")
@click.option("--n-fid", type=click.IntRange(min=100), default=50_000, help="Generated images for the end-to-end FID.")
@click.option("--n-inception", type=click.IntRange(min=10), default=300, help="Images timed through Inception.")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=25, help="Inception images per forward pass (25 was fastest on 1 CPU thread).")
@click.option("--device", default="cpu")
def main(threads: int, generator: Path | None, n_fid: int, n_inception: int, batch_size: int, device: str) -> None:
    import tempfile

    from ganforge.data import load_images
    from ganforge.metrics import FeatureStats, evaluate, fid_from_stats, load_extractor
    from ganforge.sampling import generate

    torch.set_num_threads(threads)
    rows = []
    mnist = load_extractor("mnist-clf", device=device)
    ref = load_images("mnist5k", resolution=28, channels=1).images  # uint8 (5000, 1, 28, 28)
    rate_mnist = _throughput(mnist, ref, batch_size=500, repeats=3)
    rows.append(("mnist-clf", "28x28x1 (native)", 500, len(ref), rate_mnist))
    with tempfile.TemporaryDirectory() as tmp:
        inc = _random_inception(Path(tmp))
        inc.network.to(device)
        x = torch.randint(0, 256, (n_inception, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        rate_inc = _throughput(inc, x, batch_size=batch_size, repeats=1)
        rows.append(("inception-v3-fid", "32x32x3 -> 299 (tf1-bilinear)", batch_size, n_inception, rate_inc))

    # 50k FID with mnist-clf, end to end and in parts.
    if generator is not None:
        from ganforge.training.checkpoint import load_generator

        G, g_desc = load_generator(generator, device=device), str(generator)
    else:
        from ganforge.models import build_generator
        from ganforge.presets import get_preset

        torch.manual_seed(0)
        G, g_desc = build_generator(get_preset("dcgan-mnist").model).to(device).eval(), "dcgan-mnist architecture, random init"
    t0 = time.perf_counter()
    images, _ = generate(G, n_fid, seed=0, batch_size=500, device=device)  # uint8 (n, 28, 28, 1)
    t1 = time.perf_counter()
    fake = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    feats, _ = mnist.extract(fake, batch_size=500)
    ref_feats, _ = mnist.extract(ref, batch_size=500)
    t2 = time.perf_counter()
    stats, ref_stats = FeatureStats.from_features(feats), FeatureStats.from_features(ref_feats)
    t3 = time.perf_counter()
    fid = fid_from_stats(stats, ref_stats)
    t4 = time.perf_counter()
    t_api = time.perf_counter()
    api = evaluate(G, metrics="fid", n=n_fid, batch_size=500, cache=False, device=device).values["fid"]
    t_api = time.perf_counter() - t_api
    assert abs(api - fid) <= 1e-6 * max(1.0, fid), (api, fid)

    cmd = shlex.join(["python", "benchmarks/extractor_speed.py", *sys.argv[1:]])
    print("## Evaluation: extractor throughput and FID cost\n")
    print(f"Command: `OMP_NUM_THREADS={threads} {cmd}`  ")
    print(f"CPU: {_cpu_name()}, {threads} torch thread(s); device {device}; torch {torch.__version__}; "
          f"commit {_commit()}; {datetime.date.today().isoformat()}\n")
    print("| extractor | input | batch | images timed | images/s |")
    print("|---|---|---|---|---|")
    for name, inp, b, n, rate in rows:
        print(f"| {name} | {inp} | {b} | {n} | {rate:,.0f} |")
    print(f"\n**{n_fid // 1000}k-image FID with mnist-clf, measured end to end** ({g_desc}, vs mnist5k, no cache): "
          f"{t4 - t0:.1f} s = generate {t1 - t0:.1f} s + features {t2 - t1:.1f} s "
          f"({n_fid} generated + {len(ref)} reference) + statistics {t3 - t2:.2f} s + FID {t4 - t3:.3f} s "
          f"(FID = {fid:.2f}; the same call through `evaluate`: {t_api:.1f} s).\n")
    est = 50_000 / rate_inc
    print(f"**Inception, 50k images: {est / 60:.0f} min (EXTRAPOLATED** from {n_inception} images at "
          f"{rate_inc:.1f} images/s on this CPU, features only; plus the reference set at the same rate "
          f"unless its statistics are cached). Use a GPU for Inception FIDs.")


if __name__ == "__main__":
    main()
