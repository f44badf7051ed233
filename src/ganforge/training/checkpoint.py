"""Checkpoints: the generator as config.json + safetensors (for inference), and resumable
training states (every tensor and counter needed to continue bit-exactly).

A training state is ``checkpoints/state-<step>.pt``, written by ``torch.save`` from plain
containers, numbers, strings and tensors, and read back only with
``torch.load(weights_only=True)``: no code is pickled and none can run on load. It is
committed in three durable steps (docs/RELIABILITY.md):

1. the bytes go to a hidden temporary file in ``checkpoints/``, fsync, rename, fsync folder;
2. ``manifest.json`` (name -> sha256, size, step) is rewritten the same way: the commit;
3. only then are states beyond ``keep_last`` deleted.

A kill at any moment leaves the previous committed state loadable; a state whose bytes do not
match the manifest is skipped with a warning and the next older one is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import random
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from ganforge import __version__
from ganforge.errors import GanforgeError, UsageError
from ganforge.io import atomic_write, atomic_write_bytes, atomic_write_json, remove_stale_temps, sha256_file
from ganforge.models.config import ModelConfig
from ganforge.training import rundir

log = logging.getLogger("ganforge.checkpoint")

MODEL_DIR = "model"  # inside a run dir: the inference snapshot
STATE_DIR = "checkpoints"  # inside a run dir: resumable training states
MANIFEST = "manifest.json"
STATE_FORMAT = 1  # bump when the layout of a training state changes
_STATE_RE = re.compile(r"^state-(\d{8})\.pt$")
# Test hook (documented in docs/RELIABILITY.md): seconds to pause halfway through writing a
# state file, so that tests can kill -9 the process in the middle of a save.
SAVE_DELAY_ENV = "GANFORGE_TEST_SAVE_DELAY_S"


class UnsafeCheckpoint(GanforgeError):
    """A checkpoint that would need unpickling arbitrary Python objects: never loaded."""


class NonFiniteState(GanforgeError):
    """A training state holding NaN/Inf: never written."""

    exit_code = 1


# ----------------------------------------------------------------------------- generator snapshot


def state_for_save(module: torch.nn.Module, float_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """module's state dict as CPU tensors safetensors can write; floats cast to ``float_dtype`` if given."""
    # clone() detaches shared storage (safetensors refuses tensors that share memory)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    if float_dtype is not None:
        state = {k: v.to(float_dtype) if v.is_floating_point() else v for k, v in state.items()}
    return state


def _state_bytes(module: torch.nn.Module) -> bytes:
    return save(state_for_save(module))


def weights_file(model_dir: Path, ema: bool) -> Path:
    """The weights a model folder is loaded from: the EMA copy when asked for and present. A folder
    whose config.json says it was saved with EMA weights (``has_ema``, written since 2026-12-07) but
    lacks the file is refused rather than silently served with the raw weights."""
    ema_file = model_dir / "generator_ema.safetensors"
    if ema and not ema_file.is_file() and _saved_with_ema(model_dir):
        raise UsageError(f"{ema_file} is missing, though this generator was saved with EMA weights: restore the "
                         "file, or use the raw weights (--no-ema)")
    return ema_file if ema and ema_file.is_file() else model_dir / "generator.safetensors"


def _saved_with_ema(model_dir: Path) -> bool:
    try:
        return json.loads((model_dir / "config.json").read_text()).get("has_ema") is True
    except (OSError, ValueError, AttributeError):
        return False


def save_generator(model_dir: str | Path, model_cfg: ModelConfig, G: torch.nn.Module, G_ema=None, meta=None) -> Path:
    """Write ``config.json``, ``generator.safetensors`` and (if given) ``generator_ema.safetensors``."""
    model_dir = Path(model_dir)
    atomic_write_bytes(model_dir / "generator.safetensors", _state_bytes(G))
    if G_ema is not None:
        atomic_write_bytes(model_dir / "generator_ema.safetensors", _state_bytes(G_ema))
    cfg = {"ganforge_version": __version__, "model": dict(model_cfg.__dict__), **(meta or {}), "has_ema": G_ema is not None}
    atomic_write_json(model_dir / "config.json", cfg)  # written last: its presence means the snapshot is whole
    return model_dir


def resolve_model_dir(path: str | Path) -> Path:
    p = Path(path)
    if (p / MODEL_DIR / "config.json").is_file():
        return p / MODEL_DIR
    if (p / "config.json").is_file() and (p / "generator.safetensors").is_file():
        return p
    if not p.exists():
        raise UsageError(f"{p} does not exist: give a run directory or a saved generator directory")
    raise UsageError(f"{p} holds no generator (expected {p}/{MODEL_DIR}/config.json or {p}/config.json + generator.safetensors)")


def load_generator(path: str | Path, *, ema: bool = True, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a generator from a run directory or a model directory, in eval mode.

    ``ema=True`` prefers the EMA weights when the run kept them."""
    from ganforge.models import build_generator

    from ganforge.device import resolve_device

    device = resolve_device(str(device), "device")  # one line for "mps", "cuda" without CUDA, ...
    model_dir = resolve_model_dir(path)
    try:
        meta = json.loads((model_dir / "config.json").read_text())
        if isinstance(meta, dict) and (meta.get("kind") == "restoration" or "restore" in meta):
            raise UsageError(f"{path} is a {meta.get('task', 'restoration')} model, not a GAN generator: load it with "
                             "ganforge.apps.restore_apply.load_restorer")
        cfg = ModelConfig(**meta["model"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{model_dir / 'config.json'} is not a ganforge generator config: {exc}") from None
    G = build_generator(cfg)
    weights = weights_file(model_dir, ema)
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UsageError(f"cannot read {weights}: {exc}") from None
    load_state_strict(G, state, source=weights, cfg_desc=json.dumps(meta["model"]))
    check_finite_weights(G, weights)  # on the CPU, before the move: NaN weights draw black images with exit 0
    G.meta = meta  # type: ignore[attr-defined]
    return G.to(device).eval()


@torch.no_grad()
def check_finite_weights(G: torch.nn.Module, source: str | Path) -> None:
    """Refuse a generator loaded from ``source`` whose weights or batch-norm statistics hold NaN/inf: it
    draws NaN images, written as an all-black grid or scored as a plausible FID with exit code 0. (A G
    mid-training is left to train.on_nonfinite.)"""
    bad = [name for name, t in G.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise UsageError(f"the generator's weights in {source} are not finite (NaN/inf in {len(bad)} tensor(s), e.g. "
                         f"{bad[0]}): it would draw NaN images; use another checkpoint of the run")


def mismatch(module: torch.nn.Module, state: dict) -> str | None:
    """What keeps ``state`` from loading into ``module`` (missing/unexpected keys, shapes), or None."""
    own = module.state_dict()
    if not isinstance(state, dict):
        return f"expected a dict of tensors, found {type(state).__name__}"
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(getattr(state[k], "shape", ())))
    parts = []
    if missing:
        parts.append(f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}")
    if unexpected:
        parts.append(f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    if shapes:
        k = shapes[0]
        parts.append(f"shape mismatch at {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                     + (f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else ""))
    return "; ".join(parts) or None


def load_state_strict(module: torch.nn.Module, state: dict, *, source: Path | str, cfg_desc: str = "") -> None:
    """load_state_dict that reports every mismatched key/shape and leaves ``module`` untouched on error."""
    problem = mismatch(module, state)
    if problem:
        raise UsageError(f"{source} does not fit this architecture ({problem}); model config: {cfg_desc}")
    module.load_state_dict(state)


# ----------------------------------------------------------------------------- RNG state


def rng_state() -> dict[str, Any]:
    """Every RNG a training run draws from, as tensors and ints (no pickled objects)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].cpu().numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # a state saved on a machine with more GPUs: set_rng_state_all would index past this one's
        saved, count = state["cuda"], torch.cuda.device_count()
        if len(saved) > count:
            log.warning("the state holds %d CUDA generators, this machine has %d GPU(s): the first %d are restored",
                        len(saved), count, count)
        torch.cuda.set_rng_state_all([s.cpu() for s in saved[:count]])


# ----------------------------------------------------------------------------- writing states


def _tensors(obj: Any, prefix: str = ""):
    """(dotted name, tensor) for every tensor inside nested dicts/lists."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}.{i}")


def check_finite(state: dict) -> None:
    """Raise NonFiniteState naming the first tensor holding NaN/Inf (one host sync per device)."""
    floats = [(k, t) for k, t in _tensors(state) if t.is_floating_point() and t.numel()]
    by_device: dict[torch.device, list] = {}
    for k, t in floats:
        by_device.setdefault(t.device, []).append((k, t))
    for items in by_device.values():
        if not bool(torch.stack([torch.isfinite(t).all() for _, t in items]).all()):
            bad = next(k for k, t in items if not bool(torch.isfinite(t).all()))
            raise NonFiniteState(f"refusing to write a training state at step {state.get('step')}: {bad} holds NaN/Inf")


def _write_with_test_delay(f, data: bytes) -> None:
    try:
        delay = float(os.environ.get(SAVE_DELAY_ENV, "0") or 0)
    except ValueError:
        delay = 0.0
    if delay > 0:  # test hook only: half the bytes on disk, then a window for kill -9
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(delay)
        f.write(data[len(data) // 2 :])
    else:
        f.write(data)


def save_state(ckpt_dir: str | Path, step: int, state: dict, keep_last: int) -> Path:
    """Commit ``state-<step>.pt`` (file, then manifest), then delete states beyond ``keep_last``.

    Raises NonFiniteState before writing anything if a tensor is NaN/Inf, and UsageError
    naming the path if the disk is full; either way the earlier states stay untouched."""
    ckpt_dir = Path(ckpt_dir)
    check_finite(state)
    remove_stale_temps(ckpt_dir, "state-")  # left by a writer killed mid-save
    remove_stale_temps(ckpt_dir, MANIFEST)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    path = ckpt_dir / f"state-{step:08d}.pt"
    atomic_write(path, lambda f: _write_with_test_delay(f, data))
    manifest = read_manifest(ckpt_dir)
    manifest[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "step": step}
    try:
        atomic_write_json(ckpt_dir / MANIFEST, manifest)  # the commit point
    except BaseException:
        path.unlink(missing_ok=True)  # an uncommitted state must not outlive a failed commit
        raise
    # Rotation, strictly after the commit. States newer than this one belong to an attempt we
    # did not continue from (resume fell back past a corrupt file): they are dropped too.
    states = list_states(ckpt_dir)
    older = [p for p in states if state_step(p) < step]
    doomed = older[: max(0, len(older) - (keep_last - 1))] + [p for p in states if state_step(p) > step]
    for old in doomed:
        old.unlink(missing_ok=True)
        manifest.pop(old.name, None)
    if doomed:
        atomic_write_json(ckpt_dir / MANIFEST, manifest)
    return path


def read_manifest(ckpt_dir: str | Path) -> dict[str, dict]:
    """name -> {"sha256", "bytes", "step"} for the states that exist (empty if unreadable)."""
    ckpt_dir = Path(ckpt_dir)
    try:
        data = json.loads((ckpt_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out = {}
    for name, entry in data.items():
        entry = {"sha256": entry} if isinstance(entry, str) else entry  # ganforge 0.1 stored the digest alone
        if isinstance(entry, dict) and (ckpt_dir / str(name)).is_file():
            out[str(name)] = entry
    return out


def list_states(ckpt_dir: str | Path) -> list[Path]:
    """State files sorted oldest -> newest by step."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    return sorted((p for p in ckpt_dir.iterdir() if _STATE_RE.match(p.name)), key=state_step)


def state_step(path: Path) -> int:
    """The G step a state file (state-NNNNNNNN.pt) was written at."""
    return int(_STATE_RE.match(path.name).group(1))  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- reading states


def verify_state(path: Path, entry: dict | None) -> str | None:
    """Why ``path`` fails its manifest entry (size, then sha256), or None when it matches."""
    if entry is None:
        return "not recorded in the manifest (its save never committed)"
    size = path.stat().st_size
    if "bytes" in entry and size != entry["bytes"]:
        return f"{size} bytes instead of {entry['bytes']} (truncated or overwritten)"
    if sha256_file(path) != entry.get("sha256"):
        return "sha256 does not match the manifest (the file was modified or damaged)"
    return None


def zip_problem(path: Path) -> str | None:
    """Why ``path`` fails its own checks (the zip torch.save writes holds a CRC32 of every record, which
    torch.load does not test), or None. The fallback for states without a manifest."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        return f"not a whole torch.save zip ({exc})"
    return f"its record {bad} fails its CRC32 (damaged)" if bad else None


def _manifest_to_check(ckpt_dir: Path, states: list[Path]) -> dict[str, dict] | None:
    """The manifest resume checks ``states`` against; None when there is none, and each state is checked
    by its own CRC32s instead (zip_problem). An unreadable manifest is refused: its states are whole
    for all we know, so they must not be reported as corrupt, nor be trusted without a word."""
    path = ckpt_dir / MANIFEST
    if not states:
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
    except FileNotFoundError:
        log.warning("%s is missing: checking each state by its own CRC32s instead of the size and sha256 it records",
                    path)
        return None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise UsageError(f"{path} is unreadable ({reason}), so the {len(states)} state(s) beside it cannot be checked "
                         f"against their recorded sizes and sha256s: put back a good copy, or delete it to resume from "
                         f"the newest state that passes its own CRC32 checks") from None
    return read_manifest(ckpt_dir)


def load_state_file(path: str | Path, map_location="cpu") -> dict:
    """One training state, read with ``torch.load(weights_only=True)``.

    A file whose pickle names any Python object beyond tensors and plain containers is refused
    with UnsafeCheckpoint; there is no fallback to unsafe loading."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        what = found.group(1).split(" was not an allowed")[0].strip() if found else "unsupported pickle content"
        raise UnsafeCheckpoint(
            f"refusing to load {path}: it is not a plain-tensor checkpoint ({what}); loading it could run "
            "arbitrary code, and ganforge never unpickles objects. Delete it if you did not write it"
        ) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or "step" not in state:
        raise UsageError(f"{path} is not a ganforge training state (format {STATE_FORMAT})")
    return state


def load_latest_state(ckpt_dir: str | Path, map_location="cpu", *, set_aside: bool = True) -> tuple[dict, Path] | None:
    """Newest state whose size and sha256 match the manifest; None if the folder holds none.
    Without a manifest, the newest whose zip records pass their CRC32s; an unreadable one is a UsageError.

    A damaged newest state is skipped with a warning ("falling back") and, with ``set_aside``, renamed
    ``*.corrupt`` (a dry run only looks); if states exist but none is valid, UsageError. A state that passes its checksum but would unpickle code
    raises UnsafeCheckpoint: someone rewrote file and manifest, so nothing is trusted."""
    ckpt_dir = Path(ckpt_dir)
    candidates = list_states(ckpt_dir)
    manifest = _manifest_to_check(ckpt_dir, candidates)
    skipped: list[Path] = []
    for path in reversed(candidates):
        problem = verify_state(path, manifest.get(path.name)) if manifest is not None else zip_problem(path)
        if problem is None:
            try:
                state = load_state_file(path, map_location)
            except UnsafeCheckpoint:
                raise
            except Exception as exc:  # e.g. a zip that torch cannot read despite the checksum
                problem = str(exc).splitlines()[0]
            else:
                if set_aside:
                    _set_aside(ckpt_dir, skipped, manifest)
                return state, path
        older = "falling back to the previous checkpoint" if path != candidates[0] else "no older checkpoint left"
        log.warning("checkpoint %s is corrupt: %s; %s", path, problem, older)
        skipped.append(path)
    if candidates:
        raise UsageError(f"no valid training state in {ckpt_dir} ({len(candidates)} file(s), all corrupt); cannot resume")
    return None


def _set_aside(ckpt_dir: Path, corrupt: list[Path], manifest: dict | None) -> None:
    """Rename corrupt states passed over on the way to a valid one to ``*.corrupt`` (kept for a look,
    no longer states): left as states, they would count toward ``keep_last`` and push out the valid
    one the run went on from. ``manifest`` None: there is none, and none is written (an empty one
    would make the valid state read as never committed)."""
    if not corrupt:
        return
    for path in corrupt:
        path.rename(path.with_name(path.name + ".corrupt"))
        log.warning("set %s aside as %s.corrupt", path.name, path.name)
        if manifest is not None:
            manifest.pop(path.name, None)
    if manifest is not None:
        atomic_write_json(ckpt_dir / MANIFEST, manifest)


# ----------------------------------------------------------------------------- resuming a run
find_run = rundir.find_run  # which run folder --resume names: with the run folders' names in rundir.py


def check_state_fits(modules: dict[str, torch.nn.Module], state: dict, *, source: Path) -> None:
    """Raise (before anything is loaded) if a module's weights in ``state`` do not fit it,
    naming the keys and the model config the checkpoint was written with."""
    for name, module in modules.items():
        weights = state.get(name)
        weights = weights.get("model") if name == "ema" and isinstance(weights, dict) else weights
        problem = mismatch(module, weights) if weights is not None else "absent"
        if problem:
            try:
                written_by = json.dumps(json.loads(state.get("config", "{}")).get("model"))
            except ValueError:
                written_by = "unknown"
            raise UsageError(f"{source}: {name} does not fit this model ({problem}); the checkpoint was written with model config {written_by}")


def trim_metrics(path: Path, last_step: int) -> int:
    """Keep the rows of metrics.jsonl up to ``last_step`` (a resumed run rewrites the rest);
    drops a line cut by a crash. Returns the number of rows dropped."""
    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            dropped += bool(line.strip())
            continue
        try:
            step = int(row.get("step", 0)) if isinstance(row, dict) else None
        except (TypeError, ValueError, OverflowError):  # a hand-edited "step": null or "x": not a row of this run
            log.warning("%s: dropped the row %s, whose step is not a number", path, line[:80])
            step = None
        if step is not None and step <= last_step:
            keep.append(line)
        else:
            dropped += 1
    if dropped:
        atomic_write_bytes(path, "".join(f"{line}\n" for line in keep).encode())
    return dropped
