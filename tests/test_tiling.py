"""Tiled inference (ganforge.apps.tiling): identical to untiled inference when the overlap covers
the network's receptive field, for scale 1 and scale 2; sizes that do not divide; bad arguments.

Run as a script to measure time and peak memory on a 4000x3000 image (docs/RESTORATION.md):
    python tests/test_tiling.py tiled|untiled|both [--tile 512] [--overlap 8]
Each mode needs its own process, because peak RSS (getrusage) only ever grows; "both" also runs
untiled inference afterwards and prints the largest difference.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.apps.tiling import tiled
from ganforge.errors import UsageError


def conv_net(layers: int = 3, width: int = 8, scale: int = 1, seed: int = 0) -> nn.Module:
    """3x3 convs with zero padding: receptive-field radius = layers input pixels (at scale 1)."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(layers - 2):
        mods += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    if scale > 1:
        mods += [nn.Upsample(scale_factor=scale, mode="nearest")]
    mods += [nn.Conv2d(width, 3, 3, padding=1)]
    return nn.Sequential(*mods).double().eval()


def image(h: int, w: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("tile,overlap", [(7, 0), (16, 5), (100, 3)])
def test_identity_is_exact(tile, overlap):
    x = image(37, 53)
    assert torch.equal(tiled(lambda t: t, x, tile=tile, overlap=overlap), x)


@pytest.mark.parametrize("h,w,tile", [(40, 40, 16), (37, 53, 12), (64, 20, 9)])
def test_conv_net_exact_when_overlap_covers_receptive_field(h, w, tile):
    net, x = conv_net(layers=3), image(h, w)
    with torch.no_grad():
        full = net(x)
    out = tiled(net, x, tile=tile, overlap=3)  # receptive-field radius of 3 stacked 3x3 convs
    assert out.shape == full.shape
    assert (out - full).abs().max().item() < 1e-12
    # With too little context the tile borders differ: the test above is not vacuous.
    short = tiled(net, x, tile=tile, overlap=1)
    assert (short - full).abs().max().item() > 1e-6


def test_scale_two_network():
    net, x = conv_net(layers=3, scale=2), image(30, 45)
    with torch.no_grad():
        full = net(x)
    # Two 3x3 convs before the x2 upsampling (radius 2) and one after (half an input pixel): 3 is enough.
    out = tiled(net, x, tile=8, overlap=3, scale=2)
    assert out.shape == (1, 3, 60, 90)
    assert (out - full).abs().max().item() < 1e-12


def test_untiled_and_one_tile_call_once():
    calls = []

    def fn(t):
        calls.append(tuple(t.shape))
        return t * 2

    x = image(10, 12)
    assert torch.equal(tiled(fn, x, tile=0, overlap=4), 2 * x)
    assert torch.equal(tiled(fn, x, tile=64, overlap=4), 2 * x)
    assert calls == [(1, 3, 10, 12), (1, 3, 10, 12)]


def test_tiles_cover_the_image_once_with_context():
    seen = []

    def fn(t):
        seen.append(tuple(t.shape[-2:]))
        return t

    tiled(fn, image(10, 25), tile=10, overlap=2)
    assert seen == [(10, 12), (10, 14), (10, 7)]  # cores 10, 10, 5 wide plus clipped context


def test_bad_arguments_and_bad_networks():
    x = image(8, 8)
    with pytest.raises(UsageError, match="tile"):
        tiled(lambda t: t, x, tile=-1, overlap=0)
    with pytest.raises(UsageError, match="overlap"):
        tiled(lambda t: t, x, tile=4, overlap=-2)
    with pytest.raises(UsageError, match="scale=2"):
        tiled(lambda t: t, x, tile=4, overlap=0, scale=2)  # the network did not upscale
    with pytest.raises(UsageError, match="N, C, H, W"):
        tiled(lambda t: t, x[0], tile=4, overlap=0)


@pytest.mark.parametrize("overlap,minimum", [(0, 8), (10, 8), (32, 8), (33, 9), (48, 12), (160, 40)])
def test_min_tile_is_a_quarter_of_the_overlap_and_at_least_8(overlap, minimum):
    from ganforge.apps.tiling import min_tile

    assert min_tile(overlap) == minimum


def test_restorer_refuses_a_tile_below_the_minimum_but_not_0_or_auto():
    from ganforge.apps.restore_apply import Restorer
    from ganforge.apps.restore_config import get_preset

    net, cfg = conv_net(scale=2).float(), get_preset("sr-x2")
    with pytest.raises(UsageError, match=r"--tile 1 is below the minimum 8 for an overlap of 32 px"):
        Restorer(net, cfg, tile=1)
    with pytest.raises(UsageError, match=r"--tile 9 is below the minimum 10 for an overlap of 40 px"):
        Restorer(net, cfg, tile=9, overlap=40)
    x = image(20, 30).float()
    whole = Restorer(net, cfg, tile=0)(x)
    for tile in (8, "auto"):  # the minimum itself is run, and exact (overlap 32 covers the 3 convs)
        assert torch.allclose(Restorer(net, cfg, tile=tile)(x), whole, atol=1e-6)


def _measure(mode: str, tile: int, overlap: int) -> None:  # pragma: no cover - a measuring script
    import resource
    import time

    torch.set_num_threads(1)
    net = conv_net(layers=3, width=16).float()
    x = torch.rand(1, 3, 3000, 4000)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    with torch.no_grad():
        out = net(x) if mode == "untiled" else tiled(net, x, tile=tile, overlap=overlap)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = f"{mode}: {seconds:.1f} s, peak RSS {peak:.0f} MiB (before the call {base:.0f} MiB)"
    if mode == "both":  # tiled (timed above) against untiled, whole image and away from the borders
        with torch.no_grad():
            full = net(x)
        diff = (out - full).abs()
        line += f", max |tiled - untiled| {diff.max().item():.2e} (whole image), {diff[..., 16:-16, 16:-16].max().item():.2e} (16 px from the image border)"
    print(line)


if __name__ == "__main__":  # pragma: no cover
    import argparse

    parser = argparse.ArgumentParser(description="time and peak memory of tiled vs untiled inference")
    parser.add_argument("mode", choices=["tiled", "untiled", "both"])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=8)
    args = parser.parse_args()
    _measure(args.mode, args.tile, args.overlap)
