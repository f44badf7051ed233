"""Throughput benchmarks: ganforge's training step against a plain eager PyTorch reference.

    from ganforge.bench import bench_train, bench_sample
    result = bench_train(get_preset("dcgan-mnist"), batch=64, device=torch.device("cpu"))

``ganforge bench train`` / ``ganforge bench sample`` print these results (``--json`` for the
raw object). What each number means: ``bench/measure.py``.
"""

from ganforge.bench.run import bench_sample, bench_train

__all__ = ["bench_sample", "bench_train"]
