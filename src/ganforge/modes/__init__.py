"""Mode collapse on the benchmarks of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

``toy``       2D data (ring8, grid25), PacGAN's networks and the per-trial reference trainer
``ensemble``  T trials trained at once as one batched ensemble; unrolled GAN (Metz et al. 2017)
``metrics``   modes captured, high-quality fraction, reverse KL
``drs``       discriminator rejection sampling after training (Azadi et al. 2019)
``methods``   the named 2D remedies as small override dicts
``bench``     trials, mean ± standard error, scatter plots, the comparison table
``stacked``   Stacked MNIST (1000 modes) trained with ganforge's own loop, read by mnist-clf
"""

from ganforge.modes.ensemble import Ensemble, generate_ensemble, train_ensemble
from ganforge.modes.metrics import ModeStats, mode_stats
from ganforge.modes.toy import BENCHMARKS, Benchmark, ToyConfig, train_toy

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "Ensemble",
    "ModeStats",
    "ToyConfig",
    "generate_ensemble",
    "mode_stats",
    "train_ensemble",
    "train_toy",
]
