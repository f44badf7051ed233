"""The named methods of `ganforge modes`: each is a few ToyConfig overrides on top of PacGAN's
2D setting (`vanilla`). They compose: a method is just a dict, and `best` merges several."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ganforge.errors import UsageError
from ganforge.modes.toy import ToyConfig


@dataclass(frozen=True)
class Method:
    name: str
    paper: str  # where the remedy comes from
    overrides: dict = field(default_factory=dict)  # ToyConfig field → value

    def config(self, steps: int) -> ToyConfig:
        return replace(ToyConfig(steps=steps), **self.overrides)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        # Goodfellow et al. 2014 with the non-saturating G loss; PacGAN's 2D networks and optimiser.
        Method("vanilla", "Goodfellow et al. 2014, NeurIPS"),
        # Lin et al. 2018, "PacGAN": D judges P samples at once (the 2D tables use P = 2, 3, 4).
        Method("pacgan", "Lin et al. 2018, NeurIPS (PacGAN)", {"pack": 4}),
        # Karras et al. 2018, "Progressive Growing of GANs": D sees the batch's feature stddev.
        Method("mbstd", "Karras et al. 2018, ICLR (minibatch stddev)", {"mbstd_group": 4}),
        # Mao et al. 2019, "Mode Seeking GANs": G maximises |ΔG(z)| / |Δz|.
        Method("msgan", "Mao et al. 2019, CVPR (MSGAN)", {"msgan_weight": 1.0}),
        # Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule": lr_D > lr_G.
        Method("ttur", "Heusel et al. 2017, NeurIPS (TTUR)", {"lr_d": 4e-4}),
        # Gulrajani et al. 2017, "Improved Training of WGANs"; λ = 0.1 as in their toy experiments.
        Method("wgan-gp", "Gulrajani et al. 2017, NeurIPS (WGAN-GP)", {"loss": "wgan", "gp_weight": 0.1}),
        # Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?".
        Method("r1", "Mescheder et al. 2018, ICML (R1)", {"r1_gamma": 0.1}),
        # Capacity: a twice-as-wide discriminator (Arora et al. 2017 relate D capacity to mode collapse).
        Method("wide-d", "Arora et al. 2017, ICML (capacity)", {"d_width": 400}),
        # Our recommendation at the 2,000-step CPU budget: TTUR alone was the strongest remedy in
        # the pilots (docs/MODE_COLLAPSE.md); packing and minibatch stddev compose with it.
        Method("best", "Heusel et al. 2017 (TTUR); chosen from our pilots, docs/MODE_COLLAPSE.md", {"lr_d": 4e-4}),
    )
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UsageError(f"unknown method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]
