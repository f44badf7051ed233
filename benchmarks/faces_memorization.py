"""Does a GAN trained on 100 faces copy them? Nearest training image of each generated image.

For each run (a faces-lfw run folder): 1000 images from its EMA generator (noise seed 0), each
compared with the 100 training faces and their mirror images (the preset trains with data.hflip, so
a mirrored copy is a copy), by L2 distance in pixels at the training resolution (32 x 32 grey, in
[0, 1]). The scale is the training faces' own spacing: each face's distance to its nearest *other*
training face (mirrors of itself excluded). Reported:
- `nn_ratio`: median over generated images of (distance to the nearest training face) / (median
  training nearest-neighbour distance); ~1 means as far from the training faces as they are from
  each other, << 1 means near-copies;
- `near_copies`: the share of generated images closer to a training face than the closest 5 % of
  training pairs are to each other (5th percentile of the training nearest-neighbour distances);
- a PNG per run: the 16 generated images closest to a training face, each above that face.

    python benchmarks/faces_memorization.py runs/faces/faces-lfw-s0 runs/faces/faces-lfw-noaug-s0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ganforge import load_generator
from ganforge.data import load_images
from ganforge.io import image_grid, save_png_keeping
from ganforge.sampling import generate


def nearest(gen: torch.Tensor, train: torch.Tensor, train_flipped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) generated -> distance to the nearest of train ∪ flipped (N,) and that face's index (N,) in 0..99."""
    ref = torch.cat([train, train_flipped])  # (200, D)
    d = torch.cdist(gen.double(), ref.double())  # (N, 200)
    dist, idx = d.min(dim=1)
    return dist, idx % len(train)


def training_spacing(train: torch.Tensor, train_flipped: torch.Tensor) -> torch.Tensor:
    """Each training face's distance to its nearest other face or other face's mirror: (100,)."""
    d = torch.cdist(train.double(), torch.cat([train, train_flipped]).double())  # (100, 200)
    n = len(train)
    own = torch.arange(n)
    d[own, own] = float("inf")  # itself
    d[own, own + n] = float("inf")  # its own mirror
    return d.min(dim=1).values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = {}
    train = flipped = None
    for run in args.runs:
        G = load_generator(run)
        images, _ = generate(G, args.n, seed=0)  # uint8 (N, H, W, C)
        h, c = images.shape[1], images.shape[3]
        if train is None:
            faces = load_images("lfw-faces", resolution=h, channels=c).images  # uint8 (100, C, H, W)
            train = faces.float().flatten(1) / 255.0
            flipped = faces.flip(-1).float().flatten(1) / 255.0
            spacing = training_spacing(train, flipped)
            scale, p5 = spacing.median().item(), torch.quantile(spacing, 0.05).item()
        gen = torch.from_numpy(images).permute(0, 3, 1, 2).float().flatten(1) / 255.0  # (N, D)
        dist, idx = nearest(gen, train, flipped)
        rows[run.name] = {"nn_ratio": round((dist.median() / scale).item(), 4),
                          "near_copies": round((dist < p5).double().mean().item(), 4),
                          "nn_distance_median": round(dist.median().item(), 4)}
        order = dist.argsort()[:16]  # the 16 closest generated images, each above its nearest training face
        pairs = torch.cat([torch.from_numpy(images[order.numpy()]).permute(0, 3, 1, 2),
                           (train[idx[order]] * 255).round().to(torch.uint8).view(-1, c, h, h)])  # (32, C, H, W)
        save_png_keeping(image_grid(pairs.float() / 127.5 - 1, nrow=16), run / "nearest-training-faces.png")  # [-1, 1]
        print(f"{run}: {rows[run.name]}", flush=True)
    out = {"n_generated": args.n, "training_nn_distance_median": round(scale, 4), "training_nn_distance_p5": round(p5, 4),
           "runs": rows, "command": " ".join(["python"] + sys.argv)}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
