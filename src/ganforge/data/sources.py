"""`load_images` and `check_images`: turn a dataset name or path into an ImageData.

name (mnist5k, digits, lfw-faces) -> builtin.py  --+
.npz                               -> npz.py      --+-> arrays_to_tensor (transforms.py)
folder / .zip                      -> files.py, decoded per file on a thread pool
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import UsageError, is_int
from .builtin import NAMED_SOURCES
from .decode import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, unusual_mode_reason
from .files import ImageFiles, decode_entries, folder_labels
from .image_data import ImageData, interleave_classes
from .memory import MEMORY_FIX, allocate
from .npz import load_npz
from .transforms import arrays_to_tensor, image_to_array, to_8bit, upright

log = logging.getLogger("ganforge.data")

BAD_IMAGE_POLICIES = ("error", "skip")


def load_images(
    source: str,
    *,
    resolution: int,
    channels: int,
    max_images: int | None = None,
    on_bad_image: str = "error",
    max_bad_fraction: float = 0.01,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    num_workers: int | None = None,
) -> ImageData:
    """Load a dataset by name or path, center-cropped and resized to the training format.

    source: one of NAMED_SOURCES, an image folder, a .zip of images, or an .npz. A name wins
        over a same-named folder in the working directory (write ./digits for the folder).
    resolution: output height == width in pixels; channels: 1 (grey) or 3 (RGB).
    max_images: keep the first N in the deterministic order (labelled sources are dealt
        class by class, so a prefix is balanced); for files, counted before bad ones are skipped.
    on_bad_image: "error" stops at the first unreadable file; "skip" logs and drops it, but
        fails if more than max_bad_fraction of the files are bad.
    max_pixels: files whose width * height exceeds this are refused as decompression bombs.
    num_workers: decoding threads for folders/zips (default: one per available core, max 16).
    """
    _check_source(source)
    _check_args(resolution, channels, max_images, on_bad_image, max_bad_fraction, max_pixels, num_workers)
    relabel = "relabel to 0..K-1 without gaps"
    if source in NAMED_SOURCES:
        if Path(source).exists():
            # The name keeps winning (existing runs depend on it), but a user with a ./digits folder
            # would otherwise train on the wrong images without noticing.
            log.warning("using the built-in %r dataset; ./%s exists too: write ./%s (or its full path) to train "
                        "on the folder", source, source, source)
        named = NAMED_SOURCES[source]
        images, labels, class_names = named.load()
        data = _from_arrays(images, labels, class_names, named.source, resolution, channels, max_images)
    else:
        path = _existing_path(source)
        if path.suffix.lower() == ".npz" and path.is_file():
            images, labels, class_names = load_npz(path)
            if labels is not None and max_images is not None and max_images < len(labels):
                # Deal classes round-robin as folders and built-ins are, so the prefix is balanced (an
                # .npz sorted by class would otherwise give class 0 only). Only when truncating: a full
                # .npz keeps its own order, and so its content hash, which resumed runs check.
                keep = interleave_classes(labels)[:max_images]
                images, labels = images[keep], labels[keep]
            data = _from_arrays(images, labels, class_names, f"{path} (npz)", resolution, channels, max_images)
        else:
            data = _from_files(
                path, resolution, channels, max_images, on_bad_image, max_bad_fraction, max_pixels, num_workers
            )
            relabel = "fix or remove the images of those class folders"
    _warn_if_empty_classes(data, max_images, relabel)
    return data


def check_images(
    source: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, num_workers: int | None = None
) -> list[tuple[str, str]]:
    """(file, reason) for every bad or unusual image in a folder or .zip, in listing order.

    Reasons: "zero-byte file", "truncated image", "not an image (cannot identify format)",
    "decompression bomb (W x H pixels)" (or "(N pixels)" beyond twice PIL's own limit, where
    PIL refuses before the size is known), "corrupt image (...)", "unusual mode X" (loads,
    but the conversion to L/RGB is a guess, e.g. float "F" or "LAB").
    """
    _check_source(source)
    if source in NAMED_SOURCES:
        raise UsageError(f"{source!r} is a built-in dataset; check_images checks image folders and .zip files")
    _check_pixels_and_workers(max_pixels, num_workers)
    path = _existing_path(source)
    with _open_files(path) as files:

        def inspect(_: int, img: Image.Image) -> str | None:
            to_8bit(upright(img), 3)  # raise BadImage as loading would: an unreadable EXIF block, a mode PIL cannot convert
            return unusual_mode_reason(img)

        bad = decode_entries(files, files.entries, inspect, max_pixels=max_pixels, num_workers=num_workers)
        return [(files.entries[i].display, reason) for i, reason in bad]


def _check_args(
    resolution: int, channels: int, max_images: int | None, on_bad_image: str, max_bad_fraction: float, max_pixels: int,
    num_workers: int | None,
) -> None:
    if not is_int(resolution) or not 1 <= resolution <= 8192:
        raise UsageError(f"resolution must be an integer from 1 to 8192; got {resolution!r}")
    if not is_int(channels) or channels not in (1, 3):  # 3.0 would pass `in` and fail later in np.empty
        raise UsageError(f"channels must be 1 (greyscale) or 3 (RGB); got {channels!r}")
    if max_images is not None and (not is_int(max_images) or max_images < 1):
        raise UsageError(f"max_images must be a positive integer or None; got {max_images!r}")
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise UsageError(f"on_bad_image must be one of {', '.join(BAD_IMAGE_POLICIES)}; got {on_bad_image!r}")
    if not isinstance(max_bad_fraction, (int, float)) or isinstance(max_bad_fraction, bool) or not 0.0 <= max_bad_fraction <= 1.0:
        raise UsageError(f"max_bad_fraction must be a number from 0 to 1; got {max_bad_fraction!r}")
    _check_pixels_and_workers(max_pixels, num_workers)


def _check_pixels_and_workers(max_pixels: int, num_workers: int | None) -> None:
    if not is_int(max_pixels) or max_pixels < 1:
        raise UsageError(f"max_pixels must be an integer >= 1; got {max_pixels!r}")
    # 0 used to mean the default (one per core) and stays so; a negative count would be ThreadPoolExecutor's error
    if num_workers is not None and (not is_int(num_workers) or not 0 <= num_workers <= 1024):
        raise UsageError(f"num_workers must be an integer from 1 to 1024, or 0 or None (one per core); got {num_workers!r}")


def _check_source(source: object) -> None:
    if not isinstance(source, (str, Path)):
        raise UsageError(f"source must be a path or a dataset name (str or Path); got {type(source).__name__} {source!r}")
    if not str(source).strip():  # Path("") is the working directory: never load that by accident
        raise UsageError(f"source {source!r} is empty: give an image folder, a .zip, an .npz, or one of: "
                         f"{', '.join(NAMED_SOURCES)}")


def _existing_path(source: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(
            f"{source!r} does not exist; give an image folder, a .zip, an .npz, or one of: {', '.join(NAMED_SOURCES)}"
        )
    return path


def _open_files(path: Path) -> ImageFiles:
    if not (path.is_dir() or path.suffix.lower() == ".zip"):
        raise UsageError(
            f"{path} is not a folder, .zip or .npz; give an image folder, a .zip, an .npz, "
            f"or one of: {', '.join(NAMED_SOURCES)}"
        )
    files = ImageFiles(path)
    if not files.entries:
        files.close()
        looked_for = " ".join(IMAGE_EXTENSIONS)
        raise UsageError(f"no images found in {path} (looked for {looked_for}, any case, in sub-folders too)")
    return files


def _from_arrays(
    images: np.ndarray,
    labels: np.ndarray | None,
    class_names: list[str] | None,
    description: str,
    resolution: int,
    channels: int,
    max_images: int | None,
) -> ImageData:
    # images uint8 (N, H, W, C); slice before converting so max_images also saves time.
    images = images[:max_images]
    if channels == 1 and images.shape[3] >= 3:
        picks = _spread(len(images))
        _log_if_colour(description, sum(_is_colour(Image.fromarray(images[i])) for i in picks), len(picks))
    return ImageData(
        images=arrays_to_tensor(images, resolution, channels, what=description),
        labels=None if labels is None else torch.from_numpy(np.ascontiguousarray(labels[:max_images], dtype=np.int64)),
        class_names=class_names,
        source=description,
    )


def _warn_if_empty_classes(data: ImageData, max_images: int | None, fix: str) -> None:
    """Warn about classes with no image (label gaps in an .npz, a class folder whose files were all
    skipped, max_images below the class count): a conditional model still trains and samples them
    from the class embedding alone. Not refused: an .npz may reserve ids on purpose."""
    if data.labels is None:
        return
    counts = np.bincount(data.labels.numpy(), minlength=data.num_classes)  # (K,)
    empty = [data.class_names[i] for i in np.flatnonzero(counts == 0)]  # type: ignore[index]
    if not empty:
        return
    k = data.num_classes
    if max_images is not None and max_images < k:
        fix = f"max_images={max_images} is fewer than the {k} classes, so some must miss: raise it to at least {k}"
    names = ", ".join(repr(name) for name in empty[:10]) + (", ..." if len(empty) > 10 else "")
    what = f"class {names} has" if len(empty) == 1 else f"{len(empty)} of {k} classes ({names}) have"
    log.warning("%s: %s no images: a conditional model still learns and samples %s; %s",
                data.source, what, "it" if len(empty) == 1 else "them", fix)


def _spread(count: int, n: int = 16) -> list[int]:
    """Up to n indices spread evenly over range(count), first and last included."""
    return sorted({int(i) for i in np.linspace(0, count - 1, min(n, count)).round()})


def _is_colour(img: Image.Image) -> bool:
    """Colour when the channels differ by more than 8 levels somewhere in a 16 x 16 thumbnail (RGB
    files of grey content, such as re-saved digits, are not)."""
    rgb = np.asarray(to_8bit(img, 3).resize((16, 16), Image.Resampling.BOX), dtype=np.int16)  # (16, 16, 3)
    return bool((rgb.max(axis=-1) - rgb.min(axis=-1)).max() > 8)


def _log_if_colour(where: object, k: int, n: int) -> None:
    if k and 2 * k >= n:
        log.warning("%s: %d of %d sampled images are in colour, but model.channels=1 trains on grey; for colour use "
                    "--set model.channels=3 (the presets dcgan-cifar10 and sngan-cifar10 are colour)", where, k, n)


def _warn_if_colour(files: ImageFiles, entries: list, path: Path, max_pixels: int) -> None:
    """Warn when grey training (channels=1) would drop the colour of a colour dataset, e.g. a photo
    folder given to the default dcgan-mnist preset. Looks at up to 16 files spread over the listing
    (arrays are checked the same way in _from_arrays)."""
    picks = _spread(len(entries))
    colour: dict[int, bool] = {}

    def work(i: int, img: Image.Image) -> None:
        colour[i] = _is_colour(img)

    decode_entries(files, [entries[i] for i in picks], work, max_pixels=max_pixels, draft=("RGB", 16), num_workers=1)
    _log_if_colour(path, sum(colour.values()), len(colour))


def _warn_if_reshaped(sizes: np.ndarray, entries: list, resolution: int, where: Path) -> None:
    """Say how many images were enlarged more than 2x (a 16 x 16 icon trained at 64 is a blur) or lost more
    than half of their area to the centre-square crop (a panorama keeps its middle); sizes (N, 2) w, h."""
    if not len(sizes):
        return
    short, long = sizes.min(axis=1), sizes.max(axis=1)  # (N,) each
    for hit, pick, what in (
        (2 * short < resolution, int(np.argmin(short)), f"are enlarged more than 2x to {resolution} x {resolution} "
                                                        "(blurry)"),
        (long > 2 * short, int(np.argmax(long / np.maximum(short, 1))), "are more than twice as long as wide: only "
                                                                         "their centre square is kept"),
    ):
        if hit.any():
            w, h = sizes[pick]
            log.warning("%s: %d of %d images %s; e.g. %s (%d x %d)", where, int(hit.sum()), len(sizes), what,
                        entries[pick].display, w, h)


def _transparent(img: Image.Image) -> bool:
    """Whether to_8bit's composite on black changes any pixel: an alpha below 255 somewhere, or a palette
    entry with an alpha below 255 that some pixel uses."""
    if img.mode == "P":  # a transparent palette entry (GIF encoders often declare one): is a pixel drawn with it?
        declared, used = img.info.get("transparency"), img.histogram()  # (256,) pixels per palette index
        if isinstance(declared, int):
            return 0 <= declared < len(used) and used[declared] > 0
        if isinstance(declared, bytes):  # PNG tRNS: one alpha per palette entry
            return any(used[i] and alpha < 255 for i, alpha in enumerate(declared[: len(used)]))
        return False
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return img.getchannel("A" if "A" in img.getbands() else "a").getextrema()[0] < 255
    return False


def _warn_if_flattened(seen: np.ndarray, entries: list, where: Path) -> None:
    """Say how many images had transparent pixels (composited on black: a transparent background trains as
    black) or several frames (an animated GIF, APNG or WebP, a multi-page TIFF: only the first is used)."""
    for column, what in ((0, "have transparent pixels: composited on black, so a transparent background trains as "
                             "black (flatten them on the colour you want first)"),
                         (1, "have several frames (animated, or pages): only the first frame is used")):
        hit = seen[:, column] if len(seen) else seen
        if hit.any():
            log.warning("%s: %d of %d images %s; e.g. %s", where, int(hit.sum()), len(seen), what,
                        entries[int(np.argmax(hit))].display)


def _compact(out: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The rows of `out` (N, ...) where `keep` (N,) bool, moved up in place: `out[keep]` would copy the whole
    dataset once more, at the peak of the loading's memory."""
    if keep.all():
        return out
    rows = np.flatnonzero(keep)
    for j, i in enumerate(rows):  # j <= i: a row only moves up, over one already moved or dropped
        if j != i:
            out[j] = out[i]
    return out[: len(rows)]


def _from_files(
    path: Path,
    resolution: int,
    channels: int,
    max_images: int | None,
    on_bad_image: str,
    max_bad_fraction: float,
    max_pixels: int,
    num_workers: int | None,
) -> ImageData:
    with _open_files(path) as files:
        entries = files.entries
        labels, class_names = folder_labels(entries, path, files.folders)
        order = interleave_classes(np.array(labels)) if labels is not None else np.arange(len(entries))
        order = order[:max_images]
        entries = [entries[i] for i in order]
        # Workers fill rows of one preallocated array, already channels-first; refused before any decoding
        # when it cannot fit in memory.
        out = allocate((len(entries), channels, resolution, resolution), str(path), MEMORY_FIX)  # (N, C, H, W)

        sizes = np.zeros((len(entries), 2), dtype=np.int64)  # (N, 2) width, height as decoded; 0 for a bad file
        seen = np.zeros((len(entries), 2), dtype=bool)  # (N, 2) has transparent pixels, has more than one frame

        def write(i: int, img: Image.Image) -> None:  # runs in a worker thread
            sizes[i] = img.size  # a JPEG draft keeps both sides >= resolution, so "enlarged" is still told apart
            out[i] = image_to_array(img, resolution, channels).transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
            # after the pixels are taken: is_animated reads ahead to a second frame, then seeks back
            seen[i] = _transparent(img), bool(getattr(img, "is_animated", False))

        draft = ("L" if channels == 1 else None, resolution)
        stop = on_bad_image == "error"
        bad = decode_entries(
            files, entries, write, max_pixels=max_pixels, draft=draft, num_workers=num_workers, stop_at_first_bad=stop
        )
        if channels == 1 and not (bad and stop):
            _warn_if_colour(files, entries, path, max_pixels)

    if bad and on_bad_image == "error":
        i, reason = bad[0]
        raise UsageError(
            f"bad image {entries[i].display}: {reason}; fix or delete it, or skip bad files: on_bad_image='skip' "
            f"(training: --set data.on_bad_image=skip); `ganforge data check {path}` lists every bad file"
        )
    for i, reason in bad:
        log.warning("skipping bad image %s: %s", entries[i].display, reason)
    if bad and (len(bad) > max_bad_fraction * len(entries) or len(bad) == len(entries)):
        raise UsageError(
            f"{len(bad)} of {len(entries)} images in {path} are bad ({len(bad) / len(entries):.1%}), more than "
            f"max_bad_fraction={max_bad_fraction:g} (training: --set data.max_bad_fraction=F); `ganforge data check "
            f"{path}` lists them"
        )
    keep = np.ones(len(entries), dtype=bool)
    keep[[i for i, _ in bad]] = False
    kept = [e for e, k in zip(entries, keep) if k]
    _warn_if_reshaped(sizes[keep], kept, resolution, path)
    _warn_if_flattened(seen[keep], kept, path)
    images = _compact(out, keep)
    kind = "zip" if path.suffix.lower() == ".zip" else "folder"
    return ImageData(
        images=torch.from_numpy(images),
        labels=None if labels is None else torch.from_numpy(np.asarray(labels, dtype=np.int64)[order][keep]),
        class_names=class_names,
        source=f"{path} ({kind}, {len(images)} images)",
    )
