"""Which classes a class-conditional generator is scored with, and how a labelled image set's classes
meet an evaluator's.

A conditional generator draws its classes in the reference's proportions when the reference is
labelled with the generator's classes (``choose_class_mix``), so FID, KID and P/R compare like class mixes
rather than a uniform mix with, say, mnist-test10k's 892 to 1135 digits per class; otherwise its
classes cycle 0..K-1, and the target identity says why. A set of images labelled by class folders
is matched to an evaluator's classes by name (``labels_by_name``).
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import UsageError
from ganforge.metrics.imagesets import ImageSet

# class_mix -> how a class-conditional generator's classes are drawn (see choose_class_mix)
CLASS_MIXES = {"reference": "the reference's class frequencies where its labels are the generator's classes, else uniform",
               "uniform": "every class equally often, cycling 0..K-1"}
CYCLING = "classes cycling 0..K-1"  # the target identity's `labels` when they cycle (as before class_mix existed)


def check_class_mix(class_mix: str) -> str:
    if class_mix not in CLASS_MIXES:
        raise UsageError(f"class_mix={class_mix!r}: use " + " or ".join(f"{k!r} ({v})" for k, v in CLASS_MIXES.items()))
    return class_mix


def choose_class_mix(k: int, class_names: list | None, ref_set: ImageSet, mix: str) -> tuple[np.ndarray | None, dict]:
    """How a generator with k classes (``class_names`` where its run kept them) draws them -> (class
    weights (k,) for generate, or None for cycling; what the target identity records).

    "reference": the reference's class frequencies when its labels are this generator's classes. With
    the reference's class names known (class folders, a built-in set), there must be k of them, the
    generator's names in order where those are known too; with no names (an .npz's bare labels) its
    labels must lie in 0..k-1, and a class it lacks gets no images, whichever class that is. A balanced
    reference draws the very labels cycling draws (sampling.spread_classes). Otherwise, or with
    "uniform", classes cycle 0..K-1 and the identity says why."""
    if mix == "uniform":
        return None, {"labels": CYCLING, "labels_note": "uniform classes asked (class_mix='uniform')"}
    labels, names = ref_set.labels, ref_set.class_names
    if labels is None:
        return None, {"labels": CYCLING, "labels_note": "the reference has no labels"}
    if names is not None and len(names) != k:
        return None, {"labels": CYCLING, "labels_note": f"the reference has {len(names)} classes, the generator {k}"}
    if names is None and int(labels.max()) >= k:
        return None, {"labels": CYCLING, "labels_note": f"the reference's labels go up to {int(labels.max())}, "
                                                        f"the generator's classes 0..{k - 1}"}
    if names is not None and class_names is not None and list(map(str, names)) != list(map(str, class_names)):
        return None, {"labels": CYCLING, "labels_note": "the reference's class names are not the generator's"}
    counts = np.bincount(labels.numpy(), minlength=k)  # (k,) reference images per class
    return counts, {"labels": "reference class frequencies", "reference_class_counts": counts.tolist()}


def labels_by_name(labels: torch.Tensor, class_names: list, evaluator: str,
                   evaluator_names: tuple[str, ...] | None) -> tuple[np.ndarray, str]:
    """A labelled set's labels (N,) (index i = ``class_names[i]``, e.g. sorted class folders) -> the
    evaluator's class index of each image's class, matched by name, and how (for the protocol). A
    folder named other than the evaluator's classes, or an evaluator whose class names are not known,
    is a UsageError: matching by index would score folder "eight" as class 0."""
    if evaluator_names is None:
        raise UsageError(f"labels: the set's classes are named ({', '.join(map(str, class_names[:4]))}, ...) but "
                         f"{evaluator}'s class names are not known: label agreement cannot match them")
    index = {name: i for i, name in enumerate(evaluator_names)}
    unknown = [str(n) for n in class_names if str(n) not in index]
    if unknown:
        raise UsageError(f"labels: class folder(s) {', '.join(unknown[:4])} are not {evaluator} classes "
                         f"({', '.join(evaluator_names[:10])}): name each folder after the class its images show")
    to_evaluator = np.asarray([index[str(n)] for n in class_names], dtype=np.int64)  # (K_set,)
    return to_evaluator[labels.numpy()], "by name (the set's class folders)"
