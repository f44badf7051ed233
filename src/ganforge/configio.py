"""Sectioned configs (RunConfig, apps.restore_config.RestoreConfig) to and from dicts and ``--set``
strings: the generic machinery both share. Unknown sections and keys, and values of the wrong type,
are UsageErrors that name the allowed ones; the configs themselves, and their checks, live with them.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import typing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable

from ganforge.errors import UsageError

log = logging.getLogger("ganforge.config")


def to_dict(cfg: Any) -> dict:
    """Nested plain dict (JSON-ready) of a config dataclass."""
    return dataclasses.asdict(cfg)


def config_for_resume(run_dir: str | Path, saved: Any, given: Any | None, allowed: tuple[str, ...]) -> Any:
    """The config to resume ``run_dir`` with: ``saved`` (the run's own) when ``given`` is None, else
    ``given``, refused if it differs from ``saved`` outside the ``allowed`` dotted keys (anything else
    would change the experiment half way) in one line naming every changed key with both values."""
    if given is None:
        return saved
    old, new = to_dict(saved), to_dict(given)
    changed, allowed_changes = [], []
    for name, section in old.items():
        items = section.items() if isinstance(section, dict) else [(None, section)]
        for key, before in items:
            after = new[name] if key is None else new[name][key]
            dotted = name if key is None else f"{name}.{key}"
            if after != before:
                (allowed_changes if dotted in allowed else changed).append(f"{dotted}={after!r} (the run has {before!r})")
    if changed:
        raise UsageError(f"resuming {run_dir} with a changed experiment: {'; '.join(changed)}; "
                         f"only these may change: {', '.join(allowed)}")
    if allowed_changes:  # said, and kept in the run's config.json from now on
        log.info("resuming %s with %s", run_dir, "; ".join(allowed_changes))
    return given


def _section_types(section_cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in fields(section_cls)}


def did_you_mean(name: str, allowed) -> str:
    """" (did you mean 'total_steps'?)" for the allowed name closest to a mistyped ``name``, or "".
    A word of a name stands for it where no other name has that word ("steps", "stpes" -> total_steps)."""
    allowed = sorted(allowed)
    words: dict[str, list[str]] = {}
    for full in allowed:
        for word in set(full.split("_")) - {full}:
            words.setdefault(word, []).append(full)
    aliases = {full: full for full in allowed}
    aliases.update({word: fulls[0] for word, fulls in words.items() if len(fulls) == 1 and word not in aliases})
    close = difflib.get_close_matches(name, list(aliases), n=1, cutoff=0.6)
    return f" (did you mean {aliases[close[0]]!r}?)" if close else ""


# Integers may be written as a whole float ("1e4", "2000.0"), as a JSON file may: below 2**53 such a
# float is exact, so nothing is rounded
_EXACT_FLOAT_INT = 2**53


def _coerce(key: str, value: Any, typ: type) -> Any:
    """Convert a JSON value or a --set string to the declared type, or raise UsageError."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{key}={value!r} is not a boolean: use true or false")
    if typ is int:
        if isinstance(value, bool):
            raise UsageError(f"{key}={value!r} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).replace("_", ""))
        except ValueError:
            pass
        try:
            whole = float(value)
        except (TypeError, ValueError):  # None, a list, "many"
            whole = math.nan
        if whole.is_integer() and abs(whole) < _EXACT_FLOAT_INT:  # "1e4"
            return int(whole)
        raise UsageError(f"{key}={value!r} is not an integer (write it as e.g. 2000 or 2e3)") from None
    if typ is float:
        if isinstance(value, bool):
            raise UsageError(f"{key}={value!r} is not a number")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{key}={value!r} is not a number") from None
        if not math.isfinite(out):
            raise UsageError(f"{key}={value!r} must be a finite number")
        return out
    if typ is str:
        if not isinstance(value, str):  # a JSON null, number, list or object: str() would make "None", "[...]"
            raise UsageError(f"{key}={value!r} is not a string: give it in quotes")
        return value
    raise TypeError(f"unsupported config type {typ} for {key}")


def sections_of(root: type) -> dict[str, type]:
    """Section name -> its dataclass, for a root config class made of sections (RunConfig, RestoreConfig)."""
    return {name: typ for name, typ in typing.get_type_hints(root).items() if dataclasses.is_dataclass(typ)}


def config_from_dict(d: dict, root: type, check: Callable[[Any], Any]) -> Any:
    """Build a ``root`` config from a nested dict; unknown keys are errors; ``check`` validates it."""
    if not isinstance(d, dict):
        raise UsageError("config must be a JSON object")
    sections = sections_of(root)
    top = {f.name for f in fields(root)}
    unknown = set(d) - top
    if unknown:
        first = sorted(unknown)[0]
        raise UsageError(f"unknown config key(s) {sorted(unknown)}: allowed {sorted(top)}{did_you_mean(first, top)}")
    kwargs: dict[str, Any] = {}
    for name, value in d.items():
        if name in sections:
            kwargs[name] = _section_from_dict(name, sections[name], value)
        else:
            kwargs[name] = _coerce(name, value, str)
    return check(root(**kwargs))


def override_key(item: str) -> str:
    """The dotted key of one ``--set`` string as override_config reads it: " train.seed = 3" -> "train.seed"."""
    return item.split("=", 1)[0].strip()


def repeated_overrides(overrides) -> list[str]:
    """One line for each key a user's ``--set`` list gives two different values: the last one wins (as
    scripts that append a --set to a shared list rely on), but a typed value that loses to an alias's
    or a script's earlier one would otherwise train silently with the other. The same value twice is
    not reported."""
    values: dict[str, list[str]] = {}  # dotted key -> the values given, in order
    for item in overrides:
        if "=" in item:  # else override_config names it
            values.setdefault(override_key(item), []).append(item.split("=", 1)[1].strip())
    return [f"--set {key} is given {len(given)} times ({', '.join(map(repr, given))}): the last one, {given[-1]!r}, is used"
            for key, given in values.items() if len(set(given)) > 1]


def override_config(cfg: Any, overrides: list[str], check: Callable[[Any], Any]) -> Any:
    """Apply ``section.key=value`` strings to a sectioned config; an unknown section or key names the allowed ones."""
    sections = sections_of(type(cfg))
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"--set {item!r} is not of the form section.key=value (e.g. train.total_steps=500)")
        dotted, raw = override_key(item), item.split("=", 1)[1]
        if "." not in dotted and dotted in {f.name for f in fields(cfg)}:  # preset, description
            raise UsageError(f"--set {dotted!r}: the top-level key {dotted!r} is not a setting: it comes from the preset "
                             "(--preset, or a --config file)")
        if "." not in dotted:
            owners = [f"{name}.{dotted}" for name, cls in sections.items() if dotted in _section_types(cls)]
            example = f"did you mean {' or '.join(owners)}?" if owners else "e.g. train.total_steps"
            raise UsageError(f"--set key {dotted!r} needs a section: one of {sorted(sections)} ({example})")
        section, key = dotted.split(".", 1)
        if section not in sections:
            raise UsageError(f"--set {dotted!r}: unknown section {section!r}; allowed: {sorted(sections)}"
                             f"{did_you_mean(section, sections)}")
        types = _section_types(sections[section])
        if key not in types:
            raise UsageError(f"--set {dotted!r}: unknown key {key!r} in {section!r}; allowed: {sorted(types)}"
                             f"{did_you_mean(key, types)}")
        value = _coerce(dotted, raw.strip(), types[key])
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{key: value})})
    return check(cfg)


def _section_from_dict(name: str, cls: type, value: Any) -> Any:
    if not isinstance(value, dict):
        raise UsageError(f"config section {name!r} must be an object")
    types = _section_types(cls)
    unknown = set(value) - set(types)
    if unknown:
        first = sorted(unknown)[0]
        raise UsageError(f"unknown key(s) {sorted(unknown)} in section {name!r}: allowed {sorted(types)}"
                         f"{did_you_mean(first, types)}")
    return cls(**{k: _coerce(f"{name}.{k}", v, types[k]) for k, v in value.items()})


# ----------------------------------------------------------------------------- config files

CONFIG_FILE_KINDS = (".json", ".toml")


def read_config_file(path: str | Path) -> dict:
    """The nested dict a ``--config`` file holds: JSON (as ``ganforge presets --show`` and ``--dry-run``
    print a config) or TOML (one [table] per section), whole or only the keys to change. Unreadable,
    malformed or non-object files are UsageErrors naming the file and, where the parser says, the line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise UsageError(f"--config {path} is a folder, not a config file")
    if suffix in (".yaml", ".yml"):
        raise UsageError(f"--config {path}: YAML is not read; write the config as JSON (.json) or TOML (.toml)")
    if suffix not in CONFIG_FILE_KINDS:
        raise UsageError(f"--config {path}: unknown config file type {suffix or '(none)'!r}; use a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--config {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        if suffix == ".toml":
            data = _toml_module(path).loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors with a line
        raise UsageError(f"--config {path} is not valid {suffix[1:].upper()}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path} holds a JSON {type(data).__name__}: it must be an object of sections "
                         "(e.g. {\"train\": {\"total_steps\": 500}})")
    return data


def _toml_module(path: Path):
    """tomllib (Python 3.11+), else the tomli package it came from; Python 3.10 without tomli cannot read TOML."""
    try:
        import tomllib

        return tomllib
    except ImportError:
        try:
            import tomli

            return tomli
        except ImportError:
            raise UsageError(f"--config {path}: reading TOML needs Python 3.11+ or `pip install tomli`; "
                             "or write the config as JSON (.json)") from None


def file_base_preset(given: dict, path: str | Path, preset_name: str | None, known: Callable[[str], bool]) -> str | None:
    """The preset a ``--config`` file's keys go over: ``--preset`` (``preset_name``), else the file's own
    "preset" where ``known`` accepts it, else None (the caller's default). A file naming another preset than
    --preset is refused: the run would be named after one and mostly configured by the other."""
    named = given.get("preset")
    if preset_name is not None and isinstance(named, str) and named and named != preset_name:
        raise UsageError(f"--preset {preset_name} and --config {path} (\"preset\": {named!r}) name different "
                         "presets: drop --preset, or the file's \"preset\" key")
    return preset_name or (named if isinstance(named, str) and known(named) else None)


def merge_config(cfg: Any, d: dict, check: Callable[[Any], Any], source: str = "") -> Any:
    """``cfg`` with the keys of the nested dict ``d`` (a whole config, or only some sections and keys)
    put over it; unknown keys and badly typed values are UsageErrors (prefixed with ``source``)."""
    merged = to_dict(cfg)
    for name, value in d.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **value}
        else:
            merged[name] = value  # a top-level key, or a bad value config_from_dict names
    try:
        return config_from_dict(merged, type(cfg), check)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}" if source else str(exc)) from None
