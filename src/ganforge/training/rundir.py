"""Run folders: ``runs/00012-dcgan-mnist/`` numbered like StyleGAN's, never reused."""

from __future__ import annotations

import os
import re
from pathlib import Path

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
