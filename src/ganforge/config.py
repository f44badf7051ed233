"""Typed run configuration.

A run is described by one frozen :class:`RunConfig` made of small sections. Every
setting is declared once, here, with its default, its unit in the name and a comment.
Presets (``presets.py``) are RunConfigs written in Python; the CLI applies dotted
overrides such as ``--set train.batch_size=128`` with :func:`apply_overrides`, which
rejects unknown keys and badly typed values with a :class:`UsageError`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ganforge.configio import config_from_dict, override_config, override_key, to_dict
from ganforge.device import MAX_THREADS, is_device_name
from ganforge.errors import UsageError, is_int
from ganforge.models.config import ModelConfig, check_d_cond

LOSSES = ("minimax", "ns", "lsgan", "wgan", "hinge")
SCHEDULES = ("constant", "linear", "cosine")
OPTIMIZERS = ("adam", "rmsprop")
UPDATES = ("alternating", "simultaneous")
AUGMENTS = ("translation", "cutout", "color")
PRECISIONS = ("fp32", "bf16", "auto")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# eval.best_metric -> True when higher is better (keys of metrics/evaluation.py METRICS' values)
EVAL_DIRECTIONS = {"fid": False, "kid": False, "class_kl": False, "is": True, "precision": True, "recall": True,
                   "density": True, "coverage": True, "classes_covered": True, "label_agreement": True}
# keys that may change when a run is resumed (train.total_steps: a run can be extended; data.source: a moved
# dataset, which must hold the same images: training/loop.py check_same_images)
RESUMABLE_KEYS = ("train.total_steps", "train.progress", "train.log_every", "train.sample_every",
                  "checkpoint.every_steps", "checkpoint.keep_last", "train.device", "train.threads", "data.source")
EVAL_METRICS = ("fid", "kid", "is", "pr", "dc", "classes")
BAD_IMAGE_POLICIES = ("error", "skip")
NONFINITE_POLICIES = ("abort", "skip", "rollback")
ARCHS = ("mlp", "keras-dcgan", "dcgan", "resnet")
# Seeds go to torch.Generator.manual_seed, which takes at most 64 bits; 2**63 - 1 leaves room for the
# offsets the loop adds (fixed noise: seed + 12345) and keeps the value a signed 64-bit integer.
MAX_SEED = 2**63 - 1
# Evaluation seeds also seed numpy's legacy RandomState (KID subsets, subset draws), which takes 32 bits,
# and the reference subset uses seed + 1: so at most 2**32 - 2.
MAX_EVAL_SEED = 2**32 - 2
# Generous caps, far above every preset (z 128, width 256): a width a digit too long otherwise ends as
# "can't allocate memory" deep in the model build. Conv nets multiply the width by up to 8 per layer.
MAX_Z_DIM = 4096
MAX_WIDTH = 4096
# A sample grid is one G forward over all its images on the training device, drawn at the last step before
# its state is saved: a grid too large for memory (each image's activations, times 100,000) would fail there
# and lose the steps since the last checkpoint
MAX_SAMPLE_GRID = 1024  # a 32 x 32 grid


@dataclass(frozen=True)
class DataConfig:
    source: str = "mnist5k"  # dataset name (mnist5k, digits, lfw-faces) or a folder / .zip / .npz path
    max_images: int = 0  # use only the first N images (0 = all)
    hflip: bool = False  # random horizontal flip of real images
    on_device: bool = True  # keep the whole uint8 dataset on the training device as one tensor
    on_bad_image: str = "error"  # error | skip: what to do with an unreadable image file
    max_bad_fraction: float = 0.01  # with on_bad_image=skip: abort if more than this fraction of the files is bad
    use_labels: bool = True  # use folder/dataset labels when the model is conditional (false needs model.num_classes=0)


@dataclass(frozen=True)
class LossConfig:
    kind: str = "ns"  # minimax | ns (non-saturating) | lsgan | wgan | hinge
    gp_weight: float = 0.0  # WGAN-GP gradient penalty weight λ on interpolates (10 in Gulrajani et al.)
    r1_gamma: float = 0.0  # R1 penalty weight γ on real data (Mescheder et al. 2018); penalty is γ/2·|∇D|²
    reg_every: int = 1  # lazy regularisation: apply GP/R1 every k D steps, scaled by k (StyleGAN2)
    clip_value: float = 0.0  # WGAN weight clipping to [-c, c] after every D step (0.01 in Arjovsky et al.)
    msgan_weight: float = 0.0  # MSGAN mode-seeking term λ in G's loss (Mao et al. 2019; 1 in their code): pairs the batch's halves
    fm_weight: float = 0.0  # feature matching λ in G's loss (Salimans et al. 2016): mean D features of the last real batch vs fake
    # AC-GAN λ (model.d_cond ac or proj+ac): D's loss adds λ·CE(class head(real), y), G's adds λ·CE(class head(G(z, y)), y)
    ac_weight: float = 1.0
    # AC-GAN: D's class head also learns G's samples as their asked labels (Odena et al.'s original;
    # off = real images only, as StudioGAN). Measured on MNIST it let G and D agree on a code of their
    # own (label agreement at chance); for a D with batch norm, drop the norm instead (docs/AUGMENTATION.md)
    ac_on_fake: bool = False


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"  # adam | rmsprop (the original WGAN uses RMSprop)
    lr_g: float = 2e-4  # generator learning rate (TTUR: set lr_d != lr_g)
    lr_d: float = 2e-4  # discriminator learning rate
    beta1_g: float = 0.5  # Adam β1 of G (Radford et al. use 0.5)
    beta2_g: float = 0.999  # Adam β2 of G
    beta1_d: float = 0.5  # Adam β1 of D
    beta2_d: float = 0.999  # Adam β2 of D
    eps: float = 1e-8  # Adam/RMSprop ε (Keras uses 1e-7)
    schedule: str = "constant"  # constant | linear | cosine decay of both LRs over train.total_steps
    decay_start_step: int = 0  # LR stays constant until this G step, then decays to 0 at total_steps


@dataclass(frozen=True)
class TrainConfig:
    total_steps: int = 2000  # number of G updates (each preceded by n_critic D updates)
    batch_size: int = 64  # real images per D step (global batch)
    n_critic: int = 1  # D updates per G update
    update: str = "alternating"  # alternating (D then G) | simultaneous (one shared forward, as the Keras tutorial)
    # conditional: the classes asked of G, in the square roots of the training frequencies (sqrt), in
    # them (data) or uniform: the same on a balanced set; on a long tail sqrt trained most (docs/AUGMENTATION.md)
    fake_labels: str = "sqrt"
    seed: int = 0  # seeds python, numpy, torch and the data order
    deterministic: bool = False  # torch deterministic algorithms (bit-reproducible on CPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (not under torchrun: each process takes cuda:LOCAL_RANK)
    threads: int = 0  # torch CPU threads (0 = torch's default)
    ema_decay: float = 0.0  # EMA of G weights (e.g. 0.999); 0 = no EMA copy
    # use decay min(ema_decay, (1+t)/(10+t)) so early averages are not stale; ema_decay d itself is reached
    # only after (10d-1)/(1-d) updates (8,990 for 0.999), so a run shorter than that never uses it
    ema_warmup: bool = True
    unroll_steps: int = 0  # unrolled GAN (Metz et al. 2017): G's loss at D after k look-ahead Adam steps (0 = off)
    augment: str = ""  # DiffAugment policy for real and fake alike: comma list of translation,cutout,color
    log_every: int = 50  # write a metrics.jsonl row every N G steps (the only host sync in the loop)
    sample_every: int = 500  # write a sample grid from the fixed noise every N G steps (0 = end only)
    sample_grid: int = 100  # images in each sample grid (a square number looks best)
    progress: bool = True  # show a progress bar with ETA
    on_nonfinite: str = "abort"  # abort | skip | rollback: what a NaN/Inf loss or gradient does (docs/RELIABILITY.md)
    max_rollbacks: int = 3  # with on_nonfinite=rollback: give up (abort) after this many rollbacks
    world_size: int = 1  # must stay 1: multi-process runs take their process count from torchrun (training/distributed.py)


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 1000  # write a resumable training state every N G steps (0 = only at the end)
    keep_last: int = 2  # number of resumable states to keep (older ones deleted after the new one is written)


@dataclass(frozen=True)
class PerfConfig:
    precision: str = "fp32"  # fp32 | bf16 (autocast; losses and penalties stay fp32) | auto (bf16 where the hardware has it)
    channels_last: bool = False  # NHWC memory format for conv nets
    compile: bool = False  # torch.compile G's and D's forward passes (penalties' double backward stays eager)
    compile_mode: str = "default"  # torch.compile mode; reduce-overhead adds CUDA-graph capture on CUDA
    fused_optim: bool = False  # fused Adam kernels (one kernel per step for all parameters)
    d_concat: bool = False  # one D forward over real+fake concatenated (only for a D without batch statistics)
    sn_once: bool = False  # spectral norm: one explicit power iteration per D step, none inside forwards or G steps
    fast_dropout: bool = False  # CPU dropout masks from 16-bit lanes of 64-bit draws (4 elements per RNG call; nn/dropout.py)
    strict: bool = False  # a perf setting this machine cannot honour is an error (exit 2) instead of a warned fallback


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0  # score the generator (the EMA copy when kept) every N G steps and at the end (0 = never)
    metrics: str = "fid,pr,classes"  # comma list of fid, kid, is, pr, dc, classes (is/classes need a classifier evaluator)
    evaluator: str = "auto"  # feature extractor (`ganforge evaluator list`); auto = mnist-clf for 28 px grey, cifar10-clf for 32 px RGB
    ref: str = ""  # reference images (name / .npz / folder / .zip); empty = the training images
    n: int = 5000  # generated images per evaluation (and, with n_ref 0, at most this many reference images)
    n_ref: int = 0  # reference images: 0 = the first eval.n training images, or all of eval.ref; N = the first N training images, or N drawn from eval.ref
    seed: int = 0  # noise seed of the evaluation samples: the same images-to-be at every evaluation
    best_metric: str = "fid"  # keep best/ (a generator snapshot) by this value: fid, kid, is, precision, recall, ...
    warn_drop: float = 0.25  # warn (and log an event) when recall or classes covered falls this fraction below its best so far


@dataclass(frozen=True)
class RunConfig:
    preset: str = "custom"  # name of the preset this config started from
    description: str = ""  # one line shown by `ganforge presets`
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# section name -> its dataclass, e.g. "train" -> TrainConfig
SECTIONS: dict[str, type] = {
    name: typ for name, typ in typing.get_type_hints(RunConfig).items() if dataclasses.is_dataclass(typ)
}  # the same as sections_of(RunConfig)


# ----------------------------------------------------------------------------- conversion


def from_dict(d: dict) -> RunConfig:
    """Build a RunConfig from a nested dict (e.g. a run's config.json); unknown keys are errors."""
    return config_from_dict(d, RunConfig, validate)


# (section, key) -> the value a run saved without that key trained with: keys added with a default
# other than the behaviour before them, so such a run resumes, and is described, as it ran
OLD_DEFAULTS = {("train", "fake_labels"): "uniform"}  # sqrt since 2026-12-07 (docs/AUGMENTATION.md)


def config_kind(meta: object) -> str:
    """What a config.json holds, from its top-level keys: "gan" (a GAN run folder's: "run"),
    "restore" (a restoration run folder's: "restore"), "restore-model" (a saved restoration model:
    kind "restoration"), "generator" (a saved GAN generator, e.g. RUN/model: "model"), or "other"."""
    if not isinstance(meta, dict):
        return "other"
    if "run" in meta:
        return "gan"
    if meta.get("kind") == "restoration":
        return "restore-model"
    return "restore" if "restore" in meta else "generator" if "model" in meta else "other"


def _not_a_gan_run(path: Path, meta: object) -> str:
    """Why the config.json at ``path`` is not a GAN run's, and what the folder is instead."""
    folder, kind = path.parent, config_kind(meta)
    restore = meta.get("restore") if isinstance(meta, dict) else None
    task = str(restore.get("task", "sr")) if isinstance(restore, dict) else "sr"  # sr | denoise | inpaint
    if kind == "restore":
        return (f"{folder} is a restoration run ({task}), not a GAN run: resume it with "
                f"`ganforge {task} train --resume {folder}`")
    if kind == "restore-model":
        return f"{folder} is a saved restoration model ({task}), not a run folder: apply it with `ganforge {task} apply`"
    if kind == "generator":
        run = folder.parent if (folder.parent / "config.json").is_file() else None
        return (f"{folder} is a saved generator folder, not a run folder"
                + (f": give its run folder {run}" if run is not None else ""))
    return f"{path} is not a ganforge run config (it has no \"run\" section)"


def read_run_config(path: str | Path) -> RunConfig:
    """The RunConfig a run folder keeps in config.json (its "run" section). A missing, unreadable or
    foreign file is a UsageError naming it (and, for another ganforge folder, what it is)."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
        if config_kind(meta) != "gan":
            raise UsageError(_not_a_gan_run(path, meta))
        run = meta["run"]
        for (section, key), old in OLD_DEFAULTS.items():  # a run saved before the key existed ran with the old value
            if isinstance(run, dict) and isinstance(run.get(section), dict) and key not in run[section]:
                run[section][key] = old
        return from_dict(run)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{path} is not a ganforge run config: {exc}") from None


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.key=value`` strings; an unknown section or key names the allowed ones."""
    for item in overrides:
        # "" is a preset's "no dataset of its own" (presets.NEEDS_DATA): typed, it is a mistake, not that
        if "=" in item and override_key(item) == "data.source" and not item.split("=", 1)[1].strip():
            raise UsageError("--set data.source= is empty: give a dataset name (mnist5k, digits, lfw-faces) or an "
                             "image folder / .zip / .npz path, or leave it out for the preset's own dataset")
    return override_config(cfg, overrides, validate)


# ----------------------------------------------------------------------------- validation


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{key}={value!r} is not allowed: use one of {', '.join(allowed)}")


def check_device_name(option: str, value: object) -> None:
    """The syntax only (auto | cpu | cuda | cuda:N): a config may be written on one machine and run on
    another, so whether this machine has that GPU is checked when training starts (resolve_device)."""
    if not is_device_name(value):
        raise UsageError(f"{option}={value!r} is not allowed: use one of auto, cpu, cuda, cuda:N (N = 0, 1, ...)")


def _positive(key: str, value: float, *, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise UsageError(f"{key}={value} must be {'>= 0' if zero_ok else '> 0'}")


def _at_most(key: str, value: int, cap: int) -> None:
    if value > cap:
        raise UsageError(f"{key}={value} is too large: use at most {cap}")


def check_seed(key: str, seed: int, most: int = MAX_SEED) -> None:
    """A seed must be an integer that fits the 64-bit seed of torch's generators (see MAX_SEED), or
    for an evaluation seed numpy's 32-bit one (``most=MAX_EVAL_SEED``)."""
    if not is_int(seed) or not 0 <= seed <= most:
        bound = "2**63 - 1" if most == MAX_SEED else "2**32 - 2" if most == MAX_EVAL_SEED else str(most)
        raise UsageError(f"{key}={seed!r} is out of range: use an integer from 0 to {most} ({bound})")


def check_mbstd_group(group: int, batch_size: int, world_size: int = 1, pack: int = 1) -> None:
    """The minibatch-stddev layer (nn.MinibatchStdDev) splits each D forward's batch into groups of
    min(group, batch): that batch is one process's share of train.batch_size, packed m images to one
    (PacGAN), and the group must divide it. Checked here so a bad pair fails before a run folder exists."""
    if group <= 0 or batch_size % world_size or (batch_size // world_size) % pack:
        return  # off, or a bad split that check_batch_split reports
    seen = batch_size // world_size // pack
    if group < seen and seen % group:
        divisors = [str(k) for k in range(1, seen + 1) if seen % k == 0]
        shown = ", ".join(divisors if len(divisors) <= 8 else [*divisors[:7], "..."])
        split = f" / {world_size} processes" if world_size > 1 else ""
        packed = f" / model.pack={pack}" if pack > 1 else ""
        raise UsageError(
            f"model.mbstd_group={group} does not divide the {seen} samples D sees per forward "
            f"(train.batch_size={batch_size}{split}{packed}): use a divisor of {seen} ({shown}), "
            f"a group >= {seen} (the whole batch), or 0 (off)"
        )


def validate(cfg: RunConfig) -> RunConfig:
    """Check every value that can be checked without data or devices. Returns cfg unchanged."""
    d, m, lo, o, t, c, p = cfg.data, cfg.model, cfg.loss, cfg.optim, cfg.train, cfg.checkpoint, cfg.perf
    _choice("data.on_bad_image", d.on_bad_image, BAD_IMAGE_POLICIES)
    if not 0.0 <= d.max_bad_fraction <= 1.0:
        raise UsageError(f"data.max_bad_fraction={d.max_bad_fraction} must be in [0, 1]")
    _positive("data.max_images", d.max_images, zero_ok=True)
    _choice("model.arch", m.arch, ARCHS)
    check_d_cond(m)
    if m.num_classes and not d.use_labels:  # a conditional G and D take a label with every image
        raise UsageError(f"data.use_labels=false with model.num_classes={m.num_classes}: a conditional net trains on the "
                         "labels; set model.num_classes=0 to train without them (or data.use_labels=true)")
    if m.channels not in (1, 3):
        raise UsageError(f"model.channels={m.channels} is not allowed: use 1 (grayscale) or 3 (RGB)")
    for key in ("resolution", "z_dim", "g_width", "d_width", "pack"):
        _positive(f"model.{key}", getattr(m, key))
    _at_most("model.z_dim", m.z_dim, MAX_Z_DIM)
    _at_most("model.g_width", m.g_width, MAX_WIDTH)
    _at_most("model.d_width", m.d_width, MAX_WIDTH)
    for key in ("num_classes", "attention_res", "mbstd_group"):
        _positive(f"model.{key}", getattr(m, key), zero_ok=True)
    if not 0.0 <= m.d_dropout < 1.0:
        raise UsageError(f"model.d_dropout={m.d_dropout} must be in [0, 1)")
    _choice("loss.kind", lo.kind, LOSSES)
    for key in ("gp_weight", "r1_gamma", "clip_value", "msgan_weight", "fm_weight"):
        _positive(f"loss.{key}", getattr(lo, key), zero_ok=True)
    if lo.fm_weight > 0 and (t.update != "alternating" or t.unroll_steps > 0):
        raise UsageError(f"loss.fm_weight={lo.fm_weight} matches D's features of the D step's real batch: it needs "
                         f"train.update=alternating and train.unroll_steps=0 (got {t.update!r}, {t.unroll_steps})")
    _positive("loss.ac_weight", lo.ac_weight)
    if "ac" in m.d_cond and (t.update != "alternating" or t.unroll_steps > 0):
        raise UsageError(f"model.d_cond={m.d_cond!r} trains D's class head in the D step: it needs "
                         f"train.update=alternating and train.unroll_steps=0 (got {t.update!r}, {t.unroll_steps})")
    if lo.msgan_weight > 0 and cfg.train.batch_size % 2:
        raise UsageError(f"loss.msgan_weight={lo.msgan_weight} pairs the two halves of each batch: "
                         f"train.batch_size={cfg.train.batch_size} must be even")
    _positive("loss.reg_every", lo.reg_every)
    _positive("train.unroll_steps", t.unroll_steps, zero_ok=True)
    if t.unroll_steps > 0:
        if t.update != "alternating":
            raise UsageError(f"train.unroll_steps={t.unroll_steps} needs train.update=alternating (the look-ahead "
                             f"starts from D's latest update), not {t.update!r}")
        if o.optimizer != "adam":
            raise UsageError(f"train.unroll_steps={t.unroll_steps} unrolls Adam steps: optim.optimizer={o.optimizer!r} "
                             "is not supported (use adam)")
        if p.compile:
            raise UsageError(f"train.unroll_steps={t.unroll_steps} differentiates through D's updates, which a "
                             "compiled D cannot do: set perf.compile=false")
    _choice("optim.optimizer", o.optimizer, OPTIMIZERS)
    _choice("optim.schedule", o.schedule, SCHEDULES)
    _positive("optim.lr_g", o.lr_g)
    _positive("optim.lr_d", o.lr_d)
    _positive("optim.eps", o.eps)
    for key in ("beta1_g", "beta2_g", "beta1_d", "beta2_d"):
        v = getattr(o, key)
        if not 0.0 <= v < 1.0:
            raise UsageError(f"optim.{key}={v} must be in [0, 1)")
    _positive("optim.decay_start_step", o.decay_start_step, zero_ok=True)
    _positive("train.total_steps", t.total_steps)
    _positive("train.batch_size", t.batch_size)
    _positive("train.n_critic", t.n_critic)
    _choice("train.update", t.update, UPDATES)
    _choice("train.fake_labels", t.fake_labels, ("data", "sqrt", "uniform"))
    check_seed("train.seed", t.seed)
    if t.update == "simultaneous" and t.n_critic != 1:
        raise UsageError(f"train.n_critic={t.n_critic} needs train.update=alternating (simultaneous updates take one D step)")
    check_device_name("train.device", t.device)
    _positive("train.threads", t.threads, zero_ok=True)
    if t.threads > MAX_THREADS:  # OpenMP fails (or segfaults) long before an int64's worth of threads
        raise UsageError(f"train.threads={t.threads} is too large: use 0 (torch's default) to {MAX_THREADS}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise UsageError(f"train.ema_decay={t.ema_decay} must be in [0, 1) (0 disables EMA)")
    for name in filter(None, (s.strip() for s in t.augment.split(","))):
        _choice("train.augment", name, AUGMENTS)
    for key in ("log_every", "sample_grid"):
        _positive(f"train.{key}", getattr(t, key))
    _positive("train.sample_every", t.sample_every, zero_ok=True)
    _at_most("train.sample_grid", t.sample_grid, MAX_SAMPLE_GRID)
    if t.batch_size % m.pack:
        raise UsageError(f"train.batch_size={t.batch_size} must be divisible by model.pack={m.pack}")
    _choice("train.on_nonfinite", t.on_nonfinite, NONFINITE_POLICIES)
    _positive("train.max_rollbacks", t.max_rollbacks, zero_ok=True)
    check_world_size(t.batch_size, t.world_size, m.pack)
    check_mbstd_group(m.mbstd_group, t.batch_size, t.world_size, m.pack)
    _positive("checkpoint.every_steps", c.every_steps, zero_ok=True)
    _positive("checkpoint.keep_last", c.keep_last)
    _choice("perf.precision", p.precision, PRECISIONS)
    _choice("perf.compile_mode", p.compile_mode, COMPILE_MODES)
    if p.fused_optim and o.optimizer != "adam":
        raise UsageError(f"perf.fused_optim=true needs optim.optimizer=adam (got {o.optimizer!r})")
    if p.d_concat and (m.d_batchnorm and m.arch == "dcgan" or m.mbstd_group):
        raise UsageError("perf.d_concat=true needs a D without batch statistics: set model.d_batchnorm=false "
                         "and model.mbstd_group=0 (real and fake images would otherwise share batch statistics)")
    if p.sn_once and not m.d_spectral_norm:
        raise UsageError("perf.sn_once=true needs model.d_spectral_norm=true (it changes when D's power iteration runs)")
    _validate_eval(cfg.eval, conditional=cfg.model.num_classes > 0)
    return cfg


def _validate_eval(e: EvalConfig, *, conditional: bool) -> None:
    _positive("eval.every", e.every, zero_ok=True)
    check_seed("eval.seed", e.seed, MAX_EVAL_SEED)
    names = [x.strip() for x in e.metrics.split(",") if x.strip()]
    if not names:
        raise UsageError(f"eval.metrics={e.metrics!r} names no metric: use a comma list of {', '.join(EVAL_METRICS)}")
    for name in names:
        _choice("eval.metrics", name, EVAL_METRICS)
    _choice("eval.best_metric", e.best_metric, tuple(EVAL_DIRECTIONS))
    provided = {"pr": ("precision", "recall"), "dc": ("density", "coverage"), "classes": ("classes_covered", "class_kl")}
    produced = {k for n in names for k in provided.get(n, (n,))}
    if conditional:  # label agreement is added for a class-conditional run (periodic_eval, where its evaluator reads the classes)
        produced.add("label_agreement")
    if e.best_metric == "label_agreement" and not conditional:
        raise UsageError("eval.best_metric='label_agreement' is for class-conditional runs (model.num_classes > 0): "
                         "an unconditional generator is asked for no class")
    if e.every and e.best_metric not in produced:
        raise UsageError(f"eval.best_metric={e.best_metric!r} is not among the values of eval.metrics={e.metrics!r}: "
                         f"add its metric to eval.metrics or choose one of {', '.join(sorted(produced))}")
    from ganforge.metrics.imagesets import MAX_IMAGES  # evaluate()'s cap on n and n_ref: checked here, before training

    if e.n < 10:
        raise UsageError(f"eval.n={e.n} must be >= 10 images")
    if e.n_ref and e.n_ref < 10:
        raise UsageError(f"eval.n_ref={e.n_ref} must be 0 (the default reference size) or >= 10 images")
    for key, count in (("eval.n", e.n), ("eval.n_ref", e.n_ref)):
        if count > MAX_IMAGES:  # else the first evaluation, steps into the run, fails on evaluate()'s "n"
            raise UsageError(f"{key}={count} is too large: use at most {MAX_IMAGES:,} images")
    if not 0.0 < e.warn_drop <= 1.0:
        raise UsageError(f"eval.warn_drop={e.warn_drop} must be in (0, 1]")


def check_world_size(batch_size: int, world_size: int, pack: int = 1) -> None:
    """train.world_size as a config value: it must be 1. Multi-process training is started by
    the launcher (torchrun, see training/distributed.py), whose world size is checked with
    check_batch_split, never by this setting."""
    check_batch_split(batch_size, world_size, pack)
    if world_size != 1:
        raise UsageError(f"train.world_size={world_size}: the number of processes comes from the launcher; leave it at 1 and run torchrun --nproc_per_node {world_size} -m ganforge train ...")


def check_batch_split(batch_size: int, world_size: int, pack: int = 1) -> None:
    """The data-parallel split of the global batch, checked before anything is built: each
    process takes batch_size / world_size images (a multiple of model.pack)."""
    _positive("train.world_size", world_size)
    if batch_size % world_size:
        raise UsageError(
            f"train.batch_size={batch_size} must be divisible by train.world_size={world_size} "
            f"(each process takes batch_size / world_size images); use a multiple of {world_size}"
        )
    if (batch_size // world_size) % pack:
        raise UsageError(
            f"train.batch_size / train.world_size = {batch_size // world_size} must be divisible by model.pack={pack}"
        )


def dumps(cfg: RunConfig) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=False)
