"""Typed configuration and presets for training restoration networks (SR, denoising, inpainting).

One frozen :class:`RestoreConfig` made of small sections, like ``ganforge.config.RunConfig``:
every setting is declared once with its default, its unit in the name and a comment. The
CLI changes values with ``--set section.key=value`` through :func:`apply_overrides`, which
rejects unknown keys and badly typed values with a one-line :class:`UsageError`. The value
coercion and section parsing are ganforge.config's own helpers, reused here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ganforge.config import MAX_WIDTH, PRECISIONS, CheckpointConfig, _at_most, _choice, _positive, check_device_name, check_seed
from ganforge.configio import config_from_dict, override_config, sections_of
from ganforge.errors import UsageError
from ganforge.apps.degrade import MASK_KINDS, SR_SCALES, TASKS
from ganforge.device import MAX_THREADS
from ganforge.losses import LOSSES

PIXEL_LOSSES = ("l1", "l2", "psnr")
# model.arch per task (ganforge.apps.restore_models.ARCHS); the first is the task's default, used when arch is ""
TASK_ARCHS = {"sr": ("srresnet",), "denoise": ("dncnn", "unet"), "inpaint": ("iizuka", "unet")}
SCHEDULES = ("constant", "cosine", "step")
HOLE_FILLS = ("zero", "mean")
# keys that may change when a restoration run is resumed (the rest would change the experiment)
RESUMABLE_KEYS = ("train.progress", "train.log_every", "train.device", "train.threads", "checkpoint.every_steps",
                  "checkpoint.keep_last", "data.source")  # data.source: moved photos (the state's digest must match)
SKIMAGE_SOURCE = "skimage"  # data.source naming scikit-image's bundled sample photos
log = logging.getLogger("ganforge.restore")
# Size caps, far above every preset and shipped model (width 64, 20 blocks, D 64 x 3 layers), like the GAN's
# (ganforge.config.MAX_WIDTH, cli/train.py's MAX_PARAMETERS): past them a digit too many ends as "can't
# allocate memory" deep in the net's build, or as a build of 100,000 blocks that runs for minutes.
MAX_BLOCKS = 256  # sr residual blocks / DnCNN layers / U-Net res blocks per level (EDSR's largest: 32)
MAX_D_LAYERS = 8  # PatchGAN stride-2 convs: 8 halvings already need 768 px patches (the d_layers check below)
# G (+ D with an adversarial phase) parameters: 2**30 is 4 GiB of fp32 weights, about 16 GiB with gradients and
# Adam's moments; hundreds of times the presets' nets (inpaint-center's G, the largest: 5.8 M)
MAX_PARAMETERS = 2**30
# Batch caps: past them a typo (batch_size=1600 for 16, patch_size=12800 for 128) passed --dry-run and ended
# minutes later in "can't allocate memory" (the sampler's (8, 2, P, P) int64 grids alone are 128 P**2 bytes:
# 2 GiB at P = 4096) or swapped the machine. Far above every preset (32 x 128 px = 2**19 pixels a batch).
MAX_BATCH_SIZE = 4096  # patches per step
MAX_PATCH_SIZE = 1024  # side of a training patch (validation crops are data.val_crop, not capped by this)
MAX_BATCH_PIXELS = 2**24  # batch_size * patch_size**2: 16 M pixels, whose 64-channel fp32 activations are 4 GiB a layer


@dataclass(frozen=True)
class RestoreDataConfig:
    source: str = SKIMAGE_SOURCE  # "skimage" (scikit-image's sample photos) or a folder / .zip of photos
    patch_size: int = 128  # side of the target (HR / clean) training patch in pixels; SR inputs are patch_size/scale
    augment: bool = True  # random horizontal flips and 90-degree rotations of each patch
    rotate: bool = True  # augment with the rotations too; false = flips only, for upright data (CIFAR objects)
    pad: int = 0  # reflect-pad each training photo by this many pixels, so patches as large as the photo still shift
    # (CIFAR's classic 4 px translation augmentation; validation photos are not padded)
    channel_shuffle: bool = False  # permute each patch's RGB channels at random (6 orders): colour augmentation
    max_images: int = 0  # use only the first N photos in listing order (0 = all)
    val_images: int = 4  # photos held out (the last N) for the validation pass (0 = no validation)
    val_crop: int = 256  # validation uses the centre crop of this side of each held-out photo (0 = whole photo)
    shrink: float = 1.0  # scale every photo by this factor once at load (MATLAB bicubic, antialiased; 1 = native size): 0.5 turns
    # a JPEG's half-resolution (4:2:0) chroma and 8x8 block artefacts into clean full-resolution pixels
    on_device: bool = True  # keep the training photos on the training device and cut each batch there (false: on the CPU, moved per batch)


@dataclass(frozen=True)
class DegradeConfig:
    scale: int = 4  # sr: downscaling factor (2, 3, 4 or 8); LR = quantize(bicubic(HR, 1/scale))
    sigma: float = 25.0  # denoise: Gaussian noise std on the 0..255 scale (the top of the range when blind)
    sigma_min: float = 0.0  # denoise, blind: sigma ~ U(sigma_min, sigma) per image (DnCNN-B uses [0, 55])
    blind: bool = False  # denoise: train over a range of sigma instead of one level
    mask_kinds: str = "center"  # inpaint: comma list of center, boxes, strokes, square (one drawn per image)
    fill: str = "zero"  # inpaint: what the holes hold in the network input: zero | mean (of the known pixels)


@dataclass(frozen=True)
class RestoreNetConfig:
    width: int = 64  # feature channels of the restoration network G
    blocks: int = 16  # sr: residual blocks; denoise: conv layers (DnCNN depth) or, unet, res blocks per level; inpaint: dilated convs (2, 4, 8, ...)
    res_scale: float = 1.0  # sr: residual scaling inside each block (EDSR uses 0.1 for very wide nets)
    # "" = the task's default (TASK_ARCHS' first). sr: srresnet; denoise: dncnn | unet (DRUNet-style, 4 levels, width
    # doubling per level); inpaint: iizuka (encoder / dilated convs / decoder) | unet (the same with skips, down to 1/8)
    arch: str = ""
    # inpaint unet: zero-initialised residual blocks after the decoder's 1/4 and 1/2 levels; a net trained with
    # fewer loads into one with more through train.init_from and starts out computing the same (InpaintUNet)
    refine: int = 0
    noise_map: bool = False  # denoise: give G a sigma map as a 4th input channel (FFDNet); apply then needs sigma
    d_width: int = 64  # PatchGAN discriminator channels in its first layer (doubling per stride-2 layer, max 8x)
    d_layers: int = 3  # PatchGAN stride-2 convs (3 = the 70x70 pix2pix discriminator)
    d_spectral_norm: bool = True  # spectral norm on every D layer (Miyato et al. 2018) instead of batch norm


@dataclass(frozen=True)
class RestoreLossConfig:
    pixel: str = "l1"  # l1 | l2 | psnr (-PSNR per image, averaged): the pixel loss of phase 1 and the content loss of phase 2
    adv_kind: str = "ns"  # phase 2 adversarial loss from ganforge.losses: minimax | ns | lsgan | wgan | hinge
    adv_weight: float = 0.0  # phase 2 weight of G's adversarial loss (0 = no phase 2; SRGAN 1e-3, ESRGAN 5e-3)
    content_weight: float = 1.0  # phase 2 weight of the pixel loss
    feature_weight: float = 1.0  # phase 2 weight of the VGG perceptual loss, or of D feature matching without VGG
    perceptual_weights: str = ""  # local VGG19 weights (.safetensors or .pth state dict); empty = D feature matching


@dataclass(frozen=True)
class RestoreOptimConfig:
    lr: float = 2e-4  # phase 1 Adam learning rate of G
    lr_adv: float = 1e-4  # phase 2 Adam learning rate of G
    lr_d: float = 1e-4  # phase 2 Adam learning rate of D
    beta1: float = 0.9  # Adam beta1 (G and D)
    beta2: float = 0.99  # Adam beta2 (G and D)
    schedule: str = "cosine"  # constant | cosine (to 0 at the end of the phase) | step (x step_gamma every step_every)
    step_every: int = 20000  # schedule=step: multiply the LR by step_gamma every this many steps
    step_gamma: float = 0.5  # schedule=step: the factor
    grad_clip: float = 0.0  # clip G's (and D's) gradient norm to this (0 = no clipping)


@dataclass(frozen=True)
class RestoreTrainConfig:
    total_steps: int = 100000  # phase 1 (pixel loss) G updates; 0 only with init_from
    adv_steps: int = 0  # phase 2 (adversarial fine-tuning) G updates, each after one D update
    max_minutes: float = 15.0  # wall-clock budget of both phases (0 = none); split in proportion to the steps, time a phase leaves goes on
    batch_size: int = 16  # patches per step
    seed: int = 0  # seeds torch, the patch sampler and the degradations
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads (0 = torch's default)
    ema_decay: float = 0.999  # EMA of G's weights, saved and used for validation (0 = none)
    init_from: str = ""  # start G from this model / run folder (e.g. a sr-x4 run before srgan-x4's phase 2)
    log_every: int = 100  # metrics.jsonl row every N steps
    val_every: int = 2000  # validation PSNR every N steps (and at the end of each phase); 0 = end only
    progress: bool = True  # progress bar


@dataclass(frozen=True)
class RestorePerfConfig:
    precision: str = "auto"  # fp32 | bf16 (autocast; losses in fp32) | auto (bf16 where the hardware has it)
    channels_last: bool = True  # NHWC memory format (faster on CUDA and on AVX512-BF16 CPUs)
    fused_optim: bool = False  # fused Adam: one kernel updates every parameter (CUDA; CPU since torch 2.4)
    cudnn_benchmark: bool = True  # CUDA: cuDNN times its conv algorithms once per input shape and keeps the fastest


@dataclass(frozen=True)
class RestoreConfig:
    preset: str = "custom"  # name of the preset this config started from
    description: str = ""  # one line shown by the presets list
    task: str = "sr"  # sr | denoise | inpaint
    data: RestoreDataConfig = field(default_factory=RestoreDataConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    model: RestoreNetConfig = field(default_factory=RestoreNetConfig)
    loss: RestoreLossConfig = field(default_factory=RestoreLossConfig)
    optim: RestoreOptimConfig = field(default_factory=RestoreOptimConfig)
    train: RestoreTrainConfig = field(default_factory=RestoreTrainConfig)
    perf: RestorePerfConfig = field(default_factory=RestorePerfConfig)
    # resumable training states in RUN/checkpoints/ (the GAN trainer's section): every_steps counts all
    # steps of both phases; the states are deleted when the run completes (its model folder is then written)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


# section name -> its dataclass, e.g. "train" -> RestoreTrainConfig
SECTIONS: dict[str, type] = sections_of(RestoreConfig)


def to_dict(cfg: RestoreConfig) -> dict:
    return dataclasses.asdict(cfg)


def dumps(cfg: RestoreConfig) -> str:
    return json.dumps(to_dict(cfg), indent=2)


def from_dict(d: dict) -> RestoreConfig:
    """A RestoreConfig from a nested dict (e.g. a model's config.json); unknown keys are errors."""
    model = d.get("model") if isinstance(d, dict) else None
    if isinstance(model, dict) and model.get("arch") == "iizuka" and d.get("task") in ("sr", "denoise"):
        # configs written before arch had per-task values (2026-12-04) hold the old default "iizuka" for every
        # task; only inpainting ever read it, so for SR and denoising it means the task's one net of that time
        d = {**d, "model": {**model, "arch": ""}}
    return config_from_dict(d, RestoreConfig, validate)


def arch_of(cfg: RestoreConfig) -> str:
    """cfg.model.arch, or the task's default network when it is ""."""
    return cfg.model.arch or TASK_ARCHS[cfg.task][0]


def apply_overrides(cfg: RestoreConfig, overrides: list[str]) -> RestoreConfig:
    """Apply ``section.key=value`` strings; an unknown section or key names the allowed ones."""
    return override_config(cfg, overrides, validate)


def mask_kinds(cfg: RestoreConfig) -> tuple[str, ...]:
    """degrade.mask_kinds as a tuple, e.g. "boxes,strokes" -> ("boxes", "strokes")."""
    return tuple(k.strip() for k in cfg.degrade.mask_kinds.split(",") if k.strip())


def absolute_paths(cfg: RestoreConfig) -> RestoreConfig:
    """data.source, train.init_from and loss.perceptual_weights as absolute paths when they are relative
    paths that exist: the run's config.json is read again from other working directories (--resume, a
    later cycle's init_from), where a relative "photos" would name another folder, or none. A name that
    is not a local path ("skimage", a shipped model such as "sr-x4") stays as it is."""
    def absolute(path: str) -> str:
        p = Path(path).expanduser()
        return str(p.resolve()) if path and path != SKIMAGE_SOURCE and not p.is_absolute() and p.exists() else path

    return replace(cfg, data=replace(cfg.data, source=absolute(cfg.data.source)),
                   train=replace(cfg.train, init_from=absolute(cfg.train.init_from)),
                   loss=replace(cfg.loss, perceptual_weights=absolute(cfg.loss.perceptual_weights)))


def validate(cfg: RestoreConfig) -> RestoreConfig:
    """Check every value that can be checked without data or devices. Returns cfg unchanged."""
    check_model_size(check_values(cfg))  # last: check_values' caps keep this build quick
    return cfg


def check_values(cfg: RestoreConfig) -> RestoreConfig:
    """validate() without the parameter count, which builds the net (restore_models imports this
    module, so the presets below, built at import, are checked with this; a test counts theirs)."""
    d, g, m, lo, o, t = cfg.data, cfg.degrade, cfg.model, cfg.loss, cfg.optim, cfg.train
    _choice("task", cfg.task, TASKS)
    _positive("data.patch_size", d.patch_size)
    _in_range("data.patch_size", d.patch_size, MAX_PATCH_SIZE)
    if not 0 < d.shrink <= 1:
        raise UsageError(f"data.shrink={d.shrink} must be in (0, 1]: the factor every photo is scaled by when loaded (1 = native size)")
    for key in ("max_images", "val_images", "val_crop", "pad"):
        _positive(f"data.{key}", getattr(d, key), zero_ok=True)
    if cfg.task == "sr":
        if g.scale not in SR_SCALES:
            raise UsageError(f"degrade.scale={g.scale} is not allowed: use one of {', '.join(map(str, SR_SCALES))}")
        if d.patch_size % g.scale or d.patch_size // g.scale < 4:
            raise UsageError(f"data.patch_size={d.patch_size} must be a multiple of degrade.scale={g.scale} and at least {4 * g.scale}")
    if 0 < d.val_crop < min_val_crop(cfg):
        # validation_set cuts whole multiples of min_val_crop: a smaller crop is 0 x 0 pixels, which
        # failed with a traceback at the first validation, after the photos had loaded
        raise UsageError(f"data.val_crop={d.val_crop} is too small for task {cfg.task}"
                         f"{f' x{g.scale}' if cfg.task == 'sr' else ''}: use at least {min_val_crop(cfg)} "
                         "(validation crops are multiples of it), or 0 for the whole photo")
    if not 0.0 <= g.sigma_min <= g.sigma <= 255.0:
        raise UsageError(f"degrade.sigma_min={g.sigma_min} and degrade.sigma={g.sigma} need 0 <= sigma_min <= sigma <= 255")
    kinds = mask_kinds(cfg)
    if not kinds:
        raise UsageError(f"degrade.mask_kinds is empty: use a comma list of {', '.join(MASK_KINDS)}")
    for kind in kinds:
        _choice("degrade.mask_kinds", kind, MASK_KINDS)
    _choice("degrade.fill", g.fill, HOLE_FILLS)
    for key in ("width", "blocks", "d_width", "d_layers"):
        _positive(f"model.{key}", getattr(m, key))
    _at_most("model.width", m.width, MAX_WIDTH)
    _at_most("model.d_width", m.d_width, MAX_WIDTH)
    _at_most("model.blocks", m.blocks, MAX_BLOCKS)
    _at_most("model.d_layers", m.d_layers, MAX_D_LAYERS)
    _positive("model.res_scale", m.res_scale)
    if m.arch and m.arch not in TASK_ARCHS[cfg.task]:
        raise UsageError(f"model.arch={m.arch!r} is not allowed for task {cfg.task}: use one of {', '.join(TASK_ARCHS[cfg.task])} "
                         "(or leave it empty for the first)")
    if m.refine < 0 or (m.refine and (cfg.task, arch_of(cfg)) != ("inpaint", "unet")):
        raise UsageError(f"model.refine={m.refine} is not allowed here: it is 0, or a count of refine blocks for "
                         "task inpaint with model.arch=unet")
    _at_most("model.refine", m.refine, MAX_BLOCKS)  # refine=100000 built for minutes in check_model_size
    if cfg.task == "inpaint" and m.blocks > 8:
        raise UsageError(f"model.blocks={m.blocks} is too many dilated convs for inpaint (dilation 2**blocks): use 1 to 8")
    _choice("loss.pixel", lo.pixel, PIXEL_LOSSES)
    _choice("loss.adv_kind", lo.adv_kind, tuple(LOSSES))
    for key in ("adv_weight", "content_weight", "feature_weight"):
        _positive(f"loss.{key}", getattr(lo, key), zero_ok=True)
    for key in ("lr", "lr_adv", "lr_d", "step_every", "step_gamma"):
        _positive(f"optim.{key}", getattr(o, key))
    for key in ("beta1", "beta2"):
        if not 0.0 <= getattr(o, key) < 1.0:
            raise UsageError(f"optim.{key}={getattr(o, key)} must be in [0, 1)")
    _choice("optim.schedule", o.schedule, SCHEDULES)
    _positive("optim.grad_clip", o.grad_clip, zero_ok=True)
    _positive("train.total_steps", t.total_steps, zero_ok=bool(t.init_from))
    if t.total_steps == 0 and t.adv_steps == 0:
        raise UsageError("train.total_steps=0 and train.adv_steps=0: nothing to train")
    _positive("train.adv_steps", t.adv_steps, zero_ok=True)
    if t.adv_steps and lo.adv_weight == 0:
        raise UsageError(f"train.adv_steps={t.adv_steps} needs loss.adv_weight > 0 (phase 2 is adversarial)")
    for key in ("max_minutes", "threads", "val_every"):
        _positive(f"train.{key}", getattr(t, key), zero_ok=True)
    _at_most("train.threads", t.threads, MAX_THREADS)  # OpenMP fails or segfaults far below an int's range
    check_seed("train.seed", t.seed)  # torch.manual_seed and the sampler's generator take 64 bits
    for key in ("batch_size", "log_every"):
        _positive(f"train.{key}", getattr(t, key))
    _in_range("train.batch_size", t.batch_size, MAX_BATCH_SIZE)
    if t.batch_size * d.patch_size**2 > MAX_BATCH_PIXELS:
        raise UsageError(f"train.batch_size={t.batch_size} patches of data.patch_size={d.patch_size} are "
                         f"{t.batch_size * d.patch_size**2:,} pixels a step: at most {MAX_BATCH_PIXELS:,} (2**24) are "
                         f"allowed; use train.batch_size <= {max(MAX_BATCH_PIXELS // d.patch_size**2, 1)} or a smaller patch")
    check_device_name("train.device", t.device)
    if not 0.0 <= t.ema_decay < 1.0:
        raise UsageError(f"train.ema_decay={t.ema_decay} must be in [0, 1) (0 disables EMA)")
    _choice("perf.precision", cfg.perf.precision, PRECISIONS)
    _positive("checkpoint.every_steps", cfg.checkpoint.every_steps, zero_ok=True)
    _positive("checkpoint.keep_last", cfg.checkpoint.keep_last)
    if t.adv_steps and d.patch_size >> m.d_layers < 3:
        raise UsageError(f"model.d_layers={m.d_layers} halves data.patch_size={d.patch_size} below the 3 px the PatchGAN's "
                         f"last two convs need: use at most {max(d.patch_size // 3, 1).bit_length() - 1} layers "
                         f"(or a patch of at least {3 << m.d_layers})")
    return cfg


def _in_range(key: str, value: int, cap: int) -> None:
    """A positive size (checked before) must be at most ``cap``; the message gives the whole range."""
    if value > cap:
        raise UsageError(f"{key}={value} is too large: use 1 to {cap}")


def check_perceptual_weights(cfg: RestoreConfig, *, resuming: bool = False) -> None:
    """loss.perceptual_weights is read only by the adversarial phase (train.adv_steps > 0). A path
    that does not exist is refused when training starts (before the photos load; --dry-run too), also
    without that phase: a mistyped path in a config that trains no phase 2 was silently ignored, and
    would be copied on into the later cycles made from it. It cannot be checked in validate(), which
    also reads saved models' configs, whose VGG file may stay behind on the machine that trained them.
    A run being resumed cannot change the key, so there a missing file it never reads is only
    warned about; an existing file without the phase is warned about as unused."""
    path = cfg.loss.perceptual_weights
    if not path:
        return
    exists = Path(path).expanduser().is_file()
    if cfg.train.adv_steps and not exists:
        raise UsageError(f"loss.perceptual_weights={path!r} does not exist: give a local VGG19 state dict (.safetensors "
                         "or .pth), or leave it empty for D feature matching (nothing is downloaded)")
    if cfg.train.adv_steps:
        return
    unused = "only the adversarial phase reads it (train.adv_steps > 0), and this run has none"
    if not exists and not resuming:
        raise UsageError(f"loss.perceptual_weights={path!r} does not exist; {unused}: fix the path, or leave it "
                         "empty (--set loss.perceptual_weights=)")
    log.warning("loss.perceptual_weights=%r is %s: %s", path, "unused" if exists else "missing and unused", unused)


def min_val_crop(cfg: RestoreConfig) -> int:
    """The smallest data.val_crop (other than 0) that leaves validation a whole image: validation_set
    cuts multiples of 4 * scale for SR (whole LR pixels), of 4 for denoising and inpainting."""
    return 4 * (cfg.degrade.scale if cfg.task == "sr" else 1)


def count_parameters(cfg: RestoreConfig) -> tuple[int, int]:
    """(G's, D's) parameter counts, from nets built on the meta device (shapes only, no memory); D's is
    0 without an adversarial phase (no D is built). D is counted without spectral norm, whose set-up
    runs power iterations (over 100 ms on meta): the norm's weight_orig replaces each weight one for one."""
    import torch

    from ganforge.apps.restore_models import PatchDiscriminator, build_restorer  # imports this module

    with torch.device("meta"):
        g = sum(p.numel() for p in build_restorer(cfg).parameters())
        if not cfg.train.adv_steps:
            return g, 0
        m = cfg.model
        D = PatchDiscriminator(m.d_width, m.d_layers, spectral_norm=False)
        # its batch norms are in the real D only when spectral norm is off: counted only then
        d = sum(p.numel() for mod in D.modules() if isinstance(mod, torch.nn.Conv2d) or not m.d_spectral_norm
                for p in mod.parameters(recurse=False))
    return g, d


def check_model_size(cfg: RestoreConfig) -> None:
    """Refuse nets past MAX_PARAMETERS, naming the settings that size them: widths under MAX_WIDTH can
    still exceed it (a U-Net level doubles the width, D widens to 8x), and a build past it fails to allocate."""
    g, d = count_parameters(cfg)
    if g + d > MAX_PARAMETERS:
        m = cfg.model
        nets = f"G has {g:,} parameters (model.width={m.width}, model.blocks={m.blocks})" + (
            f" and D {d:,} (model.d_width={m.d_width}, model.d_layers={m.d_layers})" if d else "")
        raise UsageError(f"{nets}: at most {MAX_PARAMETERS:,} (2**30) {'together ' if d else ''}are allowed; "
                         f"use {'smaller widths or fewer layers' if d else 'a smaller width or fewer blocks'}")


# ----------------------------------------------------------------------------- presets
# Defaults aim at the GPU goal (about 15 minutes on one H100, bf16): SRResNet/EDSR-baseline width
# (64 x 16 blocks) for SR, DnCNN's 17 layers for denoising, an Iizuka-style completion net. Every
# preset also runs a short CPU trial with --set train.total_steps=... (and smaller widths).

def _preset(description: str, *, task: str, **sections: Any) -> RestoreConfig:
    return check_values(RestoreConfig(description=description, task=task, **sections))


def _inpaint(description: str, kinds: str) -> RestoreConfig:
    """Iizuka-style completion at width 64; L1, then a PatchGAN phase (Iizuka et al. weight the
    adversarial term 4e-4 against MSE; 4e-3 here against L1)."""
    return _preset(
        description, task="inpaint", data=RestoreDataConfig(patch_size=128), degrade=DegradeConfig(mask_kinds=kinds),
        model=RestoreNetConfig(width=64, blocks=4), loss=RestoreLossConfig(adv_weight=4e-3, feature_weight=0.0),
        train=RestoreTrainConfig(batch_size=32, total_steps=80000, adv_steps=20000),
    )


PRESETS: dict[str, RestoreConfig] = {
    "sr-x4": _preset(
        "x4 super-resolution: SRResNet without batch norm (EDSR-baseline size), L1, residual over bicubic.",
        task="sr", data=RestoreDataConfig(patch_size=128), degrade=DegradeConfig(scale=4),
        train=RestoreTrainConfig(batch_size=32),
    ),
    "sr-x2": _preset(
        "x2 super-resolution: the sr-x4 network with one pixel-shuffle stage, 96 px HR patches.",
        task="sr", data=RestoreDataConfig(patch_size=96), degrade=DegradeConfig(scale=2),
        train=RestoreTrainConfig(batch_size=32),
    ),
    "srgan-x4": _preset(
        "SRGAN-style x4: sr-x4's L1 phase, then adversarial fine-tuning with a PatchGAN (init_from a sr-x4 run to skip phase 1).",
        task="sr", data=RestoreDataConfig(patch_size=128), degrade=DegradeConfig(scale=4),
        loss=RestoreLossConfig(adv_kind="ns", adv_weight=5e-3, content_weight=1.0, feature_weight=1.0),
        train=RestoreTrainConfig(batch_size=32, total_steps=80000, adv_steps=20000),
    ),
    "denoise-s25": _preset(
        "Gaussian denoising at sigma 25: a 17-layer DnCNN (no batch norm) predicting the noise.",
        task="denoise", data=RestoreDataConfig(patch_size=64), degrade=DegradeConfig(sigma=25.0),
        model=RestoreNetConfig(width=64, blocks=17), optim=RestoreOptimConfig(lr=3e-4),
        train=RestoreTrainConfig(batch_size=64),
    ),
    "denoise-unet-s25": _preset(
        "Gaussian denoising at sigma 25: a DRUNet-style U-Net (4 levels, 32-256 ch, 2 res blocks each) predicting the noise.",
        task="denoise", data=RestoreDataConfig(patch_size=64), degrade=DegradeConfig(sigma=25.0),
        model=RestoreNetConfig(arch="unet", width=32, blocks=2), optim=RestoreOptimConfig(lr=3e-4),
        train=RestoreTrainConfig(batch_size=64),
    ),
    "denoise-blind": _preset(
        "Blind Gaussian denoising, sigma ~ U(0, 55) per image (DnCNN-B): one model for every level.",
        task="denoise", data=RestoreDataConfig(patch_size=64), degrade=DegradeConfig(sigma=55.0, sigma_min=0.0, blind=True),
        model=RestoreNetConfig(width=64, blocks=20), optim=RestoreOptimConfig(lr=3e-4),
        train=RestoreTrainConfig(batch_size=64),
    ),
    "inpaint-center": _inpaint(
        "Inpainting of a centre hole: encoder / dilated convs / decoder (Iizuka et al. 2017), L1 then PatchGAN.",
        # half exact centre holes, half jittered squares: a net trained on the exact hole alone loses
        # 3-7 dB when the hole is 1-4 px larger (docs/RESTORATION_training.md)
        "center,square"),
    "inpaint-free": _inpaint(
        "Free-form inpainting: random boxes and brush strokes, the inpaint-center network and schedule.", "boxes,strokes"),
}
# denoise: the U-Net since 2026-12-04 (50 CPU-minutes each: +1.7 dB validation PSNR over denoise-s25's DnCNN at
# step 2,000; docs/RESTORATION_training.md); denoise-s25 stays the DnCNN, so the commands written with it still hold
DEFAULT_PRESET = {"sr": "sr-x4", "denoise": "denoise-unet-s25", "inpaint": "inpaint-center"}


def get_preset(name: str, task: str | None = None) -> RestoreConfig:
    """The named preset (with .preset set), optionally checked to belong to ``task``."""
    names = [n for n, p in PRESETS.items() if task is None or p.task == task]
    if name not in names:
        raise UsageError(f"unknown {task + ' ' if task else ''}preset {name!r}: use one of {', '.join(names)}")
    return replace(PRESETS[name], preset=name)
