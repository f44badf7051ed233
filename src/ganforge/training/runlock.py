"""One writer per run folder: ``RUN/run.lock``.

checkpoint.py's commit protocol assumes a run folder has a single writer. Two trainers in one
folder (two ``--resume RUN`` at once) corrupt it: the second trims the metrics rows the first
wrote, their states interleave, and each deletes the other's newer states as "an attempt that was
not continued". ``run_lock(run_dir)`` makes the second one stop, in one line, before it writes::

    with run_lock(run_dir):      # raises UsageError while another process holds it
        ...                      # write states, metrics, samples, model/

The lock is a file created with O_CREAT|O_EXCL holding ``{"pid", "host", "started"}``, and its
holder keeps it ``flock``-ed until released. The kernel drops that flock when the holder dies
(kill -9, OOM), so a lock left behind by a dead process on this host is told apart from a live one
even if its pid was reused, and is taken over with a warning. Where flock is unavailable, a lock
of this host whose pid no longer runs counts as left behind. A lock from another host is never
taken over: its process cannot be checked from here, so the message says how to remove it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from ganforge.errors import UsageError

try:
    import fcntl
except ImportError:  # not POSIX: the pid check alone
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("ganforge.train")

LOCK_NAME = "run.lock"


def _flock(fd: int, *, wait: bool = False) -> bool | None:
    """Take an exclusive flock on ``fd``: True taken, False held by another open file, None where
    this system or file system has no flock (then the pid is the only check)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no safe probe (os.kill(pid, 0) is not a probe on Windows): assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a pid no process can have): not ours to judge
    return True


def _holder(fd: int) -> dict:
    """The lock file's {"pid", "host", "started"}, or {} while it is empty (being written) or unreadable."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"null")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else {}


def _left_behind(info: dict, flocked: bool | None) -> bool:
    """Whether the process that wrote ``info`` is gone, given that this process could flock the file."""
    if flocked is False or not info or info.get("host") != socket.gethostname():
        return False
    return flocked is True or not _pid_alive(info["pid"])


def _in_use(run_dir: Path, info: dict) -> UsageError:
    path = run_dir / LOCK_NAME
    if not info:
        return UsageError(f"{run_dir} is in use by another process ({path} is being written, or was left empty): "
                          f"wait for it, or delete {path} if no process is training in {run_dir}")
    return UsageError(f"{run_dir} is in use by pid {info['pid']} on {info.get('host', '?')} (started "
                      f"{info.get('started', '?')}): wait for it, or delete {path} if that process is gone")


def _open_existing(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None  # released meanwhile


def _still_at(fd: int, path: Path) -> bool:
    """``fd`` is still the file named ``path`` (not one its holder unlinked while we waited)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def check_run_lock(run_dir: str | Path) -> None:
    """Raise the UsageError ``run_lock`` would while another process holds ``run_dir``'s lock, taking
    nothing (``--dry-run``). A lock left behind by a dead process passes: the real run takes it over."""
    run_dir = Path(run_dir)
    fd = _open_existing(run_dir / LOCK_NAME)
    if fd is None:
        return
    try:
        flocked = _flock(fd)
        info = _holder(fd)
        if not _left_behind(info, flocked):
            raise _in_use(run_dir, info)
        log.info("%s: %s was left behind by pid %s, which no longer runs; training would take it over",
                 run_dir, LOCK_NAME, info.get("pid"))
    finally:
        os.close(fd)  # drops the flock taken to look


def acquire(run_dir: str | Path) -> int:
    """Take ``run_dir``'s lock and return its open file (hand it to ``release``); UsageError while
    another process holds it. Prefer ``run_lock``, which releases it however the block ends."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode()
    for _ in range(100):  # each pass ends unless the lock changed hands under it (a release, a takeover)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fd = _open_existing(path)
            if fd is None:
                continue
        except OSError as exc:
            raise UsageError(f"cannot create {path}: {exc.strerror or exc}") from None
        else:  # ours: flock it (a process judging the empty file holds it for a moment at most), then say whose
            try:
                _flock(fd, wait=True)
                os.write(fd, mine)
            except OSError as exc:  # disk full: leave no empty lock behind, which would read as in use
                release(run_dir, fd)
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
            return fd
        flocked = _flock(fd)
        info = _holder(fd)
        if not _left_behind(info, flocked):
            os.close(fd)
            raise _in_use(run_dir, info)
        if not _still_at(fd, path):
            os.close(fd)
            continue
        log.warning("%s: taking over %s from pid %s on %s (started %s), which no longer runs", run_dir, LOCK_NAME,
                    info["pid"], info["host"], info.get("started", "?"))
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine, 0)
        return fd
    raise UsageError(f"{run_dir}: could not take {path}: it keeps changing hands")


def release(run_dir: str | Path, fd: int) -> None:
    """Delete the lock file ``acquire`` returned (unless it was replaced meanwhile), then drop its flock."""
    path = Path(run_dir) / LOCK_NAME
    try:
        if _still_at(fd, path):
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``run_dir/run.lock`` for the block: a second writer gets a one-line UsageError naming the
    holder's pid, host and start time; a lock left by a dead process of this host is taken over with
    a warning. Yields the lock file's path."""
    fd = acquire(run_dir)
    try:
        yield Path(run_dir) / LOCK_NAME
    finally:
        release(run_dir, fd)
