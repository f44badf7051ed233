"""Errors a user can cause. The CLI turns these into one line on stderr and exit code 2."""


class GanforgeError(Exception):
    """Base class for every error ganforge raises on purpose."""


class UsageError(GanforgeError):
    """A bad value, option, path or file given by the user (exit code 2, no traceback)."""
