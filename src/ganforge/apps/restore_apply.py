"""Saved restoration models and applying them: the model folder format, ``load_restorer``, the
``Restorer`` (tiling, self-ensemble, input checks). Restoring image files or folders is
ganforge.apps.restore_paths (``apply_to_path``).

A model folder holds ``config.json`` (the whole RestoreConfig under "restore", the network
settings under "model") and ``generator.safetensors`` (+ ``generator_ema.safetensors``), written
by ganforge.training.checkpoint's ``save_generator`` like every ganforge model; a run folder holds
one under ``model/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.nn import functional as F

from ganforge.apps.restore_config import RestoreConfig, from_dict, mask_kinds, to_dict
from ganforge.apps.restore_models import build_restorer
from ganforge.apps.tiling import check_tile
from ganforge.config import config_kind
from ganforge.errors import UsageError
from ganforge.io import atomic_write_bytes, atomic_write_json
from ganforge.training import checkpoint as ckpt

log = logging.getLogger("ganforge.restore")

KIND = "restoration"  # config.json "kind" of a restoration model folder


def run_net(G: nn.Module, task: str, inp: Tensor, mask: Tensor | None = None, sigma: Tensor | None = None) -> Tensor:
    """The network call of each task: sr G(lr); denoise G(noisy, sigma); inpaint G(image, mask)."""
    if task == "sr":
        return G(inp)
    if task == "denoise":
        return G(inp, sigma)
    return G(inp, mask)


def save_restorer(model_dir: str | Path, cfg: RestoreConfig, G: nn.Module, G_ema: nn.Module | None = None, **meta) -> Path:
    """Write a model folder (atomic writes; config.json last, so its presence means the folder is whole)."""
    return ckpt.save_generator(model_dir, cfg.model, G, G_ema, meta={"kind": KIND, "task": cfg.task, "restore": to_dict(cfg), **meta})  # type: ignore[arg-type]


def load_restorer_net(path: str | Path, *, ema: bool = True) -> tuple[nn.Module, RestoreConfig, dict]:
    """(G in eval mode on the CPU, its RestoreConfig, the config.json dict) from a model or run folder,
    or the name of a model shipped with ganforge (ganforge.apps.pretrained)."""
    from ganforge.apps.pretrained import resolve_model_path, shipped_names

    resolved = resolve_model_path(path)
    if not resolved.exists():
        shipped = ", ".join(shipped_names()) or "none installed"
        raise UsageError(f"{path} does not exist: give a model or run folder, or a shipped model ({shipped})")
    model_dir = ckpt.resolve_model_dir(resolved)
    try:
        meta = json.loads((model_dir / "config.json").read_text())
    except ValueError as exc:
        raise UsageError(f"{model_dir / 'config.json'} is not valid JSON: {exc}") from None
    if meta.get("kind") != KIND or "restore" not in meta:
        raise UsageError(f"{model_dir} holds a GAN generator, not a restoration model (train one with `ganforge sr|denoise|inpaint train`)")
    cfg = from_dict(meta["restore"])
    G = build_restorer(cfg)
    file = ckpt.weights_file(model_dir, ema)
    try:
        state = load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise UsageError(f"cannot read {file}: {exc}") from None
    ckpt.load_state_strict(G, state, source=file, cfg_desc=json.dumps(meta["model"]))
    return G.eval(), cfg, meta


def _saved_model_weights(folder: Path, meta: object) -> Path | None:
    """The weights file that makes ``folder`` a saved model (save_restorer's model/, an `export`, a GAN
    generator folder), or None for a run folder, whose weights are in model/. Its weights beside
    config.json are enough, so a model folder whose config.json was overwritten by a run config (the
    damage a --resume of one used to do) is still told apart; else its config (config.config_kind)."""
    for name in ("generator.safetensors", "generator_ema.safetensors"):
        if (folder / name).is_file():
            return folder / name
    if config_kind(meta) in ("restore-model", "generator"):
        return folder / "generator.safetensors"  # the file is missing, but the config says what it is
    return None


def read_restore_run(run_dir: str | Path) -> RestoreConfig:
    """The RestoreConfig a restoration run folder was trained with (its config.json). A saved model
    folder (RUN/model, an export) is refused: resuming it would write a run's config.json over the
    model's and a model/ inside it."""
    run_dir = Path(run_dir)
    try:
        meta = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {run_dir / 'config.json'}: {exc}") from None
    kind = config_kind(meta)
    weights = _saved_model_weights(run_dir, meta)
    if weights is not None:
        # the run folder: the one around RUN/model, or the one an export was made from (its "exported_from")
        source = Path(meta["exported_from"]) if isinstance(meta, dict) and isinstance(meta.get("exported_from"), str) else run_dir
        parent = source.resolve().parent
        holder = f" ({parent})" if source.resolve().name == ckpt.MODEL_DIR and (parent / "config.json").is_file() else ""
        if kind in ("generator", "gan"):
            raise UsageError(f"{run_dir} is a saved GAN generator (its weights are in {weights}), not a run folder: "
                             f"resume the run folder it comes from{holder} with `ganforge train --resume`")
        raise UsageError(f"{run_dir} is a saved model (its weights are in {weights}), not a run folder: resume the run "
                         f"folder it comes from{holder}, or train a new cycle from it with --set train.init_from={run_dir}")
    if kind != "restore":
        raise UsageError(f"{run_dir} is a GAN run, not a restoration run: resume it with `ganforge train --resume {run_dir}`")
    return from_dict(meta["restore"])


EXPORT_DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


def export_restorer(path: str | Path, out: str | Path, *, dtype: str = "fp16", ema: bool = True, task: str | None = None) -> Path:
    """Write a deployable model folder: config.json + one ``generator.safetensors`` holding only the
    inference weights (the EMA copy when the run kept one and ``ema``), floats stored as ``dtype``.

    A run's model/ keeps both the raw and the EMA weights in fp32; the export keeps one set, and fp16
    halves it again (the full-width inpainting net: 46 MB -> 11.6 MB). Loading casts back to fp32
    (load_state_dict copies across dtypes), so inference runs as before; the change in output is
    fp16 rounding of the weights (measured in docs/RESTORATION_training.md). ``out`` must be new
    or empty: nothing is overwritten. ``task``: refuse a model of another task (the CLI's check).
    """
    if dtype not in EXPORT_DTYPES:
        raise UsageError(f"--dtype {dtype!r} is not allowed: use one of {', '.join(EXPORT_DTYPES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not an empty folder: give a new path (nothing is overwritten)")
    # Written into a hidden sibling, then renamed: a failure leaves no half-written OUT to block a retry.
    # The sibling is made first, before the model loads, so an OUT that cannot be written (under a file,
    # in /proc, read-only) is a one-line error up front: as root, os.access() says yes to all of these.
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    made = _make_export_dirs(out, tmp)
    try:
        return _export_into(path, out, tmp, dtype=dtype, ema=ema, task=task)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in made:  # the parent folders made above (deepest first), if they are still empty
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # renamed to OUT when it worked


def _make_export_dirs(out: Path, tmp: Path) -> list[Path]:
    """Create ``tmp`` (and OUT's missing parent folders) -> the folders made, deepest first;
    a UsageError naming OUT when the place cannot be written."""
    missing = [p for p in out.parents if not p.exists()]  # deepest first
    existing = next((p for p in out.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"cannot write {out}: {existing} is a file, not a folder; give a path in a folder")
    made: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            made.insert(0, d)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        for d in made:
            with contextlib.suppress(OSError):
                d.rmdir()
        raise UsageError(f"cannot write {out}: {exc.strerror or exc} ({exc.filename or tmp}); give a writable path") from None
    return made


def _export_into(path: str | Path, out: Path, tmp: Path, *, dtype: str, ema: bool, task: str | None) -> Path:
    """export_restorer's work: load, convert, write into the made folder ``tmp``, rename it to ``out``."""
    G, cfg, meta = load_restorer_net(path, ema=ema)
    if task is not None and cfg.task != task:
        raise UsageError(f"{path} is a {cfg.task} model: use `ganforge {cfg.task} export`")
    state = ckpt.state_for_save(G, EXPORT_DTYPES[dtype])
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():  # an fp32 weight beyond fp16's range (65504)
            raise UsageError(f"{k} does not fit {dtype} (values beyond its range): export with --dtype fp32")
    from safetensors.torch import save

    from ganforge.apps.pretrained import resolve_model_path

    source = ckpt.resolve_model_dir(resolve_model_path(path))  # a shipped model's name -> its folder
    weights = ckpt.weights_file(source, ema)
    info = {**meta, "exported_from": str(source.resolve()), "weights": "ema" if weights.name.startswith("generator_ema") else "raw",
            "weights_dtype": dtype, "has_ema": False}  # one weight set, whichever it was
    try:
        atomic_write_bytes(tmp / "generator.safetensors", save(state))
        atomic_write_json(tmp / "config.json", info)
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except OSError as exc:  # a full disk, or OUT made by someone else meanwhile
        raise UsageError(f"cannot write {out}: {exc.strerror or exc} ({exc.filename or out})") from None
    return out


# Tile context in input pixels when none is given. A net with a wider reach sets its own ``tile_overlap``
# (the U-Net denoiser: 64, where its tiles equal the whole image in 8-bit output; the inpainting nets: 160
# at their 4 dilated blocks, their receptive-field radius; docs/RESTORATION_training.md).
DEFAULT_OVERLAP = 32
# Restorer(precision=...): fp32 (exact, the default); bf16 (autocast, the net channels-last: 2.7-3.2x faster for
# sr-x4 and denoise-s25 on an AVX512-BF16 CPU, 8-bit outputs at most one level from fp32's; docs/BENCHMARKS.md
# "Restoration inference on CPU"); auto (bf16 where native)
PRECISIONS = ("fp32", "bf16", "auto")
# tile="auto" (the default): the core tile side, in output pixels, for each task. An image whose network
# input covers more pixels than one such tile with its context is tiled; a smaller one runs whole. Untiled
# peaks measured on this CPU (2026-12-07, fp32): sr-x4 7.0 GiB for a 1000 x 750 input (600 bytes per output
# pixel: ~110 GiB for a 12 MP phone photo), inpaint-center 10.1 GiB and denoise-s25 3.8 GiB at 2048 x 2048.
# These sides kept one call at 2.4-3.6 GiB (docs/BENCHMARKS.md, "Restoration inference memory").
AUTO_TILE = {"sr": 2048, "denoise": 1536, "inpaint": 768}


def check_sigma(cfg: RestoreConfig, sigma: float | None) -> None:
    """Refuse a noise level the model would not read: any, for sr and inpainting; for a denoiser, a level
    that is not a number > 0, or any but its trained one unless it reads a noise-level map (model.noise_map).
    The rule of `ganforge denoise apply --sigma`; a fixed-level net given another level would ignore it."""
    if sigma is None:
        return
    if cfg.task != "denoise":
        raise UsageError(f"sigma={sigma!r} is the noise level of a denoiser; this is a {cfg.task} model: drop sigma")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
        raise UsageError(f"sigma={sigma!r} must be a finite number > 0: the noise level on the 0..255 scale")
    g = cfg.degrade
    if not cfg.model.noise_map and (g.blind or sigma != g.sigma):
        trained = f"blind over sigma {g.sigma_min:g}..{g.sigma:g}" if g.blind else f"for sigma {g.sigma:g}"
        raise UsageError(f"sigma {sigma:g} is for a denoiser trained with a noise-level map (model.noise_map=true); "
                         f"this model was trained {trained} and reads no level: drop --sigma (the sigma argument)")


class Restorer:
    """``restore(degraded (N, 3, h, w) in [0, 1], mask (N, 1, H, W) | None) -> (N, 3, H, W) in [0, 1]``.

    degraded: the LR image (sr), the noisy image (denoise) or the image with holes (inpaint; then
    ``mask`` is required, 1 = missing, and the known pixels of the result are exactly the input's).
    An image on another scale (0..255, [-1, 1]) or a mask beyond [0, 1] is a UsageError (``input_slack``).
    ``tile > 0`` runs the network tile by tile (ganforge.apps.tiling) with ``overlap`` input
    pixels of context; ``tile=0`` runs the whole image at once; ``tile="auto"`` (the default) tiles
    only an image too large to run whole in a few GB (``tile_for``). Attributes: task, scale (sr) and sigma (the noise level a fixed-level
    denoiser was trained for, or the one given for a noise-map model); None where not relevant.

    ``work_scale < 1`` (inpainting) runs the network on the image shrunk by that factor and
    upsamples its fill (bicubic): a net trained on 64-px holes fills a 120-px hole at its training
    scale (0.53) instead of one twice the size it learned. Known pixels stay the input's.
    ``work_scale="auto"`` picks the factor per call: (trained hole depth) / (the mask's hole depth),
    at most 1 (``auto_work_scale``); ``last_work_scale`` holds the factor the last call used.

    ``self_ensemble``: the mean of the network's outputs on the 8 rotations / flips of the input,
    each transformed back ("geometric self-ensemble", Lim et al. 2017, EDSR+); 8x the compute.
    A net trained without rotations (data.rotate=false or data.augment=false) averages the 2 flips only.

    ``precision``: fp32 (the default: the reference output); bf16 runs the net under bf16 autocast in
    NHWC memory (faster where bf16 is native; measured at most one 8-bit level off); auto picks bf16
    where it is native. bf16 where it is not native falls back to fp32 with a warning.
    """

    def __init__(self, net: nn.Module, cfg: RestoreConfig, *, device: str | torch.device = "cpu", tile: int | str = "auto",
                 overlap: int | None = None, sigma: float | None = None, work_scale: float | str = 1.0,
                 self_ensemble: bool = False, precision: str = "fp32"):
        if not isinstance(net, nn.Module):
            raise UsageError(f"Restorer needs the network as a torch nn.Module, got {type(net).__name__}: "
                             "for a saved model use load_restorer(PATH)")
        if not isinstance(cfg, RestoreConfig):
            raise UsageError(f"Restorer needs the model's RestoreConfig, got {type(cfg).__name__}")
        if precision not in PRECISIONS:
            raise UsageError(f"precision {precision!r} is not allowed: use one of {', '.join(PRECISIONS)}")
        from ganforge.device import resolve_device

        self.device = resolve_device(str(device), "device")  # one line for "gpu", "mps", cuda without CUDA
        if self.device.type == "cuda" and (self.device.index or 0) >= torch.cuda.device_count():
            raise UsageError(f"device={str(device)!r} but this machine has {torch.cuda.device_count()} CUDA device(s): "
                             "use cuda (the first), cpu or auto")
        if overlap is None:  # the net's own: the context at which its tiles equal the whole image (DEFAULT_OVERLAP)
            overlap = getattr(net, "tile_overlap", DEFAULT_OVERLAP)
        if tile != "auto" and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
            raise UsageError(f"tile={tile!r} must be an integer >= 0 (0 = the whole image) or 'auto'")
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
            raise UsageError(f"overlap={overlap!r} must be an integer >= 0 (input pixels of context around each tile)")
        check_tile(tile, overlap)  # before any image: a tile far below the overlap only multiplies the work
        if work_scale != "auto" and (isinstance(work_scale, bool) or not isinstance(work_scale, (int, float))
                                     or not 0 < work_scale <= 1):
            raise UsageError(f"work scale {work_scale!r} must be in (0, 1] or 'auto': the factor the image is shrunk by "
                             "before inpainting")
        if work_scale != 1 and cfg.task != "inpaint":
            raise UsageError(f"a work scale is for inpainting models; this is a {cfg.task} model")
        self.config = cfg
        self.task = cfg.task
        self.scale = cfg.degrade.scale if cfg.task == "sr" else None
        check_sigma(cfg, sigma)
        # How far outside [0, 1] an input may reach (__call__): 0.1 lets through a resampling filter's
        # overshoot while an image on the 0..255 or the [-1, 1] scale is refused. A denoiser's input may
        # carry unclipped Gaussian noise (the benchmark protocol, degrade.add_noise), so it gets 2, 6
        # standard deviations up to sigma 85, or more for a higher level given to a noise-map net; a
        # [-1, 1] image then passes, one on 0..255 still does not.
        self.input_slack = 0.1
        self.sigma: float | None = None
        if cfg.task == "denoise":
            self.sigma = float(sigma) if sigma is not None else (None if cfg.degrade.blind else cfg.degrade.sigma)
            if cfg.model.noise_map and self.sigma is None:
                raise UsageError("this denoiser was trained blind with a noise-level map: give the noise level (--sigma)")
            self.input_slack = max(2.0, 6 * (self.sigma or 0) / 255)
        from ganforge.training.perf import bf16_is_native

        native = precision != "fp32" and bf16_is_native(self.device)
        if precision == "bf16" and not native:
            log.warning("precision bf16 is not native on this %s (it would be emulated, slower): running fp32", self.device.type)
        self.precision = "bf16" if native else "fp32"  # what runs
        self.net = net.to(self.device).eval()
        if self.precision == "bf16":  # oneDNN's and cuDNN's bf16 convs are fastest on NHWC
            self.net = self.net.to(memory_format=torch.channels_last)
        self.tile, self.overlap, self.work_scale = tile, overlap, work_scale
        self.last_work_scale: float = 1.0 if work_scale == "auto" else float(work_scale)
        self.trained_depth: float | None = None  # inpainting: trained_hole_depth of its masks, set on first "auto" use
        self._auto_memo: tuple | None = None  # (weakref to the last mask, its _version, its scale): apply asks twice
        self.self_ensemble = bool(self_ensemble)
        # transforms averaged by self_ensemble: no rotations for a net that never saw any
        self.ensemble_size = 8 if cfg.data.augment and cfg.data.rotate else 2
        self.on_call: Callable[[], object] | None = None  # called after each network call (apply's progress bar)

    def _forward(self, x: Tensor) -> Tensor:
        # x: (N, 3, h, w), or (N, 4, H, W) for inpainting with the mask as the 4th channel
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                y = self._call(x.contiguous(memory_format=torch.channels_last)).float()
        else:
            y = self._call(x)
        if self.on_call is not None:
            self.on_call()
        return y

    def net_calls(self, h: int, w: int, mask: Tensor | None = None) -> int:
        """How many network calls restoring an h x w image makes: its tiles times the self-ensemble's
        transforms (rotating swaps h and w, which leaves the count alone). With work_scale "auto" the
        count depends on the hole: give its ``mask`` (without one the image is taken at full size)."""
        from ganforge.apps.tiling import tile_count

        if self.task == "inpaint":
            scale = self.auto_work_scale(mask) if self.work_scale == "auto" and mask is not None else self.work_scale
            if scale not in (1, "auto"):
                h, w = self._work_size(h, w, scale)
        return tile_count(h, w, self.tile_for(h, w)) * (self.ensemble_size if self.self_ensemble else 1)

    def auto_work_scale(self, mask: Tensor) -> float:
        """The work scale "auto" picks for ``mask`` (N, 1, H, W), 1 = missing: the net's trained hole
        depth over the mask's (the deepest of its images), but never below patch / min(H, W), since a
        net trained on patch x patch crops has never seen less context than that, and at most 1. A
        centre-trained CIFAR net (16 px hole in 32 px crops, depth 8) fills a 120 px centre hole
        (depth 60) in a 240 px image at 8/60 = 0.133, the factor measured best by hand
        (docs/RESTORATION_training.md), and a CIFAR image at full size."""
        import weakref

        from ganforge.apps.degrade import hole_depth, trained_hole_depth

        memo = self._auto_memo
        if memo is not None and memo[0]() is mask and memo[1] == mask._version:  # net_calls, then the call itself
            return memo[2]
        if self.trained_depth is None:
            self.trained_depth = trained_hole_depth(mask_kinds(self.config), self.config.data.patch_size)
        depth = max((hole_depth(m) for m in mask), default=0.0)  # each (1, H, W)
        floor = self.config.data.patch_size / min(mask.shape[-2:])
        scale = 1.0 if depth <= self.trained_depth else min(1.0, max(floor, self.trained_depth / depth))
        self._auto_memo = (weakref.ref(mask), mask._version, scale)
        return scale

    def _call(self, x: Tensor) -> Tensor:
        if self.task == "inpaint":
            return run_net(self.net, "inpaint", x[:, :3], mask=x[:, 3:])
        sigma = torch.full((x.shape[0],), (self.sigma or 0.0) / 255.0, device=x.device)
        return run_net(self.net, self.task, x, sigma=sigma)

    def tile_for(self, h: int, w: int) -> int:
        """The core tile side (input pixels; 0 = whole) for a network input of h x w: ``tile``, or under
        "auto" the task's AUTO_TILE side (divided by the SR scale) when the whole input covers more
        pixels than one such tile with its context on both sides, else 0."""
        if self.tile != "auto":
            return self.tile
        side = AUTO_TILE[self.task] // (self.scale or 1)
        return side if h * w > (side + 2 * self.overlap) ** 2 else 0

    def _run_once(self, x: Tensor) -> Tensor:
        tile = self.tile_for(*x.shape[-2:])
        if tile > 0:
            from ganforge.apps.tiling import tiled

            return tiled(self._forward, x, tile=tile, overlap=self.overlap, scale=self.scale or 1).float()
        return self._forward(x).float()

    def _run(self, x: Tensor) -> Tensor:
        """The network on x (whole or tiled; the self-ensemble mean if asked for), fp32 in [0, 1]."""
        if not self.self_ensemble:
            return self._run_once(x).clamp_(0, 1)  # in place: the net's own output, 16x the input's size for x4 SR
        total = None
        # rotations by k * 90 degrees, each without and with a horizontal flip (k = 0 only: the flips)
        for k in range(self.ensemble_size // 2):
            for flip in (False, True):
                t = x.rot90(k, dims=(-2, -1))
                t = t.flip(-1) if flip else t
                y = self._run_once(t)
                y = (y.flip(-1) if flip else y).rot90(-k, dims=(-2, -1))  # back to x's orientation
                total = y if total is None else total + y
        return total.div_(self.ensemble_size).clamp_(0, 1)

    @staticmethod
    def _work_size(h: int, w: int, scale: float) -> tuple[int, int]:
        """The size an h x w image is inpainted at (work scale ``scale`` < 1)."""
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _inpaint_shrunk(self, x: Tensor, m: Tensor, scale: float) -> Tensor:
        """Inpaint at work scale ``scale``: x (N, 3, H, W) with holes, m (N, 1, H, W) 1 = missing →
        (N, 3, H, W) whose hole pixels are the upsampled fill (the caller composites the known pixels)."""
        h, w = x.shape[-2:]
        size = self._work_size(h, w, scale)
        known = 1 - m
        # Area-average only the known pixels; a small pixel with any missing source pixel is
        # missing, so no hole value leaks into the shrunk context.
        k_small = F.adaptive_avg_pool2d(known, size)  # (N, 1, h', w'): known fraction
        m_small = (k_small < 1 - 1e-6).float()
        x_small = F.adaptive_avg_pool2d(x * known, size) / k_small.clamp_min(1e-6) * (1 - m_small)
        y_small = self._run(torch.cat([x_small, m_small], dim=1))
        y_small = m_small * y_small + (1 - m_small) * x_small  # (N, 3, h', w')
        return F.interpolate(y_small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)

    def _check_range(self, t: Tensor, what: str, slack: float, hint: str) -> None:
        """Refuse ``t`` with a value outside [-slack, 1 + slack] (or NaN): one aminmax pass over it."""
        if t.numel() == 0:
            return
        lo, hi = torch.stack(torch.aminmax(t)).tolist()
        if not (lo >= -slack and hi <= 1 + slack):  # False for NaN too
            raise UsageError(f"{what} must be in [0, 1], got values from {lo:g} to {hi:g}: {hint}")

    @torch.no_grad()
    def __call__(self, degraded: Tensor, mask: Tensor | None = None) -> Tensor:
        if not isinstance(degraded, Tensor):
            raise UsageError(f"restore needs a torch tensor, got {type(degraded).__name__}: images are float (N, 3, H, W) "
                             "in [0, 1], e.g. torch.from_numpy(rgb).permute(2, 0, 1)[None] / 255 for an (H, W, 3) uint8 array")
        if degraded.dim() != 4 or degraded.shape[1] != 3:
            raise UsageError(f"restore needs RGB images of shape (N, 3, H, W), got {tuple(degraded.shape)}")
        if not degraded.is_floating_point():
            raise UsageError(f"restore needs float images, got {degraded.dtype}: images are float (N, 3, H, W) in [0, 1] "
                             "(8-bit ones: x / 255)")
        x = degraded.to(self.device, torch.float32)
        hint = "divide 8-bit (0..255) images by 255; map [-1, 1] ones with (x + 1) / 2"
        if self.task != "inpaint":
            self._check_range(x, "images", self.input_slack, hint)
            return self._run(x).to(degraded.device)
        if not isinstance(mask, Tensor) or tuple(mask.shape) != (x.shape[0], 1, *x.shape[-2:]):
            got = tuple(mask.shape) if isinstance(mask, Tensor) else None if mask is None else type(mask).__name__
            raise UsageError(f"inpainting needs a mask tensor of shape ({x.shape[0]}, 1, {x.shape[2]}, {x.shape[3]}) (1 = missing), got {got}")
        m = mask.to(self.device, torch.float32)
        # m weights the fill against the known pixels below, so a mask read as 0/255 would scale them
        self._check_range(m, "masks (1 = missing, 0 = known)", 1e-6, "divide a 0/255 mask image by 255")
        # only the known pixels: the nets ignore what the holes hold (fill_holes)
        self._check_range(x * (1 - m), "images (their known pixels)", self.input_slack, hint)
        scale = self.auto_work_scale(m.cpu()) if self.work_scale == "auto" else float(self.work_scale)
        self.last_work_scale = scale
        y = self._inpaint_shrunk(x, m, scale) if scale != 1 else self._run(torch.cat([x, m], dim=1))
        return (m * y + (1 - m) * x).to(degraded.device)  # known pixels bit-exact (after the clamp)


def load_restorer(path: str | Path, *, device: str | torch.device = "cpu", tile: int | str = "auto", overlap: int | None = None,
                  sigma: float | None = None, ema: bool = True, work_scale: float | str = 1.0,
                  self_ensemble: bool = False, precision: str = "fp32") -> Restorer:
    """A Restorer from a model folder (config.json + safetensors), a run folder holding ``model/``, or
    the name of a shipped model (``load_restorer("sr-x4")``; ganforge.apps.pretrained). EMA weights
    are used when the run kept them (``ema=False``: the raw weights)."""
    G, cfg, _ = load_restorer_net(path, ema=ema)
    return Restorer(G, cfg, device=device, tile=tile, overlap=overlap, sigma=sigma, work_scale=work_scale,
                    self_ensemble=self_ensemble, precision=precision)
