"""Run folders: ``runs/00012-dcgan-mnist/`` numbered like StyleGAN's, never reused."""

from __future__ import annotations

import re
from pathlib import Path

from ganforge.errors import UsageError

_RUN_RE = re.compile(r"^(\d{5})-")


def create_run_dir(preset: str, *, out: str | Path | None = None, root: str | Path = "runs") -> Path:
    """Create and return a fresh run folder. ``out`` must not exist (or be an empty folder)."""
    if out is not None:
        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UsageError(f"--out {out} already exists and is not empty: choose a new folder, or continue it with --resume {out}")
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
