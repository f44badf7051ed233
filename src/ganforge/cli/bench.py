"""`ganforge bench train` and `ganforge bench sample`: throughput of ganforge's path against eager PyTorch."""

from __future__ import annotations

import json

import click

from ganforge.errors import UsageError


def _setup(preset_name: str, batch: int, steps: int, repeats: int, device: str):
    """Validate the shared options (one-line UsageError, exit 2) and return (config, device)."""
    import torch

    from ganforge.bench.run import check_bench_args
    from ganforge.presets import get_preset
    from ganforge.device import resolve_device

    cfg = get_preset(preset_name)  # unknown preset: UsageError listing the presets
    check_bench_args(batch, steps, repeats)  # --batch from 1 to MAX_BATCH
    dev = resolve_device(device, "--device")  # cuda without a GPU: UsageError
    return cfg, dev, torch


def _check_overrides(cfg, overrides: list[str], first: tuple[str, ...] = ()) -> None:
    """The --set values and the size of the nets they give, checked before any net is built
    (a width a digit too long would otherwise end as "can't allocate memory"; --batch has its
    own cap). ``first``: the bench's own settings, applied before the user's."""
    from ganforge.bench.run import check_bench_overrides
    from ganforge.cli.train import check_model_size
    from ganforge.config import apply_overrides

    check_bench_overrides(overrides)  # no train.batch_size etc.: the options set those
    check_model_size(apply_overrides(cfg, [*first, *overrides]).model)


def _echo(result: dict, as_json: bool, lines: list[str]) -> None:
    click.echo(json.dumps(result, indent=2) if as_json else "\n".join(lines))


@click.group("bench")
def bench_cmd() -> None:
    """Measure training and sampling throughput (img/s, TFLOP/s, FLOP utilisation, memory)."""


@bench_cmd.command("train")
@click.option("--preset", "preset_name", required=True, help="Preset whose nets, loss and perf settings are timed.")
@click.option("--batch", type=int, required=True, help="Global batch size (train.batch_size), 1 to 65536.")
@click.option("--steps", type=int, default=10, show_default=True, help="G steps per timed repeat.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Timed repeats; the median is reported.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed G steps before timing.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config override for ganforge's path, e.g. perf.precision=fp32.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def bench_train_cmd(preset_name, batch, steps, repeats, warmup, device, overrides, as_json) -> None:
    """Time ganforge's training step against a plain eager fp32 PyTorch loop of the same nets.

    \b
    Examples:
      ganforge bench train --preset dcgan-mnist --batch 64
      ganforge bench train --preset keras-dcgan-mnist --batch 256 --json
      ganforge bench train --preset sngan-cifar10 --batch 64 --device cuda --set perf.precision=fp32
    """
    from ganforge.bench import bench_train

    cfg, dev, torch = _setup(preset_name, batch, steps, repeats, device)
    if warmup < 0:
        raise UsageError(f"--warmup {warmup} must be >= 0")
    _check_overrides(cfg, list(overrides), (f"train.batch_size={batch}",))  # the order bench_train applies them in
    r = bench_train(cfg, batch=batch, device=dev, steps=steps, repeats=repeats, warmup=warmup, overrides=tuple(overrides))
    ref, fast = r["reference"], r["fast"]
    counted = r["flops_per_iter"] is not None  # None with a gradient penalty (bench.measure.count_flops)

    def rate(p: dict) -> str:
        if not counted:
            return f"{p['peak_mem_mb']:.0f} MB"
        return f"{p['tflops']:.4f} TFLOP/s ({100 * p['util']:.1f}% of {p['precision']} matmul peak) {p['peak_mem_mb']:.0f} MB"

    _echo(r, as_json, [
        f"{r['preset']} batch {batch} on {r['device']} ({r['threads']} threads, torch {r['torch']}); "
        + (f"{r['flops_per_iter'] / 1e9:.2f} GFLOP per iteration" if counted
           else "FLOPs not counted (PyTorch's counter cannot follow a gradient penalty's autograd.grad)"),
        *(f"  {name:<9} {p['precision']:<4} {p['img_per_s']:>10.1f} img/s {p['steps_per_s']:>8.3f} steps/s {rate(p)}"
          for name, p in (("reference", ref), ("ganforge", fast))),
        f"  ratio ganforge / reference: {r['ratio']:.2f}x   (memory: {r['peak_mem_kind']})",
    ])


@bench_cmd.command("sample")
@click.option("--preset", "preset_name", required=True, help="Preset whose generator is timed.")
@click.option("--batch", type=int, required=True, help="Images per forward pass, 1 to 65536.")
@click.option("--steps", type=int, default=10, show_default=True, help="Forward passes per timed repeat.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Timed repeats; the median is reported.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config override, e.g. model.resolution=64.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def bench_sample_cmd(preset_name, batch, steps, repeats, device, overrides, as_json) -> None:
    """Time generator inference: eager fp32 against bf16 autocast, and the time to the first batch.

    \b
    Examples:
      ganforge bench sample --preset dcgan-mnist --batch 256 --json
      ganforge bench sample --preset dcgan-cifar10 --set model.resolution=64 --batch 2048 --device cuda
    """
    from ganforge.bench import bench_sample

    cfg, dev, _ = _setup(preset_name, batch, steps, repeats, device)
    _check_overrides(cfg, list(overrides))
    r = bench_sample(cfg, batch=batch, device=dev, steps=steps, repeats=repeats, overrides=tuple(overrides))
    _echo(r, as_json, [
        f"{r['preset']} G inference, batch {batch} on {r['device']} ({r['threads']} threads): first batch after {r['time_to_first_batch_s']:.3f} s",
        f"  eager fp32 {r['eager_fp32']['img_per_s']:>10.1f} img/s",
        f"  {r['fast']['precision']:<10} {r['fast']['img_per_s']:>10.1f} img/s  ({r['ratio']:.2f}x)",
    ])
