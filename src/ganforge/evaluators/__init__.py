"""Evaluator networks: small domain classifiers whose features and class predictions score
generated images where Inception is a poor judge (MNIST digits, CIFAR-10), and the FID Inception-v3
(``inception.py``). ``ganforge.metrics.extractors`` wraps all of them behind one registry.

    clf = load_evaluator("mnist-clf")                     # shipped weights, sha256-checked, eval mode
    scores = score_generator_images(images_uint8, clf)    # FID/KID/PR vs mnist5k + class stats
    ref_feats, _ = embed(ref_uint8, clf)                   # or: embed the reference once ...
    scores = score_features(*embed(images_uint8, clf), ref_feats)   # ... and score many sets

The registry maps a name to how to build the network and which file holds its weights: shipped
under ``ganforge/weights/`` (mnist-clf), or fitted by the user with ``ganforge evaluator fit NAME``
into ``<cache>/weights/``; both mnist-clf and cifar10-clf ship. The JSON sidecar next to the weights
records how they were trained and their sha256, which is checked on every load.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import torch
from safetensors.torch import load_file
from torch import nn

from ganforge.errors import UsageError
from ganforge.evaluators import cifar10_clf, mnist_clf
from ganforge.evaluators.cifar10_clf import Cifar10Classifier, fit_cifar10_clf
from ganforge.evaluators.mnist_clf import MnistClassifier, fit_mnist_clf
from ganforge.evaluators.score import embed, score_features, score_generator_images
from ganforge.io import sha256_file
from ganforge.metrics.cache import cache_root


@dataclass(frozen=True)
class EvaluatorSpec:
    """A shipped evaluator: the network, its weights file and how to re-make the weights."""

    name: str  # what the user types: load_evaluator("mnist-clf")
    description: str  # one line for listings
    arch: str  # architecture tag the sidecar must carry (guards against stale weights)
    weights_file: str  # file name under ganforge/weights/; the sidecar is the same name with .json
    build: Callable[[], nn.Module]  # -> the untrained network
    fit_hint: str  # how to produce the weights when they are missing
    shipped: bool = True  # False: the user fits them (ganforge evaluator fit NAME) into user_weights_dir()


EVALUATORS: MappingProxyType[str, EvaluatorSpec] = MappingProxyType(
    {
        "mnist-clf": EvaluatorSpec(
            name="mnist-clf",
            description="CNN digit classifier for 28x28 grayscale MNIST; 128-d features, 10 classes",
            arch=mnist_clf.ARCH,
            weights_file="mnist-clf.safetensors",
            build=MnistClassifier,
            # the command an installed ganforge has (FIT_COMMAND, the benchmarks/ script that made the
            # shipped weights, exists only in a source checkout)
            fit_hint=(
                "`ganforge evaluator fit mnist-clf --out FILE.safetensors` (about 2.5 CPU minutes; without --out it "
                "writes where eval finds it), or ganforge.evaluators.fit_mnist_clf(PATH, epochs=40, seed=0)"
            ),
        ),
        "cifar10-clf": EvaluatorSpec(
            name="cifar10-clf",
            description="ResNet classifier for 32x32 RGB CIFAR-10 (86.0% test accuracy); 128-d features, 10 classes",
            arch=cifar10_clf.ARCH,
            weights_file="cifar10-clf.safetensors",
            build=Cifar10Classifier,
            fit_hint=f"`{cifar10_clf.FIT_COMMAND}` (CIFAR-10 folder/.zip with class sub-folders; 85 min on one CPU thread)",
        ),
    }
)


def user_weights_dir() -> Path:
    """Where ``ganforge evaluator fit`` writes weights by default: ``<cache>/weights``."""
    return cache_root() / "weights"


def load_evaluator(
    name: str,
    *,
    device: str | torch.device = "cpu",
    weights_dir: str | Path | None = None,
    weights_file: str | Path | None = None,
) -> nn.Module:
    """The evaluator ``name`` with its weights, frozen and in eval mode, on ``device``.

    Weights: ``weights_file`` (a .safetensors with its .json sidecar next to it), else
    ``weights_dir/<name>.safetensors``, else the copy shipped inside the package
    (``ganforge/weights/``), else the one ``ganforge evaluator fit`` wrote to ``user_weights_dir()``.
    The file's sha256 must match the sidecar. The sidecar is attached to the module as ``.meta``
    (with the weights path under ``"_path"``).
    """
    spec = EVALUATORS.get(name)
    if spec is None:
        raise UsageError(f"unknown evaluator {name!r}; known evaluators: {', '.join(sorted(EVALUATORS))}")
    with ExitStack() as stack:
        if weights_file is not None:
            weights = Path(weights_file).expanduser()
        elif weights_dir is not None:
            weights = Path(weights_dir) / spec.weights_file
        else:
            shipped = resources.files("ganforge").joinpath("weights", spec.weights_file)
            weights = stack.enter_context(resources.as_file(shipped))  # a real path even from a zipped install
            fitted = user_weights_dir() / spec.weights_file
            if not weights.is_file() and fitted.is_file():
                weights = fitted
            elif not weights.is_file() and not spec.shipped:
                raise UsageError(
                    f"evaluator {name!r}: its weights are not shipped yet (fitting them needs a GPU run that is "
                    f"still pending); fit them with {spec.fit_hint} (writes {fitted}, found automatically) "
                    f"or pass --evaluator-weights FILE"
                )
        sidecar = weights.with_suffix(".json")
        for path in (weights, sidecar):
            if not path.is_file():
                raise UsageError(f"evaluator {name!r}: {path} is missing; make the weights with {spec.fit_hint}")
        try:
            meta = json.loads(sidecar.read_text())
            recorded = meta["sha256"]
            arch = meta["architecture"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"evaluator {name!r}: {sidecar} is not a valid weights sidecar ({exc!r})") from None
        if arch != spec.arch:
            raise UsageError(
                f"evaluator {name!r}: {weights} holds architecture {arch!r} but this ganforge builds "
                f"{spec.arch!r}; re-make the weights with {spec.fit_hint}"
            )
        actual = sha256_file(weights)
        if actual != recorded:
            raise UsageError(
                f"evaluator {name!r}: {weights} has sha256 {actual[:12]}... but {sidecar.name} records "
                f"{str(recorded)[:12]}...: the file is corrupt or was replaced; re-make it with {spec.fit_hint}"
            )
        try:
            state = load_file(str(weights))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise UsageError(f"evaluator {name!r}: cannot read {weights}: {exc}") from None
    model = spec.build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UsageError(f"evaluator {name!r}: {weights} does not fit {spec.arch}: {exc}") from None
    model.meta = {**meta, "_path": str(weights)}  # type: ignore[attr-defined]
    return model.to(device).eval().requires_grad_(False)


__all__ = [
    "EVALUATORS",
    "Cifar10Classifier",
    "EvaluatorSpec",
    "MnistClassifier",
    "embed",
    "fit_cifar10_clf",
    "fit_mnist_clf",
    "load_evaluator",
    "score_features",
    "score_generator_images",
    "user_weights_dir",
]
