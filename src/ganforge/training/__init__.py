"""The training loop and what it writes."""

from ganforge.training.checkpoint import load_generator
from ganforge.training.loop import train

__all__ = ["load_generator", "train"]
