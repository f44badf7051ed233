"""Which ganforge made a file: the version, and the git commit when it runs from a source checkout.

Run folders (config.json) and evaluation protocols record both, so a number can be traced to the
code that produced it; the version alone is 0.1.0 for every commit of a checkout."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path

from ganforge import __version__


# A copy of a checkout without its .git (the tree a GPU machine is lent: benchmarks/gpu_session.py) names
# its commit here: 40 hex digits, "+dirty" when the copy had uncommitted changes.
COMMIT_ENV = "GANFORGE_COMMIT"


@functools.cache
def source_commit() -> str | None:
    """The commit of the checkout this ganforge was imported from (``commit_of``), else a well-formed
    $GANFORGE_COMMIT; None for an installed wheel, which is not ``src/ganforge`` of a ganforge checkout
    (``checkout_root``). Cached: git runs once per process (~20 ms)."""
    root = checkout_root(Path(__file__).resolve().parent)
    commit = commit_of(root) if root is not None else None
    given = os.environ.get(COMMIT_ENV, "").strip()
    if commit is None and re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", given):
        return given
    return commit


def checkout_root(package_dir: Path) -> Path | None:
    """ROOT when ``package_dir`` is ROOT/src/ganforge of a ganforge source checkout (ROOT/pyproject.toml names
    the project ganforge); else None. An installed copy can lie two levels below another project's git
    checkout (``pip install --target vendor`` there: ROOT/vendor/ganforge), whose commit is not ganforge's."""
    root = package_dir.parent.parent
    if package_dir.parent.name != "src":
        return None
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return None
    return root if re.search(r"""^name\s*=\s*["']ganforge["']\s*$""", text, re.MULTILINE) else None


def commit_of(root: Path) -> str | None:
    """HEAD of the git checkout at ``root`` (40 hex digits), with "+dirty" when tracked files differ
    from it; None when ``root`` holds no ``.git``, ``git`` is missing or it fails."""
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode or status.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def provenance() -> dict:
    """{"ganforge_version": ..., "ganforge_commit": ... or None}, to merge into a record."""
    return {"ganforge_version": __version__, "ganforge_commit": source_commit()}


def starts(config_json: Path, step: int) -> list[dict]:
    """A run's starts: those its ``config_json`` already records, then this one, each
    ``{"step", "ganforge_version", "ganforge_commit"}``. config.json is rewritten at every (re)start
    with the code of that start, so a run resumed under other code keeps here what began it.
    A config.json from before this record counts as one start at step 0."""
    try:
        old = json.loads(Path(config_json).read_text())
    except (OSError, ValueError):
        old = {}
    before = old.get("starts") if isinstance(old, dict) else None
    if not isinstance(before, list):
        before = [{"step": 0, "ganforge_version": old.get("ganforge_version"), "ganforge_commit": old.get("ganforge_commit")}
                  ] if isinstance(old, dict) and "ganforge_version" in old else []
    return [*before, {"step": int(step), **provenance()}]
