"""``compare``: score several generators (or image sets) under one protocol, the same evaluator,
reference images, image count and noise seeds, so that their differences mean something.

    c = compare(["runs/00001-dcgan-mnist", "runs/00002-wgan-gp-mnist"], metrics="fid,pr", seeds=[0, 1, 2])
    c.rows()      # per target: mean and standard error over the seeds, and the paired difference
                  # from the first target (the same seed draws the same noise vectors for both)
    c.protocol    # the shared protocol (evaluator, reference pixels, counts) and each target's identity

The spread over ``seeds`` is the evaluation's own noise: which images were drawn. It says nothing
of training noise. For that, give a *group* in place of a target, the runs of one recipe trained
with different ``train.seed`` (a list, or on the command line one argument "runA,runB,runC"): its
value is the mean over its runs, its standard error the spread of the run means over the runs, and
its difference from the first entry is unpaired (the runs are independent).

    compare([["dcgan-s0", "dcgan-s1", "dcgan-s2"], ["lsgan-s0", "lsgan-s1", "lsgan-s2"]], metrics="fid")
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforge.device import resolve_device
from ganforge.errors import UsageError
from ganforge.metrics.evaluation import METRICS, MetricOptions, check_seed, evaluate, parse_metrics
from ganforge.metrics.extractors import FeatureExtractor, load_extractor
from ganforge.logs import WarnOnce
from ganforge.metrics.run_defaults import TrainingData, default_metrics, is_generator_dir, resolve_defaults

log = logging.getLogger("ganforge.eval")

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
    entries: dict[str, list[str]]  # entry name (a target, or a group's "a,b,c") -> its targets, in order
    keys: list[str]  # value keys in order ("fid", "precision", ...; no *_std)
    seeds: list[int]
    values: dict[str, dict[str, list[float]]]  # target -> key -> one value per seed
    protocol: dict = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        return list(self.entries)

    def rows(self) -> list[dict]:
        """Per entry: {"target", "runs", KEY: {"mean", "se", "se_over", "values", and for all but the
        first entry "diff_mean", "diff_se"}}. A single target: mean and se over the seeds ("values":
        one per seed), and the difference from the first entry seed by seed when that is a single
        target too. A group: mean and se over its runs ("values": each run's mean over the seeds), and
        an unpaired difference, se sqrt(se^2 + se_first^2). "se" is None for one seed or one run."""
        cells = {name: {k: self._cell(members, k) for k in self.keys} for name, members in self.entries.items()}
        first_name = self.targets[0]
        out = []
        for i, (name, members) in enumerate(self.entries.items()):
            row: dict = {"target": name, "runs": len(members)}
            for k in self.keys:
                cell, base = dict(cells[name][k]), cells[first_name][k]
                if i and len(members) == 1 and len(self.entries[first_name]) == 1:  # paired by seed
                    d = np.asarray(self.values[members[0]][k]) - np.asarray(self.values[self.entries[first_name][0]][k])
                    cell.update(diff_mean=float(d.mean()), diff_se=_se(d))
                elif i:
                    both = cell["se"] is not None and base["se"] is not None
                    cell.update(diff_mean=cell["mean"] - base["mean"],
                                diff_se=math.hypot(cell["se"], base["se"]) if both else None)
                row[k] = cell
            out.append(row)
        return out

    def _cell(self, members: list[str], key: str) -> dict:
        if len(members) == 1:
            v = np.asarray(self.values[members[0]][key], dtype=np.float64)  # (seeds,)
            return {"mean": float(v.mean()), "se": _se(v), "se_over": "evaluation seeds", "values": v.tolist()}
        v = np.asarray([np.mean(self.values[m][key]) for m in members], dtype=np.float64)  # (runs,) seed means
        return {"mean": float(v.mean()), "se": _se(v), "se_over": "runs", "values": v.tolist()}

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


# run config keys in which the runs of one recipe may differ: the seed, where and how they ran and
# were logged, and their periodic evaluation (which does not move training: periodic_eval.py)
_NOT_RECIPE = ("preset", "description", "train.seed", "train.progress", "train.log_every", "train.sample_every",
               "train.device", "train.threads", "data.source", "checkpoint", "perf", "eval")


def _check_group(name: str, members: list[str]) -> None:
    """A group is the runs of one recipe under different train.seed (its ± is training noise): refuse a
    member that is not a generator, runs of different recipes and two runs of one seed. A saved
    generator without its run cannot be checked, and is taken as the user says (with a warning)."""
    from ganforge.config import read_run_config
    from ganforge.configio import to_dict

    configs = {}
    for t in members:
        path = Path(t).expanduser()
        if not is_generator_dir(path):
            raise UsageError(f"{t} in group {name} is not a run folder or saved generator: a group is the runs of one "
                             "recipe trained with different train.seed")
        if (path / "config.json").is_file() and "run" in json.loads((path / "config.json").read_text()):
            configs[t] = read_run_config(path / "config.json")
        else:
            log.warning("%s in group %s is a generator without its run: that it is the group's recipe with another "
                        "train.seed cannot be checked", t, name)
    seeds: dict[int, str] = {}
    first = next(iter(configs), None)
    for t, cfg in configs.items():
        if cfg.train.seed in seeds:
            raise UsageError(f"{seeds[cfg.train.seed]} and {t} in group {name} were both trained with "
                             f"train.seed={cfg.train.seed}: the runs of a group differ in train.seed")
        seeds[cfg.train.seed] = t
        a, b = _flat(to_dict(configs[first])), _flat(to_dict(cfg))
        # train.fake_labels draws nothing for an unconditional net (and its default changed: data, then sqrt)
        inert = ("train.fake_labels",) if not (cfg.model.num_classes or configs[first].model.num_classes) else ()
        diff = [f"{k}={b.get(k)!r} (vs {a.get(k)!r})" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
                and not any(k == x or k.startswith(x + ".") for x in _NOT_RECIPE) and k not in inert]
        if diff:
            raise UsageError(f"{t} is not the recipe of {first} in group {name}: {'; '.join(diff[:4])}"
                             f"{' ...' if len(diff) > 4 else ''}; the runs of a group may differ only in train.seed")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


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
    class_mix: str = "reference",  # conditional generators: as evaluate; every one must end with the same mix
) -> Comparison:
    """Score every target with ``evaluate`` under one protocol; see the module docstring. An entry of
    ``targets`` that is a list or tuple is a group (the runs of one recipe)."""
    from ganforge.data import NAMED_SOURCES

    if not isinstance(targets, (list, tuple)):  # a bare path would be read as one target per character
        raise UsageError(f"targets must be a list of targets (run folders, generators, image sets), "
                         f"e.g. compare([run_a, run_b]), got {type(targets).__name__} {targets!r}")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise UsageError(f"seeds must be a list of integers, e.g. [0, 1, 2], got {seeds!r}")
    seeds = [check_seed(s, "a seed in seeds") for s in seeds]  # 0.5 is not read as 0
    device = str(resolve_device(str(device), "device"))
    if metrics is not None:
        metrics = parse_metrics(metrics)  # unknown names fail before anything loads
    entries = {}
    for entry in targets:
        members = [str(t) for t in entry] if isinstance(entry, (list, tuple)) else [str(entry)]
        if not members:
            raise UsageError("an empty group: a group names at least one target")
        if any(not t.strip() for t in members):  # "runA," would otherwise be "" -> the current folder
            raise UsageError(f"an empty name in {','.join(members)!r}: a group is runs separated by commas, none empty")
        entries[",".join(members)] = members
    if len(entries) < 2 or len(entries) < len(targets):
        raise UsageError(f"compare needs at least two different targets or groups, got {len(targets)}: "
                         + ", ".join(map(str, targets)))
    # A run may stand alone and in a group (or in two groups): it is scored once and shared. Within an
    # entry each run once, and no two entries alike (the same runs, however their paths are spelled).
    spelling: dict[str, str] = {}  # resolved path -> the first spelling given, the key of its values
    for name, members in list(entries.items()):
        for t in members:
            if t not in NAMED_SOURCES and not Path(t).expanduser().exists():
                raise UsageError(f"{t}: no such run folder, saved generator, image file or folder, or dataset name")
        canon = [spelling.setdefault(_path_key(t), t) for t in members]
        if len(set(canon)) < len(canon):
            twice = next(t for t, c in zip(members, canon) if canon.count(c) > 1)
            raise UsageError(f"{twice} is given twice in {name}: each run once in a group")
        entries[name] = canon
    alike = [sorted(m) for m in entries.values()]
    for i, m in enumerate(alike):
        if m in alike[:i]:
            first = list(entries)[alike.index(m)]
            raise UsageError(f"{list(entries)[i]} is given twice (as {first}): each target or group once")
    for name, members in entries.items():
        if len(members) > 1:
            _check_group(name, members)
    targets = list(dict.fromkeys(t for members in entries.values() for t in members))  # each scored once per seed
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be distinct and at least one, got {seeds}")

    resolved = [resolve_defaults(t, evaluator, ref) for t in targets]  # [(evaluator, ref)]
    names = {t: (e.name if isinstance(e, FeatureExtractor) else e) for t, (e, _) in zip(targets, resolved)}
    named = {e for e in names.values() if e != "auto"}  # "auto" (files) takes the runs' evaluator, if any
    if len(named) > 1:
        raise UsageError("the targets are scored with different evaluators ("
                         + ", ".join(f"{t}: {e}" for t, e in names.items()) + "): give one with --evaluator")
    # None (a file, a generator without its run): the runs' reference if any, else the evaluator's own set
    refs = {t: r for t, (_, r) in zip(targets, resolved) if r is not None}
    if len({_ref_key(r) for r in refs.values()}) > 1:
        raise UsageError("the targets have different reference images ("
                         + ", ".join(f"{t}: {r}" for t, r in refs.items()) + "): give one with --ref")
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
    once = WarnOnce()  # one evaluate() per target and seed: each warning about the shared inputs once
    log.addFilter(once)
    try:
        for seed in seeds:
            shared = _compare_at(seed, targets, keys, values, identities, dict(
                metrics=metrics, evaluator=ev, ref=the_ref, n=n, n_ref=n_ref, batch_size=batch_size, device=device,
                dtype=dtype, options=options, cache=cache, ema=ema, weights=weights, sha256=sha256, class_mix=class_mix))
            first_seed = first_seed or shared
    finally:
        log.removeFilter(once)
    protocol = {**first_seed, "seeds": seeds, "targets": identities}
    if n_ref is not None and len(seeds) > 1:
        protocol["reference"]["subset"] = f"{n_ref} images drawn per seed (seed + 1); the pixels above are seed {seeds[0]}'s"
    return Comparison(entries, keys, seeds, values, protocol)


def _compare_at(seed: int, targets: list, keys: list[str], values: dict, identities: dict, kwargs: dict) -> dict:
    """Score every target at one seed (appending to ``values``, recording ``identities``) -> the protocol
    they share; a UsageError where two were not scored alike."""
    same: dict | None = None  # what every target shares at this seed
    mix: tuple[str, str] | None = None  # (target, how its classes were drawn): the first conditional target's
    for t in targets:
        r = evaluate(t, seed=seed, **kwargs)
        for k in keys:
            values[t][k].append(float(r.values[k]))
        ident = r.protocol["target"]
        if "labels" in ident and ident.get("kind") == "generator":  # one class mix for all, or the difference is it
            drawn = ident["labels"] + (f" ({ident['labels_note']})" if ident.get("labels_note") else "")
            if mix is not None and drawn != mix[1]:
                raise UsageError(f"{t} and {mix[0]} were not scored alike: their classes were drawn differently "
                                 f"({drawn}; {mix[1]}): give --class-mix uniform")
            mix = mix or (t, drawn)
        identities.setdefault(t, ident)  # the first seed's, as the reference's pixels
        p = {k: v for k, v in r.protocol.items() if k not in _PER_EVALUATION}
        p["reference"] = {k: v for k, v in p["reference"].items() if k != "cache"}
        # how a generator's classes were matched to the evaluator's is the target's own (best/ of older
        # runs has no class names): kept per target, not required to agree
        p["options"] = {k: v for k, v in p["options"].items() if k != "label_class_map"}
        if "label_class_map" in r.protocol["options"]:
            identities[t] = {**identities[t], "label_class_map": r.protocol["options"]["label_class_map"]}
        if same is None:
            same = p
            continue
        for key, why in _MUST_AGREE.items():
            if p[key] != same[key]:
                raise UsageError(f"{t} and {targets[0]} were not scored alike: {why}")
    return same
