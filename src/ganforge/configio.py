"""Sectioned configs (RunConfig, apps.restore_config.RestoreConfig) to and from dicts and ``--set``
strings: the generic machinery both share. Unknown sections and keys, and values of the wrong type,
are UsageErrors that name the allowed ones; the configs themselves, and their checks, live with them.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable

from ganforge.errors import UsageError


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
    changed = []
    for name, section in old.items():
        items = section.items() if isinstance(section, dict) else [(None, section)]
        for key, before in items:
            after = new[name] if key is None else new[name][key]
            dotted = name if key is None else f"{name}.{key}"
            if after != before and dotted not in allowed:
                changed.append(f"{dotted}={after!r} (the run has {before!r})")
    if changed:
        raise UsageError(f"resuming {run_dir} with a changed experiment: {'; '.join(changed)}; "
                         f"only these may change: {', '.join(allowed)}")
    return given


def _section_types(section_cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in fields(section_cls)}


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
            raise UsageError(f"{key}={value!r} is not an integer") from None
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
        return str(value)
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
        raise UsageError(f"unknown config key(s) {sorted(unknown)}: allowed {sorted(top)}")
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


def override_config(cfg: Any, overrides: list[str], check: Callable[[Any], Any]) -> Any:
    """Apply ``section.key=value`` strings to a sectioned config; an unknown section or key names the allowed ones."""
    sections = sections_of(type(cfg))
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"--set {item!r} is not of the form section.key=value (e.g. train.total_steps=500)")
        dotted, raw = override_key(item), item.split("=", 1)[1]
        if "." not in dotted:
            raise UsageError(f"--set key {dotted!r} needs a section: one of {sorted(sections)} (e.g. train.{dotted})")
        section, key = dotted.split(".", 1)
        if section not in sections:
            raise UsageError(f"--set {dotted!r}: unknown section {section!r}; allowed: {sorted(sections)}")
        types = _section_types(sections[section])
        if key not in types:
            raise UsageError(f"--set {dotted!r}: unknown key {key!r} in {section!r}; allowed: {sorted(types)}")
        value = _coerce(dotted, raw.strip(), types[key])
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{key: value})})
    return check(cfg)


def _section_from_dict(name: str, cls: type, value: Any) -> Any:
    if not isinstance(value, dict):
        raise UsageError(f"config section {name!r} must be an object")
    types = _section_types(cls)
    unknown = set(value) - set(types)
    if unknown:
        raise UsageError(f"unknown key(s) {sorted(unknown)} in section {name!r}: allowed {sorted(types)}")
    return cls(**{k: _coerce(f"{name}.{k}", v, types[k]) for k, v in value.items()})
