"""The commands in README.md and docs/*.md, and the examples in every --help, must stay true to the
CLI: users copy them. The rules are in doc_commands.py (what a command is, the docs' notation, what
is checked); the checker is doc_command_checks.py. Nothing is executed."""

from __future__ import annotations

import re

import click
import pytest

from ganforge.cli import cli

from doc_command_checks import _skipped, check_command
from doc_commands import (_COMMENT, _HEAD, _MAKE, DOCS, HISTORICAL, ROOT, DocCommand, _code_spans,
                          _join_continuations, _segments, all_commands, code_texts)


# ----------------------------------------------------------------------------- tests


def test_doc_commands_match_the_cli():
    commands = all_commands()
    problems = [f"{c.where}: {msg}\n    {c.text}" for c in commands if not _skipped(c) for msg in check_command(c)]
    assert not problems, f"{len(problems)} doc command(s) disagree with the CLI:\n" + "\n".join(problems)


def test_historical_entries_still_match_a_line():
    """An allowlisted line that was since edited or moved must leave the list, not hide another."""
    commands = all_commands()
    stale = [key for key in HISTORICAL if not any(_skipped(c) and (c.file, c.line) == key[:2] for c in commands)]
    assert not stale, f"HISTORICAL entries that match no doc command: {stale}"


def test_extraction_finds_the_documented_forms():
    commands = all_commands()
    by_file = {}
    for c in commands:
        by_file.setdefault(c.file, []).append(c)
    assert set(by_file) >= {"README.md", "docs/EVALUATION.md", "docs/RESTORATION_training.md", "docs/BENCHMARKS.md",
                            "docs/MODE_COLLAPSE.md", "docs/AUGMENTATION.md", "docs/RESTORATION.md"}
    texts = {c.text for c in commands}
    assert "ganforge train --preset dcgan-mnist --dry-run" in texts  # fenced, comment stripped
    assert any(t.startswith("torchrun --nproc_per_node 2 -m ganforge train") for t in texts)  # -m form
    assert any(t.startswith("OMP_NUM_THREADS=1 ganforge bench train $B") for t in texts)  # indented block, env prefix
    assert any(t.startswith("ganforge sr|denoise|inpaint train") for t in texts)  # inline span
    assert any(t.startswith("ganforge modes --benchmark stacked-mnist --method msgan-r1") and "--set loss.r1_gamma=$G" in t
               for t in texts)  # after `do`
    joined = [c for c in commands if c.text.startswith("OMP_NUM_THREADS=1 ganforge evaluator fit cifar10-clf")]
    assert joined and "--" in joined[0].text.split("cifar10-train20k.zip", 1)[1]  # continuation joined
    assert not any("import ganforge" in t or t.startswith("ganforge.") for t in texts)


@pytest.mark.parametrize("text, expected", [
    ("ganforge train --preset dcgan-mnist --steps 10", "has no option --steps"),
    ("ganforge train --preset dcgan-mnst", "is not a preset"),
    ("ganforge train --preset dcgan-mnist --set train.totl_steps=5", "unknown key 'totl_steps'"),
    ("ganforge train --preset dcgan-mnist --set train.total_steps=many", "is not an integer"),
    ("ganforge train --resume runs/x --set model.g_width=8", "cannot change when resuming"),
    ("ganforge sr train --preset denoise-s25", "is not a sr preset"),
    ("ganforge sr train --set degrade.sigma=3 --set degrade.scale=3", "degrade.scale=3"),
    ("ganforge denoise train --set train.nope=1", "unknown key 'nope'"),
    ("ganforge sr apply sr-x4 a.png b.png --precision fp16", "'fp16' is not one of fp32, bf16, auto"),
    ("ganforge sr apply sr-x4 a.png b.png c.png", "takes 3 positional argument(s), the doc gives 4"),
    ("ganforge sr apply sr-x4 a.png", "needs 3 positional argument(s)"),
    ("ganforge sr apply denoise-s25 a.png b.png", "is neither a shipped sr model"),
    ("ganforge inpaint eval {telea|bicubic} --data d/ --mask center", "'bicubic' is neither"),
    ("ganforge sr|denoise train --preset sr-x4", "is not a denoise preset"),
    ("ganforge restore train", "has no command 'restore'"),
    ("ganforge evaluator fit cifar10-clf --data d.zip --epoch 3", "did you mean --epochs?"),
    ("ganforge eval RUN --json=yes", "is a flag"),
    ("ganforge eval RUN --evaluator inception", "is not one of"),
    ("ganforge modes --benchmark ring9", "--benchmark 'ring9'"),
    ("ganforge modes --benchmark stacked-mnist --method ttur-decay", "is not a stacked-mnist method"),
    ("ganforge modes --benchmark ring8 --set unroll=3", "unroll"),
    ("ganforge modes --benchmark stacked-mnist --set train.seed=3", "is set by --seed"),
    ("ganforge modes --rescore state-0 --set lr_g=1e-3", "takes only --set drs_percentile"),
    ("ganforge bench train --preset dcgan-mnist --batch 64 --set train.batch_size=8", "not allowed in bench"),
    ("ganforge bench sample --preset dcgan-mnist --batch many", "is not a valid integer"),
    ("ganforge presets --show sngan", "is not a preset"),
    ("ganforge sample runs/x --n 4", "needs --out"),
    ("ganforge compare runs/a runs/b --seeds 0-4", "click refuses it"),
    ("ganforge sr eval bicubic --scale 4", "needs --data"),
    ("ganforge evaluator fit inception-v3-fid --data d.zip", "not an evaluator it can fit"),
    ("ganforge eval RUN --metrics fid,psnr", "unknown metric 'psnr'"),
    ("ganforge eval-pair a/ b/ --metrics psnr,fid", "'fid' is not one of"),
    ("ganforge inpaint eval telea --data d/ --mask holes", "--mask 'holes'"),
    ("ganforge sample RUN --out x.png --n 1e4", "is not a valid integer"),
    ("ganforge inpaint apply inpaint-free a.png b.png --work-scale 2", "is not a factor in (0, 1]"),
])
def test_the_checker_catches(text, expected):
    problems = check_command(DocCommand("x.md", 1, text, inline=False))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("text", [
    "ganforge train --preset P --set train.seed=S --set train.threads=1",
    "ganforge TASK eval RUN --data SET [--scale 4 | --sigma 25 | --mask center ...] --device cuda --json [--self-ensemble]",
    "ganforge bench train --preset dcgan-mnist --batch 64 --json [same --set]",
    "ganforge bench train $B --set perf.precision=bf16 --json",
    "ganforge inpaint eval {inpaint-free|telea|input} --data d.zip --mask {strokes|boxes|center} --json > out.json",
    "ganforge sr export RUN OUT --dtype fp16|fp32",
    "ganforge modes --benchmark ring8 --method ttur-decay --set drs_steps=3000 --seed $SEED --out plots/x$SEED --json",
    "ganforge --help",
])
def test_the_checker_reads_the_docs_notation(text):
    assert check_command(DocCommand("x.md", 1, text, inline=False)) == []


def _walk(cmd: click.Command, path: str = "ganforge"):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, f"{path} {name}")


def help_commands() -> list[DocCommand]:
    """The examples of every command's --help (its docstring lines, continuations joined, a `# comment`
    or a remark in parentheses after two spaces dropped) and the `ganforge ...` spans of option help."""
    out = []
    for path, cmd in _walk(cli):
        lines = (cmd.help or "").splitlines()
        i = 0
        while i < len(lines):
            n = i
            text, i = _join_continuations(lines, i)
            text = re.sub(r"\s{2,}\(.*\)\s*$", "", _COMMENT.sub("", text))
            out += [DocCommand(f"--help of `{path}`", n + 1, seg, inline=False) for seg in _segments(text) if _HEAD.match(seg)]
        for param in cmd.params:
            out += [DocCommand(f"--help of `{path}` {param.name}", 0, span, inline=True)
                    for _, span in _code_spans([(0, getattr(param, "help", None) or "")]) if _HEAD.match(span)]
    return out


def test_help_examples_match_the_cli():
    """What --help shows is copied too. A mismatch here is a fix in the CLI's help text."""
    commands = help_commands()
    assert len(commands) > 50 and any(c.text.startswith("ganforge sr apply") for c in commands)
    problems = [f"{c.where}: {msg}\n    {c.text}" for c in commands for msg in check_command(c)]
    assert not problems, f"{len(problems)} --help example(s) disagree with the CLI:\n" + "\n".join(problems)


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {t for m in re.finditer(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?!=)", text, re.M) for t in m.group(1).split()}


def test_make_targets_named_in_the_docs_exist():
    targets = _make_targets()
    assert {"demo", "test", "setup"} <= targets
    problems, named = [], set()
    for path in DOCS:
        for n, text, inline in code_texts(path):
            for seg in [text] if inline else _segments(text):
                if not (m := _MAKE.match(seg)):
                    continue
                for word in m.group(1).split():
                    if "=" in word or word.startswith("-"):
                        continue
                    named.add(word)
                    if word not in targets:
                        problems.append(f"{path.relative_to(ROOT)}:{n}: `make {word}`: no such Makefile target "
                                        f"({', '.join(sorted(targets))})")
    assert {"demo", "test", "test-slow"} <= named  # README's
    assert not problems, "\n".join(problems)
