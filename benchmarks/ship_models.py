"""Export the `ship-*` runs of benchmarks/restore_runs.py as the restoration models that ship in
the package (src/ganforge/weights/restore/<name>/, fp16, `ganforge TASK export`), score each on the
test sets with `ganforge TASK eval ... --json`, and write index.json beside them (how each was
trained, its command, its scores and their commands). Run it after the trainings:

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ship_models.py [NAME ...]   # default: every model

A model folder that already exists is an error (nothing is overwritten): delete it first to re-ship.
The other models' index.json entries are kept, and so is the record of an earlier run whose folder is
gone (a later cycle trained from the shipped model on another machine).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from restore_runs import OUT, RUNS, SHARED  # noqa: E402

DEST = ROOT / "src" / "ganforge" / "weights" / "restore"
SET5, SET14, CIFAR = SHARED / "sr" / "Set5", SHARED / "sr" / "Set14", SHARED / "cifar10-test10k.zip"
# how the runs shared the machine: two at once (the U-Net denoiser, 2026-12-04), or one on both cores (since 2026-12-06)
TWO = "2-core AMD EPYC VM (AVX512-BF16), torch 2.13.0+cpu, two trainings at once, one thread each"
BOTH = "2-core AMD EPYC VM (AVX512-BF16), torch 2.13.0+cpu, one training on both threads (train.threads=2)"
# shipped name -> (its runs, in training order, the last one exported; its evaluations)
SHIP = {
    # the preset's full-width net (64 x 16) since the thirty-seventh session (sr-full, 90 minutes on both cores); the
    # 32 x 8 ship-sr before. Scored plain and with --self-ensemble, as the H200's SR rows are
    "sr-x4": (["sr-full"], {f"{label}{tag}": ["--data", str(path), "--scale", "4", *flag]
                            for tag, flag in (("", []), (", self-ensemble", ["--self-ensemble"]))
                            for label, path in (("Set5", SET5), ("Set14", SET14))}),
    # the U-Net (model.arch=unet) since 2026-12-04 (a third, 100-minute L2 cycle since the twentieth session; a
    # fourth on the photos shrunk by 2, data.shrink=0.5, since the twenty-first; a fifth and a sixth shrunk to
    # 0.35 since the twenty-third); the DnCNN shipped before was ship-denoise. Scored plain and with
    # --self-ensemble, since the goal (beat BM3D on Set5 and Set14) is met on Set14 with the self-ensemble only
    "denoise-s25": (["denoise-unet", "denoise-unet-l2", "denoise-unet-l2b", "denoise-unet-half", "denoise-unet-s035",
                     "denoise-unet-s035b"],
                    {f"{label}{tag}": ["--data", str(path), "--sigma", "25", *flag]
                     for tag, flag in (("", []), (", self-ensemble", ["--self-ensemble"]))
                     for label, path in (("Set5", SET5), ("Set14", SET14))}),
    # since the thirty-second session: the U-Net CIFAR recipe with 4 px translations (data.pad=4), 70 minutes of L1
    # then 20 of L2, two runs at once (ship-inpaint and ship-inpaint-l2, 40 + 15 minutes of three at once, before);
    # since the thirty-third, a third 60-minute cycle from that model with loss.pixel=psnr (inpaint-ft-psnr); since the
    # thirty-fourth, a fourth (70 minutes) and a fifth (45) of the same (inpaint-ft4-psnr, inpaint-ft5-psnr); since the
    # thirty-fifth, a sixth (90 minutes, inpaint-ft6-psnr); since the thirty-sixth, a seventh (105 minutes, one job on
    # both cores, inpaint-ft7-psnr), scored on the whole CIFAR test set too
    "inpaint-center": (["inpaint-unet-pad", "inpaint-unet-pad-l2", "inpaint-ft-psnr", "inpaint-ft4-psnr", "inpaint-ft5-psnr",
                        "inpaint-ft6-psnr", "inpaint-ft7-psnr"], {
        "CIFAR-10 test (first 1000)": ["--data", str(CIFAR), "--mask", "center", "--max-images", "1000"],
        "CIFAR-10 test (all 10,000)": ["--data", str(CIFAR), "--mask", "center"],
        "Set14 240 px crops": ["--data", str(SET14), "--crop", "240", "--mask", "center", "--work-scale", "0.1333"]}),
}
# since the fortieth session: the shipped inpaint-center fine-tuned on the inpaint-free preset's boxes and brush strokes
# (inpaint-free-ft, 50 minutes on both cores), scored on those holes and on the centre one
SHIP["inpaint-free"] = ([*SHIP["inpaint-center"][0], "inpaint-free-ft"], {
    f"{where} {kind}": [*args, "--mask", kind]
    for kind in ("strokes", "boxes", "center")
    for where, args in (("CIFAR-10 test (first 1000)", ["--data", str(CIFAR), "--max-images", "1000"]),
                        ("Set14 240 px crops", ["--data", str(SET14), "--crop", "240", "--work-scale", "auto"]))})


def portable(value):
    """``value`` (a config.json tree) with this machine's absolute paths written as index.json writes them: under the
    repository relative to its root (runs/restore-cpu/...), under its parent as ../ (../shared/data/...)."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str):
        if value.startswith(str(ROOT) + "/"):
            return value[len(str(ROOT)) + 1:]
        if value.startswith(str(ROOT.parent) + "/"):
            return "../" + value[len(str(ROOT.parent)) + 1:]
    return value


def ganforge(*argv: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "ganforge", *argv], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if proc.returncode != 0:
        sys.exit(f"ship_models: ganforge {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


# what the shipped net is, where its overrides made the preset's one-line description wrong (model.arch=unet)
DESCRIPTION = {
    "denoise-s25": "Gaussian denoising at sigma 25: a DRUNet-style U-Net (width 32, 2 residual blocks a level, 4 levels) "
                   "predicting the noise, L1 then L2 cycles.",
    "inpaint-center": "Inpainting of a centre hole (32 px CIFAR-10 images): a U-Net completion net (width 64, skips at "
                      "1/1, 1/2, 1/4, dilated convs at 1/8), L1, L2, then PSNR-loss cycles; no adversarial phase.",
    "inpaint-free": "Free-form inpainting (random boxes and brush strokes, 32 px CIFAR-10 images): the shipped "
                    "inpaint-center U-Net fine-tuned on those holes with the PSNR loss; no adversarial phase.",
}

MACHINE = {"sr-x4": BOTH, "denoise-s25": TWO,
           "inpaint-center": TWO + " (the last cycle, inpaint-ft7-psnr: one training on both threads, train.threads=2)",
           "inpaint-free": TWO + " (the last two cycles, inpaint-ft7-psnr and inpaint-free-ft: one training on both threads)"}


def main() -> None:
    names = sys.argv[1:] or list(SHIP)
    if unknown := [n for n in names if n not in SHIP]:
        sys.exit(f"ship_models: unknown model(s) {', '.join(unknown)}: choose from {', '.join(SHIP)}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    # the shipped folders themselves are rewritten here; any other change means HEAD is not the code that ran
    dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", f":!{DEST.relative_to(ROOT)}"],
                           capture_output=True, text=True, cwd=ROOT).stdout.strip()
    if dirty:
        commit += " with uncommitted changes (the next commit holds them)"
    index_file = DEST / "index.json"
    index = json.loads(index_file.read_text()) if index_file.exists() else {}
    for name in names:
        runs, evals = SHIP[name]
        task = RUNS[runs[-1]][0]
        folder = DEST / name
        if folder.exists():
            sys.exit(f"ship_models: {folder} exists: delete it to ship {name} again")
        # a run's record as shipped, under this model or another grown from the same runs (inpaint-free's first seven)
        earlier = {t["run"]: t for entry in (*[v for k, v in index.items() if k != name], index.get(name, {}))
                   for t in entry.get("trained", [])}
        here = {r for r in runs if (OUT / r / "summary.json").exists()}  # the others were trained in an earlier session
        if missing := [r for r in runs if r not in here and r not in earlier]:
            sys.exit(f"ship_models: run(s) {', '.join(missing)} of {name} have no summary.json in {OUT} nor a record in index.json")
        ganforge(task, "export", str(OUT / runs[-1]), str(folder))
        config = folder / "config.json"  # its data.source, train.init_from and exported_from as paths that read anywhere
        meta = portable(json.loads(config.read_text()))
        meta["restore"]["description"] = DESCRIPTION.get(name, meta["restore"]["description"])
        config.write_text(json.dumps(meta, indent=2) + "\n")
        trained = []
        for run in runs:
            if run not in here:
                trained.append(earlier[run])  # its record as shipped then
                continue
            t, preset, data, overrides = RUNS[run]
            summary = json.loads((OUT / run / "summary.json").read_text())
            trained.append({"run": run, "preset": preset, "data": str(Path(data).relative_to(SHARED.parent.parent)),
                            "overrides": [o.replace(str(ROOT) + "/", "") for o in overrides], "steps": {k: v["steps"] for k, v in summary["phases"].items()},
                            "seconds": summary["seconds"], "device": summary["device"], "precision": summary["precision"],
                            "threads": summary["threads"]})
        scores = {}
        for label, args in evals.items():
            mean = json.loads(ganforge(task, "eval", name, *args, "--json"))["mean"]
            scores[label] = {"command": f"ganforge {task} eval {name} " + " ".join(
                a.replace(str(SHARED.parent.parent) + "/", "../") for a in args) + " --json",
                **{k: round(v, 4) for k, v in mean.items()}}
            print(name, label, scores[label], flush=True)
        index[name] = {
            "task": task,
            "trained": trained,
            "command": " && ".join(f"OMP_NUM_THREADS={t['threads']} python benchmarks/restore_runs.py train {t['run']}"
                                  for t in trained),  # each run's measured thread count (its summary.json)
            "machine": MACHINE[name],
            "date": datetime.date.today().isoformat(),
            "commit": commit,
            "scores": scores,
            "size_bytes": sum(p.stat().st_size for p in folder.iterdir()),
        }
        index_file.write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
