"""Tests for ganforge.data's tensor side: the uint8 <-> [-1, 1] mapping and the Batcher (epochs, seed,
flips, bit-identical resume, user errors). Split from test_data.py, which covers sources and files."""

from __future__ import annotations

import pytest
import torch

from ganforge.data import Batcher, ImageData, to_float, to_uint8
from ganforge.errors import UsageError

# --------------------------------------------------------------------------- float mapping


def test_to_float_to_uint8_round_trip():
    every = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    as_float = to_float(every)
    assert as_float.dtype == torch.float32 and as_float.min() == -1.0 and as_float.max() == 1.0
    assert torch.equal(to_uint8(as_float), every)
    assert to_uint8(torch.tensor([-3.0, 2.0, 0.0])).tolist() == [0, 255, 128]  # clamp, round(127.5) = 128
    with pytest.raises(TypeError):
        to_float(as_float)


# --------------------------------------------------------------------------- Batcher


def indexed_data(n: int = 10, labelled: bool = True) -> ImageData:
    """Image i is 1x2x2 with pixel value 10*i (left column) and 10*i+1 (right column)."""
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, :, 0] = (torch.arange(n) * 10).view(n, 1).to(torch.uint8)
    images[:, 0, :, 1] = images[:, 0, :, 0] + 1
    labels = torch.arange(n) if labelled else None
    return ImageData(images, labels, [str(i) for i in range(n)] if labelled else None, "test")


def served(x: torch.Tensor) -> list[int]:
    return (to_uint8(x)[:, 0, 0].min(dim=1).values // 10).tolist()


def test_batcher_epochs_cover_each_index_once():
    batcher = Batcher(indexed_data(10), 3, seed=0)
    assert batcher.batches_per_epoch == 3
    for _ in range(4):  # each epoch: 3 full batches, 9 distinct images
        epoch = []
        for _ in range(3):
            x, y = next(batcher)
            assert x.shape == (3, 1, 2, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
            assert served(x) == y.tolist()
            epoch += y.tolist()
        assert len(set(epoch)) == 9
    assert batcher.epoch == 3
    whole = Batcher(indexed_data(12), 4, seed=5)
    served_once = [label for _ in range(3) for label in next(whole)[1].tolist()]
    assert sorted(served_once) == list(range(12))
    assert next(Batcher(indexed_data(10, labelled=False), 2))[1] is None


def test_batcher_seed_and_flip():
    first = [next(Batcher(indexed_data(), 5, seed=s))[1].tolist() for s in (1, 1, 2)]
    assert first[0] == first[1] != first[2]
    batcher = Batcher(indexed_data(), 5, seed=0, hflip=True)
    flips = []
    for _ in range(6):
        x, y = next(batcher)
        pixels = to_uint8(x)[:, 0, 0]  # (B, 2): [left, right]
        assert torch.equal(pixels.min(1).values, (y * 10).to(torch.uint8))
        flips += (pixels[:, 0] > pixels[:, 1]).tolist()
    assert any(flips) and not all(flips)


def test_batcher_resumes_bit_identically():
    data = indexed_data(11)
    reference = Batcher(data, 4, seed=3, hflip=True)
    for _ in range(5):
        next(reference)
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in reference.state_dict().items()}
    assert state["generator_state"].dtype == torch.uint8 and state["permutation"].dtype == torch.int64
    expected = [next(reference) for _ in range(7)]  # crosses epoch boundaries

    resumed = Batcher(data, 4, seed=999, hflip=True)  # different seed: the state wins
    resumed.load_state_dict(state)
    for want, got in zip(expected, [next(resumed) for _ in range(7)], strict=True):
        assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])
    assert resumed.epoch == reference.epoch and resumed.position == reference.position


def test_batcher_user_errors():
    with pytest.raises(UsageError, match=r"batch size 64 is larger than the dataset \(10 images\)"):
        Batcher(indexed_data(10), 64)
    state = Batcher(indexed_data(10), 2).state_dict()
    with pytest.raises(UsageError, match=r"trained on 10 images but the dataset has 12"):
        Batcher(indexed_data(12), 2).load_state_dict(state)


def test_image_data_num_classes():
    assert indexed_data(4).num_classes == 4 and indexed_data(4, labelled=False).num_classes == 0


def test_content_sha256_is_the_images_and_labels_identity():
    import hashlib

    data = indexed_data(6)
    unlabelled = indexed_data(6, labelled=False)
    digest = hashlib.sha256(str(tuple(unlabelled.images.shape)).encode() + unlabelled.images.numpy().tobytes()).hexdigest()
    assert unlabelled.content_sha256() == digest  # shape, then the uint8 bytes
    relabelled = ImageData(data.images, data.labels.roll(1), data.class_names, "x")
    edited = ImageData(data.images.clone(), data.labels, data.class_names, "x")
    edited.images[2, 0, 0, 0] ^= 1
    sums = {d.content_sha256() for d in (data, unlabelled, relabelled, edited)}
    assert len(sums) == 4  # labels count; one pixel counts
    assert Batcher(data, 2).state_dict()["data_sha256"] == data.content_sha256()
