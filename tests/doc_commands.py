"""The commands in README.md and docs/*.md, found and read as the docs write them (test_docs_commands.py
checks them against the CLI, with doc_command_checks.py): users copy them.

Nothing is executed (no training, no data, no network, no GPU): every command is checked
against the click command tree and the project's own registries and config parsers.

Which lines are commands
    * fenced code blocks (```, ```bash, ...; not ```python/json/text): every line, with
      backslash continuations joined and a trailing ``# comment`` dropped (a whole-line comment
      is not a command, but a `ganforge ...` span quoted in a comment is read as an inline
      span), split at ``;``, ``&&``, ``||`` and `` | `` (a pipe with spaces around it);
    * indented code blocks: a line indented by 4+ spaces outside fences whose text starts with
      an invocation (BENCHMARKS.md writes its commands this way), continuations joined;
    * inline code spans (backticks, possibly wrapped over lines of one paragraph; ``\\|`` in a
      table row reads as ``|``) whose text starts with an invocation.
    An invocation is ``ganforge``, ``.venv/bin/ganforge``, ``[path/bin/]python[3] -m ganforge``
    or ``torchrun [opts] -m ganforge``, after any ``VAR=value`` environment assignments
    (``OMP_NUM_THREADS=1``, ``PYTHONPATH=src``), a shell keyword (``do``, ``then``, ``time``)
    or ``timeout [opts] DURATION``. (``~/.cache/ganforge`` is a path, not an invocation.)

The docs' notation
    * ``a|b`` in a command-name position (``ganforge sr|denoise|inpaint train``) means each
      alternative: every one must accept the options. ``{a|b}`` or ``a|b`` as an option value
      means each literal alternative.
    * An upper-case word in a command-name position (``ganforge TASK eval``) means "one of the
      group's subcommands": an option must exist on at least one of them.
    * Placeholders are not checked as values: upper-case words (``RUN``, ``P``, ``S``, ``B``),
      words holding ``$``, ``...``/``…`` or ``<``/``>`` (``$SEED``, ``.../sun_hays80``,
      ``<eval.n>``). In ``--set key=VALUE`` the key is still checked.
    * ``[...]`` marks an optional part: its options are checked (name, literal choices, presets,
      --set keys) but its bare words are prose (``[same --set]``) and an option closing the
      bracket may go without its value.
    * A lone ``...``/``…`` elides arguments, and a token that is a whole shell expansion
      (``$B``) may stand for several words: either one turns off the argument-count check.
    * Shell redirections (``> res.json``, ``2>&1``) are dropped.

What is checked
    * the command path resolves (group -> subcommand);
    * every ``--option`` exists on that command (its ``opts``/``secondary_opts``, plus
      ``--help``), flags are given no value and other options get one;
    * literal option values convert with the option's click type (a ``click.Choice``'s allowed
      values, ``INTEGER``, ``FLOAT``, ranges, ``--tile``/``--work-scale``'s number or auto);
    * positional arguments: never more than the command takes; in code lines (not inline
      spans, which often quote part of a command) none of the required ones (arguments and
      required options) missing;
    * a code line with no notation and no placeholder also goes through click's own parser
      (``make_context``, nothing invoked);
    * ``--preset``: ``ganforge.presets.PRESETS`` for ``train``/``bench``, the task's presets in
      ``ganforge.apps.restore_config.PRESETS`` for ``sr|denoise|inpaint train``;
      ``presets --show NAME``; ``modes --benchmark``/``--method`` (their registries);
      ``eval``/``compare --evaluator`` (``ganforge.metrics.extractors.EXTRACTORS`` or auto) and
      ``--metrics`` (``metrics.evaluation.parse_metrics``), ``eval-pair --metrics``
      (``metrics.pairs.PAIR_METRICS``), ``inpaint eval --mask`` (``apps.degrade.MASK_KINDS``);
      a restoration model or method written as a bare word (no ``/`` or ``.``): a shipped model
      of that task, or for ``eval`` and ``--compare`` a classical method of that task;
      ``evaluator fit NAME``: ``ganforge.evaluators.EVALUATORS``;
    * ``--set key=value``: through the project's own parsers, the key exists (RunConfig for
      train/bench/Stacked MNIST, RestoreConfig for restoration, ToyConfig for 2D modes), a
      literal value has the declared type, the keys are allowed for ``--resume``/bench/modes,
      and when the preset and every value are literal the whole config validates.

The examples in every command's --help are checked the same way (test_help_examples_match_the_cli).

A dated record may quote a command as it was then (an option since renamed): such a line is
listed in HISTORICAL with the reason, and skipped.
Also: every ``make TARGET`` the docs name is a target of the Makefile.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# (file relative to the repository, line, start of the command text) -> why it is left as written
HISTORICAL: dict[tuple[str, int, str], str] = {}

_ENV = r"(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"
_HEAD = re.compile(
    r"^(?:(?:do|then|time|exec|nohup)\s+|timeout(?:\s+-\w\s+\S+|\s+--\S+)*\s+\d\S*\s+)*" + _ENV
    + r"(?:(?:\S*bin/)?(?:python3?(?:\.\d+)?|torchrun(?:\s+--?[\w-]+(?:[ =][^\s-]\S*)?)*)\s+-m\s+ganforge"
    + r"|(?:\S*bin/)?ganforge)(?=\s|$)"
)
_SEGMENT_SPLIT = re.compile(r"\s*(?:;|&&|\|\||\s\|\s)\s*")
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_REDIRECT = re.compile(r"^(?:\d?>>?|&>|<|\d?>&\d)$")
_PLACEHOLDER_WORD = re.compile(r"^[A-Z][A-Z0-9_]*$")
_MAKE = re.compile(r"(?:^|[;&|]\s*)" + _ENV + r"make\s+(.*)$")


@dataclasses.dataclass
class DocCommand:
    file: str  # relative to the repository
    line: int  # 1-based line where the command starts
    text: str  # the command, from `ganforge`/`python -m ganforge` on
    inline: bool  # from an inline code span (may quote part of a command)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


# ----------------------------------------------------------------------------- extraction


def _join_continuations(lines: list[str], i: int) -> tuple[str, int]:
    """The logical line starting at lines[i] (backslash continuations joined) and the next index."""
    text = lines[i]
    i += 1
    while text.rstrip().endswith("\\") and i < len(lines):
        text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
    return text, i


def _segments(text: str) -> list[str]:
    """A code line's shell commands: split at ; && || and | , a leading do/then/time dropped."""
    out = []
    for seg in _SEGMENT_SPLIT.split(text.replace("…", "...").strip()):
        out.append(re.sub(r"^(?:(?:do|then|time|exec|nohup)\s+)+", "", seg.strip().lstrip("(").strip()))
    return out


def _code_spans(paragraph: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(line, span text) of the inline code spans of one paragraph of (line number, text)."""
    text, starts = "", []
    for n, line in paragraph:
        starts.append((len(text), n))
        text += line + "\n"
    out = []
    for m in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", text, re.S):
        line = max(n for pos, n in starts if pos <= m.start())
        out.append((line, m.group(2).replace("\n", " ").replace("\\|", "|").replace("…", "...").strip()))
    return out


def code_texts(path: Path) -> list[tuple[int, str, bool]]:
    """(line, text, inline) for what a markdown file shows as shell code: each logical line of a
    fenced block (not python/json/text) or of an indented block that starts with a command, its
    comment dropped; each inline code span, also those quoted in such a comment (inline=True)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[tuple[int, str, bool]] = []
    paragraph: list[tuple[int, str]] = []

    def flush() -> None:
        out.extend((n, span, True) for n, span in _code_spans(paragraph))
        paragraph.clear()

    def code_line(i: int) -> int:
        text, nxt = _join_continuations(lines, i)
        out.append((i + 1, _COMMENT.sub("", text).strip(), False))
        if comment := _COMMENT.search(text):
            out.extend((i + 1, span, True) for _, span in _code_spans([(i + 1, comment.group())]))
        return nxt

    i, fence, lang = 0, None, ""
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if fence is None and (m := re.match(r"^\s*(```+|~~~+)\s*(\S*)", line)):
            flush()
            fence, lang = m.group(1), m.group(2).lower()
            i += 1
        elif fence is not None:
            if stripped.startswith(fence):
                fence = None
                i += 1
            elif lang in ("python", "py", "pycon", "json", "text"):
                i += 1
            else:
                i = code_line(i)
        elif line.startswith("    ") and _HEAD.match(stripped):  # an indented code block
            flush()
            i = code_line(i)
        else:
            if stripped:
                paragraph.append((i + 1, line))
            else:
                flush()
            i += 1
    flush()
    return out


def extract_commands(path: Path) -> list[DocCommand]:
    rel = str(path.relative_to(ROOT))
    out = []
    for n, text, inline in code_texts(path):
        if inline:  # a span is one command (its `|` are the docs' alternatives, not pipes)
            out += [DocCommand(rel, n, text, inline=True)] if _HEAD.match(text) else []
        else:
            out += [DocCommand(rel, n, seg, inline=False) for seg in _segments(text) if _HEAD.match(seg)]
    return out


def all_commands() -> list[DocCommand]:
    return [c for path in DOCS for c in extract_commands(path)]
