"""QA regressions for load_images: balanced max_images on a labelled .npz, a built-in name shadowing a
folder, huge label ids, classes without images, and colour arrays loaded as grey."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data import load_images
from ganforge.errors import UsageError


def _sorted_npz(path: Path, k: int = 4, per_class: int = 10) -> np.ndarray:
    """Grey (k * per_class, 16, 16) images sorted by class; every pixel of image i is i, so a loaded
    image names its original index (and so its class)."""
    n = k * per_class
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 16, 16)).copy()
    labels = np.repeat(np.arange(k), per_class)
    np.savez(path, images=images, labels=labels)
    return labels


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_npz_max_images_is_dealt_class_by_class_and_keeps_pairs(tmp_path):
    labels = _sorted_npz(tmp_path / "sorted.npz")
    data = load_images(str(tmp_path / "sorted.npz"), resolution=16, channels=1, max_images=10)
    assert data.labels.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    original = data.images[:, 0, 0, 0].long()  # (10,) original index of each kept image
    assert data.labels.tolist() == labels[original.numpy()].tolist()  # each label still with its image
    assert original.tolist() == [0, 10, 20, 30, 1, 11, 21, 31, 2, 12]
    # Without truncation the file's own order is kept.
    full = load_images(str(tmp_path / "sorted.npz"), resolution=16, channels=1)
    assert full.images[:, 0, 0, 0].tolist() == list(range(40)) and full.labels.tolist() == labels.tolist()


def test_unlabelled_npz_max_images_is_a_plain_prefix(tmp_path):
    images = np.broadcast_to(np.arange(12, dtype=np.uint8)[:, None, None], (12, 4, 4)).copy()
    np.savez(tmp_path / "u.npz", images=images)
    data = load_images(str(tmp_path / "u.npz"), resolution=4, channels=1, max_images=5)
    assert data.labels is None and data.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]


def test_builtin_name_shadowing_a_folder_warns(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        load_images("digits", resolution=8, channels=1, max_images=20)
    assert not any("exists too" in m for m in _warnings(caplog))
    (tmp_path / "digits").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "digits" / "me.png")
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        data = load_images("digits", resolution=8, channels=1, max_images=20)
    assert data.source == "digits (scikit-learn)"  # the built-in still wins
    assert ("using the built-in 'digits' dataset; ./digits exists too: write ./digits (or its full path) "
            "to train on the folder") in _warnings(caplog)


def test_huge_label_is_refused_in_one_line(tmp_path):
    np.savez(tmp_path / "big.npz", images=np.zeros((2, 4, 4), np.uint8), labels=np.array([0, 10**9]))
    with pytest.raises(UsageError, match=r"'labels' go up to 1000000000; class ids must be 0\.\.K-1") as err:
        load_images(str(tmp_path / "big.npz"), resolution=4, channels=1)
    assert "\n" not in str(err.value)


def test_npz_label_gap_warns_by_name(tmp_path, caplog):
    np.savez(tmp_path / "gap.npz", images=np.zeros((6, 4, 4), np.uint8), labels=np.array([0, 2, 3, 0, 2, 3]))
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        data = load_images(str(tmp_path / "gap.npz"), resolution=4, channels=1)
    assert data.num_classes == 4
    [message] = [m for m in _warnings(caplog) if "no images" in m]
    assert "class '1' has no images: a conditional model still learns and samples it; relabel to 0..K-1" in message


def test_folder_class_left_empty_by_skipped_files_warns(tmp_path, caplog):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "owl").mkdir()
    (tmp_path / "owl" / "bad.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        data = load_images(str(tmp_path), resolution=6, channels=1, on_bad_image="skip", max_bad_fraction=0.5)
    assert data.class_names == ["cat", "dog", "owl"] and len(data) == 6
    assert any("class 'owl' has no images" in m for m in _warnings(caplog))


def test_max_images_below_class_count_says_why(tmp_path, caplog):
    _sorted_npz(tmp_path / "sorted.npz")
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        load_images(str(tmp_path / "sorted.npz"), resolution=16, channels=1, max_images=4)
    assert not any("no images" in m for m in _warnings(caplog))  # dealt round-robin: all 4 present
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        load_images(str(tmp_path / "sorted.npz"), resolution=16, channels=1, max_images=3)
    [message] = [m for m in _warnings(caplog) if "no images" in m]
    assert "class '3' has no images" in message and "max_images=3 is fewer than the 4 classes" in message


def test_colour_npz_loaded_as_grey_warns(tmp_path, caplog):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rgb.npz", images=rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8))
    grey = np.repeat(rng.integers(0, 256, (5, 8, 8, 1), dtype=np.uint8), 3, axis=-1)
    np.savez(tmp_path / "grey_rgb.npz", images=grey)
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        load_images(str(tmp_path / "rgb.npz"), resolution=8, channels=1)
    assert any("5 of 5 sampled images are in colour, but model.channels=1 trains on grey" in m
               for m in _warnings(caplog))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.data"):
        load_images(str(tmp_path / "rgb.npz"), resolution=8, channels=3)
        load_images(str(tmp_path / "grey_rgb.npz"), resolution=8, channels=1)
    assert not any("in colour" in m for m in _warnings(caplog))
