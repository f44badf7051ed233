"""ganforge: train, evaluate and apply generative adversarial networks for images."""

__version__ = "0.1.0"

# Lazy top-level API so `import ganforge` stays cheap (no torch import until needed): name -> module.
_LAZY = {"train": "training", "load_generator": "training", "generate": "sampling", "save_samples": "sampling",
         "get_preset": "presets", "PRESETS": "presets"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"ganforge.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")


def __dir__() -> list[str]:  # dir(ganforge) and tab completion list the lazy names too
    return sorted({*globals(), *_LAZY})
