"""What a GAN evaluation uses when the caller names no evaluator or reference, for the library
(``evaluate``) and the CLI (``ganforge eval``) alike: a run is scored the way its training scored it.

    resolve_defaults("runs/00001-dcgan-mnist", None, None)
        -> ("mnist-clf", TrainingData("mnist5k", 28, 1))   # the run's eval.evaluator, its training data
    resolve_defaults("fakes/", None, "reals/") -> ("auto", "reals/")   # evaluate picks by the images' channels
    default_metrics("runs/00003-cgan-mnist", "mnist-clf") -> "fid,kid,is,pr,dc,classes,labels"
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import UsageError
from ganforge.metrics.imagesets import ImageSet, from_array, subset

log = logging.getLogger("ganforge.eval")

ALL_METRICS = "fid,kid,is,pr,dc,classes"  # `ganforge eval`'s default (plus labels where they apply)
INCEPTION_HINT = "--evaluator inception-v3-fid --inception-weights FILE"


def warn_resized(note: str | None) -> None:
    """The one warning an auto-chosen evaluator that resizes the images gives (auto_evaluator_note)."""
    if note:
        log.warning("%s (%s)", note, INCEPTION_HINT)


@dataclass(frozen=True)
class TrainingData:
    """A run's training images as its training loaded them: centre-cropped and resized to the
    generator's resolution and channels (ganforge.data.load_images). The default reference of a
    run (run_eval_defaults), so a folder of mixed sizes, or of photos larger than the generator
    draws, is compared in the form G learned it; any other reference is decoded as it is."""

    source: str  # data.source: a built-in name, folder, .zip or .npz
    resolution: int
    channels: int
    max_images: int | None = None  # data.max_images: the first N, as in training
    on_bad_image: str = "error"
    max_bad_fraction: float = 0.01
    trained_on: tuple[int, str] | None = None  # (num_images, sha256) the run recorded (runs before 2026-12-07: None)

    def __str__(self) -> str:
        return self.source

    def load(self, n: int | None, seed: int, what: str) -> ImageSet:
        from ganforge.data import NAMED_SOURCES, load_images
        from ganforge.data.image_data import pixels_sha256

        data = load_images(self.source, resolution=self.resolution, channels=self.channels, max_images=self.max_images,
                           on_bad_image=self.on_bad_image, max_bad_fraction=self.max_bad_fraction)
        s = from_array(data.images, f"{what} {self.source}", n=n, seed=seed)  # uint8 (N, C, R, R)
        where = self.source if self.source in NAMED_SOURCES else str(Path(self.source).expanduser().resolve())
        ident = {"kind": "training data", "source": where,
                 "loaded_as": f"{self.resolution}x{self.resolution}, {self.channels} channel(s), centre-cropped and "
                               "resized as the run's training loaded it"
                               + (f", first {self.max_images}" if self.max_images else "")}
        if self.trained_on:
            # files added, removed or edited since training: say so (the protocol would claim the run's data)
            # rather than refuse, as resume does at the same path (re-encoded files may differ in a bit)
            count, sha = self.trained_on
            # the run hashed its labels only when it was conditional: the second hash only if the first differs
            same = sha == pixels_sha256(data.images) or (data.labels is not None
                                                          and sha == pixels_sha256(data.images, data.labels))
            ident["same_as_trained"] = same
            if not same:
                log.warning("%s %s is not the images the run trained on (%d images then, %d now, or their content "
                            "changed): the scores compare with the data as it is now", what, self.source,
                            count, len(data.images))
        labels = None  # the training labels, drawn with the images: a conditional run is scored in their class mix
        if data.labels is not None:
            labels, _ = subset(data.labels.long().cpu(), n, seed, f"{what} {self.source}")
        return ImageSet(s.images, {**ident, **{k: v for k, v in s.identity.items() if k != "kind"}}, labels=labels,
                        class_names=data.class_names if labels is not None else None)


def is_generator_dir(path: Path) -> bool:
    """A run folder (RUN/model/config.json) or a saved generator folder (generator.safetensors)."""
    return path.is_dir() and ((path / "model" / "config.json").is_file() or (path / "generator.safetensors").is_file())


@dataclass
class RunEvalDefaults:
    """What a run folder or a saved generator is scored with when the caller names nothing: the
    evaluator, the reference (None where unknown), ``missing``: the run's training data when it is
    not found here, and ``note``: a warning when the auto-chosen evaluator resizes the images."""

    evaluator: str
    ref: str | TrainingData | None
    missing: str | None = None
    note: str | None = None
    auto: bool = True  # the evaluator was chosen for the images (eval.evaluator=auto, or no run config)


def run_eval_defaults(target) -> RunEvalDefaults | None:
    """The evaluation a generator folder's own run would use, or None for any other target.

    evaluator: the run's eval.evaluator, or for "auto" (or a generator folder without its run) the
    shipped one for the generator's channels (mnist-clf for grey, cifar10-clf for RGB, reading other
    sizes resized: ``note``); reference: the run's eval.ref, else its data.source as its training loaded it
    (TrainingData), when that name or path resolves here. A run whose config.json is there but does
    not read as a run config is a UsageError naming the file (a guess would score the wrong data)."""
    from ganforge.config import read_run_config
    from ganforge.data import NAMED_SOURCES
    from ganforge.training.checkpoint import resolve_model_dir
    from ganforge.training.periodic_eval import auto_evaluator, auto_evaluator_note

    if not isinstance(target, (str, Path)) or not is_generator_dir(Path(target)):
        return None
    model_dir = resolve_model_dir(target)
    try:
        m = json.loads((model_dir / "config.json").read_text())["model"]
        shape = int(m["resolution"]), int(m["channels"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    evaluator, note = auto_evaluator(*shape), auto_evaluator_note(*shape)
    run_config = model_dir.parent / "config.json"  # RUN/model or RUN/best -> RUN/config.json
    try:
        cfg = read_run_config(run_config) if run_config.is_file() else None
    except (UsageError, TypeError) as exc:  # TypeError: valid JSON of another shape (a list)
        if not (model_dir.parent / "model" / "config.json").is_file():
            # a saved generator folder (config.json + generator.safetensors) inside some other folder: that
            # folder's config.json is not its run's, so the generator is scored as one without a run
            cfg = None
        else:
            # RUN/model or RUN/best: this is the run's own config. Falling back would score against the
            # evaluator's own set (the embedded MNIST) instead of the run's data, and drop its eval.evaluator
            why = str(exc) if str(run_config) in str(exc) else f"{run_config} is not a ganforge run config: {exc}"
            raise UsageError(f"{why}; the run's evaluator and reference come from it: repair the file, or give both "
                             "--evaluator and --ref") from None
    if cfg is None:
        return RunEvalDefaults(evaluator, None, note=note)
    auto = cfg.eval.evaluator == "auto"
    if not auto:
        evaluator, note = cfg.eval.evaluator, None
    source = cfg.eval.ref or cfg.data.source
    if not (source in NAMED_SOURCES or Path(source).exists()):
        return RunEvalDefaults(evaluator, None, missing=source, note=note, auto=auto)
    if cfg.eval.ref:  # given as a reference: scored as it is, as the periodic evaluation did
        return RunEvalDefaults(evaluator, source, note=note, auto=auto)
    d = cfg.data
    try:
        recorded = json.loads(run_config.read_text())["resolved"]["data"]
        trained_on = (int(recorded["num_images"]), str(recorded["sha256"]))
    except (OSError, ValueError, KeyError, TypeError):  # a run from before it was recorded
        trained_on = None
    return RunEvalDefaults(evaluator, TrainingData(source, *shape, d.max_images or None, d.on_bad_image, d.max_bad_fraction,
                                                   trained_on), note=note, auto=auto)


def resolve_defaults(target, evaluator=None, ref=None) -> tuple:
    """(evaluator, ref) with the ones not given (None) filled in. A run folder or saved generator is
    scored the way its training scored it (run_eval_defaults): its eval.evaluator, and its eval.ref
    or training data as its training loaded it, each announced in one INFO line; a run whose
    training data is not here is a UsageError naming --ref. Anything else gets evaluator "auto"
    (evaluate: the shipped classifier for the images' channels) and keeps ref None (the
    evaluator's own set)."""
    for what, value in (("TARGET", target), ("--ref", ref)):
        if isinstance(value, str) and not value.strip():  # Path("") is the current folder: never what was meant
            raise UsageError(f"{what} {value!r} is empty: give a run folder, saved generator, dataset name, .npz, "
                             "image folder or .zip")
    d = run_eval_defaults(target) if evaluator is None or ref is None else None
    if d is None:  # not a run
        return (evaluator if evaluator is not None else "auto"), ref
    if ref is None and d.missing is not None:
        raise UsageError(f"{target} trained on {d.missing!r}, which is not here: give the reference images with --ref PATH")
    if evaluator is None:
        evaluator = d.evaluator
        how = "the run's eval.evaluator is auto, which picks it for these images" if d.auto else "the run's eval.evaluator"
        log.info("evaluator %s: %s (--evaluator to change)", evaluator, how)
        warn_resized(d.note)
    if ref is None and d.ref is not None:
        ref = d.ref
        log.info("reference: the run's training data %s, as it trained on it (--ref to change)", ref)
    return evaluator, ref


def default_metrics(target, evaluator) -> str:
    """ALL_METRICS, plus labels (label agreement) when TARGET is a class-conditional generator whose
    classes ``evaluator`` (a shipped classifier, by name) reads."""
    from ganforge.metrics.evaluation import EVALUATOR_CLASSES, check_class_map
    from ganforge.training.checkpoint import resolve_model_dir

    if not isinstance(evaluator, str) or evaluator not in EVALUATOR_CLASSES or not isinstance(target, (str, Path)) \
            or not is_generator_dir(Path(target)):
        return ALL_METRICS
    try:
        meta = json.loads((resolve_model_dir(target) / "config.json").read_text())
        k = int(meta["model"].get("num_classes", 0))
        if k:
            check_class_map(k, meta.get("class_names"), evaluator, len(EVALUATOR_CLASSES[evaluator]))
    except (OSError, ValueError, KeyError, TypeError, UsageError) as e:
        log.info("label agreement left out of the default metrics: %s", e)
        return ALL_METRICS
    return ALL_METRICS + (",labels" if k else "")
