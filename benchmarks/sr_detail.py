"""How much fine detail SR outputs carry, against the ground truth: a crude texture measure.

PSNR and SSIM reward the average of the plausible high resolution images, which is smooth; an
adversarial fine-tune (srgan-x4) trades some PSNR for texture. This prints, per model and test set,
Y-PSNR (border crop = scale) and the *detail ratio*: the energy of the Y channel's high-pass
residual (Y minus its Gaussian blur, sigma 1 px) in the output over the same in the ground truth,
mean over the images (1 = as much fine detail as the original, right or wrong; bicubic is far
below). It is not a perceptual metric (no LPIPS or NIQE weights are available offline): a model
that drew noise would score high. Read it with the strips.

    python benchmarks/sr_detail.py --data ../shared/data/sr/Set5 ../shared/data/sr/Set14 \
        --models bicubic sr-x4 runs/restore-cpu/srgan-full
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.apps.degrade import imresize, mod_crop, quantize, sr_degrade
from ganforge.apps.restore_apply import load_restorer
from ganforge.apps.testsets import load_test_images
from ganforge.apps.restore_eval import score_pair
from ganforge.metrics.fullref import rgb_to_y


def high_pass_energy(y: torch.Tensor, sigma: float = 1.0) -> float:
    """Mean square of y - blur(y): y (1, 1, H, W) on a 0..255 scale."""
    r = int(math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=y.dtype) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    blur = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    blur = F.conv2d(F.pad(blur, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return float(((y - blur) ** 2).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="test set folders (ground truth)")
    ap.add_argument("--models", nargs="+", default=["bicubic", "sr-x4"], help="bicubic, a shipped name or a run folder")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    s = a.scale
    nets = {m: None if m == "bicubic" else load_restorer(m) for m in a.models}
    print("| model | test set | Y-PSNR | detail ratio (mean ± se) | images with ratio < 1 |")
    print("|---|---|---|---|---|")
    for data in a.data:
        images = load_test_images(data)
        for name, net in nets.items():
            ratios, psnrs = [], []
            for t in images:
                hr = mod_crop(t.image, s)  # (1, 3, H, W) in [0, 1]
                lr = sr_degrade(hr, s)
                with torch.no_grad():
                    out = quantize(imresize(lr, s) if net is None else net(lr))
                y_out, y_hr = (rgb_to_y(v)[..., s:-s, s:-s] * 255 for v in (out, hr))  # (1, 1, H, W), 16..235
                psnrs.append(score_pair(out, hr, crop=s, grey=t.grey)["psnr_y"])  # the tables' Y-PSNR (grey files: luma)
                ratios.append(high_pass_energy(y_out) / high_pass_energy(y_hr))
            n = len(ratios)
            mean = sum(ratios) / n
            se = (sum((r - mean) ** 2 for r in ratios) / (n - 1) / n) ** 0.5 if n > 1 else float("nan")
            print(f"| {name} | {Path(data).name} | {sum(psnrs) / n:.2f} | {mean:.3f} ± {se:.3f} | "
                  f"{sum(r < 1 for r in ratios)} of {n} |", flush=True)


if __name__ == "__main__":
    main()
