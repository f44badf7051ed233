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
            self.entries, self.folders = _list_folder(path)
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise UsageError(f"{path} is not a readable .zip file ({exc})") from None
            try:
                self.entries, self.folders = _list_zip(self._zip, path)
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


# Folders and files that the system, not the user, put there (compared in lower case): macOS zips' resource
# forks, Windows' metadata, its recycle bin and restore points at a drive's root, and the thumbnails a
# Synology NAS keeps of every photo in "@eaDir" beside it (loaded, each photo would count 2-5 more times).
SYSTEM_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini", "$recycle.bin", "system volume information", "@eadir"})


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".7z", ".rar", ".npz")


def _hidden(parts: Sequence[str]) -> bool:
    # ".DS_Store", "._photo.jpg" (macOS resource forks), ".git/", and SYSTEM_NAMES
    return any(p.startswith(".") or p.lower() in SYSTEM_NAMES for p in parts)


def _log_ignored(where: object, ignored: list[tuple[str, ...]]) -> None:
    # A class stored as .heic or .pcx would otherwise vanish without a word.
    if ignored:
        log.warning("%s: ignored %d file(s) with other suffixes (e.g. %s); images are %s",
                    where, len(ignored), "/".join(min(ignored)), " ".join(IMAGE_EXTENSIONS))
    archives = [parts for parts in ignored if parts[-1].lower().endswith(ARCHIVE_SUFFIXES)]
    if archives:  # a zip of zips (one per class, say) would otherwise look like a few stray files
        log.warning("%s: %d archive(s) inside (e.g. %s) are not opened: unpack them into folders to use their images",
                    where, len(archives), "/".join(min(archives)))


def _list_folder(root: Path) -> tuple[list[Entry], set[tuple[str, ...]]]:
    """The image entries below `root`, and every folder (path parts) listed, empty ones too."""
    entries, ignored = [], []
    folders: set[tuple[str, ...]] = set()
    visited: set[str] = set()
    # Follow symlinked sub-folders (a class folder linked in from elsewhere is part of the
    # dataset), but enter each real folder once, so a link loop (a/b -> a) ends.
    def unlisted(exc: OSError) -> None:
        # os.walk skips a folder it cannot list without a word: a class folder without read permission
        # would vanish from the dataset (and shift every later class's index)
        log.warning("cannot list %s (%s): its images are left out", exc.filename, exc.strerror or exc)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unlisted):
        real = os.path.realpath(dirpath)
        if real in visited:
            log.warning("skipped %s: it links to %s, which is already listed (a symlink loop or a second link)",
                        dirpath, real)
            dirnames.clear()
            continue
        visited.add(real)
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).parts  # as the user sees it, not the link target
        if not _hidden(rel):
            folders.add(rel)
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
    return entries, folders


def _list_zip(archive: zipfile.ZipFile, path: Path) -> tuple[list[Entry], set[tuple[str, ...]]]:
    """As _list_folder: the image members, and every folder named by a member (its own or a parent)."""
    members = archive.infolist()
    folders: set[tuple[str, ...]] = set()
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
        if _hidden(parts):
            continue
        folders.update(parts[:k] for k in range(len(parts) if info.is_dir() else len(parts) - 1, -1, -1))
        if info.is_dir():
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
    return entries, folders


def folder_labels(
    entries: Sequence[Entry], where: object, folders: set[tuple[str, ...]] | None = None
) -> tuple[list[int] | None, list[str] | None]:
    """Class index per entry and the sorted class names, or (None, None) when unlabelled. `folders`
    (ImageFiles.folders): every folder listed, so class folders without an image can be named."""
    if not entries:
        return None, None
    # Deepest folder shared by every image: strip it so a wrapping "train/" does not count.
    common = list(entries[0].parts[:-1])
    for entry in entries[1:]:
        parents = entry.parts[:-1]
        while common and tuple(common) != parents[: len(common)]:
            common.pop()
    depth = len(common)
    loose = [e for e in entries if len(e.parts) - depth < 2]  # images beside the class folders, not in one
    if loose:
        if len(loose) < len(entries):  # one stray cover.jpg unlabels a whole class tree: name it
            log.warning("%s has images both in sub-folders and directly inside (%d of %d, e.g. %s); loading "
                        "unlabelled: for class labels, move or delete those", where, len(loose), len(entries),
                        loose[0].display)
        return None, None
    class_names = sorted({e.parts[depth] for e in entries})
    if len(class_names) < 2:
        return None, None  # one class carries no information
    _warn_if_splits(class_names, where, common)
    if folders is not None:
        _warn_if_imageless_folders(class_names, folders, common, where)
    index = {name: i for i, name in enumerate(class_names)}
    return [index[e.parts[depth]] for e in entries], class_names


# Folder names of a dataset's splits (Kaggle, torchvision, Hugging Face exports): a root holding two of them
# is a dataset root, not a class tree, and loading it labels every image by its split.
SPLIT_NAMES = frozenset({"train", "training", "test", "testing", "val", "valid", "validation", "dev", "eval"})


def _warn_if_splits(class_names: Sequence[str], where: object, common: Sequence[str]) -> None:
    splits = [name for name in class_names if name.lower() in SPLIT_NAMES]
    if len(splits) < 2:
        return
    train = next((n for n in splits if n.lower().startswith("train")), splits[0])
    if str(where).lower().endswith(".zip"):  # a zip cannot be given with a folder inside it
        fix = f"zip one split's folder ({'/'.join([*common, train])}) alone"
    else:
        fix = f"give its folder ({os.path.join(str(where), *common, train)})"
    log.warning("%s: the class folders %s look like dataset splits, not classes: their images are all loaded "
                "together and labelled by split; to train on one split, %s", where, ", ".join(splits), fix)


def _warn_if_imageless_folders(
    class_names: Sequence[str], folders: set[tuple[str, ...]], common: Sequence[str], where: object
) -> None:
    # An empty class folder is no class: the others keep their sorted order without it, so the class count,
    # and the index of every class after it, are not what the folder tree suggests.
    depth = len(common)
    beside = sorted({f[depth] for f in folders if len(f) > depth and list(f[:depth]) == list(common)} - set(class_names))
    if beside:
        names = ", ".join(beside[:10]) + (", ..." if len(beside) > 10 else "")
        log.warning("%s: folder(s) %s beside the class folders hold no images, so they are no class: the %d classes "
                    "are %s", where, names, len(class_names), ", ".join(class_names[:10]) + (", ..." if len(class_names) > 10 else ""))


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
