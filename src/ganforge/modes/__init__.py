"""Mode collapse on the 2D benchmarks of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

``toy``      data (ring8, grid25), the PacGAN networks and one compact training function
``metrics``  modes captured, high-quality fraction, reverse KL
``methods``  the named remedies as small override dicts
``bench``    trials, mean ± standard error, scatter plots, the comparison table
"""

from ganforge.modes.metrics import ModeStats, mode_stats
from ganforge.modes.toy import BENCHMARKS, Benchmark, ToyConfig, train_toy

__all__ = ["BENCHMARKS", "Benchmark", "ModeStats", "ToyConfig", "mode_stats", "train_toy"]
