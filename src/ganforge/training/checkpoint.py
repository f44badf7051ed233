"""Checkpoints: the generator as config.json + safetensors (for inference), and resumable
training states (every tensor and counter needed to continue bit-exactly) written atomically
with a sha256 manifest. Nothing here pickles code: states are loaded with
``torch.load(weights_only=True)``, generators with safetensors.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from ganforge import __version__
from ganforge.errors import UsageError
from ganforge.io import atomic_write_bytes, atomic_write_json, sha256_file
from ganforge.models.config import ModelConfig

log = logging.getLogger("ganforge.checkpoint")

MODEL_DIR = "model"  # inside a run dir: the inference snapshot
STATE_DIR = "checkpoints"  # inside a run dir: resumable training states
MANIFEST = "manifest.json"
_STATE_RE = re.compile(r"^state-(\d{8})\.pt$")


# ----------------------------------------------------------------------------- generator snapshot


def _state_bytes(module: torch.nn.Module) -> bytes:
    # clone() detaches shared storage (safetensors refuses tensors that share memory)
    return save({k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()})


def save_generator(model_dir: str | Path, model_cfg: ModelConfig, G: torch.nn.Module, G_ema=None, meta=None) -> Path:
    """Write ``config.json``, ``generator.safetensors`` and (if given) ``generator_ema.safetensors``."""
    model_dir = Path(model_dir)
    atomic_write_bytes(model_dir / "generator.safetensors", _state_bytes(G))
    if G_ema is not None:
        atomic_write_bytes(model_dir / "generator_ema.safetensors", _state_bytes(G_ema))
    cfg = {"ganforge_version": __version__, "model": dict(model_cfg.__dict__), **(meta or {})}
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

    model_dir = resolve_model_dir(path)
    try:
        meta = json.loads((model_dir / "config.json").read_text())
        cfg = ModelConfig(**meta["model"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{model_dir / 'config.json'} is not a ganforge generator config: {exc}") from None
    G = build_generator(cfg)
    weights = model_dir / ("generator_ema.safetensors" if ema and (model_dir / "generator_ema.safetensors").is_file() else "generator.safetensors")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UsageError(f"cannot read {weights}: {exc}") from None
    load_state_strict(G, state, source=weights, cfg_desc=json.dumps(meta["model"]))
    G.meta = meta  # type: ignore[attr-defined]
    return G.to(device).eval()


def load_state_strict(module: torch.nn.Module, state: dict, *, source: Path | str, cfg_desc: str = "") -> None:
    """load_state_dict that reports every mismatched key/shape and leaves ``module`` untouched on error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        if shapes:
            k = shapes[0]
            parts.append(f"shape mismatch at {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
        raise UsageError(f"{source} does not fit this architecture ({'; '.join(parts)}); model config: {cfg_desc}")
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
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- resumable states


def save_state(ckpt_dir: str | Path, step: int, state: dict, keep_last: int) -> Path:
    """Write ``state-<step>.pt`` atomically, record its sha256 in the manifest, then (only
    then) delete states beyond ``keep_last``."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    path = ckpt_dir / f"state-{step:08d}.pt"
    atomic_write_bytes(path, buf.getvalue())
    manifest = _read_manifest(ckpt_dir)
    manifest[path.name] = sha256_file(path)
    atomic_write_json(ckpt_dir / MANIFEST, manifest)
    for old in list_states(ckpt_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
        manifest.pop(old.name, None)
    atomic_write_json(ckpt_dir / MANIFEST, manifest)
    return path


def _read_manifest(ckpt_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((ckpt_dir / MANIFEST).read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def list_states(ckpt_dir: str | Path) -> list[Path]:
    """State files sorted oldest -> newest by step."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    return sorted((p for p in ckpt_dir.iterdir() if _STATE_RE.match(p.name)), key=lambda p: p.name)


def load_latest_state(ckpt_dir: str | Path, map_location="cpu") -> tuple[dict, Path]:
    """Newest state whose sha256 matches the manifest; falls back to older ones, saying so."""
    ckpt_dir = Path(ckpt_dir)
    manifest = _read_manifest(ckpt_dir)
    candidates = list_states(ckpt_dir)
    for path in reversed(candidates):
        expected = manifest.get(path.name)
        if expected is None or sha256_file(path) != expected:
            log.warning("checkpoint %s is corrupt or unrecorded (sha256 mismatch); trying an older one", path)
            continue
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:
            log.warning("checkpoint %s cannot be loaded safely (%s); trying an older one", path, str(exc).splitlines()[0])
            continue
        return state, path
    raise UsageError(f"no valid training state in {ckpt_dir} (found {len(candidates)} file(s)); cannot resume")
