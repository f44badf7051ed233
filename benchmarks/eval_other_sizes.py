"""What a shipped classifier's FID sees when it reads images at another size than its own.

``eval.evaluator=auto`` scores RGB images of any size with cifar10-clf, which reads them resized
to 32 px. This compares two sets of random crops of the 80 restoration photos (``--side`` px, the
photos first shrunk so a crop holds a scene), the second one degraded several ways, and prints
the FID and KID of each against the first: at ``--side 32`` the classifier reads the crops as they
are, at ``--side 64`` shrunk by 2. docs/EVALUATION.md, "Other sizes", has the table.

    python benchmarks/eval_other_sizes.py --side 64 [--n 3000] [--photos DIR]
"""

from __future__ import annotations

import argparse
import glob
import time

import numpy as np
import torch
from PIL import Image, ImageFilter

from ganforge.metrics.evaluation import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, default=64, help="crop side in px (32: cifar10-clf's own size)")
    ap.add_argument("--n", type=int, default=3000, help="crops per set")
    ap.add_argument("--photos", default="../shared/data/restoration/sun_hays80")
    ap.add_argument("--evaluator", default="cifar10-clf")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    files = sorted(glob.glob(f"{a.photos}/*"))
    if not files:
        raise SystemExit(f"no photos in {a.photos}: give --photos DIR")
    shrink = 256 // a.side  # ~1024 px photos -> ~256 px at side 64, ~128 px at side 32
    photos = [Image.open(f).convert("RGB") for f in files]
    photos = [p.resize((p.width // shrink, p.height // shrink), Image.BICUBIC) for p in photos]
    s = a.side

    def crops(n):
        out = []
        for _ in range(n):
            p = photos[rng.integers(len(photos))]
            x, y = rng.integers(0, p.width - s), rng.integers(0, p.height - s)
            out.append(p.crop((x, y, x + s, y + s)))
        return out

    ref, other = crops(a.n), crops(a.n)
    via = lambda ims, f: [i.resize((s // f, s // f), Image.BICUBIC).resize((s, s), Image.BICUBIC) for i in ims]  # noqa: E731
    noisy = [Image.fromarray(np.clip(np.asarray(i) + rng.normal(0, 8, (s, s, 3)), 0, 255).astype(np.uint8)) for i in other]
    variants = {
        "real (other crops)": other,
        "Gaussian blur, sigma 0.7 px": [i.filter(ImageFilter.GaussianBlur(0.7)) for i in other],
        "Gaussian blur, sigma 1.5 px": [i.filter(ImageFilter.GaussianBlur(1.5)) for i in other],
        "half resolution (bicubic down and up x2)": via(other, 2),
        "quarter resolution (x4)": via(other, 4),
        "Gaussian noise, sigma 8/255": noisy,
    }
    arr = lambda ims: np.stack([np.asarray(i) for i in ims])  # noqa: E731  (N, s, s, 3) uint8
    print(f"{a.evaluator}, {a.n} vs {a.n} crops of {s} px from {len(files)} photos (shrunk by {shrink})")
    for name, ims in variants.items():
        t = time.time()
        r = evaluate(arr(ims), metrics="fid,kid", evaluator=a.evaluator, ref=arr(ref), cache=False)
        print(f"{name:42s} FID {r.values['fid']:7.3f}  KID {r.values['kid'] * 1000:7.3f}e-3  ({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
