"""Feature extractors behind one registry: uint8 images -> features (and class probabilities
where the network has a classifier head), each knowing what a result's protocol must record.

    ex = load_extractor("mnist-clf")                       # shipped weights, sha256-checked
    ex = load_extractor("inception-v3-fid", weights="pt_inception-2015-12-05-6726825d.pth")
    feats, probs = ex.extract(images, batch_size=256)      # uint8 (N, C, H, W) -> (N, D), (N, K)
    ex.info()                                              # name, weights sha256, resize, dtype, ...

Preprocessing is part of the extractor because it changes the numbers:

  inception-v3-fid  "tf1-bilinear": TensorFlow 1.x ``resize_bilinear`` (align_corners=False, *no*
                    half-pixel centres) of the 0..255 pixels to 299x299, then (x - 128) / 128, as
                    the TF FID graph and torch-fidelity. (pytorch-fid instead uses PyTorch's
                    half-pixel bilinear, which gives slightly different features below 299 px.)
  mnist-clf, cifar10-clf  "bilinear-antialias": x / 127.5 - 1, then PyTorch antialiased bilinear
                    resize to the network's side when the images are another size.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.device import resolve_device
from ganforge.errors import UsageError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def tf1_resize_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """TensorFlow 1.x ``tf.image.resize_bilinear(align_corners=False)`` of float (N, C, H, W) -> (N, C, h, w).

    Output pixel i samples the input at s = i * (H / h): no half-pixel offset, so the last
    rows/columns repeat the border when enlarging. Weights: frac(s) between floor(s) and
    min(floor(s) + 1, H - 1). The scale is rounded to float32 and the lerps are done along x then
    y in this order, as torch-fidelity's epsilon-exact port (bit-identical on CPU).
    """

    def axis(n_in: int, n_out: int) -> tuple[Tensor, Tensor, Tensor]:
        scale = torch.tensor(n_in / n_out, dtype=torch.float32)
        src = torch.arange(n_out, dtype=x.dtype, device=x.device) * scale.to(x.device)  # (n_out,)
        lo = src.long()
        return lo, (lo + 1).clamp_max(n_in - 1), src - lo.to(x.dtype)

    y0, y1, dy = axis(x.shape[2], size[0])
    x0, x1, dx = axis(x.shape[3], size[1])

    def lerp_x(rows: Tensor) -> Tensor:  # (N, C, h, W) -> (N, C, h, w)
        left, right = rows.index_select(3, x0), rows.index_select(3, x1)
        return left + (right - left) * dx

    top, bottom = lerp_x(x.index_select(2, y0)), lerp_x(x.index_select(2, y1))
    return top + (bottom - top) * dy.view(-1, 1)


def preprocess_inception(x: Tensor, dtype: torch.dtype) -> Tensor:
    """uint8 (N, 3, H, W) -> (N, 3, 299, 299) in [-1, 0.9921875]: TF1 resize of 0..255, then (x - 128) / 128."""
    x = tf1_resize_bilinear(x.to(dtype), (299, 299))
    return (x - 128) / 128


def preprocess_classifier(x: Tensor, dtype: torch.dtype, resolution: int) -> Tensor:
    """uint8 (N, C, H, W) -> (N, C, R, R) in [-1, 1]: x / 127.5 - 1, antialiased bilinear resize if needed."""
    x = x.to(dtype) / 127.5 - 1
    if tuple(x.shape[-2:]) != (resolution, resolution):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return x


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """fp32 convolutions and matmuls in true fp32 within; the caller's settings are back after. PyTorch lets
    cuDNN run fp32 convs on TF32 tensor cores by default (Ampere and newer: inputs rounded to 10 mantissa
    bits), so features, and FID, on a GPU would differ from the CPU's and the reference code's by far more
    than fp32 rounding, while the protocol records float32. cuDNN's convs read their own switch (torch >= 2.9:
    cudnn.conv.fp32_precision; before, cudnn.allow_tf32); matmuls are set through the precision API, which
    keeps PyTorch's legacy and per-op matmul settings in agreement (each matmul checks that they are)."""
    conv = getattr(torch.backends.cudnn, "conv", None)  # the per-op switch, where this torch has it
    saved_conv = conv.fp32_precision if conv is not None else torch.backends.cudnn.allow_tf32
    saved_matmul = torch.get_float32_matmul_precision()
    try:
        if conv is not None:
            conv.fp32_precision = "ieee"
        else:
            torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        yield
    finally:
        if conv is not None:
            conv.fp32_precision = saved_conv
        else:
            torch.backends.cudnn.allow_tf32 = saved_conv
        torch.set_float32_matmul_precision(saved_matmul)


@dataclass(eq=False)
class FeatureExtractor:
    """A frozen network plus the preprocessing and identity that go with its features."""

    name: str  # registry name, e.g. "inception-v3-fid"
    network: nn.Module  # eval mode; features(x) -> (N, D), head(features) -> (N, K) logits
    weights_sha256: str  # sha256 of the weights file actually loaded
    weights_source: str  # where they came from (a path)
    resize: str  # "tf1-bilinear" or "bilinear-antialias"
    normalize: str  # how 0..255 pixels become network input, in words
    dtype: torch.dtype  # network and preprocessing dtype
    preprocess: Callable[[Tensor], Tensor]  # uint8 (B, C, H, W) on the device -> network input
    default_reference: str | None = None  # load_images name of the domain's reference set
    extra: dict = field(default_factory=dict)  # recorded as is, e.g. a fitted classifier's test accuracy
    # the classes its head reads, in output order, where its weights' sidecar names them: a classifier
    # fitted on other class folders (`ganforge evaluator fit cifar10-clf --data ...`) reads those, not CIFAR-10's
    class_names: tuple[str, ...] | None = None

    @property
    def resolution(self) -> int:
        return self.network.resolution

    @property
    def channels(self) -> int:
        return self.network.channels

    @property
    def feature_dim(self) -> int:
        return self.network.feature_dim

    @property
    def num_classes(self) -> int:
        return self.network.num_classes

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def info(self) -> dict:
        """Everything about the extractor that changes the numbers (the protocol's ``extractor``)."""
        return {
            "name": self.name, "weights_sha256": self.weights_sha256, "weights": self.weights_source,
            "resolution": self.resolution, "channels": self.channels, "resize": self.resize,
            "normalize": self.normalize, "dtype": str(self.dtype).removeprefix("torch."),
            "feature_dim": self.feature_dim, "num_classes": self.num_classes, **self.extra,
        }

    def check_images(self, images: Tensor, what: str) -> None:
        """UsageError unless ``images`` is uint8 (N, C, H, W) with this extractor's channel count."""
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise UsageError(f"{what}: expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if images.shape[1] != self.channels:
            kind = {1: "greyscale", 3: "RGB"}
            grey_rgb = images.shape[1] == 3 and torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])
            # torchvision's save_image writes MNIST samples as such RGB files: the way out is their format, not
            # another evaluator
            fix = ("they are grey pictures stored as RGB (R = G = B in every pixel): save them as greyscale "
                   "(PIL: img.convert('L'))" if grey_rgb and self.channels == 1
                   else "choose an evaluator for this kind of image (ganforge evaluator list)")
            raise UsageError(f"{what} has {images.shape[1]}-channel images but {self.name} expects {self.channels}-channel "
                             f"({kind.get(self.channels, '?')}) images; {fix}")

    @torch.no_grad()
    def extract(self, images: Tensor, *, batch_size: int = 256, what: str = "images") -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, C, H, W) -> features (N, D) in the extractor dtype, class probabilities (N, K) float64.

        Features come out exactly as the network computed them (float32 by default): that is what
        the cache stores, so a cache hit reproduces a miss bit for bit.
        """
        if batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        self.check_images(images, what)
        feats, probs = [], []
        with full_fp32():  # no TF32 on a GPU: its features are the dtype's, as info() says
            for i in range(0, len(images), batch_size):
                # standard strides: grey images decoded from files come as (N, 1, H, W) with NHWC strides, which
                # also pass as channels-last, and the convs then round differently (FID 1e-7 apart from an .npz's)
                x = images[i : i + batch_size].to(self.device)
                if x.is_contiguous(memory_format=torch.channels_last):  # else already standard: no copy
                    x = x.clone(memory_format=torch.contiguous_format)
                x = self.preprocess(x)
                f = self.network.features(x)  # (B, D)
                feats.append(f.cpu())
                probs.append(self.network.head(f).double().softmax(dim=1).cpu())  # (B, K)
        if not feats:
            return np.zeros((0, self.feature_dim), np.float32), np.zeros((0, self.num_classes))
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()


@dataclass(frozen=True)
class ExtractorSpec:
    """A registry entry: what ``ganforge evaluator list`` shows, and how to load the extractor."""

    name: str
    description: str
    weights_hint: str  # where the weights come from
    load: Callable[..., FeatureExtractor]  # (device, dtype, weights, sha256) -> FeatureExtractor


def _load_classifier(name: str, device, dtype: torch.dtype, weights, sha256) -> FeatureExtractor:
    from ganforge.evaluators import load_evaluator

    p = Path(weights).expanduser() if weights is not None else None
    net = load_evaluator(name, device=device, weights_file=p if p is not None and not p.is_dir() else None,
                         weights_dir=p if p is not None and p.is_dir() else None)
    meta = net.meta
    if sha256 is not None and sha256.lower() != meta["sha256"]:
        raise UsageError(f"evaluator {name!r}: weights have sha256 {meta['sha256'][:16]}... but {sha256[:16]}... was required")
    net = net.to(dtype)
    extra = {k: meta[k] for k in ("architecture", "test_accuracy") if meta.get(k) is not None}
    names = meta.get("class_names")  # a fitted classifier's own class folders, in its output order
    return FeatureExtractor(
        name=name, network=net, weights_sha256=meta["sha256"], weights_source=meta.get("_path", "shipped"),
        resize="bilinear-antialias", normalize="x / 127.5 - 1", dtype=dtype,
        preprocess=lambda x: preprocess_classifier(x, dtype, net.resolution),
        default_reference=net.default_reference, extra=extra,
        class_names=tuple(map(str, names)) if isinstance(names, list) and len(names) == net.num_classes else None,
    )


def _load_inception(device, dtype: torch.dtype, weights, sha256) -> FeatureExtractor:
    from ganforge.evaluators import inception

    if weights is None:
        weights = os.environ.get(inception.WEIGHTS_ENV) or None
    if weights is None:
        raise UsageError(
            f"inception-v3-fid needs its weights file and ganforge never downloads: pass --inception-weights PATH "
            f"(or set {inception.WEIGHTS_ENV}) to pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
            f"(sha256 {inception.KNOWN_SHA256[:16]}...)"
        )
    state, actual = inception.load_state(weights, sha256=sha256)
    net = inception.build_fid_inception(state).to(device=device, dtype=dtype)
    return FeatureExtractor(
        name="inception-v3-fid", network=net, weights_sha256=actual, weights_source=str(Path(weights).expanduser()),
        resize="tf1-bilinear", normalize="(x - 128) / 128", dtype=dtype,
        preprocess=lambda x: preprocess_inception(x, dtype),
        extra={"features": "pool3", "probabilities": "softmax of fc without bias (logits_unbiased)"},
    )


EXTRACTORS: MappingProxyType[str, ExtractorSpec] = MappingProxyType(
    {
        "mnist-clf": ExtractorSpec(
            "mnist-clf", "MNIST digit CNN (99.4% test acc.): 28x28 grey, 128-d features, 10 classes; ref mnist5k",
            "shipped with ganforge", lambda device, dtype, weights, sha256: _load_classifier("mnist-clf", device, dtype, weights, sha256),
        ),
        "cifar10-clf": ExtractorSpec(
            "cifar10-clf", "CIFAR-10 ResNet (86.0% test acc.): 32x32 RGB, 128-d flip-averaged features, 10 classes; --ref required",
            "shipped with ganforge",
            lambda device, dtype, weights, sha256: _load_classifier("cifar10-clf", device, dtype, weights, sha256),
        ),
        "inception-v3-fid": ExtractorSpec(
            "inception-v3-fid", "TF FID Inception-v3: 299x299 RGB (TF1 bilinear), 2048-d pool3, 1008 classes",
            "local file: --inception-weights PATH or $GANFORGE_INCEPTION_WEIGHTS (pytorch-fid's .pth)", _load_inception,
        ),
    }
)


def load_extractor(
    name: str, *, device: str | torch.device = "cpu", dtype: str = "float32", weights=None, sha256: str | None = None
) -> FeatureExtractor:
    """The registered extractor ``name`` on ``device``, computing in ``dtype`` ("float32" or "float64").

    weights: the weights file (Inception: the .pth; classifiers: a .safetensors with its .json
    sidecar, or a folder holding ``<name>.safetensors``); default: Inception from
    ``$GANFORGE_INCEPTION_WEIGHTS``, classifiers from the package or ``<cache>/weights``.
    sha256: the hash the weights must have (Inception default: pytorch-fid's file).
    """
    spec = EXTRACTORS.get(name)
    if spec is None:
        raise UsageError(f"unknown evaluator {name!r}; known: {', '.join(EXTRACTORS)}")
    if dtype not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    # "gpu", "cuda:0 ", cuda without CUDA, a cuda:N this machine lacks: one line, as evaluate() says it
    return spec.load(resolve_device(str(device), "device"), DTYPES[dtype], weights, sha256)
