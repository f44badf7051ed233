"""The Inception-v3 used for standard FID and IS: the TensorFlow graph ``inception-2015-12-05``
(the one in the original TTUR FID and improved-GAN IS code), written out in PyTorch.

It is torchvision's Inception-v3 layout with the three TensorFlow differences that pytorch-fid's
``FIDInceptionA/C/E`` blocks and torch-fidelity's ``FeatureExtractorInceptionV3`` also make:

1. 1008 classes instead of 1000 (``fc`` is 2048 -> 1008);
2. the 3x3 average pools inside the A, C and first E blocks do not count the zero padding
   (``count_include_pad=False``);
3. the last E block (``Mixed_7c``) pools with a 3x3 *max* pool where the paper says average.

Module and parameter names are exactly those of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
(and torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``), e.g.
``Mixed_6b.branch7x7dbl_3.conv.weight``, so either file loads as it is. No AuxLogits (the FID
file has none). Preprocessing (TF1 bilinear resize to 299, ``(x - 128) / 128``) is in
``ganforge.metrics.extractors``; this module maps normalised (N, 3, 299, 299) to features.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UsageError
from ganforge.io import sha256_file

RESOLUTION = 299  # input side in pixels
CHANNELS = 3  # RGB
FEATURE_DIM = 2048  # pool3: the global average pool after Mixed_7c
NUM_CLASSES = 1008  # the TF graph's softmax width (1000 ImageNet classes + 8 unused)
# sha256 of pytorch-fid's pt_inception-2015-12-05-6726825d.pth (95,628,359 bytes); torch-fidelity
# hosts the same bytes as weights-inception-2015-12-05-6726825d.pth. The name's "6726825d" is the
# torch.hub convention: the first hex digits of the file's sha256. See docs/EVALUATION.md.
KNOWN_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
KNOWN_BYTES = 95_628_359
WEIGHTS_ENV = "GANFORGE_INCEPTION_WEIGHTS"  # where to find the file when no path is given


class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3, as TF) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_tf(x: Tensor) -> Tensor:
    # TF's 3x3 SAME average pool divides by the number of real pixels under the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 -> 224 + pool_features channels."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool_tf(x))], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 -> 384 + 96 + c_in channels."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 and 7x1) -> 768 channels."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool_tf(x))], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 -> 320 + 192 + c_in channels."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 heads -> 320 + 768 + 768 + 192 = 2048 channels.

    pool: "avg" (Mixed_7b, TF padding rule) or "max" (Mixed_7c: the TF graph's max pool).
    """

    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = _avg_pool_tf(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the TF FID graph: normalised (N, 3, 299, 299) -> pool3 (N, 2048) -> logits (N, 1008).

    23,850,960 parameters + 34,432 batch-norm running statistics (see tests/test_inception.py).
    """

    name = "inception-v3-fid"
    resolution = RESOLUTION
    channels = CHANNELS
    feature_dim = FEATURE_DIM
    num_classes = NUM_CLASSES

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)  # (N, 32, 149, 149)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)  # (N, 32, 147, 147)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)  # (N, 64, 147, 147), maxpool -> 73
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)  # (N, 80, 73, 73)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)  # (N, 192, 71, 71), maxpool -> 35
        self.Mixed_5b = InceptionA(192, pool_features=32)  # (N, 256, 35, 35)
        self.Mixed_5c = InceptionA(256, pool_features=64)  # (N, 288, 35, 35)
        self.Mixed_5d = InceptionA(288, pool_features=64)  # (N, 288, 35, 35)
        self.Mixed_6a = InceptionB(288)  # (N, 768, 17, 17)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)  # (N, 768, 17, 17)
        self.Mixed_7a = InceptionD(768)  # (N, 1280, 8, 8)
        self.Mixed_7b = InceptionE(1280, pool="avg")  # (N, 2048, 8, 8)
        self.Mixed_7c = InceptionE(2048, pool="max")  # (N, 2048, 8, 8)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """Normalised (N, 3, 299, 299) -> pool3 features (N, 2048)."""
        if x.ndim != 4 or x.shape[1] != CHANNELS:
            raise UsageError(f"{self.name} expects RGB images (N, 3, H, W), got shape {tuple(x.shape)}")
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))  # global average pool: (N, 2048, 8, 8) -> (N, 2048)

    def head(self, feats: Tensor) -> Tensor:
        """pool3 (N, 2048) -> logits (N, 1008) *without* the fc bias, as the original IS code
        (openai/improved-gan) and torch-fidelity's ``logits_unbiased`` feed the softmax."""
        return feats @ self.fc.weight.T

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))  # full logits, with bias


def load_state(path, *, sha256: str | None = None) -> tuple[dict[str, Tensor], str]:
    """Read an Inception state dict (.pth via ``torch.load(weights_only=True)``, or .safetensors)
    and check its sha256 -> (state, sha256).

    sha256: the hash the file must have; default ``KNOWN_SHA256`` (pytorch-fid's file). Any
    other file needs its hash given explicitly (``--inception-sha256``), so a swapped or
    truncated file can never silently change the numbers.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(
            f"Inception weights {path} not found: pass --inception-weights PATH (or set {WEIGHTS_ENV}) "
            f"to pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
        )
    actual = sha256_file(path)
    expected = (sha256 or KNOWN_SHA256).lower()
    if actual != expected:
        # torch.hub names carry the first hex digits of the sha256 ("-6726825d.pth"): say so when it disagrees.
        m = re.search(r"-([0-9a-f]{8,64})\.[a-z]+$", path.name)
        hint = f" (its name claims a hash starting {m.group(1)})" if m and not actual.startswith(m.group(1)) else ""
        # training's eval.evaluator=inception-v3-fid reads only pytorch-fid's file: no option to give another's hash
        other = "" if sha256 else ("; for another Inception file give its hash with `ganforge eval --inception-sha256` "
                                   "(training evaluates with pytorch-fid's file only)")
        raise UsageError(
            f"Inception weights {path} have sha256 {actual[:16]}...{hint} but {expected[:16]}... is required"
            f"{other}"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)  # tensors only, no code
    except Exception as exc:  # torch/safetensors raise many types for a corrupt file
        raise UsageError(f"cannot read Inception weights {path}: {exc}") from None
    if not isinstance(state, dict):
        raise UsageError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return state, actual


def build_fid_inception(state: dict[str, Tensor]) -> FIDInceptionV3:
    """FIDInceptionV3 with ``state`` loaded strictly (``num_batches_tracked`` may be absent), eval mode."""
    model = FIDInceptionV3()
    own = model.state_dict()
    optional = {k for k in own if k.endswith("num_batches_tracked")}  # training counters, unused in eval
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:

        def few(items):
            return ", ".join(items[:3]) + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")

        parts = [f"missing {few(missing)}" if missing else "", f"unexpected {few(unexpected)}" if unexpected else "",
                 f"wrong shapes {few(shapes)}" if shapes else ""]
        raise UsageError(f"the weights do not fit {model.name}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(state, strict=False)  # strict in substance: checked above
    return model.eval().requires_grad_(False)
