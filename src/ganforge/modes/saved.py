"""Keep a 2D benchmark run's trained trials, and score them again without training.

A 20,000-step ring8 trial costs ~18 CPU minutes; DRS's γ (``drs_percentile``) acts only after
training. ``save_trials`` writes the trained generators (stacked over trials), their batch-norm
buffers and, with DRS, the calibrated discriminators, as ``trials.safetensors`` beside a
``config.json`` (benchmark, method, seeds, the full ToyConfig). ``rescore_trials`` loads them and
draws the 2,500 scored samples again — with the same sampling seeds (10000 + seed), so at the saved
``drs_percentile`` it reproduces the run's numbers exactly — at any other percentile.

Tensor keys: ``g.<name>`` (T, …) generator parameters, ``bn.<name>`` (T, 1, F) running stats,
``drs_d.<name>`` (T, …) the calibrated D (only when drs_steps > 0).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch
from torch import Tensor

from ganforge.config import MAX_SEED
from ganforge.errors import UsageError, is_int
from ganforge.io import check_can_write
from ganforge.modes.ensemble import Ensemble, Params, stack_discriminators, stack_generators
from ganforge.modes.toy import ToyConfig, ToyDiscriminator, toy_generator

FORMAT = "ganforge.modes.trials/1"
TENSORS, CONFIG = "trials.safetensors", "config.json"


def check_save_dir(path: Path) -> None:
    """A save folder must be new or empty (a run's trials are never overwritten), and creatable and
    writable: the trials are written after training, which a failing mkdir would lose."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"--save {str(path)!r} exists and is not an empty folder: give a new folder")
    check_can_write(path, f"--save {str(path)!r}")


def save_trials(path: Path, meta: dict, ens: Ensemble, d_params: Params | None) -> Path:
    """Write config.json + trials.safetensors into the new or empty folder `path`. `meta` holds
    benchmark, method, steps, seeds, overrides and config (asdict of the ToyConfig)."""
    from safetensors.torch import save_file

    check_save_dir(path)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, Tensor] = {f"g.{k}": v.contiguous() for k, v in ens.params.items()}
    tensors.update({f"bn.{k}": v.contiguous() for k, v in ens.buffers.items()})
    if d_params is not None:
        tensors.update({f"drs_d.{k}": v.contiguous() for k, v in d_params.items()})
    save_file(tensors, str(path / TENSORS))
    doc = {"format": FORMAT, "depth": ens.depth, "z_dim": ens.z_dim, **meta}
    (path / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
    return path


def load_trials(path: Path) -> tuple[dict, Ensemble, Params | None]:
    """(meta, ensemble, calibrated D or None) from a folder written by save_trials."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / CONFIG).is_file() or not (path / TENSORS).is_file():
        raise UsageError(f"--rescore {str(path)!r}: no {CONFIG} + {TENSORS} there (write one with `ganforge modes ... --save DIR`), "
                         "nor runs/ (the --out folder of a Stacked MNIST run)")
    try:
        meta = json.loads((path / CONFIG).read_text())
        tensors = load_file(str(path / TENSORS))
    except Exception as exc:  # corrupt JSON or safetensors header: one line, not a traceback
        raise UsageError(f"--rescore {str(path)!r}: cannot read the saved trials ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else f"a JSON {type(meta).__name__}"
        raise UsageError(f"--rescore {str(path)!r}: format {got!r} is not {FORMAT!r}")
    part = {p: {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)} for p in ("g.", "bn.", "drs_d.")}
    try:  # a hand-edited config.json: one line naming what is missing, not a KeyError traceback
        ens = Ensemble(part["g."], part["bn."], int(meta["depth"]), int(meta["z_dim"]))
        meta["seeds"], meta["steps"], meta["config"], meta["benchmark"], meta["method"]  # noqa: B018
        if not isinstance(meta["config"], dict):
            raise KeyError("config")
        names = {f.name for f in fields(ToyConfig)}
        cfg = ToyConfig(**{k: v for k, v in meta["config"].items() if k in names})
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"--rescore {str(path)!r}: {CONFIG} lacks a valid {exc} entry") from None
    if not part["g."]:
        raise UsageError(f"--rescore {str(path)!r}: {TENSORS} holds no generator (g.*) tensors")
    try:
        cfg.check()
    except UsageError as exc:
        raise UsageError(f"--rescore {str(path)!r}: in its {CONFIG}, {exc}") from None
    seeds = meta["seeds"]
    if not (isinstance(seeds, list) and seeds and all(is_int(s) and 0 <= s <= MAX_SEED for s in seeds)):
        raise UsageError(f"--rescore {str(path)!r}: {CONFIG} lacks a valid 'seeds' entry (a list of the trials' seeds, "
                         f"integers from 0 to {MAX_SEED})")
    problem = _mismatch(tensors, cfg, ens.depth, ens.z_dim, len(seeds))
    if problem:
        # a tensor removed or a config.json edited: one line, not a KeyError or size mismatch mid-scoring
        raise UsageError(f"{path / TENSORS} does not match {path / CONFIG}: {problem}")
    return meta, ens, part["drs_d."] or None


def _mismatch(tensors: dict[str, Tensor], cfg: ToyConfig, depth: int, z_dim: int, trials: int) -> str | None:
    """What keeps the saved tensors from being the trials config.json describes (`trials` of `cfg`'s
    networks, DRS's D when drs_steps > 0), or None. The expected shapes come from the networks
    themselves, built on the meta device (shapes only, no memory)."""
    if (depth, z_dim) != (cfg.g_depth, cfg.z_dim):
        return f"its depth {depth} and z_dim {z_dim} are not config's g_depth {cfg.g_depth} and z_dim {cfg.z_dim}"
    with torch.device("meta"):
        g, bn = stack_generators([toy_generator(cfg.z_dim, cfg.g_width, cfg.g_depth)])
        d = stack_discriminators([ToyDiscriminator(cfg.d_width, cfg.d_depth, cfg.d_pieces, 1, 0)]) if cfg.drs_steps > 0 else {}
    want = {f"{p}{k}": (trials, *v.shape[1:]) for p, part in (("g.", g), ("bn.", bn), ("drs_d.", d)) for k, v in part.items()}
    missing = sorted(set(want) - set(tensors))
    if missing:
        return f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"
    extra = sorted(set(tensors) - set(want))
    if extra:
        why = " (drs_steps is 0: no DRS D was saved)" if extra[0].startswith("drs_d.") else ""
        return f"{len(extra)} tensor(s) it does not describe, e.g. {extra[0]}{why}"
    for k, shape in want.items():
        if tuple(tensors[k].shape) != shape:
            return (f"{k} has shape {tuple(tensors[k].shape)}, where {trials} trial(s) (its seeds) of its config "
                    f"give {shape}")
        if not tensors[k].is_floating_point():
            return f"{k} is {tensors[k].dtype}, not a float tensor"
    return None


def rescore_trials(path: Path, overrides: dict | None = None):
    """Score the saved trials again (a BenchResult). Only ``drs_percentile`` may change: every other
    setting acted during training or calibration, which a rescore does not repeat."""
    from ganforge.modes.bench import BenchResult, get_benchmark, score_trials

    overrides = dict(overrides or {})
    extra = sorted(set(overrides) - {"drs_percentile"})
    if extra:
        raise UsageError(f"--rescore takes only --set drs_percentile=P (the rest acted during training), got {extra}")
    meta, ens, d_params = load_trials(path)
    names = {f.name for f in fields(ToyConfig)}
    cfg = replace(ToyConfig(**{k: v for k, v in meta["config"].items() if k in names}), **overrides)
    cfg.check()  # the new drs_percentile (the saved ones were checked on loading)
    if overrides and d_params is None:
        raise UsageError(f"--rescore {str(path)!r}: the run had no DRS (drs_steps=0), so drs_percentile has nothing to act on")
    seeds = [int(s) for s in meta["seeds"]]
    _, stats, before, acceptance = score_trials(ens, get_benchmark(meta["benchmark"]), cfg, seeds, d_params)
    merged = {**(meta.get("overrides") or {}), **overrides} or None
    return BenchResult(meta["benchmark"], meta["method"], int(meta["steps"]), stats, 0.0, merged, 0.0, before, acceptance)


def trial_meta(benchmark: str, method: str, steps: int, seeds: list[int], overrides: dict | None, cfg) -> dict:
    return {"benchmark": benchmark, "method": method, "steps": steps, "seeds": seeds,
            "overrides": overrides or None, "config": asdict(cfg)}
