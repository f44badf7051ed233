"""Run folders and evaluation protocols record the commit of the checkout that made them
(ganforge.provenance): HEAD, "+dirty" when tracked files differ, None outside a checkout."""

import json
import shutil
import subprocess

import pytest

from ganforge import __version__
from ganforge.provenance import commit_of, provenance, source_commit
from ganforge.provenance import starts as prov_starts

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


@needs_git
def test_commit_of_a_checkout_is_head_and_dirty_when_a_tracked_file_changes(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert commit_of(tmp_path) == head and len(head) == 40
    (tmp_path / "untracked.txt").write_text("not tracked: still clean")
    assert commit_of(tmp_path) == head
    (tmp_path / "a.txt").write_text("two")
    assert commit_of(tmp_path) == head + "+dirty"


def test_no_checkout_no_commit(tmp_path):
    assert commit_of(tmp_path) is None
    (tmp_path / ".git").mkdir()  # not a repository git can read: still None, no exception
    assert commit_of(tmp_path) is None


def test_a_copy_without_its_git_takes_a_well_formed_commit_from_the_environment(monkeypatch):
    # the tree lent to a GPU machine has no .git: benchmarks/gpu_session.py names the commit instead
    import ganforge.provenance as prov

    monkeypatch.setattr(prov, "commit_of", lambda root: None)
    for given, want in (("a" * 40, "a" * 40), ("b" * 40 + "+dirty", "b" * 40 + "+dirty"), ("main", None), ("", None)):
        monkeypatch.setenv("GANFORGE_COMMIT", given)
        prov.source_commit.cache_clear()
        assert prov.source_commit() == want
    monkeypatch.setattr(prov, "commit_of", lambda root: "c" * 40)  # a checkout's own commit wins
    prov.source_commit.cache_clear()
    assert prov.source_commit() == "c" * 40
    monkeypatch.undo()
    prov.source_commit.cache_clear()


def test_provenance_is_the_version_and_this_process_commit():
    p = provenance()
    assert p == {"ganforge_version": __version__, "ganforge_commit": source_commit()}
    assert p["ganforge_commit"] is None or len(p["ganforge_commit"].split("+")[0]) == 40


def test_a_run_folder_and_an_evaluation_record_the_commit(tmp_path):
    import numpy as np

    from ganforge.metrics.evaluation import evaluate
    from ganforge.training import train
    from test_train import tiny_cfg

    run = train(tiny_cfg(2), out=tmp_path / "run")
    written = json.loads((run / "config.json").read_text())
    assert written["ganforge_commit"] == source_commit() and written["ganforge_version"] == __version__
    g = np.random.default_rng(0)
    fake, real = (g.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8) for _ in range(2))
    result = evaluate(fake, metrics="fid", evaluator="mnist-clf", ref=real)
    assert result.protocol["ganforge_commit"] == source_commit()


def test_a_resumed_run_keeps_each_start_and_its_code(tmp_path, monkeypatch):
    """config.json is rewritten at a resume; its "starts" keeps the first start's commit beside the
    resume's (here a stand-in commit, as if the code had changed in between)."""
    import ganforge.provenance as prov
    from ganforge.config import apply_overrides
    from ganforge.training import train
    from test_train import tiny_cfg

    run = train(tiny_cfg(2, **{"checkpoint.every_steps": 2}), out=tmp_path / "run")
    monkeypatch.setattr(prov, "source_commit", lambda: "f" * 40 + "+dirty")
    train(apply_overrides(tiny_cfg(2), ["train.total_steps=4"]), resume=run)
    written = json.loads((run / "config.json").read_text())
    assert [(s["step"], s["ganforge_commit"]) for s in written["starts"]] == [(0, source_commit()), (2, "f" * 40 + "+dirty")]
    assert written["ganforge_commit"] == "f" * 40 + "+dirty"  # the latest start's, at the top


def test_starts_reads_a_config_from_before_the_record(tmp_path):
    old = tmp_path / "config.json"
    old.write_text(json.dumps({"ganforge_version": "0.1.0", "run": {}}))
    assert [(s["step"], s["ganforge_commit"]) for s in prov_starts(old, 7)] == [(0, None), (7, source_commit())]
    assert [s["step"] for s in prov_starts(tmp_path / "none.json", 0)] == [0]
