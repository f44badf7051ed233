"""Reproduce the CPU measurement runs of docs/RESTORATION_training.md.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train sr      # ~22 min
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train denoise
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train srgan --init runs/restore-cpu/sr
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train denoise-more
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train denoise-long    # 75 min, one per core
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-long
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-photos  # 40 min
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-anneal  # ~65 min, after inpaint-long
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-photos-square  # 25 min
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-photos-mix     # 25 min
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-anneal-mix     # 35 min
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-unet          # 80 min
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-unet-upright  # 80 min
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/restore_runs.py train inpaint-unet[-upright]-l2  # 25 min, after it
    .venv/bin/python benchmarks/restore_runs.py eval     # prints each `ganforge ... eval` command, then runs it

Each run is exactly ``ganforge <task> train --preset P --data D --set ...`` with the overrides
below (the inpainting runs made before the `inpaint-center` preset moved to `center,square` masks
pin `degrade.mask_kinds=center`, what they were trained with) (the CLI calls the same train_restorer), into runs/restore-cpu/<name>. The presets' defaults
aim at one H100 for 15 minutes; on a shared 2-core CPU the nets are narrower and the time budget is
train.max_minutes, so the step counts reached depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "runs" / "restore-cpu"
CPU = ["train.device=cpu", "train.threads=1", "train.progress=false", "perf.precision=fp32"]
CPU_BF16 = ["train.device=cpu", "train.threads=1", "train.progress=false", "perf.precision=bf16", "perf.channels_last=true"]

# the 25-minute fine-tunes of inpaint-photos (they differ only in their masks)
PHOTO_TUNE = [
    "model.width=32", "data.patch_size=128", "train.batch_size=8", "train.total_steps=200000", "train.adv_steps=0",
    "loss.adv_weight=0", "loss.pixel=l2", "optim.lr=1e-4", "train.seed=1", "train.max_minutes=25",
    f"train.init_from={OUT / 'inpaint-photos'}", "train.val_every=500", "train.log_every=100", *CPU_BF16]

RUNS = {
    # name: (task, preset, data, overrides)
    "sr": ("sr", "sr-x4", SHARED / "restoration" / "sun_hays80", [
        "model.width=32", "model.blocks=8", "data.patch_size=96", "train.batch_size=16",
        "train.total_steps=100000", "train.max_minutes=22", "train.val_every=500", "train.log_every=50", *CPU]),
    "denoise": ("denoise", "denoise-s25", SHARED / "restoration" / "sun_hays80", [
        "model.width=32", "model.blocks=15", "data.patch_size=48", "train.batch_size=16",
        "train.total_steps=100000", "train.max_minutes=22", "train.val_every=500", "train.log_every=50", *CPU]),
    "inpaint": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "degrade.mask_kinds=center", "model.width=32", "model.blocks=3", "data.patch_size=32", "data.val_images=64", "train.batch_size=32",
        "train.total_steps=100000", "train.adv_steps=0", "loss.adv_weight=0", "train.max_minutes=22",
        "train.val_every=500", "train.log_every=50", *CPU]),
    # a second 25-minute session of the "denoise" run (train.init_from; a fresh cosine LR cycle at a lower peak)
    "denoise-more": ("denoise", "denoise-s25", SHARED / "restoration" / "sun_hays80", [
        "model.width=32", "model.blocks=15", "data.patch_size=48", "train.batch_size=16", "optim.lr=1.5e-4",
        "train.total_steps=100000", "train.max_minutes=25", "train.val_every=500", "train.log_every=50", "train.seed=1",
        f"train.init_from={OUT / 'denoise'}", *CPU]),
    # third session, a quiet machine (one job per core): full-width nets, bf16 autocast + channels_last on
    # the AMX CPU, 75 minutes each (two jobs at once)
    "denoise-long": ("denoise", "denoise-s25", SHARED / "restoration" / "sun_hays80", [
        "data.patch_size=48", "train.batch_size=16", "train.total_steps=200000", "train.max_minutes=75",
        "train.val_every=2000", "train.log_every=200", *CPU_BF16]),
    "inpaint-long": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "degrade.mask_kinds=center", "data.patch_size=32", "data.val_images=64", "train.batch_size=32", "train.total_steps=200000", "train.adv_steps=0",
        "loss.adv_weight=0", "train.max_minutes=75", "train.val_every=2000", "train.log_every=200", *CPU_BF16]),
    # the same session: inpainting of photo patches (128 px, 64 px hole) for the Set14 crops, half width
    "inpaint-photos": ("inpaint", "inpaint-center", SHARED / "restoration" / "sun_hays80", [
        "degrade.mask_kinds=center", "model.width=32", "data.patch_size=128", "train.batch_size=8", "train.total_steps=200000", "train.adv_steps=0",
        "loss.adv_weight=0", "train.max_minutes=40", "train.val_every=1000", "train.log_every=100", *CPU_BF16]),
    # sixth session: a second cosine cycle (1e-4 -> 0 over 6,000 steps) from the annealed inpaint-long
    # net, with L2 instead of L1: PSNR measures squared error, whose minimiser is the mean of the
    # plausible fills (L1's is their median).
    "inpaint-anneal": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "degrade.mask_kinds=center", "data.patch_size=32", "data.val_images=64", "train.batch_size=32", "train.total_steps=6000", "train.adv_steps=0",
        "loss.adv_weight=0", "loss.pixel=l2", "optim.lr=1e-4", "train.seed=1", "train.max_minutes=75",
        f"train.init_from={OUT / 'inpaint-long'}", "train.val_every=1000", "train.log_every=200", *CPU_BF16]),
    # the inpaint-photos net fine-tuned on jittered centre squares (mask kind `square`), so that it
    # no longer depends on the exact hole size and position; L2, a fresh cosine cycle from 1e-4
    "inpaint-photos-square": ("inpaint", "inpaint-center", SHARED / "restoration" / "sun_hays80", PHOTO_TUNE + ["degrade.mask_kinds=square"]),
    # the same fine-tune on a half-and-half mix of exact centre holes and jittered squares
    "inpaint-photos-mix": ("inpaint", "inpaint-center", SHARED / "restoration" / "sun_hays80", PHOTO_TUNE + ["degrade.mask_kinds=center,square"]),
    # seventh session: inpaint-anneal fine-tuned on the centre/square mix (as inpaint-photos-mix), so the
    # CIFAR net can run at several work scales on large photos
    "inpaint-anneal-mix": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "degrade.mask_kinds=center,square", "data.patch_size=32", "data.val_images=64", "train.batch_size=32", "train.total_steps=200000",
        "train.adv_steps=0", "loss.adv_weight=0", "loss.pixel=l2", "optim.lr=5e-5", "train.seed=2", "train.max_minutes=35",
        f"train.init_from={OUT / 'inpaint-anneal'}", "train.val_every=500", "train.log_every=100", *CPU_BF16]),
    # tenth session: the U-Net completion net (model.arch=unet: skips from every encoder level), the
    # inpaint-long recipe for 80 minutes, two at once; one with the usual flips + rotations, one
    # with flips only (CIFAR objects are upright; the test images are never rotated)
    "inpaint-unet": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "model.arch=unet", "degrade.mask_kinds=center", "data.patch_size=32", "data.val_images=64", "train.batch_size=32",
        "train.total_steps=200000", "train.adv_steps=0", "loss.adv_weight=0", "train.max_minutes=80", "train.val_every=1000",
        "train.log_every=200", *CPU_BF16]),
    "inpaint-unet-upright": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "model.arch=unet", "data.rotate=false", "degrade.mask_kinds=center", "data.patch_size=32", "data.val_images=64",
        "train.batch_size=32", "train.total_steps=200000", "train.adv_steps=0", "loss.adv_weight=0", "train.max_minutes=80",
        "train.val_every=1000", "train.log_every=200", *CPU_BF16]),
    # then (as inpaint-anneal) a second, L2 cosine cycle from lr 1e-4 for 25 minutes
    **{f"{run}-l2": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "model.arch=unet", f"data.rotate={'false' if 'upright' in run else 'true'}", "degrade.mask_kinds=center",
        "data.patch_size=32", "data.val_images=64", "train.batch_size=32", "train.total_steps=200000", "train.adv_steps=0",
        "loss.adv_weight=0", "loss.pixel=l2", "optim.lr=1e-4", "train.seed=1", "train.max_minutes=25",
        f"train.init_from={OUT / run}", "train.val_every=500", "train.log_every=100", *CPU_BF16])
       for run in ("inpaint-unet", "inpaint-unet-upright")},
    # the shipped models (src/ganforge/weights/restore/, 2026-12-04): the CPU-best recipes, three runs at
    # once on the 2 cores (one thread each), 55 minutes; inpainting 40 minutes of L1 then 15 of L2
    # (ship-denoise and ship-inpaint, below the dict, are denoise-long and inpaint-unet with less time)
    "ship-sr": ("sr", "sr-x4", SHARED / "restoration" / "sun_hays80", [
        "model.width=32", "model.blocks=8", "data.patch_size=96", "train.batch_size=16",
        "train.total_steps=100000", "train.max_minutes=55", "train.val_every=1000", "train.log_every=100", *CPU_BF16]),
    "ship-inpaint-l2": ("inpaint", "inpaint-center", SHARED / "cifar10-train20k.zip", [
        "model.arch=unet", "degrade.mask_kinds=center", "data.patch_size=32", "data.val_images=64", "train.batch_size=32",
        "train.total_steps=200000", "train.adv_steps=0", "loss.adv_weight=0", "loss.pixel=l2", "optim.lr=1e-4", "train.seed=1",
        "train.max_minutes=15", f"train.init_from={OUT / 'ship-inpaint'}", "train.val_every=500", "train.log_every=100", *CPU_BF16]),
    # adversarial fine-tuning of the "sr" run: phase 1 skipped (total_steps=0), D feature matching
    "srgan": ("sr", "srgan-x4", SHARED / "restoration" / "sun_hays80", [
        "model.width=32", "model.blocks=8", "model.d_width=32", "data.patch_size=96", "train.batch_size=16",
        "train.total_steps=0", "train.adv_steps=100000", "train.max_minutes=12", "train.val_every=200",
        "train.log_every=25", *CPU]),
}



def _replaced(run: tuple, values: dict, extra: tuple = ()) -> tuple:
    """A RUNS entry with the overrides of the keys in ``values`` given new values (same order), then ``extra``."""
    task, preset, data, overrides = run
    new = [f"{key}={values[key]}" if (key := o.split("=", 1)[0]) in values else o for o in overrides]
    return task, preset, data, [*new, *extra]


def _minutes(run: str, minutes: int) -> tuple:
    """RUNS[run] with another train.max_minutes (same overrides, same order)."""
    return _replaced(RUNS[run], {"train.max_minutes": minutes})


def _unet_l2(init: str, minutes: int, seed: int, patch: int = 64, batch: int = 16, shrink: float = 1.0) -> tuple:
    """A cosine cycle of L2 from lr 1e-4 for the U-Net denoiser (32 x 2), continuing run ``init``
    (on the photos scaled by ``shrink`` when it is not 1)."""
    return ("denoise", "denoise-s25", SHARED / "restoration" / "sun_hays80", [
        "model.arch=unet", "model.width=32", "model.blocks=2", f"data.patch_size={patch}", f"train.batch_size={batch}",
        "loss.pixel=l2", "optim.lr=1e-4", f"train.seed={seed}", "train.total_steps=200000", f"train.max_minutes={minutes}",
        f"train.init_from={OUT / init}", "train.val_every=1000", "train.log_every=200", *CPU_BF16,
        *([f"data.shrink={shrink}"] if shrink != 1 else [])])


RUNS["ship-denoise"] = _minutes("denoise-long", 55)
# nineteenth session: the DRUNet-style U-Net denoiser (model.arch=unet, width 32, 2 res blocks per level, 64 px
# patches) against DnCNN (denoise-long's recipe), 50 minutes each, both at once, one thread each
RUNS["denoise-unet"] = ("denoise", "denoise-s25", SHARED / "restoration" / "sun_hays80", [
    "model.arch=unet", "model.width=32", "model.blocks=2", "data.patch_size=64", "train.batch_size=16",
    "train.total_steps=200000", "train.max_minutes=50", "train.val_every=2000", "train.log_every=200", *CPU_BF16])
RUNS["denoise-dncnn-50"] = _minutes("denoise-long", 50)
# then (as inpaint-unet-l2) a second cosine cycle from lr 1e-4 with L2, whose minimiser is what PSNR scores
RUNS["denoise-unet-l2"] = _unet_l2("denoise-unet", 40, seed=1)
RUNS["ship-inpaint"] = _minutes("inpaint-unet", 40)
# twentieth session: a third cosine cycle (L2, lr 1e-4, 100 minutes) from denoise-unet-l2, two at once: the
# same 64 px patches, and 128 px patches at a quarter of the batch (the same pixels per step), since DRUNet
# trains on 128 px and the Set14 images BM3D wins (barbara, ppt3) are long-range repetitions
RUNS["denoise-unet-l2b"] = _unet_l2("denoise-unet-l2", 100, seed=2)
RUNS["denoise-unet-p128"] = _unet_l2("denoise-unet-l2", 100, seed=2, patch=128, batch=4)
# twenty-first session: a fourth cycle (100 minutes) from denoise-unet-l2b, two at once: on the photos shrunk by 2
# (data.shrink=0.5: sun_hays80's JPEG chroma is stored at half resolution, and on Set14 the U-Net's error was
# in the colour, not the luma, of the images BM3D won), and the same cycle at native size as the control
RUNS["denoise-unet-half"] = _unet_l2("denoise-unet-l2b", 100, seed=3, shrink=0.5)
RUNS["denoise-unet-l2c"] = _unet_l2("denoise-unet-l2b", 100, seed=3)
# twenty-second session: a fifth cycle (100 minutes) from denoise-unet-half, two at once: at the same scale, and
# on the photos shrunk by 0.35 (shrinking by 2 raised their mean chroma gradient from 0.54 to 0.95 levels, by 0.35
# to 1.24; Set14's is 2.12, Set5's 1.66)
RUNS["denoise-unet-half2"] = _unet_l2("denoise-unet-half", 100, seed=4, shrink=0.5)
RUNS["denoise-unet-s035"] = _unet_l2("denoise-unet-half", 100, seed=4, shrink=0.35)
# twenty-third session: a sixth cycle (95 minutes) from denoise-unet-s035, two at once: at the same scale (0.35),
# and shrunk further to 0.25 (mean chroma gradient 1.53 levels, nearer Set5's 1.66 and Set14's 2.12); 0.25 lost on
# both test sets, s035b gained 0.02 dB on Set14 and is the shipped denoise-s25
RUNS["denoise-unet-s035b"] = _unet_l2("denoise-unet-s035", 95, seed=5, shrink=0.35)
RUNS["denoise-unet-s025"] = _unet_l2("denoise-unet-s035", 95, seed=5, shrink=0.25)

# thirty-second session: the CIFAR U-Net overfits its 20k images (flips-only held-out PSNR fell from 4k steps, tenth
# session), so more augmentation: 4 px reflect-padded translation (data.pad) against the same recipe without it
# (base), 70 minutes each, both at once; then each an L2 cycle as inpaint-unet-l2, 20 minutes. (A third run, pad
# plus RGB channel permutations, data.channel_shuffle, was stopped at 2k steps to keep two jobs on the two cores.)
# pad-l2 is the shipped inpaint-center since then (benchmarks/ship_models.py)
for _aug, _extra in (("base", []), ("pad", ["data.pad=4"]), ("pad-shuffle", ["data.pad=4", "data.channel_shuffle=true"])):
    RUNS[f"inpaint-unet-{_aug}"] = _replaced(RUNS["inpaint-unet"], {"train.max_minutes": 70}, _extra)
    RUNS[f"inpaint-unet-{_aug}-l2"] = _replaced(
        RUNS["inpaint-unet-l2"], {"train.init_from": OUT / f"inpaint-unet-{_aug}", "train.max_minutes": 20}, _extra)

# thirty-third session: the test tables average PSNR per image in dB, which l2 does not weigh as they do; a third
# cosine cycle (lr 1e-4, 60 minutes) from the shipped inpaint-center (pad-l2) with loss.pixel=psnr (-PSNR per image,
# NAFNet's PSNRLoss), against the same cycle with l2 as the control, both at once
# (and, as a seventh cycle of the denoiser, 50 minutes from the shipped denoise-s25 at its 0.35 shrink)
SHIPPED = ROOT / "src" / "ganforge" / "weights" / "restore"
for _loss in ("l2", "psnr"):
    RUNS[f"inpaint-ft-{_loss}"] = _replaced(RUNS["inpaint-unet-pad-l2"], {
        "train.init_from": SHIPPED / "inpaint-center", "train.max_minutes": 60, "train.seed": 2, "loss.pixel": _loss})
    RUNS[f"denoise-ft-{_loss}"] = _replaced(_unet_l2(str(SHIPPED / "denoise-s25"), 50, seed=6, shrink=0.35), {"loss.pixel": _loss})

# thirty-fourth session: the shipped CIFAR net scores its training images as its test images (23.46 vs 23.45 dB on
# 1000 of each), so more data would not help it and capacity might; a fourth cycle (psnr, lr 1e-4, 70 minutes, seed 3) from the shipped
# inpaint-center grown by one zero-initialised refine block at 1/4 and at 1/2 (model.refine=1: 8.07M parameters,
# 1.24x the time per step), against the same cycle at the shipped size as the control, both at once
for _name, _refine in (("inpaint-ft4-psnr", []), ("inpaint-grow1-psnr", ["model.refine=1"])):
    RUNS[_name] = _replaced(RUNS["inpaint-ft-psnr"], {"train.max_minutes": 70, "train.seed": 3}, _refine)
# grown and control both scored 23.49 on CIFAR (the grown net made 5.1k steps to the control's 6.2k); a fifth cycle
# (45 minutes, seed 4) from each, to see whether the extra depth pays once it is trained: it did not (23.50 both);
# ft5 is the shipped inpaint-center since
for _name, _from in (("inpaint-ft5-psnr", "inpaint-ft4-psnr"), ("inpaint-grow1b-psnr", "inpaint-grow1-psnr")):
    RUNS[_name] = _replaced(RUNS[_from], {"train.max_minutes": 45, "train.seed": 4, "train.init_from": OUT / _from})
# thirty-fifth session: a sixth cycle (90 minutes, seed 5) from ft5 at the same peak lr 1e-4, against one at half that
# peak (each cycle's restart at 1e-4 may first undo part of the previous anneal), both at once: level (-0.004 ± 0.004 dB
# on CIFAR); ft6 is the shipped inpaint-center since
for _name, _lr in (("inpaint-ft6-psnr", "1e-4"), ("inpaint-ft6-lr5-psnr", "5e-5")):
    RUNS[_name] = _replaced(RUNS["inpaint-ft5-psnr"], {
        "train.max_minutes": 90, "train.seed": 5, "train.init_from": OUT / "inpaint-ft5-psnr", "optim.lr": _lr})
# thirty-sixth session: a seventh cycle (105 minutes, seed 6) from ft6, one job on both cores (train.threads=2)
# instead of two one-thread jobs, since two nets trained side by side gave nothing when averaged
RUNS["inpaint-ft7-psnr"] = _replaced(RUNS["inpaint-ft6-psnr"], {
    "train.max_minutes": 105, "train.seed": 6, "train.init_from": OUT / "inpaint-ft6-psnr", "train.threads": 2})
# thirty-seventh session: the shipped sr-x4 is the 32 x 8 ship-sr (30.69 / 27.63); the preset's full-width net (64 x 16,
# 128 px patches) on the CPU for 90 minutes, one job on both cores, batch 16: about the HR pixels the H200's 4,275
# steps of batch 32 saw (31.07 / 27.82)
RUNS["sr-full"] = _replaced(("sr", "sr-x4", SHARED / "restoration" / "sun_hays80", [
    "train.batch_size=16", "train.total_steps=200000", "train.max_minutes=90", "train.val_every=1000", "train.log_every=100",
    *CPU_BF16]), {"train.threads": 2})
# then a second, 30-minute cycle from it with the PSNR loss (the inpainting net's best) at peak lr 1e-4: level
# (-0.01 / +0.00 dB on Set5 / Set14), not shipped
RUNS["sr-full-psnr"] = _replaced(RUNS["sr-full"], {"train.max_minutes": 30}, (
    "loss.pixel=psnr", "optim.lr=1e-4", "train.seed=1", f"train.init_from={OUT / 'sr-full'}"))
# (thirty-eighth session) a 45-minute L1 cycle from sr-full on the photos shrunk by 2 (data.shrink=0.5, the
# denoiser's +0.21 dB on Set14): cleaner, denser HR targets than the native-size JPEGs
RUNS["sr-full-half"] = _replaced(RUNS["sr-full"], {"train.max_minutes": 45}, (
    "data.shrink=0.5", "optim.lr=1e-4", "train.seed=2", f"train.init_from={OUT / 'sr-full'}"))

# fortieth session: the shipped inpaint-center, scored on free-form holes, fell far below Telea (CIFAR first 1000:
# 23.39 vs 30.11 dB with strokes, 21.13 vs 25.48 with boxes): it learned to fill the centre only. A fine-tune of it on
# the inpaint-free preset's masks (boxes, strokes), 50 minutes, one job on both cores, the ft7 recipe otherwise
RUNS["inpaint-free-ft"] = ("inpaint", "inpaint-free", RUNS["inpaint-ft7-psnr"][2], [
    o for o in _replaced(RUNS["inpaint-ft7-psnr"], {"train.max_minutes": 50, "train.seed": 7,
                                                    "train.init_from": SHIPPED / "inpaint-center"})[3]
    if not o.startswith("degrade.mask_kinds=")])

# then a second cycle, 40 minutes from the shipped inpaint-free, on all four mask kinds at once (centre, jittered square,
# boxes, strokes), to see whether one net can keep inpaint-center's centre score and inpaint-free's free-form scores
RUNS["inpaint-all-ft"] = _replaced(RUNS["inpaint-free-ft"], {
    "train.max_minutes": 40, "train.seed": 8, "train.init_from": SHIPPED / "inpaint-free"}, ("degrade.mask_kinds=center,square,boxes,strokes",))


def train(name: str, init: str | None) -> None:
    """The library calls of `ganforge TASK train --preset P --data D --out O --set ...` (printed first)."""
    import torch
    from dataclasses import replace

    from ganforge.apps.restore_config import apply_overrides, get_preset
    from ganforge.apps.restore_train import train_restorer

    task, preset, data, overrides = RUNS[name]
    if name == "srgan":
        overrides = [*overrides, f"train.init_from={init or OUT / 'sr'}"]
    print(f"ganforge {task} train --preset {preset} --data {data} --out {OUT / name} " + " ".join(f"--set {o}" for o in overrides), flush=True)
    torch.set_num_threads(1)
    cfg = get_preset(preset, task)
    cfg = apply_overrides(replace(cfg, data=replace(cfg.data, source=str(data))), overrides)
    run = train_restorer(cfg, out=OUT / name)
    print((run / "summary.json").read_text())


def evaluate() -> None:
    """The `ganforge ... eval` commands behind the tables (part 1's harness), JSON into runs/restore-cpu/eval/."""
    cmds = {}
    for s in ("Set5", "Set14"):
        data = str(SHARED / "sr" / s)
        cmds[f"sr-{s}"] = ["sr", "eval", str(OUT / "sr"), "--data", data, "--scale", "4", "--compare", "bicubic"]
        cmds[f"srgan-{s}"] = ["sr", "eval", str(OUT / "srgan"), "--data", data, "--scale", "4", "--compare", str(OUT / "sr"),
                              "--strips", str(OUT / "strips" / f"srgan-{s}")]
        cmds[f"denoise-{s}"] = ["denoise", "eval", str(OUT / "denoise"), "--data", data, "--sigma", "25", "--compare", "bm3d"]
        cmds[f"denoise-more-{s}"] = ["denoise", "eval", str(OUT / "denoise-more"), "--data", data, "--sigma", "25"]
        cmds[f"nlmeans-{s}"] = ["denoise", "eval", "nlmeans", "--data", data, "--sigma", "25"]
        cmds[f"denoise-long-{s}"] = ["denoise", "eval", str(OUT / "denoise-long"), "--data", data, "--sigma", "25", "--compare", "bm3d"]
    cmds["inpaint-long-cifar"] = ["inpaint", "eval", str(OUT / "inpaint-long"), "--data", str(SHARED / "cifar10-test10k.zip"),
                                  "--mask", "center", "--max-images", "1000", "--compare", "telea"]
    for run in ("inpaint-long", "inpaint-photos"):
        cmds[f"{run}-Set14"] = ["inpaint", "eval", str(OUT / run), "--data", str(SHARED / "sr" / "Set14"), "--crop", "240",
                                "--mask", "center", "--compare", "telea"]
    cmds["inpaint-cifar"] = ["inpaint", "eval", str(OUT / "inpaint"), "--data", str(SHARED / "cifar10-test10k.zip"),
                             "--mask", "center", "--max-images", "1000", "--compare", "telea"]
    # tenth session: the U-Net runs, single pass and self-ensemble, CIFAR 1000 and Set14 crops at F = 32/240
    for run in ("inpaint-unet", "inpaint-unet-upright", "inpaint-unet-l2"):
        for se in ([], ["--self-ensemble"]):
            tag = run + ("-se" if se else "")
            cmds[f"{tag}-cifar"] = ["inpaint", "eval", str(OUT / run), "--data", str(SHARED / "cifar10-test10k.zip"),
                                    "--mask", "center", "--max-images", "1000", "--compare", "telea", *se]
            cmds[f"{tag}-Set14"] = ["inpaint", "eval", str(OUT / run), "--data", str(SHARED / "sr" / "Set14"), "--crop", "240",
                                    "--mask", "center", "--work-scale", "0.1333", "--compare", "telea", *se]
    (OUT / "eval").mkdir(parents=True, exist_ok=True)
    for name, cmd in cmds.items():
        full = [sys.executable, "-m", "ganforge", *cmd, "--json"]
        print(" ".join(full), flush=True)
        with open(OUT / "eval" / f"{name}.json", "w") as f:
            subprocess.run(full, check=True, stdout=f, env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train")
    t.add_argument("name", choices=sorted(RUNS))
    t.add_argument("--init", default=None, help="srgan: the sr run to fine-tune")
    sub.add_parser("eval")
    args = ap.parse_args()
    train(args.name, args.init) if args.what == "train" else evaluate()
