"""More bad inputs at the CLI: each is one line on stderr and exit 2 before any work is done,
or (data check) an exit code that agrees with the help."""

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.evaluators.cifar10_clf import CIFAR10_CLASSES


def one_line_error(capsys, *args) -> str:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("INFO ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in captured.err, (code, captured.out, captured.err)
    return lines[0]


# ---------------------------------------------------------------- evaluator fit cifar10-clf


def test_cifar10_fit_refuses_test_classes_named_differently_before_training(capsys, tmp_path, monkeypatch):
    import ganforge.evaluators.cifar10_clf as clf

    monkeypatch.setattr(clf, "fit_epochs", lambda *a, **k: pytest.fail("training started"))
    renamed = {"airplane": "plane", "automobile": "car"}  # 'car' and 'plane' sort elsewhere: labels shift
    for split, names in (("train", CIFAR10_CLASSES), ("test", [renamed.get(n, n) for n in CIFAR10_CLASSES])):
        for k, name in enumerate(names):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32), (25 * k, 0, 0)).save(tmp_path / split / name / "0.png")
    line = one_line_error(capsys, "evaluator", "fit", "cifar10-clf", "--data", tmp_path / "train", "--test-data",
                          tmp_path / "test", "--epochs", 1, "--out", tmp_path / "c.safetensors")
    assert "--test-data" in line and "'plane'" in line and "'airplane'" in line
    assert not (tmp_path / "c.safetensors").exists()


# ---------------------------------------------------------------- bench


@pytest.mark.parametrize("cmd", ["train", "sample"])
@pytest.mark.parametrize("setting,option", [("train.batch_size=128", "--batch"), (" train.device = cpu", "--device")])
def test_bench_refuses_overrides_of_its_own_options(capsys, cmd, setting, option):
    line = one_line_error(capsys, "bench", cmd, "--preset", "dcgan-mnist", "--batch", 8, "--steps", 1, "--repeats", 1,
                          "--set", "model.g_width=8", "--set", setting)
    assert f"use {option}" in line and setting.split("=")[0].strip() in line


@pytest.mark.parametrize("cmd", ["train", "sample"])
def test_bench_refuses_an_absurd_batch(capsys, cmd):
    line = one_line_error(capsys, "bench", cmd, "--preset", "dcgan-mnist", "--batch", 100_000_000, "--steps", 1, "--repeats", 1)
    assert "--batch 100000000" in line and "65536" in line


# ---------------------------------------------------------------- data check


@pytest.mark.parametrize("source", ["", "  "])
def test_data_check_refuses_an_empty_source(capsys, source):
    assert "SOURCE is empty" in one_line_error(capsys, "data", "check", source)


def test_data_check_on_a_folder_without_images_exits_2_as_the_help_says(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert "holds no image files" in one_line_error(capsys, "data", "check", tmp_path)


@pytest.mark.parametrize("content", [b"just some text\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 32])
def test_npz_that_is_not_an_archive_is_named_as_such(capsys, tmp_path, content):
    from ganforge.data.npz import load_npz
    from ganforge.errors import UsageError

    fake = tmp_path / "fake.npz"
    fake.write_bytes(content)
    with pytest.raises(UsageError, match="is not an .npz archive") as info:
        load_npz(fake)
    assert "pickle" not in str(info.value)
    code = main(["data", "check", str(fake)])
    out = capsys.readouterr().out
    assert code == 1 and "is not an .npz archive" in out  # a bad .npz is a finding, as before


def test_real_npz_still_loads(tmp_path):
    from ganforge.data.npz import load_npz

    np.savez(tmp_path / "ok.npz", images=np.zeros((2, 4, 4), np.uint8))
    assert load_npz(tmp_path / "ok.npz")[0].shape == (2, 4, 4, 1)
