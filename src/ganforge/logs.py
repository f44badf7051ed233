"""Logging helpers shared by the metrics, training and restoration (light to import: logging only)."""

from __future__ import annotations

import logging


class WarnOnce(logging.Filter):
    """Lets each distinct warning through once. Periodic evaluation and compare repeat evaluate() on
    the same inputs, so a warning about them (an ``eval.ref`` of another size, an FID from a small
    set) would otherwise repeat at every evaluation; a restoration folder is read twice (checked,
    then restored), so would each file's warnings."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True
