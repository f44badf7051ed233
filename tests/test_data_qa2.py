"""Second QA pass over GAN training data, `ganforge data check`, `ganforge bench` and apps/augment.py:
a damaged EXIF block, a dataset too large for memory, split folders and empty class folders taken for
classes, heavily enlarged or cropped images, library argument types, bench settings that were ignored,
and the augmentation study's inputs."""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, features

from ganforge.cli import main
from ganforge.data import Batcher, ImageData, check_images, load_images, memory
from ganforge.data.image_data import pixels_sha256
from ganforge.errors import UsageError


def save(path: Path, value: int, size: tuple[int, int] = (4, 4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)
    return path


def png_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4), value).save(buf, format="PNG")
    return buf.getvalue()


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- a damaged EXIF block: `data check` said the folder was clean, then training ended in a traceback


def webp_with_corrupt_exif() -> bytes:
    """A WebP whose EXIF chunk has a broken TIFF header: Pillow decodes the pixels, but exif_transpose
    raises SyntaxError ("not a TIFF file")."""
    img = Image.new("RGB", (16, 12), (200, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90": the orientation that can no longer be read
    buf = io.BytesIO()
    img.save(buf, format="WEBP", exif=exif)
    data = buf.getvalue()
    k = data.find(b"MM\x00*")
    assert k > 0
    return data[:k] + b"lM" + data[k + 2 :]


@pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")
def test_a_corrupt_exif_block_is_a_bad_file_for_check_and_training_alike(tmp_path, capsys, caplog):
    for i in range(4):
        save(tmp_path / "d" / f"ok{i}.png", 40 * i)
    (tmp_path / "d" / "photo.webp").write_bytes(webp_with_corrupt_exif())
    folder = tmp_path / "d"

    [(name, reason)] = check_images(str(folder))
    assert name.endswith("photo.webp") and reason.startswith("corrupt EXIF block") and "SyntaxError" in reason
    code, out, err = run_cli(capsys, "data", "check", folder)
    assert code == 1 and "photo.webp: corrupt EXIF block" in out and "Traceback" not in err

    with pytest.raises(UsageError, match=r"bad image .*photo\.webp: corrupt EXIF block.*on_bad_image='skip'"):
        load_images(str(folder), resolution=4, channels=1)
    data = load_images(str(folder), resolution=4, channels=1, on_bad_image="skip", max_bad_fraction=0.5)
    assert len(data) == 4 and any("skipping bad image" in w and "photo.webp" in w for w in warnings_of(caplog))


# --- a dataset larger than the free memory: refused before decoding, not OOM-killed after it


def test_a_dataset_too_large_for_memory_is_refused_before_any_decoding(tmp_path, monkeypatch):
    for i in range(6):
        save(tmp_path / "d" / f"{i}.png", i)
    monkeypatch.setattr(memory, "available_bytes", lambda: 4 * 3 * 64 * 64)  # room for 4 images of 3 x 64 x 64
    import ganforge.data.sources as sources

    def never(*args, **kwargs):
        raise AssertionError("decoded although the array cannot fit")

    monkeypatch.setattr(sources, "decode_entries", never)
    with pytest.raises(UsageError) as exc:
        load_images(str(tmp_path / "d"), resolution=64, channels=3)
    message = str(exc.value)
    assert "6 images of 3 x 64 x 64 uint8" in message and "about 4 images fit" in message
    assert "--set data.max_images=N" in message and "\n" not in message
    monkeypatch.undo()  # the decoder back, the memory figure too: 4 images fit what it suggests
    monkeypatch.setattr(memory, "available_bytes", lambda: 4 * 3 * 64 * 64)
    assert len(load_images(str(tmp_path / "d"), resolution=64, channels=3, max_images=4)) == 4  # what it suggests


def test_arrays_too_large_for_memory_and_numpys_memory_error_are_one_line(tmp_path, monkeypatch):
    np.savez(tmp_path / "a.npz", images=np.zeros((10, 8, 8), np.uint8))
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    with pytest.raises(UsageError, match=r"a\.npz \(npz\): 10 images of 32 x 32 x 3 uint8 need 30\.0 KiB, but only 1000 bytes of memory is free \(about 0 images fit\)"):
        load_images(str(tmp_path / "a.npz"), resolution=32, channels=3)

    # beyond RAM + swap numpy refuses at once: no traceback either
    monkeypatch.setattr(memory, "available_bytes", lambda: None)

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate")

    monkeypatch.setattr(memory.np, "empty", no_memory)
    with pytest.raises(UsageError, match=r"more than this machine can allocate: lower max_images"):
        memory.allocate((200, 3, 8192, 8192), "photos", "max_images (training: --set data.max_images=N)")


def test_free_memory_counts_swap_and_a_containers_limit_less_its_page_cache(tmp_path, monkeypatch):
    (tmp_path / "meminfo").write_text("MemTotal: 64000000 kB\nMemAvailable: 8000000 kB\nSwapFree: 1000000 kB\n")
    cg = tmp_path / "cg"
    cg.mkdir()
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "CGROUPS", ((cg, "memory.max", "memory.current", "inactive_file"),))
    assert memory.available_bytes() == 9_000_000 * 1024  # no cgroup files: the machine's figure
    (cg / "memory.max").write_text("max\n")
    (cg / "memory.current").write_text("5000000000\n")
    assert memory.available_bytes() == 9_000_000 * 1024  # no limit
    (cg / "memory.max").write_text("6000000000\n")
    assert memory.available_bytes() == 1_000_000_000
    (cg / "memory.stat").write_text("anon 1000000000\ninactive_file 3000000000\n")  # a cache it can give back
    assert memory.available_bytes() == 4_000_000_000
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "missing")
    assert memory.available_bytes() is None  # not Linux: nothing is refused


def test_the_content_hash_reads_the_array_in_place_and_is_unchanged():
    # resumed runs compare this hash with the one in their checkpoint: it must stay the bytes it was
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8).permute(0, 1, 3, 2)  # not contiguous
    labels = torch.tensor([3, 0, 1, 2, 1])
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    assert pixels_sha256(images) == h.hexdigest()
    h.update(b"labels")
    h.update(labels.numpy().tobytes())
    assert pixels_sha256(images, labels) == h.hexdigest()


def test_compositing_on_black_in_bands_gives_the_same_pixels():
    # banded to cap the temporaries (27 bytes a pixel before): a change of any pixel would change content hashes
    from ganforge.data.transforms import _on_black, to_8bit

    rgba = np.random.default_rng(0).integers(0, 256, (1100, 37, 4), dtype=np.uint8)
    wide = rgba.astype(np.uint16)
    whole = ((wide[..., :3] * wide[..., 3:] + 127) // 255).astype(np.uint8)  # the earlier one-shot formula
    assert np.array_equal(_on_black(rgba), whole) and np.array_equal(_on_black(rgba, rows=7), whole)
    img = Image.fromarray(rgba, "RGBA")
    assert np.array_equal(np.asarray(to_8bit(img, 3)), whole)
    assert np.array_equal(np.asarray(to_8bit(img, 1)), np.asarray(Image.fromarray(whole).convert("L")))


def test_skipped_files_are_compacted_in_order_without_a_second_copy(tmp_path):
    folder = tmp_path / "d"
    for i in range(8):
        save(folder / f"{i}.png", 10 * i)
    (folder / "2.png").write_text("not a png")
    (folder / "5.png").write_bytes(b"")
    data = load_images(str(folder), resolution=4, channels=1, on_bad_image="skip", max_bad_fraction=0.5)
    assert data.images[:, 0, 0, 0].tolist() == [0, 10, 30, 40, 60, 70]


# --- class folders: dataset splits taken for classes, class folders without images


def split_tree(root: Path) -> None:
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            for i in range(2):
                save(root / "dataset" / split / cls / f"{i}.png", 50 * i)


def test_split_folders_taken_for_classes_are_named_with_the_folder_to_give(tmp_path, caplog):
    split_tree(tmp_path)
    data = load_images(str(tmp_path), resolution=4, channels=1)
    assert data.class_names == ["test", "train"]  # unchanged: a warning, not a refusal
    [warning] = [w for w in warnings_of(caplog) if "dataset splits" in w]
    assert "test, train" in warning and str(tmp_path / "dataset" / "train") in warning

    caplog.clear()
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for split in ("train", "val"):
            for cls in ("a", "b"):
                z.writestr(f"top/{split}/{cls}/0.png", png_bytes(1))
    load_images(str(tmp_path / "d.zip"), resolution=4, channels=1)
    [warning] = [w for w in warnings_of(caplog) if "dataset splits" in w]
    assert "zip one split's folder (top/train) alone" in warning


def test_real_classes_named_like_one_split_do_not_warn(tmp_path, caplog):
    for cls in ("test", "cat"):  # one split-like name alone is a class
        save(tmp_path / cls / "0.png", 1)
    assert load_images(str(tmp_path), resolution=4, channels=1).class_names == ["cat", "test"]
    assert not [w for w in warnings_of(caplog) if "splits" in w]


def test_a_class_folder_without_images_is_named_by_loading_and_by_data_check(tmp_path, caplog, capsys):
    for cls in ("ant", "cow"):
        for i in range(2):
            save(tmp_path / "d" / cls / f"{i}.png", i)
    (tmp_path / "d" / "bee").mkdir()  # empty: it was no class, and nothing said so
    (tmp_path / "d" / ".git").mkdir()  # hidden: never a class, never named
    data = load_images(str(tmp_path / "d"), resolution=4, channels=1)
    assert data.class_names == ["ant", "cow"]
    [warning] = [w for w in warnings_of(caplog) if "hold no images" in w]
    assert "folder(s) bee beside" in warning and "the 2 classes are ant, cow" in warning and ".git" not in warning

    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:  # a zip names an empty folder by its entry "bee/"
        z.writestr("ant/0.png", png_bytes(1))
        z.writestr("cow/0.png", png_bytes(2))
        z.writestr("bee/", b"")
        z.writestr("__MACOSX/ant/._0.png", b"\x00\x05\x16\x07")
    caplog.clear()
    code, _, err = run_cli(capsys, "data", "check", tmp_path / "d.zip")
    assert code == 0 and "2 classes by folder (ant, cow)" in err
    assert [w for w in warnings_of(caplog) if "folder(s) bee beside" in w]
    code, _, err = run_cli(capsys, "data", "check", tmp_path / "d" / "ant")
    assert code == 0 and "2 image(s) checked, 0 problem(s); unlabelled" in err


def test_a_stray_image_beside_the_class_folders_is_named(tmp_path, caplog):
    for cls in ("cat", "dog"):
        save(tmp_path / cls / "0.png", 1)
    save(tmp_path / "cover.png", 2)
    assert load_images(str(tmp_path), resolution=4, channels=1).labels is None
    assert any("(1 of 3, e.g. " in w and "cover.png); loading unlabelled" in w for w in warnings_of(caplog))


def test_system_folders_are_not_data(tmp_path, caplog):
    # a Synology NAS keeps thumbnails of every photo in @eaDir beside it; a Windows drive has a recycle bin
    for cls in ("cat", "dog"):
        save(tmp_path / cls / "0.png", 1)
        save(tmp_path / cls / "@eaDir" / "0.png" / "SYNOPHOTO_THUMB_S.png", 2)
    save(tmp_path / "$RECYCLE.BIN" / "S-1-5" / "$R0.png", 3)
    data = load_images(str(tmp_path), resolution=4, channels=1)
    assert len(data) == 2 and data.class_names == ["cat", "dog"] and not warnings_of(caplog)


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch, caplog):
    # root reads every folder, so the PermissionError a user would meet is raised through os.walk's hook
    from ganforge.data import files

    for cls in ("a", "b"):
        save(tmp_path / cls / "0.png", 1)
    real_walk = files.os.walk

    def walk(top, **kwargs):
        kwargs["onerror"](PermissionError(13, "Permission denied", str(tmp_path / "c")))
        yield from real_walk(top, **kwargs)

    monkeypatch.setattr(files.os, "walk", walk)
    load_images(str(tmp_path), resolution=4, channels=1)
    assert any(f"cannot list {tmp_path / 'c'} (Permission denied): its images are left out" in w
               for w in warnings_of(caplog))


def test_archives_inside_a_zip_are_said_to_be_unopened(tmp_path, caplog):
    with zipfile.ZipFile(tmp_path / "outer.zip", "w") as z:
        z.writestr("top.png", png_bytes(1))
        z.writestr("cats.zip", b"PK\x05\x06" + b"\0" * 18)
        z.writestr("dogs.tar.gz", b"")
    load_images(str(tmp_path / "outer.zip"), resolution=4, channels=1)
    assert any("2 archive(s) inside (e.g. cats.zip) are not opened" in w for w in warnings_of(caplog))


# --- images enlarged a lot, or mostly cropped away


def test_heavily_enlarged_and_cropped_images_are_counted_in_one_line_each(tmp_path, caplog):
    save(tmp_path / "one_pixel.png", 9, (1, 1))
    save(tmp_path / "strip.png", 9, (300, 20))
    for i in range(3):
        save(tmp_path / f"ok{i}.png", i, (32, 32))
    load_images(str(tmp_path), resolution=32, channels=1)
    found = warnings_of(caplog)
    [enlarged] = [w for w in found if "images are enlarged" in w]
    [cropped] = [w for w in found if "centre square is kept" in w]
    # the strip's short side (20) is more than half of 32: cropped, not enlarged much
    assert "1 of 5 images are enlarged more than 2x to 32 x 32" in enlarged and "one_pixel.png (1 x 1)" in enlarged
    assert "1 of 5 images" in cropped and "strip.png (300 x 20)" in cropped
    caplog.clear()
    (tmp_path / "one_pixel.png").unlink()
    (tmp_path / "strip.png").unlink()
    load_images(str(tmp_path), resolution=48, channels=1)  # 32 -> 48 (as 28 -> 32 for digits) stays quiet
    assert not [w for w in warnings_of(caplog) if "images are enlarged" in w or "centre square" in w]


def test_transparency_and_extra_frames_are_said_once_each(tmp_path, caplog):
    Image.new("RGBA", (8, 8), (255, 255, 255, 0)).save(tmp_path / "clear_white.png")  # trains as black
    Image.new("RGBA", (8, 8), (9, 9, 9, 255)).save(tmp_path / "opaque_rgba.png")  # alpha, but all opaque: quiet
    unused = Image.new("P", (8, 8), 1)
    unused.putpalette([0, 0, 0, 7, 7, 7])
    unused.save(tmp_path / "palette.png", transparency=0)  # a transparent entry no pixel uses: quiet
    assert Image.open(tmp_path / "palette.png").info["transparency"] == 0
    frames = [Image.new("RGB", (8, 8), (10 + 80 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    save(tmp_path / "still.png", 5, (8, 8))
    data = load_images(str(tmp_path), resolution=8, channels=3)
    found = warnings_of(caplog)
    [clear] = [w for w in found if "transparent pixels" in w]
    [moving] = [w for w in found if "several frames" in w]
    assert "1 of 5 images have transparent pixels: composited on black" in clear and "clear_white.png" in clear
    assert "1 of 5 images have several frames" in moving and "moving.gif" in moving
    assert data.images[:, 0, 0, 0].tolist() == [0, 10, 9, 7, 5]  # the first frame, read after the frame count
    caplog.clear()
    unused.save(tmp_path / "palette.png", transparency=1)  # now the entry every pixel uses is transparent
    load_images(str(tmp_path), resolution=8, channels=3)
    assert any("2 of 5 images have transparent pixels" in w for w in warnings_of(caplog))


# --- library argument types


@pytest.mark.parametrize("kwargs,needle", [
    ({"channels": 3.0}, "channels must be 1 (greyscale) or 3 (RGB); got 3.0"),
    ({"num_workers": -1}, "num_workers must be an integer from 1 to 1024, or 0 or None (one per core); got -1"),
    ({"num_workers": 2.5}, "got 2.5"),
    ({"max_pixels": "100"}, "max_pixels must be an integer >= 1; got '100'"),
    ({"max_bad_fraction": "0.1"}, "max_bad_fraction must be a number from 0 to 1; got '0.1'"),
    ({"max_bad_fraction": float("nan")}, "got nan"),
])
def test_load_images_refuses_wrong_argument_types_in_one_line(tmp_path, kwargs, needle):
    save(tmp_path / "0.png", 1)
    with pytest.raises(UsageError) as exc:
        load_images(str(tmp_path), **{"resolution": 4, "channels": 1, **kwargs})
    assert needle in str(exc.value)
    if "num_workers" in kwargs or "max_pixels" in kwargs:
        with pytest.raises(UsageError, match="must be an integer"):
            check_images(str(tmp_path), **kwargs)


@pytest.mark.parametrize("source,needle", [("", "source '' is empty"), ("  ", "source '  ' is empty"),
                                           (None, "got NoneType None"), (["a"], "got list")])
def test_an_empty_source_never_loads_the_working_directory(tmp_path, monkeypatch, source, needle):
    save(tmp_path / "0.png", 1)
    monkeypatch.chdir(tmp_path)  # Path("") is "." : this folder used to be loaded without a word
    for fn in (lambda: load_images(source, resolution=4, channels=1), lambda: check_images(source)):
        with pytest.raises(UsageError, match=needle):
            fn()


def test_numpy_integers_are_accepted_as_sizes(tmp_path):
    save(tmp_path / "0.png", 1)
    data = load_images(str(tmp_path), resolution=np.int64(4), channels=np.int32(1), max_images=np.int64(1))
    assert tuple(data.images.shape) == (1, 1, 4, 4)


# --- bench: settings that were accepted and ignored


def test_bench_applies_train_threads_and_puts_them_back(capsys):
    from ganforge.bench import bench_sample
    from ganforge.presets import get_preset

    before = torch.get_num_threads()
    want = 1 if before > 1 else 2
    r = bench_sample(get_preset("mlp-mnist"), batch=2, device=torch.device("cpu"), steps=1, repeats=1, warmup=0,
                     overrides=(f"train.threads={want}",))
    assert r["threads"] == want and torch.get_num_threads() == before
    code, out, _ = run_cli(capsys, "bench", "sample", "--preset", "mlp-mnist", "--batch", "2", "--steps", "1",
                           "--repeats", "1", "--set", f"train.threads={want}")
    assert code == 0 and f"({want} threads)" in out


@pytest.mark.parametrize("key", ["data.source=/nowhere", "data.max_images=10", "data.on_bad_image=skip"])
def test_bench_refuses_data_settings_it_cannot_apply(capsys, key):
    code, _, err = run_cli(capsys, "bench", "sample", "--preset", "mlp-mnist", "--batch", "2", "--set", key)
    assert code == 2 and f"--set {key.split('=')[0]} has no effect in bench" in err and err.count("\n") == 1


def test_bench_stores_and_flips_the_images_as_training_does(monkeypatch):
    import ganforge.bench.run as bench_run
    from ganforge.config import apply_overrides
    from ganforge.presets import get_preset

    seen = {}
    real = bench_run.Batcher

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(bench_run, "Batcher", spy)
    cfg = apply_overrides(get_preset("mlp-mnist"), ["train.batch_size=2", "data.on_device=false", "data.hflip=true"])
    bench_run.make_ganforge_iteration(cfg, torch.device("cpu"))
    assert seen["device"] == "cpu" and seen["out_device"] == torch.device("cpu") and seen["hflip"] is True


def test_a_batcher_delivers_on_the_training_device_when_the_data_stays_on_the_cpu():
    # data.on_device=false on a GPU: batches were left on the CPU, and the first D forward failed
    data = ImageData(torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8), torch.arange(6) % 2, ["a", "b"], "x")
    batcher = Batcher(data, 4, device="cpu", out_device="meta", hflip=True)
    x, y = next(batcher)
    assert batcher.images.device.type == "cpu" and x.device.type == y.device.type == "meta"
    assert x.dtype == torch.float32 and tuple(x.shape) == (4, 1, 4, 4)
    same = Batcher(data, np.int64(4), device="cpu", hflip=True)  # the default: delivered where stored, as before
    assert same.out_device == same.device and same.batch_size == 4  # (a numpy integer was refused as "not one")


# --- apps/augment.py: inputs that gave silent wrong sets, NaN summaries or errors deep in torch


@pytest.fixture
def digits():
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8, generator=gen), torch.arange(40) % 10


@pytest.mark.parametrize("per_class", [-3, 0, 2.5, True])
def test_small_subset_refuses_a_count_that_is_not_positive(digits, per_class):
    from ganforge.apps.augment import small_labelled_subset

    with pytest.raises(UsageError, match=f"--per-class {per_class!r} must be a positive integer"):
        small_labelled_subset(*digits, per_class, seed=0)  # -3 used to return all but 3 of each class


def test_small_subset_refuses_labels_it_cannot_read(digits):
    from ganforge.apps.augment import small_labelled_subset

    images, _ = digits
    with pytest.raises(UsageError, match="smallest -1"):
        small_labelled_subset(images, torch.full((40,), -1), 1, seed=0)
    with pytest.raises(UsageError, match="1-D integer tensor"):
        small_labelled_subset(images, torch.zeros(40), 1, seed=0)
    with pytest.raises(UsageError, match="40 images, 39 labels"):
        small_labelled_subset(images, torch.arange(39) % 10, 1, seed=0)


def test_fit_classifier_takes_any_integer_labels_and_refuses_float_ones(digits):
    from ganforge.apps.augment import ClassifierRecipe, fit_classifier

    images, labels = digits
    recipe = ClassifierRecipe(steps=1, batch_size=4)
    fit_classifier(images, labels.int(), seed=0, recipe=recipe)  # an .npz's int32: was a RuntimeError in torch
    with pytest.raises(UsageError, match="expected integer labels .* got torch.float32"):
        fit_classifier(images, labels.float(), seed=0, recipe=recipe)
    with pytest.raises(UsageError, match="steps=1.5 must be an integer >= 1"):
        fit_classifier(images, labels, seed=0, recipe=ClassifierRecipe(steps=1.5, batch_size=4))
    with pytest.raises(UsageError, match="expected torch tensors, got ndarray"):
        fit_classifier(images.numpy(), labels, seed=0, recipe=recipe)
    with pytest.raises(UsageError, match="device='gpu' is not a device: use cpu, cuda, cuda:N or auto"):
        fit_classifier(images, labels, seed=0, recipe=recipe, device="gpu")


def test_fit_classifier_refuses_an_empty_set_instead_of_drawing_from_it_forever(digits):
    from ganforge.apps.augment import ClassifierRecipe, fit_classifier

    images, labels = digits
    recipe = ClassifierRecipe(steps=1, batch_size=4)
    with pytest.raises(UsageError, match="the classifier training set is empty"):
        fit_classifier(images[:0], labels[:0], seed=0, recipe=recipe)
    with pytest.raises(UsageError, match="the classifier mixed-in set is empty"):
        fit_classifier(images, labels, seed=0, recipe=recipe, mix=(images[:0], labels[:0]))


def test_a_study_without_seeds_is_refused_not_reported_as_nan(digits):
    from ganforge.apps.augment import ClassifierRecipe, augmentation_study

    with pytest.raises(UsageError, match=r"seeds must be one or more integers, got \[\]"):
        augmentation_study(digits, digits, digits, seeds=(), recipe=ClassifierRecipe(steps=1, batch_size=4), log=None)
