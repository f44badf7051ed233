"""Errors a user can cause. The CLI turns these into one line on stderr and exit code 2."""

import numbers


class GanforgeError(Exception):
    """Base class for every error ganforge raises on purpose."""


class UsageError(GanforgeError):
    """A bad value, option, path or file given by the user (exit code 2, no traceback)."""


def is_int(value) -> bool:
    """An integer as a count, seed or index: Python's or numpy's, but not a bool (True would pass as 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
