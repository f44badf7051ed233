"""Installing ganforge as a new user would: the wheel ships every data file the code reads through its
package path, the source stays valid Python 3.10 (requires-python), TOML configs work on 3.10 too,
an installed copy inside another project's git checkout records no commit of that project, and
`make setup` stops an old python3 at once and takes torch's CPU build rather than PyPI's CUDA one."""

from __future__ import annotations

import ast
import fnmatch
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ganforge.provenance import checkout_root

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "ganforge"
needs_checkout = pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file() or not PKG.is_dir(),
                                    reason="needs the source checkout (pyproject.toml, src/ganforge)")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
needs_make = pytest.mark.skipif(shutil.which("make") is None or not (ROOT / "Makefile").is_file(),
                                reason="needs make and the checkout's Makefile")


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@needs_checkout
def test_package_data_ships_every_data_file_under_the_package():
    # A file the code opens through the package path (weights, sidecars, index.json) but that no
    # package-data glob names is left out of the wheel: an installed ganforge fails where a checkout works.
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["ganforge"]
    data = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)
    assert data, "no data files found under src/ganforge"
    left_out = [f for f in data if not any(fnmatch.fnmatchcase(f, pat) and f.count("/") == pat.count("/")
                                           for pat in patterns)]
    assert not left_out, f"not in [tool.setuptools.package-data] (so not in the wheel): {left_out}"
    stale = [pat for pat in patterns if not glob.glob(str(PKG / pat))]
    assert not stale, f"package-data patterns that match no file: {stale}"


@needs_checkout
def test_toml_configs_work_on_python_310_through_tomli():
    # configio reads .toml with tomllib (3.11+) or tomli; without this dependency `--config x.toml`
    # fails on 3.10, a Python pyproject.toml accepts
    assert _pyproject()["project"]["requires-python"] == ">=3.10"
    requirements = pytest.importorskip("packaging.requirements")
    deps = [requirements.Requirement(d) for d in _pyproject()["project"]["dependencies"]]
    tomli = [d for d in deps if d.name == "tomli"]
    assert len(tomli) == 1 and tomli[0].marker is not None
    assert tomli[0].marker.evaluate({"python_version": "3.10"})
    assert not tomli[0].marker.evaluate({"python_version": "3.11"})


# stdlib names newer than 3.10 that a 3.10 interpreter compiles but fails on at run time
_NEWER_THAN_310 = {("datetime", "UTC"), ("typing", "Self"), ("typing", "Never"), ("typing", "LiteralString"),
                   ("typing", "assert_never"), ("typing", "reveal_type"), ("typing", "override"),
                   ("itertools", "batched"), ("enum", "StrEnum"), ("asyncio", "TaskGroup"), ("asyncio", "timeout"),
                   ("contextlib", "chdir"), ("hashlib", "file_digest"), ("operator", "call"), ("math", "cbrt"),
                   ("math", "exp2"), ("logging", "getLevelNamesMapping")}
_MODULES_NEWER_THAN_310 = {"tomllib", "wsgiref.types"}


def _guarded_by_import_error(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
                h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers):
            return True
    return False


@needs_checkout
def test_the_source_uses_no_stdlib_name_newer_than_python_310():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                found += [f"{where} from {node.module} import {a.name}" for a in node.names
                          if (node.module, a.name) in _NEWER_THAN_310]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if (node.value.id, node.attr) in _NEWER_THAN_310:
                    found.append(f"{where} {node.value.id}.{node.attr}")
                continue
            elif isinstance(node, getattr(ast, "TryStar", ())):  # except* (3.11+; no such node on 3.10)
                found.append(f"{where} except*")
                continue
            else:
                continue
            found += [f"{where} import {n}" for n in names
                      if n in _MODULES_NEWER_THAN_310 and not _guarded_by_import_error(node, parents)]
    assert not found, f"needs Python > 3.10 (pyproject.toml says >=3.10): {found}"


def _python310() -> str | None:
    """A working python3.10 (a pyenv shim that is not set up answers with an error), else None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"), "versions")
    for exe in [shutil.which("python3.10"), *sorted(glob.glob(str(pyenv / "3.10*" / "bin" / "python3.10")))]:
        if exe:
            try:
                out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                     text=True, timeout=20)
            except (OSError, subprocess.SubprocessError):
                continue
            if out.returncode == 0 and out.stdout.strip() == "(3, 10)":
                return exe
    return None


@needs_checkout
def test_every_module_compiles_under_python_310():
    # syntax 3.10 rejects (PEP 695 generics, `type X = ...`, f-strings reusing their quotes, except*)
    exe = _python310()
    if exe is None:
        pytest.skip("no python3.10 interpreter here")
    code = ("import pathlib, sys\n"
            "bad = []\n"
            "for p in sorted(pathlib.Path(sys.argv[1]).rglob('*.py')):\n"
            "    try:\n"
            "        compile(p.read_text(), str(p), 'exec', dont_inherit=True)\n"
            "    except SyntaxError as e:\n"
            "        bad.append(f'{p}:{e.lineno}: {e.msg}')\n"
            "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    out = subprocess.run([exe, "-c", code, str(PKG)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"Python 3.10 cannot compile:\n{out.stdout}{out.stderr}"


def test_checkout_root_is_only_src_ganforge_of_a_ganforge_project(tmp_path):
    (tmp_path / "src" / "ganforge").mkdir(parents=True)
    (tmp_path / "vendor" / "ganforge").mkdir(parents=True)
    assert checkout_root(tmp_path / "src" / "ganforge") is None  # no pyproject.toml
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someapp"\nversion = "1"\n')
    assert checkout_root(tmp_path / "src" / "ganforge") is None  # another project's src/
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "ganforge"\nversion = "0.1.0"\n')
    assert checkout_root(tmp_path / "src" / "ganforge") == tmp_path
    assert checkout_root(tmp_path / "vendor" / "ganforge") is None  # an installed copy: not src/


@needs_checkout
def test_this_checkout_is_found_as_ganforges_own():
    assert checkout_root(PKG) == ROOT


@needs_git
@needs_checkout
def test_an_installed_copy_inside_another_git_checkout_records_none_of_its_commits(tmp_path):
    # `pip install --target vendor` in the user's own repository puts ganforge at REPO/vendor/ganforge:
    # two levels up is the user's checkout, whose HEAD (and "+dirty") is not the code that made a run
    repo = tmp_path / "userrepo"
    pkg = repo / "vendor" / "ganforge"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "provenance.py"):  # all that ganforge.provenance imports
        shutil.copy(PKG / name, pkg / name)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True, capture_output=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "user's code"], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(repo / "vendor")}
    env.pop("GANFORGE_COMMIT", None)
    out = subprocess.run([sys.executable, "-c", "import ganforge.provenance as p; print(p.__file__); "
                          "print(p.provenance()['ganforge_commit'])"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    where, commit = out.stdout.split()
    assert Path(where).resolve() == (pkg / "provenance.py").resolve()
    assert commit == "None"


def _make(*args, timeout=60):
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_modes_without_matplotlib_keeps_its_trials_and_says_which_extra(tmp_path, capsys, caplog, monkeypatch):
    # the default --out always plots: without the `plot` extra it crashed after every trial had trained
    import logging
    import sys

    from ganforge.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        code = main(["modes", "--benchmark", "ring8", "--trials", "1", "--steps", "5", "--out", str(tmp_path / "m")])
    assert code == 0 and "ring8" in capsys.readouterr().out
    assert "pip install 'ganforge[plot]'" in caplog.text


def test_cuda_generators_of_a_machine_with_more_gpus_are_cut_to_this_ones(monkeypatch):
    import torch

    from ganforge.training import checkpoint as ckpt

    got = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: got.append(len(states)))
    state = ckpt.rng_state()  # this machine's (no CUDA generators here)
    state = {**state, "cuda": [torch.zeros(8, dtype=torch.uint8)] * 3}
    ckpt.set_rng_state(state)
    assert got == [1]
