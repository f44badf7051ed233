"""The `--mask-kind alpha` example in docs/RESTORATION.md ("Free-form holes"): a 256 px crop of
scikit-image's astronaut with a brush stroke and a disc erased (made transparent), filled by
`ganforge inpaint apply inpaint-free erased.png filled.png --mask-kind alpha` (the CLI, default
`--work-scale auto`) and by OpenCV's Telea; prints both PSNRs and writes the strip
hole (magenta) | Telea | inpaint-free | original:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/inpaint_alpha_example.py OUT_DIR
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw
from skimage import data

ROOT = Path(__file__).resolve().parents[1]


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / ((x.astype(np.float64) - ref) ** 2).mean()))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    photo = data.astronaut()[40:296, 200:456]  # (256, 256, 3): face, helmet ring, the shuttle model
    hole_img = Image.new("L", (256, 256), 0)
    draw = ImageDraw.Draw(hole_img)
    draw.line([(30, 200), (90, 150), (160, 170), (220, 120)], fill=255, width=14)
    draw.ellipse((150, 30, 200, 75), fill=255)
    hole = np.asarray(hole_img) > 0  # (256, 256) bool
    rgba = np.dstack([photo, np.where(hole, 0, 255).astype(np.uint8)])
    Image.fromarray(rgba).save(out / "erased.png")
    subprocess.run([sys.executable, "-m", "ganforge", "inpaint", "apply", "inpaint-free", str(out / "erased.png"),
                    str(out / "filled.png"), "--mask-kind", "alpha", "--force"], check=True, cwd=ROOT)
    ours = np.asarray(Image.open(out / "filled.png"))
    telea = cv2.inpaint(np.ascontiguousarray(photo * ~hole[..., None]), hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    shown = photo.copy()
    shown[hole] = (255, 0, 255)
    Image.fromarray(np.concatenate([shown, telea, ours, photo], axis=1)).save(out / "strip.png", optimize=True)
    print(f"PSNR over the whole crop: Telea {psnr(telea, photo):.2f} dB, inpaint-free {psnr(ours, photo):.2f} dB")
    print(f"wrote {out / 'strip.png'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
