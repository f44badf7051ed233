"""Restoration models that ship inside the package: ``load_restorer("denoise-s25")``.

Each lives in ``ganforge/weights/restore/<name>/`` as an exported model folder (``config.json`` +
``generator.safetensors`` in fp16, written by ``ganforge TASK export``); ``index.json`` beside them
says how each was trained and what it scores, with the commands (docs/RESTORATION.md). A name is
looked up only when no file or folder of that name exists, so a user's own folder always wins.
"""

from __future__ import annotations

import json
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights" / "restore"


def shipped_names() -> list[str]:
    """The shipped models' names, sorted (each a folder with a config.json)."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "config.json").is_file())


def shipped_index() -> dict:
    """name -> what index.json records of it (task, training, scores)."""
    index = SHIPPED_DIR / "index.json"
    return json.loads(index.read_text()) if index.is_file() else {}


def resolve_model_path(name_or_path: str | Path) -> Path:
    """An existing path as given; else a shipped model's folder when the name is one; else the path
    as given, so that the loader's own error (it does not exist) names it."""
    p = Path(name_or_path)
    if p.exists():
        return p
    if str(name_or_path) in shipped_names():
        return SHIPPED_DIR / str(name_or_path)
    return p
