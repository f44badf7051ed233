"""Checking one documented command against the click tree, the registries and the config parsers
(the rules are in doc_commands' docstring; the tests are test_docs_commands.py)."""

from __future__ import annotations

import dataclasses
import difflib
import re
import shlex

import click

from ganforge.cli import cli
from ganforge.errors import UsageError

from doc_commands import _HEAD, _PLACEHOLDER_WORD, _REDIRECT, HISTORICAL, DocCommand


# ----------------------------------------------------------------------------- tokens


@dataclasses.dataclass
class Tok:
    text: str
    optional: bool = False  # inside [...]
    closes: bool = False  # the last word of a [...] group


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an apostrophe in prose
        return text.split()


def tokens_after_head(text: str) -> list[Tok]:
    """The words after the invocation, with [...] groups marked and redirections dropped."""
    m = _HEAD.match(text)
    assert m is not None
    words = _split(text[m.end():])
    toks: list[Tok] = []
    depth, skip_next = 0, False
    for w in words:
        if skip_next:
            skip_next = False
            continue
        if _REDIRECT.match(w):
            skip_next = not w.endswith(tuple("0123456789")) or w in ("<",)
            continue
        if w.startswith((">", "2>")) or w == "&":
            continue
        opens = len(w) - len(w.lstrip("["))
        w = w.lstrip("[")
        closes = len(w) - len(w.rstrip("]"))
        w = w.rstrip("]")
        depth += opens
        if w and w != "|":
            toks.append(Tok(w, optional=depth > 0, closes=closes > 0 and depth > 0))
        depth = max(0, depth - closes)
    return toks


def is_placeholder(value: str) -> bool:
    return (bool(_PLACEHOLDER_WORD.match(value)) or "$" in value or "..." in value
            or "<" in value or ">" in value or value == "")


def alternatives(value: str) -> list[str]:
    """The literal values a doc value stands for: {a|b} and a|b -> [a, b]; placeholders dropped."""
    if value.startswith("{") and value.endswith("}"):
        value = value[1:-1]
    return [v for v in value.split("|") if not is_placeholder(v)]


def is_expansion(value: str) -> bool:
    """A whole-word shell expansion ($B, ${B}, $(...)) may stand for any number of words."""
    return bool(re.fullmatch(r"\$(?:\w+|\{\w+\}|\(.*\))", value))


# ----------------------------------------------------------------------------- checks


def resolve(toks: list[Tok]) -> tuple[list[tuple[str, click.Command]], bool, list[Tok], list[str]]:
    """The commands the words name: ([(path, command)], any_of, remaining words, problems).
    any_of: a placeholder (TASK, ...) named a command, so the candidates that cannot take the
    following words drop out, and an option need exist on one of those left only."""
    cands: list[tuple[str, click.Command]] = [("ganforge", cli)]
    any_of = False
    problems: list[str] = []
    i = 0
    while i < len(toks) and not toks[i].text.startswith("-"):
        word = toks[i].text
        groups = [(p, c) for p, c in cands if isinstance(c, click.Group)]
        if not groups:
            break
        if any_of:  # a placeholder named a command: the groups having this word as a subcommand go on
            names = word.strip("{}").split("|")
            if not (_PLACEHOLDER_WORD.match(word) or word == "..."
                    or any(n in g.commands for _, g in groups for n in names)):
                break  # an argument of the commands among the candidates
            cands = groups
        elif len(groups) < len(cands):
            break
        nxt = []
        for path, group in cands:
            assert isinstance(group, click.Group)
            if _PLACEHOLDER_WORD.match(word) or word == "...":
                any_of = True
                nxt += [(f"{path} {n}", c) for n, c in group.commands.items()]
                continue
            for name in word.strip("{}").split("|"):
                if name in group.commands:
                    nxt.append((f"{path} {name}", group.commands[name]))
                elif not any_of:
                    close = difflib.get_close_matches(name, group.commands, n=1)
                    problems.append(f"`{path}` has no command {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                                    + f"; it has: {', '.join(group.commands)}")
        if not nxt and any_of and not problems:
            problems.append(f"no command of `{' '.join(t.text for t in toks[:i + 1])}` exists")
        cands = nxt
        i += 1
    return cands, any_of, toks[i:], problems


def _option_map(cmd: click.Command) -> dict[str, click.Parameter]:
    opts: dict[str, click.Parameter] = {}
    for p in cmd.params:
        if isinstance(p, click.Option):
            for o in (*p.opts, *p.secondary_opts):
                opts[o] = p
    return opts


@dataclasses.dataclass
class Parsed:
    values: dict[str, list[str]]  # option name (param.name) -> the values given (doc text)
    positionals: list[str]  # the positional words outside [...], in order
    problems: list[str]


def parse(path: str, cmd: click.Command, toks: list[Tok], inline: bool) -> Parsed:
    opts = _option_map(cmd)
    helps = set(cmd.get_help_option_names(click.Context(cmd)))
    values: dict[str, list[str]] = {}
    problems: list[str] = []
    positionals: list[str] = []
    elided = any(t.text == "..." or is_expansion(t.text) for t in toks)
    i = 0
    while i < len(toks):
        tok = toks[i]
        word = tok.text
        i += 1
        if word.startswith("-") and len(word) > 1 and not re.match(r"^-\d", word):
            name, eq, inline_value = word.partition("=") if word.startswith("--") else (word, "", "")
            if name in helps:
                continue
            if name not in opts:
                close = difflib.get_close_matches(name, list(opts), n=1)
                problems.append(f"`{path}` has no option {name}" + (f" (did you mean {close[0]}?)" if close else "")
                                + f"; it has: {', '.join(sorted(opts)) or 'none'}")
                continue
            param = opts[name]
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                if eq:
                    problems.append(f"`{path}` {name} is a flag: it takes no value")
                continue
            if eq:
                value = inline_value
            elif tok.closes or i >= len(toks) or toks[i].text.startswith("--"):
                if not (tok.optional or (inline and i >= len(toks))):
                    problems.append(f"`{path}` {name} needs a value")
                continue
            else:
                value = toks[i].text
                i += 1
            values.setdefault(param.name, []).append(value)
            if isinstance(param.type, click.Choice):
                for alt in alternatives(value):
                    if alt not in param.type.choices:
                        problems.append(f"`{path}` {name} {alt!r} is not one of {', '.join(map(str, param.type.choices))}")
            elif not isinstance(param.type, (click.Path, click.File)):  # INT, FLOAT, ranges, "auto"-or-number
                for alt in alternatives(value):
                    try:
                        param.type.convert(alt, param, None)
                    except click.BadParameter as exc:
                        problems.append(f"`{path}` {name} {alt}: {exc.format_message()}")
        elif word == "...":
            continue
        elif not tok.optional:
            positionals.append(word)
    positional = len(positionals)
    if not elided:
        args = [p for p in cmd.params if isinstance(p, click.Argument)]
        most = float("inf") if any(p.nargs == -1 for p in args) else sum(p.nargs for p in args)
        least = sum(max(p.nargs, 1) for p in args if p.required)
        if positional > most:
            problems.append(f"`{path}` takes {most} positional argument(s), the doc gives {positional}")
        if positional < least and not inline:
            problems.append(f"`{path}` needs {least} positional argument(s) "
                            f"({', '.join(p.human_readable_name for p in args)}), the doc gives {positional}")
        for param in cmd.params:
            if isinstance(param, click.Option) and param.required and not inline and param.name not in values:
                problems.append(f"`{path}` needs {'/'.join(param.opts)}")
    return Parsed(values, positionals, problems)


def _one(values: dict[str, list[str]], name: str) -> str | None:
    """The literal value of a single-valued option (None: not given, or a placeholder)."""
    v = values.get(name, [None])[-1]
    return None if v is None or is_placeholder(v) or "|" in v else v


def _sets(values: dict[str, list[str]], name: str) -> tuple[list[str], bool]:
    """The --set items with a literal key, and whether every value is literal too."""
    items, literal = [], True
    for item in values.get(name, []):
        key, eq, val = item.partition("=")
        if is_placeholder(key) or not eq:  # KEY=VALUE, or `...`: nothing to check
            literal = False
            if not eq and not is_placeholder(item):
                items.append(item)  # no '=': the parser names the mistake
            continue
        if is_placeholder(val) or "|" in val:
            literal = False
        items.append(item)
    return items, literal


def _try(problems: list[str], label: str, fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except (UsageError, click.UsageError) as exc:
        problems.append(f"{label}: {exc}")
        return None


def _check_keys(problems: list[str], path: str, items: list[str], base) -> None:
    """Each --set key exists in ``base``'s config class and a literal value has the declared type
    (config.override_config without the whole-config validation)."""
    from ganforge.configio import override_config, sections_of

    sections = sections_of(type(base))
    for item in items:
        key, _, val = item.partition("=")
        if is_placeholder(val) or "|" in val:
            section, _, field = key.strip().partition(".")
            if section in sections and field in {f.name for f in dataclasses.fields(sections[section])}:
                continue
            item = f"{key}=0"  # the parser's message names the unknown section or key
        _try(problems, f"`{path}` --set {item}", override_config, base, [item], lambda c: c)


def _gan_preset(path: str, p: Parsed, problems: list[str]) -> str | None:
    """The --preset of a train/bench command (None if not given); each alternative must be a preset."""
    from ganforge.presets import PRESETS

    for alt in alternatives(p.values.get("preset_name", [""])[-1]):
        if alt not in PRESETS:
            problems.append(f"`{path}` --preset {alt!r} is not a preset: {', '.join(PRESETS)}")
    return _one(p.values, "preset_name")


def check_gan_train(path: str, p: Parsed, problems: list[str]) -> None:
    from ganforge.cli.train import check_resume_overrides
    from ganforge.config import RESUMABLE_KEYS, apply_overrides
    from ganforge.presets import PRESETS

    preset = _gan_preset(path, p, problems)
    items, literal = _sets(p.values, "overrides")
    base = PRESETS.get(preset or "", PRESETS["dcgan-mnist"])
    _check_keys(problems, path, items, base)
    if "resume_dir" in p.values:
        _try(problems, f"`{path}` --resume", check_resume_overrides, items, RESUMABLE_KEYS)
    elif preset in PRESETS and literal and not problems:
        _try(problems, f"`{path}` --preset {preset} --set {' '.join(items)}", apply_overrides, PRESETS[preset], items)


def check_bench(path: str, p: Parsed, problems: list[str]) -> None:
    from ganforge.bench.run import check_bench_overrides
    from ganforge.config import apply_overrides
    from ganforge.presets import PRESETS

    preset = _gan_preset(path, p, problems)
    items, literal = _sets(p.values, "overrides")
    _try(problems, f"`{path}`", check_bench_overrides, items)
    _check_keys(problems, path, items, PRESETS.get(preset or "", PRESETS["dcgan-mnist"]))
    batch = _one(p.values, "batch")
    first = [f"train.batch_size={batch}"] if batch and path.endswith("train") else []
    if preset in PRESETS and literal and not problems:
        _try(problems, f"`{path}` --preset {preset} --set {' '.join(items)}", apply_overrides, PRESETS[preset], first + items)


def check_restore_train(path: str, task: str, p: Parsed, problems: list[str]) -> None:
    from ganforge.apps.restore_config import DEFAULT_PRESET, PRESETS, RESUMABLE_KEYS, apply_overrides
    from ganforge.cli.train import check_resume_overrides

    mine = [n for n, c in PRESETS.items() if c.task == task]
    for alt in alternatives(p.values.get("preset_name", [""])[-1]):
        if alt not in mine:
            problems.append(f"`{path}` --preset {alt!r} is not a {task} preset: {', '.join(mine)}")
    preset = _one(p.values, "preset_name") or DEFAULT_PRESET[task]
    items, literal = _sets(p.values, "overrides")
    _check_keys(problems, path, items, PRESETS.get(preset, PRESETS[DEFAULT_PRESET[task]]))
    if "resume_dir" in p.values:
        _try(problems, f"`{path}` --resume", check_resume_overrides, items, RESUMABLE_KEYS)
    elif preset in mine and literal and not problems:
        _try(problems, f"`{path}` --preset {preset} --set {' '.join(items)}", apply_overrides, PRESETS[preset], items)


def check_restore_model(path: str, task: str, name: str, what: str, classical_ok: bool, problems: list[str]) -> None:
    """A bare word (no '/') names a shipped model of the task or (eval, --compare) a classical method."""
    from ganforge.apps.classical import CLASSICAL
    from ganforge.apps.pretrained import shipped_index

    for alt in alternatives(name):
        if "/" in alt or "." in alt:
            continue
        shipped = [n for n, e in shipped_index().items() if e.get("task") == task]
        classical = [n for n, m in CLASSICAL.items() if task in m.tasks] if classical_ok else []
        if alt not in shipped + classical:
            problems.append(f"`{path}` {what} {alt!r} is neither a shipped {task} model ({', '.join(shipped)})"
                            + (f" nor a {task} classical method ({', '.join(classical)})" if classical_ok else "")
                            + " (a folder is written with a '/')")


def check_modes(path: str, p: Parsed, problems: list[str]) -> None:
    from ganforge.cli.modes import BENCHMARK_NAMES
    from ganforge.modes.methods import METHODS, get_method, parse_sets, toy_overrides
    from ganforge.modes.stacked import STACKED_METHODS, stacked_config
    from ganforge.presets import PRESETS

    benches = alternatives(p.values.get("benchmark", ["ring8"])[-1])
    for b in benches:
        if b not in BENCHMARK_NAMES:
            problems.append(f"`{path}` --benchmark {b!r} is not one of {', '.join(BENCHMARK_NAMES)}")
    for b in benches:
        registry = STACKED_METHODS if b == "stacked-mnist" else METHODS
        for m in alternatives(p.values.get("method", ["vanilla"])[-1]):
            if m not in registry:
                problems.append(f"`{path}` --method {m!r} is not a {b} method: {', '.join(registry)}")
    if problems or not p.values.get("sets"):
        return
    items, literal = _sets(p.values, "sets")
    method = _one(p.values, "method") or "vanilla"
    if "stacked-mnist" in benches:
        from ganforge.modes.stacked import FLAG_KEYS

        for item in items:
            if item.partition("=")[0].strip() in FLAG_KEYS:
                problems.append(f"`{path}` --set {item}: {item.partition('=')[0]} is set by {FLAG_KEYS[item.partition('=')[0]]}")
        _check_keys(problems, path, items, PRESETS["dcgan-mnist"])
        steps, seed, threads = _one(p.values, "steps"), _one(p.values, "seed"), _one(p.values, "threads")
        if literal and not problems:
            _try(problems, f"`{path}` --set {' '.join(items)}", stacked_config, method, int(steps) if steps else None,
                 int(seed or 0), tuple(items), _one(p.values, "device") or "auto", int(threads or 1))
    else:
        from ganforge.modes.toy import ToyConfig

        def placeholder_value(item: str) -> bool:
            val = item.partition("=")[2]
            return "=" in item and (is_placeholder(val) or "|" in val)

        parsed = _try(problems, f"`{path}`", parse_sets, [i for i in items if not placeholder_value(i)])
        for key in [i.partition("=")[0].strip() for i in items if placeholder_value(i)]:
            if key not in {f.name for f in dataclasses.fields(ToyConfig)}:
                problems.append(f"`{path}` --set {key}=...: {key!r} is not a ToyConfig field")
        if parsed is not None and "rescore" in p.values:
            extra = sorted(set(parsed) - {"drs_percentile"})
            if extra:
                problems.append(f"`{path}` --rescore takes only --set drs_percentile=P, the doc sets {extra}")
        elif parsed is not None and method in METHODS and literal and not problems:
            for b in benches:
                meth = get_method(method)
                steps = _one(p.values, "steps")
                cfg = meth.config(int(steps) if steps else (meth.steps or 2000), b)
                _try(problems, f"`{path}` --set {' '.join(items)}", lambda: toy_overrides(cfg, parsed).check())


def check_semantics(path: str, p: Parsed) -> list[str]:
    problems: list[str] = []
    words = path.split()[1:]
    if words == ["train"]:
        check_gan_train(path, p, problems)
    elif words[:1] == ["bench"]:
        check_bench(path, p, problems)
    elif words == ["presets"]:
        from ganforge.presets import PRESETS

        for alt in alternatives(p.values.get("show", [""])[-1]):
            if alt not in PRESETS:
                problems.append(f"`{path}` --show {alt!r} is not a preset: {', '.join(PRESETS)}")
    elif words == ["modes"]:
        check_modes(path, p, problems)
    elif words == ["eval-pair"]:
        from ganforge.metrics.pairs import PAIR_METRICS

        for alt in alternatives(p.values.get("metrics", [""])[-1]):
            for m in alt.split(","):
                if m.strip().lower().replace("-", "_") not in PAIR_METRICS:
                    problems.append(f"`{path}` --metrics {m!r} is not one of {', '.join(PAIR_METRICS)}")
    elif words == ["evaluator", "fit"] and p.positionals:
        from ganforge.evaluators import EVALUATORS

        for alt in alternatives(p.positionals[0]):
            if alt not in EVALUATORS:
                problems.append(f"`{path}` {alt!r} is not an evaluator it can fit: {', '.join(EVALUATORS)}")
    elif words[:1] in (["eval"], ["compare"]):
        from ganforge.metrics.evaluation import parse_metrics
        from ganforge.metrics.extractors import EXTRACTORS

        for alt in alternatives(p.values.get("metrics", [""])[-1]):
            _try(problems, f"`{path}` --metrics {alt}", parse_metrics, alt)

        for alt in alternatives(p.values.get("evaluator", [""])[-1]):
            if alt not in (*EXTRACTORS, "auto"):
                problems.append(f"`{path}` --evaluator {alt!r} is not one of {', '.join(EXTRACTORS)}, auto")
    elif len(words) == 2 and words[0] in ("sr", "denoise", "inpaint"):
        task = words[0]
        if words[1] == "train":
            check_restore_train(path, task, p, problems)
        if words[1] in ("eval", "apply") and p.positionals:
            check_restore_model(path, task, p.positionals[0], "MODEL_OR_METHOD" if words[1] == "eval" else "MODEL",
                                words[1] == "eval", problems)
        if words[1] == "eval" and "compare" in p.values:
            check_restore_model(path, task, p.values["compare"][-1], "--compare", True, problems)
        if words[1] == "eval" and task == "inpaint":
            from ganforge.apps.degrade import MASK_KINDS

            for alt in alternatives(p.values.get("mask", [""])[-1]):
                if alt not in MASK_KINDS:
                    problems.append(f"`{path}` --mask {alt!r} is not one of {', '.join(MASK_KINDS)}")
    return problems


def click_parse(path: str, cmd: click.Command, c: DocCommand, rest: list[Tok]) -> list[str]:
    """A whole, literal command line (no notation, no placeholder) goes through click's own
    parser as the shell would pass it (``make_context`` of the command its path names; nothing
    is invoked)."""
    if c.inline or any(t.optional or is_placeholder(t.text) or set(t.text) & set("{}|$") or t.text in ("-h", "--help")
                       for t in rest):
        return []
    try:
        cmd.make_context(path, [t.text for t in rest])
    except click.UsageError as exc:
        return [f"`{path}`: click refuses it: {exc.format_message()}"]
    return []


def check_command(c: DocCommand) -> list[str]:
    toks = tokens_after_head(c.text)
    cands, any_of, rest, problems = resolve(toks)
    if problems:
        return problems
    per_cmd = []
    for path, cmd in cands:
        if isinstance(cmd, click.Group):  # `ganforge sr`, `ganforge --help`: a group named in prose
            per_cmd.append(parse(path, cmd, rest, True).problems)
            continue
        p = parse(path, cmd, rest, c.inline)
        per_cmd.append(p.problems or check_semantics(path, p) or click_parse(path, cmd, c, rest))
    if any_of:
        if not per_cmd:
            return [f"no command matches `{c.text}`"]
        # a mistake counts when every candidate makes it: an option must exist on one of them
        subjects = [{_subject(msg, path): msg for msg in m} for (path, _), m in zip(cands, per_cmd)]
        return [msg for key, msg in subjects[0].items() if all(key in other for other in subjects[1:])]
    return [msg for m in per_cmd for msg in m]


def _subject(message: str, path: str) -> str:
    """A problem without its command path and the command-specific lists: "has no option --sigma"."""
    return re.split(r" \(did you mean|; it has:| is not one of| is neither", message.replace(f"`{path}`", "", 1))[0]


def _skipped(c: DocCommand) -> bool:
    return any(c.file == f and c.line == n and c.text.startswith(start) for f, n, start in HISTORICAL)
