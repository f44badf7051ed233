"""ganforge: train, evaluate and apply generative adversarial networks for images."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy top-level API so `import ganforge` stays cheap (no torch import until needed).
    if name in ("train", "load_generator"):
        from ganforge import training

        return getattr(training, name)
    if name in ("generate", "save_samples"):
        from ganforge import sampling

        return getattr(sampling, name)
    if name in ("get_preset", "PRESETS"):
        from ganforge import presets

        return getattr(presets, name)
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
