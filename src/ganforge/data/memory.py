"""Refuse a dataset that cannot fit in memory before decoding it, not after.

The whole dataset is held as one uint8 (N, C, R, R) array. Allocating it is lazy on Linux, so an array
larger than the free memory (but smaller than RAM + swap) is handed out at once and only kills the
process (OOM) once decoding has filled it: often after the listing and decoding of every file, tens of
minutes of work. One larger than RAM + swap fails at once with numpy's MemoryError, which would be a
traceback. Both become one line that says how much is needed, how much is free, and what to lower.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError

GIB = 2**30
# what a dataset too large for memory should lower: load_images' argument, and training's key
MEMORY_FIX = "max_images (training: --set data.max_images=N) or the resolution"
MEMINFO = Path("/proc/meminfo")
# (folder, limit file, usage file, memory.stat key of the inactive page cache) of cgroup v2, then v1
CGROUPS = (
    (Path("/sys/fs/cgroup"), "memory.max", "memory.current", "inactive_file"),
    (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
)


def available_bytes() -> int | None:
    """Memory this process can still take: Linux's MemAvailable plus free swap, capped by a cgroup (v2 or
    v1) limit such as a container's, or None where it cannot be read (then nothing is refused)."""
    try:
        fields = dict(line.split(":", 1) for line in MEMINFO.read_text().splitlines() if ":" in line)
        free = (int(fields["MemAvailable"].split()[0]) + int(fields.get("SwapFree", "0 kB").split()[0])) * 1024
    except (OSError, KeyError, ValueError):
        return None
    for folder, limit_name, usage_name, inactive_key in CGROUPS:
        try:
            limit = (folder / limit_name).read_text().strip()
            usage = int((folder / usage_name).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" (v2) or a huge number (v1): no limit
            # the usage counts the page cache, which the kernel gives back: take out its inactive part, as
            # container tools do ("working set"), or a cache full of the dataset's own files would refuse it
            free = min(free, max(0, int(limit) - usage + _stat(folder / "memory.stat", inactive_key)))
        break
    return free


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def check_fits(shape: tuple[int, ...], what: str, fix: str, *, free: int | None = None) -> None:
    """Refuse a uint8 array of `shape` (N, ...) that exceeds the free memory. `what` names the dataset; `fix`
    says what to lower, e.g. "max_images (training: --set data.max_images=N) or the resolution"."""
    free = available_bytes() if free is None else free
    count, image_bytes = shape[0], int(np.prod(shape[1:], dtype=np.int64))
    if free is None or count * image_bytes <= free:
        return
    raise UsageError(f"{what}: {_need(shape)}, but only {_size(free)} of memory is free (about "
                     f"{free // max(1, image_bytes)} images fit): lower {fix}")


def allocate(shape: tuple[int, ...], what: str, fix: str) -> np.ndarray:
    """np.empty(shape, uint8) after check_fits; numpy's own MemoryError (beyond RAM + swap) reads the same."""
    check_fits(shape, what, fix)
    try:
        return np.empty(shape, dtype=np.uint8)
    except MemoryError:
        raise UsageError(f"{what}: {_need(shape)}, more than this machine can allocate: lower {fix}") from None


def _need(shape: tuple[int, ...]) -> str:
    # e.g. "200 images of 3 x 8192 x 8192 uint8 need 37.5 GiB"
    total = int(np.prod(shape, dtype=np.int64))
    return f"{shape[0]} images of {' x '.join(map(str, shape[1:]))} uint8 need {_size(total)}"


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
