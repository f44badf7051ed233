"""What a run writes while it trains: metrics.jsonl rows, sample grids and the loss plot."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ganforge.errors import UsageError
from ganforge.io import atomic_write

log = logging.getLogger("ganforge.train")


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` (flushed each row). A write that fails
    (disk full, I/O error) is a one-line UsageError naming the file, as a failed checkpoint save is; a
    row cut half way is dropped when the run is resumed (checkpoint.trim_metrics)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._f = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"could not write {path}: {exc.strerror or exc}") from None

    def write(self, row: dict) -> None:
        try:
            self._f.write(json.dumps(row) + "\n")
            self._f.flush()
        except OSError as exc:
            raise UsageError(f"could not write {self.path}: {exc.strerror or exc}; the run goes on from its last "
                             "checkpoint with --resume once there is room") from None

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:  # a flush that failed has been reported by write(); close must not mask it
            pass


def read_metrics(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except ValueError:  # a line cut by a crash mid-write
                    continue
    return rows


def plot_losses(metrics_path: Path, out_png: Path) -> bool:
    """Loss curves (D and G losses, D(x) and D(G(z))) against G steps. Needs matplotlib
    (the ``plot`` extra); returns False and logs once if it is missing."""
    try:
        os.environ.setdefault("MPLBACKEND", "Agg")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no loss plot (pip install 'ganforge[plot]')")
        return False
    rows = [r for r in read_metrics(metrics_path) if "d_loss" in r]
    if not rows:
        return False
    steps = [r["step"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(steps, [r["d_loss"] for r in rows], label="D loss")
    ax1.plot(steps, [r["g_loss"] for r in rows], label="G loss")
    ax1.set_xlabel("G step")
    ax1.set_title("losses")
    ax1.legend()
    ax2.plot(steps, [r["d_real"] for r in rows], label="D(x)")
    ax2.plot(steps, [r["d_fake"] for r in rows], label="D(G(z))")
    ax2.set_xlabel("G step")
    ax2.set_title("discriminator outputs")
    ax2.legend()
    fig.tight_layout()
    atomic_write(out_png, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return True
