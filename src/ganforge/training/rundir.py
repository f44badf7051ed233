"""Run folders: ``runs/00012-dcgan-mnist/`` numbered like StyleGAN's, never reused."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ganforge.config import config_kind
from ganforge.errors import UsageError

_RUN_RE = re.compile(r"^(\d{5,})-")  # every digit: "100000-x" read as 10000 made the next id loop forever


def check_run_dir(out: str | Path | None, root: str | Path = "runs") -> None:
    """What create_run_dir refuses, checked without creating anything, so --dry-run (and the CLI, before
    the data loads) refuses exactly what the real run would: ``out`` a file, or not empty, or a path
    (or ``root``) that cannot be created."""
    if out is not None:
        out = Path(out)
        if out.is_file():
            raise UsageError(f"--out {out} is a file: give a new (or empty) folder for the run")
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"--out {out} already exists and is not empty: choose a new folder, or continue it with --resume {out}")
        _check_creatable(out, f"cannot create --out {out}")
    else:
        _check_creatable(Path(root), f"cannot create run folder root {root}")


def check_path_args(**paths) -> None:
    """train()'s folder arguments (out, resume, runs_root) are paths: a number or None where a folder is
    needed ended as Python's "expected str, bytes or os.PathLike object" naming none of them."""
    for name, value in paths.items():
        if (value is None and name == "runs_root") or not isinstance(value, (str, os.PathLike, type(None))):
            raise UsageError(f"{name}={value!r} is not a folder path: give a str or pathlib.Path")


def _check_creatable(path: Path, what: str) -> None:
    """mkdir(parents=True, exist_ok=True) of ``path`` would succeed: its nearest existing ancestor (or
    itself) is a folder this process may write into."""
    existing = next((p for p in (path, *path.parents) if p.exists()), Path.cwd())
    if not existing.is_dir():
        raise UsageError(f"{what}: {'File exists' if existing == path else 'Not a directory'} ({existing} is a file)")
    if existing != path and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: Permission denied ({existing} is not writable)")


def create_run_dir(preset: str, *, out: str | Path | None = None, root: str | Path = "runs") -> Path:
    """Create and return a fresh run folder. ``out`` must not exist (or be an empty folder): check_run_dir."""
    check_run_dir(out, root)
    if out is not None:
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create --out {out}: {exc.strerror}") from None
        return out
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create run folder root {root}: {exc.strerror}") from None
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", preset) or "run"
    while True:
        ids = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
        path = root / f"{(max(ids) + 1) if ids else 1:05d}-{safe}"
        try:
            path.mkdir()  # exclusive: two concurrent runs never share a folder
            return path
        except FileExistsError:
            continue


def _run_kind(run_dir: Path) -> str:
    """config_kind of the folder's config.json ("gan", "restore", ...; "other" when unreadable)."""
    try:
        return config_kind(json.loads((run_dir / "config.json").read_text()))
    except (OSError, ValueError):
        return "other"


def find_run(resume: str | Path, runs_root: str | Path = "runs", *, kind: str | None = None) -> Path:
    """The run folder ``--resume`` names: a path, or ``latest`` = the highest-numbered run
    folder under ``runs_root`` that has a config.json. ``kind`` ("gan" or "restore", see
    config.config_kind) makes ``latest`` the newest run of that kind: GAN and restoration runs
    share the default runs/ root."""
    if str(resume) == "latest":
        root = Path(runs_root)
        runs = sorted(
            (p for p in (root.iterdir() if root.is_dir() else []) if _RUN_RE.match(p.name) and (p / "config.json").is_file()),
            key=lambda p: int(_RUN_RE.match(p.name).group(1)),  # type: ignore[union-attr]
        )
        others = len(runs)
        if kind is not None:
            runs = [p for p in runs if _run_kind(p) == kind]
        if not runs:
            what = {"gan": "GAN ", "restore": "restoration "}.get(kind or "", "")
            skipped = f"; {others} other run folder(s) there are not {what}runs" if others else ""
            raise UsageError(f"--resume latest: no {what}run folder under {root} (looked for 00001-* folders with a "
                             f"config.json{skipped})")
        return runs[-1]
    run_dir = Path(resume)
    if not (run_dir / "config.json").is_file():
        raise UsageError(f"--resume {run_dir}: not a ganforge run folder (no config.json); give a run folder or 'latest'")
    return run_dir
