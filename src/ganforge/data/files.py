"""Image folders and .zip archives: list, label, and decode many files in parallel.

A folder and a zip are handled alike: first list `Entry`s (path parts below the root,
size), then decode them on a thread pool (PIL releases the GIL while decoding), writing
results in listing order so the dataset is identical from run to run.

Labels: after removing the deepest folder shared by every image (a zip often wraps
everything in one `train/` folder), the first remaining folder names the class, e.g.
`train/airplane/0001.jpg` -> "airplane". Classes are sorted alphabetically -> index.
Images directly in the root, or a single class folder, mean "unlabelled".
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image

from ..errors import UsageError
from .decode import IMAGE_EXTENSIONS, BadImage, is_image_name, open_image

log = logging.getLogger("ganforge.data")

MAX_ZIP_MEMBERS = 1_000_000
MAX_ZIP_MEMBER_BYTES = 64 * 1024 * 1024  # uncompressed size of one member


@dataclass(frozen=True)
class Entry:
    """One image file inside a folder or zip."""

    parts: tuple[str, ...]  # path components below the root, e.g. ("train", "cat", "1.png")
    size: int  # bytes (uncompressed for zip members); 0 means "zero-byte file", -1 unknown
    display: str  # what error messages call it: the file path, or "archive.zip:member"
    key: str  # how to open it: the file path, or the zip member name exactly as stored


class ImageFiles:
    """The image entries of a folder or zip, plus a way to open each one (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        # ZipFile.open/close update a reference count without locking; guard just those
        # two calls so worker threads can still inflate members in parallel.
        self._zip_lock = threading.Lock()
        if path.is_dir():
            self.entries = _list_folder(path)
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise UsageError(f"{path} is not a readable .zip file ({exc})") from None
            try:
                self.entries = _list_zip(self._zip, path)
            except UsageError:
                self._zip.close()  # an unsafe archive is refused as a whole
                raise

    def open(self, entry: Entry) -> BinaryIO:
        if self._zip is None:
            return open(entry.key, "rb")  # the caller closes it
        # Read the member in place (never extracted to disk). Reads through the shared file
        # handle are serialised inside zipfile; decompression runs in parallel.
        try:
            with self._zip_lock:
                member = self._zip.open(entry.key)
            try:
                return io.BytesIO(member.read())  # at most MAX_ZIP_MEMBER_BYTES
            finally:
                with self._zip_lock:
                    member.close()
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
            # bad CRC, encrypted member, unsupported compression method, short archive
            raise BadImage(f"unreadable zip member ({exc})") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ImageFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _hidden(parts: Sequence[str]) -> bool:
    # ".DS_Store", "._photo.jpg" (macOS resource forks), ".git/", "__MACOSX/", Windows' metadata
    return any(p.startswith(".") or p in ("__MACOSX", "Thumbs.db", "desktop.ini") for p in parts)


def _log_ignored(where: object, ignored: list[tuple[str, ...]]) -> None:
    # A class stored as .heic or .pcx would otherwise vanish without a word.
    if ignored:
        log.warning("%s: ignored %d file(s) with other suffixes (e.g. %s); images are %s",
                    where, len(ignored), "/".join(min(ignored)), " ".join(IMAGE_EXTENSIONS))


def _list_folder(root: Path) -> list[Entry]:
    entries, ignored = [], []
    visited: set[str] = set()
    # Follow symlinked sub-folders (a class folder linked in from elsewhere is part of the
    # dataset), but enter each real folder once, so a link loop (a/b -> a) ends.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            log.warning("skipped %s: it links to %s, which is already listed (a symlink loop or a second link)",
                        dirpath, real)
            dirnames.clear()
            continue
        visited.add(real)
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).parts  # as the user sees it, not the link target
        for name in filenames:
            parts = (*rel, name)
            if _hidden(parts):
                continue
            if not is_image_name(name):
                ignored.append(parts)
                continue
            full = os.path.join(dirpath, name)
            try:
                size = os.stat(full).st_size
            except OSError:  # broken symlink, vanished file: reported when decoding
                size = -1
            entries.append(Entry(parts, size, full, full))
    entries.sort(key=lambda e: e.parts)  # deterministic regardless of file system order
    _log_ignored(root, ignored)
    return entries


def _list_zip(archive: zipfile.ZipFile, path: Path) -> list[Entry]:
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise UsageError(f"{path} has {len(members)} members; at most {MAX_ZIP_MEMBERS} are allowed")
    entries, ignored = [], []
    seen: set[str] = set()
    for info in members:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise UsageError(
                f"{path}: refusing zip member {name!r}; absolute paths and '..' components are not allowed"
            )
        if info.file_size > MAX_ZIP_MEMBER_BYTES:
            raise UsageError(
                f"{path}: zip member {name!r} is {info.file_size} bytes uncompressed; "
                f"at most {MAX_ZIP_MEMBER_BYTES} bytes (64 MiB) are allowed"
            )
        if info.is_dir() or _hidden(parts):
            continue
        if not is_image_name(name):
            ignored.append(parts)
            continue
        if name in seen:
            # Members are opened by name, and zipfile returns the last of that name for both.
            raise UsageError(f"{path} holds two members named {name}: which is meant is unknowable; re-create the zip")
        seen.add(name)
        entries.append(Entry(tuple(parts), info.file_size, f"{path}:{name}", name))
    entries.sort(key=lambda e: e.parts)
    _log_ignored(path, ignored)
    return entries


def folder_labels(entries: Sequence[Entry], where: object) -> tuple[list[int] | None, list[str] | None]:
    """Class index per entry and the sorted class names, or (None, None) when unlabelled."""
    if not entries:
        return None, None
    # Deepest folder shared by every image: strip it so a wrapping "train/" does not count.
    common = list(entries[0].parts[:-1])
    for entry in entries[1:]:
        folders = entry.parts[:-1]
        while common and tuple(common) != folders[: len(common)]:
            common.pop()
    depth = len(common)
    if any(len(e.parts) - depth < 2 for e in entries):
        if any(len(e.parts) - depth >= 2 for e in entries):
            log.warning("%s has images both in sub-folders and directly inside; loading unlabelled", where)
        return None, None
    class_names = sorted({e.parts[depth] for e in entries})
    if len(class_names) < 2:
        return None, None  # one class carries no information
    index = {name: i for i, name in enumerate(class_names)}
    return [index[e.parts[depth]] for e in entries], class_names


def decode_entries(
    files: ImageFiles,
    entries: Sequence[Entry],
    work: Callable[[int, Image.Image], str | None],
    *,
    max_pixels: int,
    draft: tuple[str | None, int] | None = None,
    num_workers: int | None = None,
    stop_at_first_bad: bool = False,
) -> list[tuple[int, str]]:
    """Decode every entry on a thread pool; return (index, reason) of the bad ones, in order.

    `work(i, image)` runs in a worker thread on each decoded image: the loader writes row i
    of a preallocated array (distinct rows, so no locking); the checker inspects the mode.
    It returns None, or a reason that is reported like a bad file. With `stop_at_first_bad`
    the first bad entry in listing order is returned alone and pending work is cancelled.
    """

    def one(i: int) -> str | None:
        entry = entries[i]
        if entry.size == 0:
            return "zero-byte file"
        try:
            with files.open(entry) as fp:
                return work(i, open_image(fp, max_pixels=max_pixels, draft=draft))
        except BadImage as exc:
            return str(exc)
        except OSError as exc:  # permission denied, file vanished, ...
            return f"cannot read file ({exc.strerror or exc})"

    def chunk(indices: range) -> list[tuple[int, str]]:
        return [(i, reason) for i in indices if (reason := one(i)) is not None]

    workers = num_workers or _default_workers()
    # Chunks amortise the pool's per-task overhead (tens of microseconds) over many tiny
    # images, while still giving every worker several chunks to balance the load.
    size = max(1, min(256, len(entries) // (workers * 8)))
    chunks = [range(i, min(i + size, len(entries))) for i in range(0, len(entries), size)]
    bad: list[tuple[int, str]] = []
    # PIL warns (DecompressionBombWarning) before we can look at the size; open_image refuses
    # those files itself, so silence the duplicate warning while we decode.
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for found in pool.map(chunk, chunks):  # map yields in submission (= listing) order
            bad.extend(found)
            if stop_at_first_bad and bad:
                pool.shutdown(wait=True, cancel_futures=True)
                return bad[:1]
    return bad


def _default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        cores = os.cpu_count() or 1
    return max(1, min(16, cores))
