"""``compare``: score several generators (or image sets) under one protocol, the same evaluator,
reference images, image count and noise seeds, so that their differences mean something.

    c = compare(["runs/00001-dcgan-mnist", "runs/00002-wgan-gp-mnist"], metrics="fid,pr", seeds=[0, 1, 2])
    c.rows()      # per target: mean and standard error over the seeds, and the paired difference
                  # from the first target (the same seed draws the same noise vectors for both)
    c.protocol    # the shared protocol (evaluator, reference pixels, counts) and each target's identity

The spread over ``seeds`` is the evaluation's own noise: which images were drawn. It says nothing
of training noise; for that, train each variant with several ``train.seed`` and compare those runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge.errors import UsageError
from ganforge.metrics.evaluation import METRICS, MetricOptions, evaluate, parse_metrics
from ganforge.metrics.extractors import FeatureExtractor, load_extractor
from ganforge.metrics.run_defaults import TrainingData, default_metrics, resolve_defaults

# protocol keys that differ between the evaluations of one comparison by design
_PER_EVALUATION = ("target", "seed", "seconds")
# protocol keys every target must share at one seed, and what it means when they do not
_MUST_AGREE = {
    "extractor": "different evaluators (files of different channels?): give one with --evaluator",
    "reference": "different reference images: give one with --ref",
    "n_generated": "different image counts, and FID and KID depend on the count: give --n (at most the smaller set)",
    "options": "different metric options",
}


@dataclass
class Comparison:
    targets: list[str]
    keys: list[str]  # value keys in order ("fid", "precision", ...; no *_std)
    seeds: list[int]
    values: dict[str, dict[str, list[float]]]  # target -> key -> one value per seed
    protocol: dict = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """Per target: {"target", KEY: {"mean", "se", "values", and for all but the first target
        "diff_mean", "diff_se": the per-seed difference from the first target}}; "se" is None for one seed."""
        first = self.values[self.targets[0]]
        out = []
        for i, t in enumerate(self.targets):
            row: dict = {"target": t}
            for k in self.keys:
                v = np.asarray(self.values[t][k], dtype=np.float64)  # (seeds,)
                cell = {"mean": float(v.mean()), "se": _se(v), "values": v.tolist()}
                if i:
                    d = v - np.asarray(first[k], dtype=np.float64)
                    cell.update(diff_mean=float(d.mean()), diff_se=_se(d))
                row[k] = cell
            out.append(row)
        return out

    def to_dict(self) -> dict:
        return {"rows": self.rows(), "seeds": self.seeds, "protocol": self.protocol}


def _se(v: np.ndarray) -> float | None:
    return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None


def _ref_key(ref) -> object:
    """What two resolved references must share to be the same images (TrainingData compares its
    fields with the source path resolved; a path compares resolved; anything else as it is)."""
    if isinstance(ref, TrainingData):
        return ("training data", _path_key(ref.source), ref.resolution, ref.channels, ref.max_images)
    return _path_key(ref) if isinstance(ref, (str, Path)) else id(ref)


def _path_key(source) -> str:
    p = Path(str(source)).expanduser()
    return str(p.resolve()) if p.exists() else str(source)


def compare(
    targets,
    *,
    metrics=None,  # default: ganforge eval's for every target (labels only where all of them have it)
    evaluator: str | FeatureExtractor | None = None,  # None: the targets' own, which must agree
    ref=None,  # None: the targets' own reference, which must be the same images
    n: int | None = None,
    n_ref: int | None = None,
    seeds=(0,),  # evaluation seeds: noise, subsets, KID subsets; each target is scored once per seed
    batch_size: int = 256,
    device="cpu",
    dtype: str = "float32",
    options: MetricOptions | None = None,
    cache: bool = True,
    ema: bool = True,
    weights=None,
    sha256: str | None = None,
) -> Comparison:
    """Score every target with ``evaluate`` under one protocol; see the module docstring."""
    targets = [str(t) for t in targets]
    if len(targets) < 2:
        raise UsageError(f"compare needs at least two targets, got {len(targets)}")
    from ganforge.data import NAMED_SOURCES

    seen: dict[str, str] = {}
    for t in targets:
        if t not in NAMED_SOURCES and not Path(t).expanduser().exists():
            raise UsageError(f"{t}: no such run folder, saved generator, image file or folder, or dataset name")
        if (key := _path_key(t)) in seen:
            raise UsageError(f"{t} is given twice (as {seen[key]}): each target once")
        seen[key] = t
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be distinct and at least one, got {seeds}")

    resolved = [resolve_defaults(t, evaluator, ref) for t in targets]  # [(evaluator, ref)]
    names = {t: (e.name if isinstance(e, FeatureExtractor) else e) for t, (e, _) in zip(targets, resolved)}
    named = {e for e in names.values() if e != "auto"}  # "auto" (files) takes the runs' evaluator, if any
    if len(named) > 1:
        raise UsageError("the targets are scored with different evaluators ("
                         + ", ".join(f"{t}: {e}" for t, e in names.items()) + "): give one with --evaluator")
    refs = {t: r for t, (_, r) in zip(targets, resolved) if r is not None}  # None: the evaluator's own set
    if len({_ref_key(r) for r in refs.values()}) > 1 or (refs and len(refs) < len(targets)):
        raise UsageError("the targets have different reference images ("
                         + ", ".join(f"{t}: {refs.get(t, 'the evaluator default')}" for t in targets)
                         + "): give one with --ref")
    ev = next((e for e, _ in resolved if e != "auto"), "auto")
    the_ref = next(iter(refs.values()), None)
    if isinstance(ev, str) and ev != "auto":  # load once, not per evaluation
        ev = load_extractor(ev, device=device, dtype=dtype, weights=weights, sha256=sha256)
    if metrics is None:
        wanted = [default_metrics(t, names[t]).split(",") for t in targets]
        metrics = [m for m in wanted[0] if all(m in w for w in wanted)]
    metrics = parse_metrics(metrics)
    keys = [k for m in metrics for k in METRICS[m] if not k.endswith("_std")]

    values = {t: {k: [] for k in keys} for t in targets}
    identities: dict[str, dict] = {}
    first_seed: dict | None = None
    for seed in seeds:
        same: dict | None = None  # what every target shares at this seed
        for t in targets:
            r = evaluate(t, metrics=metrics, evaluator=ev, ref=the_ref, n=n, n_ref=n_ref, seed=seed,
                         batch_size=batch_size, device=device, dtype=dtype, options=options, cache=cache, ema=ema,
                         weights=weights, sha256=sha256)
            for k in keys:
                values[t][k].append(float(r.values[k]))
            identities[t] = r.protocol["target"]
            p = {k: v for k, v in r.protocol.items() if k not in _PER_EVALUATION}
            p["reference"] = {k: v for k, v in p["reference"].items() if k != "cache"}
            if same is None:
                same = p
                continue
            for key, why in _MUST_AGREE.items():
                if p[key] != same[key]:
                    raise UsageError(f"{t} and {targets[0]} were not scored alike: {why}")
        first_seed = first_seed or same
    protocol = {**first_seed, "seeds": seeds, "targets": identities}
    if n_ref is not None and len(seeds) > 1:
        protocol["reference"]["subset"] = f"{n_ref} images drawn per seed (seed + 1); the pixels above are seed {seeds[0]}'s"
    return Comparison(targets, keys, seeds, values, protocol)
