"""Evaluation during training (``eval.every``): score the generator with the distribution
metrics every N G steps, keep the best snapshot by a chosen metric, and watch for mode collapse.

Each evaluation appends one ``{"event": "eval", ...}`` row to metrics.jsonl holding every metric
value, the class histogram of the samples (classifier evaluators) and the step. ``best/`` holds
the generator snapshot (config.json + safetensors, loadable by ``ganforge sample``/``eval``) with
the best ``eval.best_metric`` so far, and ``best/score.json`` says which step and value.

Collapse warning: recall (the share of the real distribution the samples reach) and the number
of classes covered fall early and sharply when a GAN collapses; when either drops more than
``eval.warn_drop`` below its best so far, a warning is logged and an ``{"event": "collapse_warning"}``
row written. The evaluation draws its noise from its own seeded generator and runs under
``fork_rng``, so turning it on does not change the training trajectory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch
from torch import nn

from ganforge.config import EVAL_DIRECTIONS, RunConfig
from ganforge.data import ImageData
from ganforge.errors import UsageError
from ganforge.logs import WarnOnce
from ganforge.metrics.imagesets import ImageSet, load_image_set
from ganforge.io import atomic_write_json
from ganforge.training import checkpoint as ckpt

log = logging.getLogger("ganforge.train")

BEST_DIR = "best"
WATCHED = ("recall", "classes_covered", "label_agreement")  # values whose sharp fall signals collapse (or lost conditioning)


def _native_side(name: str) -> int:
    """The side the shipped classifier ``name`` reads (its module's RESOLUTION)."""
    from ganforge.evaluators import cifar10_clf, mnist_clf

    return {"mnist-clf": mnist_clf.RESOLUTION, "cifar10-clf": cifar10_clf.RESOLUTION}[name]


def auto_evaluator(resolution: int, channels: int) -> str:
    """The shipped evaluator for a data shape: mnist-clf for grey, cifar10-clf for RGB. At another
    size than theirs (28 / 32 px) the extractor resizes the images (antialiased bilinear), and
    ``auto_evaluator_note`` says what that costs."""
    return "mnist-clf" if channels == 1 else "cifar10-clf"


def auto_evaluator_note(resolution: int, channels: int) -> str | None:
    """A warning for an auto-chosen evaluator that reads the images at another size, else None.
    Measured on 64 px photo crops (docs/EVALUATION.md, "Other sizes"): cifar10-clf at 32 px sees
    blur and lost detail, but not faint pixel noise."""
    name = auto_evaluator(resolution, channels)
    side = _native_side(name)
    if resolution == side:
        return None
    lost = f"detail finer than {side} px is not fully measured, and " if resolution > side else ""
    how = "shrunk" if resolution > side else "enlarged"
    return (f"{name} reads these {resolution} px images {how} to {side} px: {lost}its FID is on its own scale; "
            "for the standard FID set the evaluator to inception-v3-fid with its weights file")


def check_inception_weights() -> None:
    """Training has no --inception-weights (`ganforge eval` does): it reads Inception's file from the
    environment alone, so say that, not the option, when the file is not there."""
    from ganforge.evaluators.inception import WEIGHTS_ENV

    path = os.environ.get(WEIGHTS_ENV)
    if not path:
        raise UsageError(f"eval.evaluator=inception-v3-fid needs pytorch-fid's pt_inception-2015-12-05-6726825d.pth, "
                         f"which training reads from ${WEIGHTS_ENV} (ganforge never downloads it): run with "
                         f"{WEIGHTS_ENV}=PATH, or leave eval.evaluator=auto")
    if not Path(path).expanduser().is_file():
        raise UsageError(f"{WEIGHTS_ENV}={path} is not a file: eval.evaluator=inception-v3-fid reads pytorch-fid's "
                         "pt_inception-2015-12-05-6726825d.pth from it")


def make_periodic_eval(cfg: RunConfig, data: ImageData, device: torch.device) -> "PeriodicEval | None":
    """The evaluator of ``eval.every``, or None when it is off. ``eval.evaluator=auto`` is the
    shipped classifier for the channel count (``auto_evaluator``, warned once when it resizes);
    an evaluator named explicitly must load."""
    e, m = cfg.eval, cfg.model
    if not e.every:
        return None
    if e.evaluator == "auto" and (note := auto_evaluator_note(m.resolution, m.channels)):
        log.warning("eval.evaluator=auto: %s", note)
    return PeriodicEval(cfg, data, device)


class PeriodicEval:
    """``PeriodicEval(cfg, data, device)``, then ``.attach(run_dir)``, then ``(step, G, ...) -> rows``.
    The extractor loads at construction, before a run folder exists, so a missing evaluator fails
    fast; reference features are cached (metrics/cache.py), so each call costs one generation and
    one feature pass of the generated images."""

    def __init__(self, cfg: RunConfig, data: ImageData, device: torch.device) -> None:
        from ganforge.metrics.extractors import load_extractor

        e, m = cfg.eval, cfg.model
        self.cfg, self.device = cfg, device
        self.class_names = data.class_names if cfg.model.num_classes else None  # best/ records them as model/ does
        self.class_counts = (torch.bincount(data.labels.cpu(), minlength=cfg.model.num_classes).tolist()
                             if cfg.model.num_classes and data.labels is not None else None)  # (K,), as model/ does
        name = auto_evaluator(m.resolution, m.channels) if e.evaluator == "auto" else e.evaluator
        if name == "inception-v3-fid":
            check_inception_weights()
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # building the network draws init weights: keep the run's RNG untouched
            self.extractor = load_extractor(name, device=device)
        wanted = {x.strip() for x in e.metrics.split(",") if x.strip()}
        if {"is", "classes"} & wanted and self.extractor.num_classes == 0:
            wanted -= {"is", "classes"}  # a feature-only extractor (Inception for FID) has no class head
            log.warning("eval: %s has no classifier head; dropping is/classes from eval.metrics", name)
        self.metrics = ",".join(x for x in ("fid", "kid", "is", "pr", "dc", "classes") if x in wanted)
        if m.num_classes and self._reads_the_labels(name, data):
            self.metrics += ",labels"  # label agreement: does G draw the class it was asked for?
        elif e.best_metric == "label_agreement":
            raise UsageError(f"eval.best_metric='label_agreement' needs an evaluator that reads this run's classes; "
                             f"{name} does not (its classes are not the training labels): choose another eval.best_metric")
        # The reference: eval.ref, or (default) at most eval.n of the training images, uint8 (N, C, H, W)
        # (eval.n_ref: the first n_ref of them, or n_ref drawn from eval.ref).
        n_ref = e.n_ref or e.n
        if e.ref:  # loaded once, here: a missing or unreadable eval.ref, or one smaller than n_ref, fails before
            # the run folder exists, and no evaluation decodes it again
            # seed + 1, as evaluate draws a reference subset
            ref = load_image_set(e.ref, n=e.n_ref or None, seed=e.seed + 1, what="eval.ref")
            self.extractor.check_images(ref.images[:1], f"eval.ref={e.ref}")
        else:
            ref = ImageSet(data.images[:n_ref].cpu(), {}, labels=None if data.labels is None else data.labels[:n_ref].cpu(),
                           class_names=data.class_names)
        # uint8 (N, C, H, W), or with its labels for a conditional G: evaluate draws G's classes in their mix.
        # evaluate sees G as a module, without the run's class names: an eval.ref whose class names are
        # others (folders named differently) is left unlabelled here, so G's classes cycle.
        other = (ref.class_names is not None and data.class_names is not None
                 and list(map(str, ref.class_names)) != list(map(str, data.class_names)))
        if other and m.num_classes:
            log.info("eval: eval.ref's classes (%s, ...) are not the run's (%s, ...): the generator's classes cycle",
                     ", ".join(map(str, ref.class_names[:3])), ", ".join(map(str, data.class_names[:3])))
        self.ref = ref if m.num_classes and ref.labels is not None and not other else ref.images
        if not e.ref and len(data.images) > n_ref:  # `ganforge eval RUN` compares with all of them: say so once
            log.info("eval: the reference is the first %d of the %d training images (%s); `ganforge eval RUN` "
                     "compares with all %d, so its values differ (eval.n_ref=%d to use them all)", n_ref,
                     len(data.images), "eval.n_ref" if e.n_ref else "eval.n", len(data.images), len(data.images))
        # Fail before training, not at the first evaluation: the generated images have the data's shape.
        self.extractor.check_images(data.images[:1].cpu(), f"eval.evaluator={name} on the training images")
        self.higher_better = EVAL_DIRECTIONS[e.best_metric]
        self.best: dict | None = None
        self.peaks: dict[str, float] = {}
        self.run_dir = Path(".")
        self._once = WarnOnce()

    def _reads_the_labels(self, name: str, data: ImageData) -> bool:
        """True when the evaluator's classes are the training labels (same count and, where both are
        known, the same names in order), so label agreement means something."""
        from ganforge.metrics.evaluation import check_class_map, evaluator_class_names

        try:  # a classifier fitted on other class folders reads its sidecar's names, not the shipped ones
            check_class_map(self.cfg.model.num_classes, data.class_names, name, self.extractor.num_classes,
                            names=evaluator_class_names(self.extractor))
        except UsageError as e:
            log.info("eval: no label agreement (%s)", e)
            return False
        return True

    def attach(self, run_dir: Path) -> "PeriodicEval":
        self.run_dir = Path(run_dir)
        score = self.run_dir / BEST_DIR / "score.json"
        if score.is_file():  # a resumed run keeps competing against its earlier best
            self.best = json.loads(score.read_text())
        return self

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        old = self.best["value"]
        return value > old if self.higher_better else value < old

    def __call__(self, step: int, G: nn.Module, G_train: nn.Module, G_ema: nn.Module | None) -> list[dict]:
        """Score ``G`` (the EMA copy when kept) at G step ``step``; returns the metrics.jsonl rows."""
        from ganforge.metrics.evaluation import evaluate

        e = self.cfg.eval
        started = time.perf_counter()
        was_training = G.training
        G.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        eval_log = logging.getLogger("ganforge.eval")
        eval_log.addFilter(self._once)
        try:
            with torch.random.fork_rng(devices=devices):
                r = evaluate(G, metrics=self.metrics, evaluator=self.extractor, ref=self.ref, n=e.n, n_ref=None,
                             seed=e.seed, device=self.device)
        finally:
            eval_log.removeFilter(self._once)
        G.train(was_training)
        values = {k: round(float(v), 6) for k, v in r.values.items()}
        row = {"step": step, "event": "eval", **values, "eval_seconds": round(time.perf_counter() - started, 2),
               "evaluator": self.extractor.name, "n": e.n, "n_real": r.protocol["n_real"]}
        if r.class_hist is not None:
            row["class_hist"] = r.class_hist
        rows = [row]

        value = values.get(e.best_metric)
        if value is not None and self._better(value):
            self.best = {"step": step, "metric": e.best_metric, "value": value, "values": values,
                         "evaluator": r.protocol["extractor"], "n_generated": e.n, "n_real": r.protocol["n_real"],
                         "seed": e.seed}
            best_dir = self.run_dir / BEST_DIR
            ckpt.save_generator(best_dir, self.cfg.model, G_train, G_ema,
                                meta={"preset": self.cfg.preset, "steps": step, "class_names": self.class_names,
                                      **({"class_counts": self.class_counts} if self.class_counts else {}),
                                      "best": {k: self.best[k] for k in ("metric", "value")}})
            atomic_write_json(best_dir / "score.json", self.best)
            row["best"] = True

        for key in WATCHED:
            if key not in values:
                continue
            peak = self.peaks.get(key, values[key])
            if peak > 0 and values[key] < (1 - e.warn_drop) * peak:
                msg = f"{key} fell from {peak:g} to {values[key]:g} at step {step}: the generator may be collapsing"
                log.warning("eval: %s", msg)
                rows.append({"step": step, "event": "collapse_warning", "metric": key, "peak": peak, "value": values[key]})
            self.peaks[key] = max(peak, values[key])
        return rows
