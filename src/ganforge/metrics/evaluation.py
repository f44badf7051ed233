"""``evaluate``: score a generator, an .npz or an image folder against a reference set with the
distribution metrics, and return the numbers together with the protocol that produced them.

    r = evaluate("runs/00001-dcgan-mnist", metrics="fid,kid,is,pr,dc,classes")  # the run's evaluator and data
    r.values    # {"fid": ..., "kid": ..., "kid_std": ..., "is": ..., "precision": ..., "classes_covered": ...}
    r.protocol  # image counts, seed, target and reference identity (pixel sha256), extractor + weights
                # sha256, resize, dtype, metric options, ganforge/torch versions, reference-cache hit or miss

features -> statistics -> value, as torch-fidelity: uint8 images -> extractor features (N, D) and
class probabilities (N, K) -> FeatureStats, raw features, class histogram -> metric values. Only
the reference side is cached (it is the same for every checkpoint; see metrics/cache.py).
Statistics are always computed from the whole feature array, so nothing but the network's own
batched arithmetic depends on ``batch_size`` (tests/test_eval.py checks the values do not).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ganforge.data.image_data import pixels_sha256
from ganforge.config import MAX_EVAL_SEED
from ganforge.device import resolve_device
from ganforge.errors import UsageError, is_int
from ganforge.metrics import cache as ref_cache
from ganforge.metrics.classmix import check_class_mix, choose_class_mix, labels_by_name
from ganforge.metrics.distribution import (
    MAX_KID_SUBSETS,
    FeatureStats,
    class_coverage,
    coverage_thresholds,
    density_coverage,
    fid_from_stats,
    inception_score,
    kid,
    precision_recall,
)
from ganforge.evaluators.cifar10_clf import CIFAR10_CLASSES
from ganforge.metrics.extractors import FeatureExtractor, load_extractor
from ganforge.metrics.imagesets import MAX_IMAGES, ImageSet, from_array, load_image_set, subset
from ganforge.metrics.run_defaults import TrainingData, is_generator_dir, resolve_defaults, warn_resized
from ganforge.provenance import provenance

log = logging.getLogger("ganforge.eval")

# metric name -> the keys it adds to EvalResult.values
METRICS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "is": ("is", "is_std"),
    "pr": ("precision", "recall"),
    "dc": ("density", "coverage"),
    "classes": ("classes_covered", "class_kl"),
    "labels": ("label_agreement",),  # conditional generators: share of images the evaluator reads as the asked class
}
NEED_REF_FEATS = frozenset({"kid", "pr", "dc"})  # need the raw reference features, not only their statistics
NEED_PROBS = frozenset({"is", "classes", "labels"})  # need a classifier head
# The class names of the shipped classifiers, in their output order (label agreement compares indices)
EVALUATOR_CLASSES = {"mnist-clf": tuple(str(i) for i in range(10)), "cifar10-clf": CIFAR10_CLASSES}
DEFAULT_N = 10_000  # images drawn from a generator when n is not given
KID_SUBSET_SIZE = 1000  # KID's images per subset unless a set is smaller (MetricOptions)


@dataclass(frozen=True)
class MetricOptions:
    """Settings of the metrics themselves; all of them are recorded in the protocol."""

    kid_subsets: int = 100  # KID: random subsets averaged (Bińkowski et al. 2018)
    # KID: images per subset from each set. None: KID_SUBSET_SIZE, lowered to the smaller set (as
    # StyleGAN2-ADA does; the unbiased MMD estimate's expectation does not depend on it, only its
    # spread). A number is taken as given and must not exceed either set.
    kid_subset_size: int | None = None
    pr_k: int = 3  # precision/recall: k-th nearest-neighbour radius (Kynkäänniemi et al. 2019)
    dc_k: int = 5  # density/coverage: k-th nearest-neighbour radius (Naeem et al. 2020)
    is_splits: int = 10  # IS: the generated set is split into this many chunks (Salimans et al. 2016)
    is_shuffle_seed: int = 2020  # IS: rows are permuted with this seed first (torch-fidelity's default)
    class_min_fraction: float = 0.1  # classes: covered with >= this fraction of a uniform share (or the reference's, if less)

    def check(self) -> None:
        """Every field's type and range, before any image is drawn (not at the metric's step)."""
        for name in ("kid_subsets", "pr_k", "dc_k", "is_splits"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise UsageError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.kid_subsets > MAX_KID_SUBSETS:
            raise UsageError(f"kid_subsets must be at most {MAX_KID_SUBSETS:,}, got {self.kid_subsets}")
        if self.kid_subset_size is not None and not (is_int(self.kid_subset_size) and self.kid_subset_size >= 2):
            raise UsageError(f"kid_subset_size must be an integer >= 2 or None, got {self.kid_subset_size!r}")
        check_int("is_shuffle_seed", self.is_shuffle_seed, 0, 2**32 - 1, " (numpy's RandomState)")
        f = self.class_min_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float, np.integer, np.floating)) or not 0.0 <= f <= 1.0:
            raise UsageError(f"class_min_fraction must be a number between 0 and 1, got {f!r}")

    def check_count(self, count: int, metrics: tuple[str, ...], what: str, *, generated: bool) -> None:
        """UsageError when ``count`` images are too few for one of ``metrics`` (checked before any work)."""
        if "fid" in metrics and count < 2:
            raise UsageError(f"fid needs at least 2 images, but {what} has {count}")
        if "kid" in metrics and count < (self.kid_subset_size or 2):
            raise UsageError(
                f"kid: the subset size {self.kid_subset_size} is larger than the {count} images of {what}; "
                f"use more images or lower --kid-subset-size to at most {count}" if self.kid_subset_size
                else f"kid needs at least 2 images, but {what} has {count}"
            )
        for name, k in (("pr", self.pr_k), ("dc", self.dc_k)):
            if name in metrics and count <= k:
                raise UsageError(f"{name}: k={k} needs more than {k} images, but {what} has {count}")
        if generated and "is" in metrics and count < self.is_splits:
            raise UsageError(f"is: {self.is_splits} splits need at least {self.is_splits} images, but {what} has {count}")


@dataclass(frozen=True)
class EvalResult:
    values: dict[str, float]  # metric keys (see METRICS) -> value
    protocol: dict = field(default_factory=dict)  # how the values were obtained
    class_hist: list[int] | None = None  # with "classes": generated images per predicted class (K,)

    def to_dict(self) -> dict:
        """One JSON-ready object: every value under its own name, plus ``protocol``."""
        return {**self.values, "protocol": self.protocol}


def parse_names(spec, allowed) -> tuple[str, ...]:
    """"fid,kid" or ["fid", "kid"] -> ("fid", "kid") (lower case, "-" read as "_", duplicates dropped);
    an unknown or missing name is a UsageError listing the allowed ones."""
    if not isinstance(spec, (str, list, tuple)):
        raise UsageError(f"metrics must be names such as \"fid,kid\" or a list of them, got {spec!r}; allowed: "
                         f"{', '.join(allowed)}")
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(m).strip().lower().replace("-", "_") for m in names if str(m).strip()]
    unknown = [m for m in names if m not in allowed]
    if unknown or not names:
        what = f"unknown metric {unknown[0]!r}" if unknown else "no metric given"
        raise UsageError(f"{what}; allowed: {', '.join(allowed)}")
    return tuple(dict.fromkeys(names))


def parse_metrics(metrics) -> tuple[str, ...]:
    """Distribution-metric names (see METRICS)."""
    return parse_names(metrics, METRICS)


def check_int(what: str, value, lo: int, hi: int, why: str = "") -> int:
    """An int (numpy's too, not a bool) in lo..hi -> int; anything else is a UsageError naming ``what``."""
    if not is_int(value) or not lo <= value <= hi:
        raise UsageError(f"{what} must be an integer from {lo} to {hi}{why}, got {value!r}")
    return int(value)


def check_seed(seed, what: str = "seed") -> int:
    """An evaluation seed: 0..MAX_EVAL_SEED (see there) -> int."""
    return check_int(what, seed, 0, MAX_EVAL_SEED, " (2**32 - 2: numpy's seeds, and the reference draws with seed + 1)")


def evaluate(
    target,
    *,
    metrics="fid",  # names from METRICS, as "fid,kid" or a list
    evaluator: str | FeatureExtractor | None = None,  # registry name, "auto" (by the images' channels), a loaded
    #   extractor, or None: a run's own eval.evaluator, else "auto" (run_defaults.resolve_defaults)
    ref=None,  # reference images: name / .npz / folder / .zip / uint8 array / ImageSet (images with their labels);
    #   None: a run's eval.ref or its training data as it trained on it, else the evaluator's domain set
    n: int | None = None,  # generated images (default 10000), or a random subset of a file target (default: all)
    n_ref: int | None = None,  # random subset of the reference (default: all of it)
    seed: int = 0,  # 0..MAX_EVAL_SEED: generator noise, KID subsets, target subset draw (the reference's uses seed + 1)
    batch_size: int = 256,  # images per forward pass (changes no value)
    device: str | torch.device = "cpu",
    dtype: str = "float32",  # extractor arithmetic ("float64" for reference-grade numbers)
    options: MetricOptions | None = None,
    cache: bool = True,  # read/write reference statistics under $GANFORGE_CACHE
    ema: bool = True,  # generator targets: use the EMA weights when the run kept them
    weights=None,  # extractor weights file (see load_extractor)
    sha256: str | None = None,  # the sha256 those weights must have
    class_mix: str = "reference",  # conditional generators: "reference" (its class frequencies, when labelled) or "uniform"
) -> EvalResult:
    """Score ``target`` (a run folder / saved generator, an nn.Module generator, an .npz, an image
    folder or .zip, or a uint8 image array) against ``ref`` in ``evaluator``'s feature space.
    A class-conditional generator draws its classes in the reference's proportions when the
    reference is labelled with the generator's classes, else cycling 0..K-1 (``classmix.choose_class_mix``; the
    target identity says which, and the counts). ``ganforge eval`` is this function with the same defaults."""

    started = time.perf_counter()
    seed = check_seed(seed)  # the same draws as before for every seed accepted
    device = resolve_device(str(device), "device")  # "mps", "gpu", cuda without CUDA: one line
    metrics = parse_metrics(metrics)
    if not isinstance(target, (str, os.PathLike, np.ndarray, Tensor, nn.Module, ImageSet)):
        raise UsageError(f"target is {type(target).__name__}: give a run folder or saved generator, a generator "
                         "module, an .npz, image folder or .zip path, or uint8 images (N, C, H, W)")
    if options is not None and not isinstance(options, MetricOptions):
        raise UsageError(f"options must be a ganforge.metrics.MetricOptions(...), got {type(options).__name__}")
    opts = options or MetricOptions()
    opts.check()
    # numpy numbers as plain ones: the protocol (which records them) must stay JSON
    opts = replace(opts, **{k: v.item() for k, v in asdict(opts).items() if isinstance(v, np.generic)})
    batch_size = check_int("batch_size", batch_size, 1, 2**31 - 1)
    n, n_ref = (None if c is None else check_int(what, c, 1, MAX_IMAGES) for what, c in (("n", n), ("n_ref", n_ref)))
    check_class_mix(class_mix)
    if n is not None:
        opts.check_count(n, metrics, "the generated set", generated=True)
    evaluator, ref = resolve_defaults(target, evaluator, ref)
    ref_set = source = None  # opened early only to choose an "auto" evaluator
    if isinstance(evaluator, str) and evaluator == "auto":
        evaluator, ref_set, source = _auto(target, ref, n, n_ref, seed, device, ema)
    ex = evaluator if isinstance(evaluator, FeatureExtractor) else load_extractor(
        evaluator, device=device, dtype=dtype, weights=weights, sha256=sha256)
    if NEED_PROBS & set(metrics) and ex.num_classes == 0:
        raise UsageError(f"{', '.join(sorted(NEED_PROBS & set(metrics)))} need a classifier; {ex.name} has none")

    # Load and check both image sets before any feature is computed: a bad --ref or TARGET fails fast.
    ref = ref if ref is not None else ex.default_reference
    if ref is None:
        raise UsageError(f"{ex.name} has no default reference set: give one with --ref (an .npz, image folder or .zip)")
    # seed + 1: a reference subset never copies the target's draw when both come from one file.
    ref_set = ref_set if ref_set is not None else _load(ref, n_ref, seed + 1, "--ref")
    ex.check_images(ref_set.images, f"--ref {_describe(ref)}")
    opts.check_count(len(ref_set.images), metrics, f"the reference {_describe(ref)}", generated=False)
    # The target after the reference: a conditional generator draws its classes in the reference's proportions.
    source = source if source is not None else _open_target(target, n, seed, ex.device, ema)
    tgt = _target(source, n, seed, batch_size, ex.device, ref_set, class_mix)
    ex.check_images(tgt.images, f"target {_describe(target)}")
    opts.check_count(len(tgt.images), metrics, f"target {_describe(target)}", generated=True)

    _warn_shapes(ex, ref_set, tgt)
    if opts.kid_subset_size is None:  # the effective size, recorded in the protocol's options
        opts = replace(opts, kid_subset_size=min(KID_SUBSET_SIZE, len(tgt.images), len(ref_set.images)))
    ref_entry, cache_state = _reference(ex, ref_set, need_feats=bool(NEED_REF_FEATS & set(metrics)),
                                        batch_size=batch_size, use_cache=cache)
    feats, probs = ex.extract(tgt.images, batch_size=batch_size, what=f"target {_describe(target)}")

    values: dict[str, float] = {}
    class_hist = None
    cautions = []
    if "fid" in metrics:
        values["fid"] = fid_from_stats(FeatureStats.from_features(feats), ref_entry.stats)
        if caution := fid_caution(len(tgt.images), len(ref_set.images), ex.feature_dim):
            log.warning("%s", caution)
            cautions.append(caution)
    if "kid" in metrics:
        m = kid(feats, ref_entry.feats, subsets=opts.kid_subsets, subset_size=opts.kid_subset_size, seed=seed)
        values["kid"], values["kid_std"] = m.mean, m.std
    if "is" in metrics:
        m = inception_score(probs, splits=opts.is_splits, shuffle_seed=opts.is_shuffle_seed)
        values["is"], values["is_std"] = m.mean, m.std
    if "pr" in metrics:
        pr = precision_recall(ref_entry.feats, feats, k=opts.pr_k, device=ex.device)
        values["precision"], values["recall"] = pr.precision, pr.recall
    class_min_count = max(1, math.ceil(opts.class_min_fraction * len(feats) / max(ex.num_classes, 1)))
    class_min_counts = None  # (K,) per class, where a skewed reference lowers a rare class's threshold
    if "classes" in metrics:
        thresholds = coverage_thresholds(len(feats), ex.num_classes, opts.class_min_fraction, ref_entry.class_hist)
        if (thresholds != class_min_count).any():
            class_min_counts = thresholds.tolist()
        cov = class_coverage(probs, ex.num_classes, ref_hist=ref_entry.class_hist, min_count=thresholds)
        values["classes_covered"], values["class_kl"] = float(cov.covered), cov.kl
        class_hist = np.bincount(probs.argmax(axis=1), minlength=ex.num_classes).tolist()
    if "dc" in metrics:
        dc = density_coverage(ref_entry.feats, feats, k=opts.dc_k, device=ex.device)
        values["density"], values["coverage"] = dc.density, dc.coverage
    class_map = None
    if "labels" in metrics:
        if tgt.labels is None:
            raise UsageError("labels (label agreement) needs a class-conditional generator, an .npz with `labels` or "
                             "class sub-folders as TARGET: these images carry no asked-for class; drop it from --metrics")
        asked = tgt.labels.numpy()  # (N,) the class each image was drawn for, or its folder's
        if tgt.identity.get("num_classes") is None and tgt.class_names is not None:  # class folders: by name
            asked, class_map = labels_by_name(tgt.labels, tgt.class_names, ex.name, evaluator_class_names(ex))
        else:
            class_map = check_class_map(tgt.identity.get("num_classes"), tgt.class_names, ex.name, ex.num_classes,
                                        max_label=int(tgt.labels.max()) if len(tgt.labels) else None,
                                        names=evaluator_class_names(ex))
        values["label_agreement"] = float((probs.argmax(axis=1) == asked).mean())
    values = {k: values[k] for m in metrics for k in METRICS[m]}  # in the order asked for

    protocol = {
        "metrics": list(metrics),
        "n_generated": len(tgt.images),
        "n_real": len(ref_set.images),
        "seed": seed,
        "target": tgt.identity,
        "reference": {**ref_set.identity, "cache": cache_state},
        "extractor": ex.info(),
        "options": {**asdict(opts), "class_min_count": class_min_count, "kid_seed": seed,
                    **({"class_min_counts": class_min_counts} if class_min_counts else {}),
                    "class_kl_reference": "predicted classes of the reference set",
                    **({"label_class_map": class_map} if class_map else {})},
        "device": str(ex.device),
        **({"cautions": cautions} if cautions else {}),
        **provenance(),
        "torch_version": torch.__version__,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return EvalResult(values, protocol, class_hist)


def fid_caution(n_generated: int, n_real: int, feature_dim: int) -> str | None:
    """A warning for an FID whose covariance estimate is singular: a set of N <= D images spans at most
    N - 1 of the D feature dimensions, so the Fréchet distance mostly measures that estimation error
    (it falls as N grows with the generator unchanged). None when both sets are larger than D."""
    small = [f"{n} {what}" for n, what in ((n_generated, "generated"), (n_real, "reference")) if n <= feature_dim]
    if not small:
        return None
    return (f"FID from {' and '.join(small)} images in {feature_dim}-dimensional features: with no more images than "
            f"dimensions the covariance is singular and FID mostly measures the small sample; compare FIDs only at "
            f"equal image counts, or use KID (unbiased at any count)")


def evaluator_class_names(ex: FeatureExtractor) -> tuple[str, ...] | None:
    """The classes ``ex`` reads, in output order: its weights' own (a fitted classifier's sidecar),
    else the shipped classifier's (EVALUATOR_CLASSES), else None (unknown)."""
    return ex.class_names if ex.class_names is not None else EVALUATOR_CLASSES.get(ex.name)


def check_class_map(num_classes: int | None, class_names: list | None, evaluator: str, evaluator_classes: int,
                    *, max_label: int | None = None, names: tuple[str, ...] | None = None) -> str:
    """Label agreement reads generator class i as evaluator class i: a UsageError unless the
    generator's ``num_classes`` equals the evaluator's and, where both sets of names are known, they
    are the same names in the same order. A labelled file (``num_classes`` None) needs only its
    ``max_label`` to be an evaluator class. Returns how the classes were matched (for the protocol)."""
    names = names if names is not None else EVALUATOR_CLASSES.get(evaluator)  # the evaluator's classes
    if num_classes is None:
        if max_label is None or not 0 <= max_label < evaluator_classes:
            raise UsageError(f"labels: the file's labels go up to {max_label} but {evaluator} reads classes "
                             f"0..{evaluator_classes - 1}")
        return "by index (file label i = evaluator class i; the names are not known to match)"
    if num_classes != evaluator_classes:
        raise UsageError(f"labels: the generator has {num_classes} classes but {evaluator} reads {evaluator_classes}: "
                         "label agreement needs an evaluator trained on the generator's classes")
    if class_names is not None and names is not None:
        if tuple(map(str, class_names)) != names:
            raise UsageError(f"labels: the generator's classes ({', '.join(map(str, class_names[:4]))}, ...) are not "
                             f"{evaluator}'s ({', '.join(names[:4])}, ...) in the same order: label agreement is undefined")
        return "same class names"
    return "by index (generator class i = evaluator class i; the names are not known to match)"


def _auto(target, ref, n, n_ref, seed, device, ema) -> tuple[str, ImageSet | None, "ImageSet | _Generator | None"]:
    """``evaluator="auto"``: the shipped classifier for the images' channels (mnist-clf for grey,
    cifar10-clf for RGB; periodic_eval.auto_evaluator), read from the reference when one is given,
    else from the target (a generator: one image drawn to see its shape; its set is drawn later,
    after the reference, whose classes it may follow). Returns (name, the reference set, the opened
    target), whichever was loaded to decide, so neither is loaded twice; a size the classifier
    resizes is warned about."""
    from ganforge.training.periodic_eval import auto_evaluator, auto_evaluator_note

    ref_set = source = None
    if ref is not None:
        ref_set = _load(ref, n_ref, seed + 1, "--ref")
        shape, what = tuple(ref_set.images.shape), "the reference's"
    else:
        source = _open_target(target, n, seed, torch.device(device), ema)
        shape, what = _shape(source, seed, torch.device(device)), "the target's"
    name = auto_evaluator(shape[-1], shape[1])
    log.info("evaluator %s, for %s %d-channel images (--evaluator to change)", name, what, shape[1])
    warn_resized(auto_evaluator_note(shape[-1], shape[1]))
    return name, ref_set, source


def _shape(source: "ImageSet | _Generator", seed: int, device: torch.device) -> tuple[int, ...]:
    """(N, C, H, W) of a loaded set, or (1, C, H, W) of one image a generator draws."""
    from ganforge.sampling import generate

    if isinstance(source, ImageSet):
        return tuple(source.images.shape)
    one, _ = generate(source.G, 1, seed=seed, batch_size=1, device=device)  # uint8 (1, H, W, C)
    return (1, one.shape[3], one.shape[1], one.shape[2])


def _warn_shapes(ex: FeatureExtractor, ref_set: ImageSet, tgt: ImageSet) -> None:
    """The extractor resizes every image to its square side: say so where that changes what is
    compared, a non-square set (its aspect ratio changes) or two sets of different sizes (the score
    then also measures the resizing of one of them)."""
    side = ex.resolution
    shapes = {"the reference": tuple(ref_set.images.shape[-2:]), "the target": tuple(tgt.images.shape[-2:])}
    for what, (h, w) in shapes.items():
        if h != w:
            log.warning("%s's %d x %d images are resized to %s's %d x %d square: their aspect ratio changes",
                        what, h, w, ex.name, side, side)
    if len(set(shapes.values())) > 1:
        (rh, rw), (th, tw) = shapes.values()
        log.warning("the target's images are %d x %d and the reference's %d x %d: %s reads both at %d x %d, and "
                    "the score also measures the difference of their sizes", th, tw, rh, rw, ex.name, side, side)


def _describe(source) -> str:
    return type(source).__name__ if isinstance(source, (np.ndarray, Tensor, nn.Module, ImageSet)) else str(source)


def _load(source, n: int | None, seed: int, what: str) -> ImageSet:
    if isinstance(source, ImageSet):
        return _from_image_set(source, n, seed, what)
    if isinstance(source, (np.ndarray, Tensor)):
        return from_array(source, what, n=n, seed=seed)
    if isinstance(source, TrainingData):
        return source.load(n, seed, what)
    return load_image_set(source, n=n, seed=seed, what=what)


def _from_image_set(s: ImageSet, n: int | None, seed: int, what: str) -> ImageSet:
    """An ImageSet handed in (images with their labels, e.g. a run's training data): checked as an
    array is, its labels subset with the same draw, its identity kept with the pixels' own."""
    out = from_array(s.images, what, n=n, seed=seed)
    labels = s.labels
    if labels is not None:
        if not (isinstance(labels, Tensor) and labels.shape == (len(s.images),) and not labels.is_floating_point()
                and not labels.dtype == torch.bool and (labels >= 0).all()):
            got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
            if (isinstance(labels, Tensor) and labels.shape == (len(s.images),) and labels.numel()
                    and not labels.is_floating_point() and labels.dtype != torch.bool):
                got += f" holding {labels.min().item()}"  # the offending value of an otherwise right tensor
            raise UsageError(f"{what}: labels is {got}; give an integer tensor ({len(s.images)},) of class indices >= 0")
        labels, _ = subset(labels.long().cpu(), n, seed, what)
    return ImageSet(out.images, {**out.identity, **s.identity, **{k: v for k, v in out.identity.items() if k != "kind"}},
                    labels=labels, class_names=s.class_names)


@dataclass(frozen=True)
class _Generator:
    """A generator target, loaded and not yet drawn from: its images wait for the reference."""

    G: nn.Module
    identity: dict  # what the protocol records about it
    class_names: list | None = None  # its run's class names, where kept


def _open_target(target, n: int | None, seed: int, device: torch.device, ema: bool) -> "ImageSet | _Generator":
    """A generator (an nn.Module, a run folder or saved generator: loaded) or a set of images (loaded,
    n of them drawn with ``seed`` when n is given)."""
    if isinstance(target, nn.Module):
        return _Generator(target, {"kind": "generator", "module": type(target).__name__})
    if isinstance(target, (np.ndarray, Tensor, ImageSet)) or not is_generator_dir(Path(target)):
        return _load(target, n, seed, "TARGET")
    from ganforge.io import sha256_file
    from ganforge.training.checkpoint import load_generator, resolve_model_dir, weights_file

    model_dir = resolve_model_dir(target)
    G = load_generator(model_dir, ema=ema, device=device)
    file = weights_file(model_dir, ema)  # the file load_generator read
    ident = {"kind": "generator", "path": str(model_dir.resolve()), "weights": file.name,
             "weights_sha256": sha256_file(file)}
    return _Generator(G, ident, json.loads((model_dir / "config.json").read_text()).get("class_names"))


def _target(source: "ImageSet | _Generator", n: int | None, seed: int, batch_size: int, device: torch.device,
            ref_set: ImageSet, mix: str) -> ImageSet:
    """The images to score: a loaded set as it is, or n (default 10000) drawn from a generator with
    noise seed ``seed``, a conditional one's classes as ``classmix.choose_class_mix`` decides."""
    from ganforge.sampling import generate

    if isinstance(source, ImageSet):
        return source
    G, ident = source.G, dict(source.identity)
    k = getattr(G, "num_classes", 0)
    weights, how = choose_class_mix(k, source.class_names, ref_set, mix) if k else (None, {})
    count = DEFAULT_N if n is None else n
    log.info("generating %d images (seed %d)", count, seed)
    # uint8 (n, H, W, C), (n,) | None
    images, labels = generate(G, count, seed=seed, batch_size=batch_size, device=device, class_weights=weights)
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (n, C, H, W)
    if labels is not None:
        ident.update(how, num_classes=k, class_counts=np.bincount(labels, minlength=k).tolist())
    return ImageSet(images, {**ident, "noise_seed": seed, "n": len(images), "image_shape": list(images.shape[1:]),
                             "pixels_sha256": pixels_sha256(images)},
                    labels=None if labels is None else torch.from_numpy(labels).long(), class_names=source.class_names)


def _reference(ex: FeatureExtractor, ref_set: ImageSet, *, need_feats: bool, batch_size: int,
               use_cache: bool) -> tuple[ref_cache.RefEntry, str]:
    """Reference statistics from the cache, or computed (and cached) -> (entry, "hit" | "miss" | "off")."""
    fields = {"extractor": ex.info(), "reference_pixels_sha256": ref_set.identity["pixels_sha256"],
              "n_ref": len(ref_set.images)}
    fields["extractor"].pop("weights", None)  # where the file lies does not change the features; its hash does
    key = ref_cache.cache_key(fields)
    if use_cache and (entry := ref_cache.load_ref(key, need_feats=need_feats)) is not None:
        log.info("reference statistics from cache %s", ref_cache.ref_path(key))
        return entry, "hit"
    log.info("featurising %d reference images with %s", len(ref_set.images), ex.name)
    feats, probs = ex.extract(ref_set.images, batch_size=batch_size, what="--ref")
    hist = np.bincount(probs.argmax(axis=1), minlength=ex.num_classes).astype(np.int64) if ex.num_classes else None
    entry = ref_cache.RefEntry(FeatureStats.from_features(feats), feats if need_feats else None, hist)
    if not use_cache:
        return ref_cache.RefEntry(entry.stats, feats, hist), "off"
    ref_cache.save_ref(key, entry, fields)
    return ref_cache.RefEntry(entry.stats, feats, hist), "miss"
