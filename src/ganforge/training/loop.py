"""The one training loop.

Read ``train()`` top to bottom: set-up (or resume), then per G step ``n_critic`` D steps, one
G step, the EMA update, the LR schedule, and the logging / sampling / checkpoint cadence. GAN
families differ only in the :class:`Objective` they pass in (loss, penalties, clipping,
augmentation), never in branches of this loop. The body of one iteration is ``step.py``'s
``make_iteration`` (``ganforge bench train`` times the same callable). Reliability plumbing lives
beside it: signals and the non-finite policy in ``guard.py``, durable states in ``checkpoint.py``
(what each promises: docs/RELIABILITY.md); multi-process (torchrun) training in ``distributed.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ganforge import __version__
from ganforge.config import RESUMABLE_KEYS, RunConfig, dumps, read_run_config, validate
from ganforge.configio import config_for_resume
from ganforge.data import Batcher, ImageData, load_images
from ganforge.device import keeps_current_cuda_device, resolve_device
from ganforge.errors import UsageError
from ganforge.io import atomic_write_bytes, image_grid, save_png
from ganforge.models import build_discriminator, build_generator, check_model_config
from ganforge.nn import has_batch_norm
from ganforge.provenance import provenance, starts
from ganforge.training import checkpoint as ckpt
from ganforge.training import distributed, runlock
from ganforge.training.ema import EMA, ema_notes
from ganforge.training.guard import NonFinite, NonFiniteGuard, StopRequest, TrainingInterrupted
from ganforge.training.labels import label_sampler  # also imported from here by bench and tests
from ganforge.training.logger import MetricsLog, plot_losses
from ganforge.training.objective import Objective
from ganforge.training.perf import resolve_precision
from ganforge.training.periodic_eval import make_periodic_eval
from ganforge.training.rundir import check_path_args, check_run_dir, create_run_dir, find_run
from ganforge.training.schedule import schedule_notes
from ganforge.training.stats import Accumulator
from ganforge.training.step import make_iteration

log = logging.getLogger("ganforge.train")


# ----------------------------------------------------------------------------- set-up helpers


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)


def make_optimizer(params, cfg: RunConfig, net: str) -> torch.optim.Optimizer:
    o = cfg.optim
    lr = o.lr_g if net == "g" else o.lr_d
    betas = (o.beta1_g, o.beta2_g) if net == "g" else (o.beta1_d, o.beta2_d)
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, eps=o.eps)
    # perf.fused_optim: one fused kernel updates every parameter (CUDA, and CPU since torch 2.4)
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=o.eps, **({"fused": True} if cfg.perf.fused_optim else {}))


def check_data_fits(cfg: RunConfig, data: ImageData) -> None:
    m = cfg.model
    if m.num_classes and cfg.data.use_labels:
        if data.labels is None:
            raise UsageError(f"model.num_classes={m.num_classes} needs labelled data, but {data.source} has no labels: give one sub-folder per class (at least 2; images in the root or in a single folder are unlabelled), or set model.num_classes=0")
        if data.num_classes != m.num_classes:
            raise UsageError(f"{data.source} has {data.num_classes} classes but model.num_classes={m.num_classes}: set --set model.num_classes={data.num_classes}")
    if cfg.train.batch_size > len(data.images):
        raise UsageError(f"train.batch_size={cfg.train.batch_size} is larger than the dataset ({len(data.images)} images): "
                         f"add images, or lower it to at most {len(data.images)} with --set train.batch_size=N")


def check_same_images(state: dict, batcher: Batcher, source: str, trained_on: str) -> None:
    """A resumed run must go on with the images it trained on. ``state`` is the checkpoint's batcher
    state; the batcher refuses another image count itself. A moved dataset (``source`` is not the run's
    ``trained_on``) must hold the same content (ImageData.content_sha256); under the same source a
    content change is only warned about, since another Pillow may decode or resize a file a level apart."""
    saved = state.get("data_sha256")
    if int(state.get("num_images", -1)) != batcher.num_images or saved == batcher.data_sha256:
        return
    moved = source != trained_on
    if saved is None:  # a state written before content hashes
        if moved:
            log.warning("data.source=%s: cannot check that it holds the images the run trained on from %s (its checkpoint "
                        "predates content hashes); the image count (%d) matches", source, trained_on, batcher.num_images)
        return
    which = f"content sha256 {saved[:12]}... then, {batcher.data_sha256[:12]}... now"
    if moved:
        raise UsageError(f"data.source={source!r} does not hold the images the run trained on from {trained_on!r} "
                         f"({batcher.num_images} images each, {which}): resume with a copy of those images")
    log.warning("the images at %s differ from those the run trained on (%d images each, %s): edited files, or another "
                "Pillow decoding them; resuming anyway", source, batcher.num_images, which)


def _absolute_paths(cfg: RunConfig) -> RunConfig:
    """data.source and eval.ref as absolute paths when they are relative paths that exist: the run's
    config.json is read later from other working directories (`ganforge eval RUN`, --resume), where
    a relative "photos" would name another folder, or none."""
    from ganforge.data import NAMED_SOURCES

    def absolute(path: str) -> str:
        p = Path(path).expanduser()
        return str(p.resolve()) if path and path not in NAMED_SOURCES and not p.is_absolute() and p.exists() else path

    return replace(cfg, data=replace(cfg.data, source=absolute(cfg.data.source)),
                   eval=replace(cfg.eval, ref=absolute(cfg.eval.ref)))


def _refuse_restart_over_work(run_dir: Path) -> None:
    """A resumed run without a checkpoint starts again from step 0, which is right for a run stopped
    before its first checkpoint, but would replace a finished generator (model/): refuse that.
    (Checkpoints that all fail to load are refused by ckpt.load_latest_state.)"""
    if (run_dir / ckpt.MODEL_DIR / "config.json").is_file():
        raise UsageError(f"{run_dir} has a finished generator ({ckpt.MODEL_DIR}/) but no checkpoint to resume from, so "
                         f"resuming would train it again from step 0 and replace it: start a new run with --out, or move "
                         f"{run_dir / ckpt.MODEL_DIR} away to retrain it here")


# ----------------------------------------------------------------------------- the loop


@keeps_current_cuda_device  # cuda:N is made current below; the caller's GPU is current again after
def train(
    cfg: RunConfig | None = None,
    *,
    out: str | Path | None = None,
    runs_root: str | Path = "runs",
    resume: str | Path | None = None,
    data: ImageData | None = None,
    dry_run: bool = False,
) -> Path | None:
    """Train a GAN described by ``cfg`` and return its run folder.

    ``resume=RUN_DIR`` (or ``"latest"``: the newest run under ``runs_root``) continues that run
    from its newest valid training state to its configured ``train.total_steps`` (``cfg``, if
    given, replaces the run's config and may differ from it only in ``config.RESUMABLE_KEYS``).
    ``data`` skips loading ``cfg.data.source`` (used by tests and the Python API). SIGTERM/SIGINT
    end it with a checkpoint and TrainingInterrupted.

    ``dry_run=True`` does everything up to the first step, writing nothing: loads and checks the data,
    builds the nets and the periodic evaluation (its eval.ref), and for a resume loads the newest valid
    state into them; then returns the run folder it would resume (None for a new run).

    Only one process at a time trains in a run folder: a second one, while this holds its
    ``run.lock`` (training/runlock.py), stops with a UsageError before it writes anything."""
    with contextlib.ExitStack() as hold:  # the run lock, once taken below
        return _train(cfg, out=out, runs_root=runs_root, resume=resume, data=data, dry_run=dry_run, hold=hold)


def _train(cfg: RunConfig | None, *, out, runs_root, resume, data: ImageData | None, dry_run: bool,
           hold: contextlib.ExitStack) -> Path | None:
    """train()'s body; ``hold`` keeps the run folder's lock until train() returns or raises."""
    if cfg is None and resume is None:
        raise UsageError("give a config (ganforge.get_preset('dcgan-mnist'), changed with ganforge.config.apply_overrides) "
                         "or resume=RUN_DIR")
    check_path_args(out=out, resume=resume, runs_root=runs_root)
    if cfg is not None and not isinstance(cfg, RunConfig):
        hint = " (a restoration config: train it with ganforge.apps.restore_train.train_restorer)" if hasattr(cfg, "degrade") else ""
        raise UsageError(f"cfg is a {type(cfg).__name__}, not a RunConfig{hint}: build one with ganforge.get_preset(NAME) "
                         "or ganforge.config.from_dict(DICT)")
    if data is not None and not isinstance(data, ImageData):
        raise UsageError(f"data is a {type(data).__name__}, not an ImageData: load one with ganforge.data.load_images(...)")
    run_dir = find_run(resume, runs_root, kind="gan") if resume is not None else None  # latest: the newest GAN run
    trained_on, trained_total = "", None  # a resumed run's data.source and total_steps before this call (RESUMABLE_KEYS)
    if run_dir is not None:
        saved = read_run_config(run_dir / "config.json")
        trained_on, trained_total = saved.data.source, saved.train.total_steps
        cfg = config_for_resume(run_dir, saved, cfg, RESUMABLE_KEYS)
    assert cfg is not None
    cfg = validate(cfg)  # every value is checked before any data is loaded or device touched
    cfg = _absolute_paths(cfg)
    check_model_config(cfg.model)
    t, m = cfg.train, cfg.model
    distributed.check_launcher_device(t.device)  # cuda:N under torchrun: before "this machine has no cuda:N"
    device = resolve_device(t.device)
    if device.index is not None:  # cuda:N made current (as launched() does for cuda:LOCAL_RANK): calls that take
        torch.cuda.set_device(device)  # the current GPU (bf16 support, CUDA graphs) then ask this one, not cuda:0
    # Under torchrun (training/distributed.py) each process takes a shard of the global batch; None: one process.
    parallel = distributed.current(device, t.batch_size, m.pack, resume=run_dir is not None, on_nonfinite=t.on_nonfinite)
    main = parallel is None or parallel.is_main  # only rank 0 writes files
    if run_dir is not None and dry_run:  # one writer per run folder (a dry run only looks)
        runlock.check_run_lock(run_dir)
    elif run_dir is not None:  # held from before a state is set aside or a metrics row trimmed
        hold.enter_context(runlock.run_lock(run_dir))
    if t.threads:
        torch.set_num_threads(t.threads)
    seed_everything(t.seed, t.deterministic)

    # --- data: the whole uint8 dataset, resident on `device` when it fits (B = batch size)
    if data is None:
        data = load_images(
            cfg.data.source, resolution=m.resolution, channels=m.channels, max_images=cfg.data.max_images or None,
            on_bad_image=cfg.data.on_bad_image, max_bad_fraction=cfg.data.max_bad_fraction,
        )
    check_data_fits(cfg, data)
    if not (m.num_classes and cfg.data.use_labels):
        data = replace(data, labels=None, class_names=None)
    # data.on_device=false keeps the dataset on the CPU; batches still reach the step on the training device
    batcher = Batcher(data, batch_size=t.batch_size, device=device if cfg.data.on_device else "cpu", out_device=device,
                      seed=t.seed, hflip=cfg.data.hflip)

    # --- networks, optimisers, EMA, objective
    G = build_generator(m).to(device)
    D = build_discriminator(m).to(device)
    if t.unroll_steps and main and has_batch_norm(D):
        # Measured (docs/MODE_COLLAPSE.md, Stacked MNIST, 2,000 steps): with batch norm in D the unrolled
        # run collapsed (1-9 modes) while the same run without it covered 705. Our reading (untested): in the
        # look-ahead D sees all-real and all-fake batches normalised apart and can tell them by batch statistics.
        log.warning("train.unroll_steps=%d with a batch-norm D (model.d_batchnorm=true) collapsed in our Stacked MNIST "
                    "runs; consider model.d_batchnorm=false (docs/MODE_COLLAPSE.md)", t.unroll_steps)
    if cfg.perf.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if parallel is not None:
        G, D = parallel.prepare(G, D)  # SyncBatchNorm on CUDA; rank 0's initial weights on every rank
        if main:
            log.info("data parallel: %d processes x %d images = global batch %d", parallel.world_size,
                     t.batch_size // parallel.world_size, t.batch_size)
    opt_g = make_optimizer(G.parameters(), cfg, "g")
    opt_d = make_optimizer(D.parameters(), cfg, "d")
    ema = EMA(G, t.ema_decay, t.ema_warmup) if t.ema_decay > 0 else None
    objective = Objective.from_config(cfg)
    # bf16 autocast keeps fp32's exponent range, so no gradient scaler (and no scaler state) is needed.
    precision = resolve_precision(cfg.perf.precision, device, strict=cfg.perf.strict)  # "auto" -> bf16 only where native
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if precision == "bf16" else contextlib.nullcontext
    )
    conditional = m.num_classes if cfg.data.use_labels else 0
    class_counts = torch.bincount(data.labels.cpu(), minlength=conditional) if conditional else None  # (K,)
    uniform = not conditional or t.fake_labels == "uniform" or bool((class_counts == class_counts[0]).all())
    if conditional and main and not dry_run and class_counts.max() >= 10 * class_counts.min():
        log.warning("the classes hold %d to %d images (train.fake_labels=%s): on a long-tailed MNIST (500 to 5) "
                    "cgan-mnist trained 7 of 10 runs with sqrt (the default), 3 with uniform and 9 with data, which "
                    "could not draw the three rarest classes, and 10 of 10 with sqrt and train.augment=translation,cutout, "
                    "at a worse FID; check a run's samples per class (docs/AUGMENTATION.md)",
                    int(class_counts.min()), int(class_counts.max()), t.fake_labels)
    fake_weights = None if uniform else class_counts.double() ** (0.5 if t.fake_labels == "sqrt" else 1.0)  # (K,)
    fake_labels = label_sampler(conditional, t.batch_size, device, fake_weights)
    guard = NonFiniteGuard(t.on_nonfinite, t.max_rollbacks)  # train.on_nonfinite: abort | skip | rollback
    acc = Accumulator()
    # eval.every: metrics during training, best/ snapshot, collapse warnings (rank 0 only)
    periodic = make_periodic_eval(cfg, data, device) if main else None

    # Fixed noise for comparable sample grids across steps (its own generator: resuming
    # reproduces it); conditional grids show class k in column k.
    gen = torch.Generator().manual_seed(t.seed + 12345)
    fixed_z = torch.randn(t.sample_grid, m.z_dim, generator=gen).to(device)
    fixed_y = (torch.arange(t.sample_grid) % m.num_classes).to(device) if m.num_classes else None
    nrow = m.num_classes if m.num_classes else None

    def training_state(step: int) -> dict:
        """Everything the next step depends on. The LR is a pure function of the step and
        bf16 needs no gradient scaler, so neither has state to save."""
        return {
            "format": ckpt.STATE_FORMAT, "step": step, "ganforge_version": __version__, "config": dumps(cfg),
            "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "ema": ema.state_dict() if ema is not None else {},
            "batcher": batcher.state_dict(),  # data order: permutation, position, its generator
            "rng": ckpt.rng_state(),  # python, numpy, torch CPU (+ CUDA): noise, labels, augmentation, dropout
            "acc": acc.state_dict(), "guard": guard.state_dict(),
            "elapsed_s": time.perf_counter() - t_start,  # training wall time so far, so a resumed run's clock continues
        }

    def restore(state: dict, path: Path, *, rewind_data: bool = True) -> int:
        """Load a training state, checking every shape before touching anything. A rollback
        (rewind_data=False) keeps the data order and RNGs moving forward, so its replay draws
        new batches and noise instead of walking into the same NaN again."""
        ckpt.check_state_fits({"G": G, "D": D, **({"ema": ema.model} if ema is not None else {})}, state, source=path)
        if rewind_data:
            batcher.load_state_dict(state["batcher"])  # refuses a different dataset before any weight is loaded
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        acc.load_state_dict(state["acc"], device)
        if rewind_data:
            ckpt.set_rng_state(state["rng"])
            guard.load_state_dict(state["guard"])
        return int(state["step"])

    # --- run folder: fresh, or the one being resumed (from its newest valid state)
    start_step = 0
    elapsed_before = 0.0  # wall seconds the run trained before this process (metrics' elapsed_s goes on from it)
    if run_dir is not None:
        found = ckpt.load_latest_state(run_dir / ckpt.STATE_DIR, set_aside=not dry_run)
        if found is None:
            _refuse_restart_over_work(run_dir)
            log.warning("%s has no checkpoint yet: starting it again from step 0", run_dir)
        else:
            check_same_images(found[0]["batcher"], batcher, cfg.data.source, trained_on)
            start_step = restore(*found)
            elapsed_before = float(found[0].get("elapsed_s", 0.0))  # states before 2026-12-06 lack it
            if start_step > t.total_steps:
                raise UsageError(f"{found[1]} is at step {start_step}, past train.total_steps={t.total_steps}: "
                                 f"resume with --set train.total_steps=N where N >= {start_step}")
            log.info("resuming %s from %s (step %d of %d)", run_dir, found[1].name, start_step, t.total_steps)
    notes = schedule_notes(cfg.optim.schedule, t.total_steps, cfg.optim.decay_start_step, step=start_step,
                           trained_total=trained_total) + ema_notes(t.ema_decay, t.ema_warmup, t.total_steps)
    for note in notes if main else []:
        log.warning("%s", note)  # a decay that never starts, an LR that jumps when a run is extended, a stale EMA
    if run_dir is not None:
        if dry_run:
            return Path(run_dir)
        if dropped := ckpt.trim_metrics(run_dir / "metrics.jsonl", start_step):
            log.info("dropped %d metrics row(s) past step %d; they are written again", dropped, start_step)
    elif dry_run:  # refuses what create_run_dir would (out not empty, a file, not creatable), creating nothing
        check_run_dir(out, runs_root)
        return None
    else:
        new_run_dir = lambda: create_run_dir(cfg.preset, out=out, root=runs_root)  # noqa: E731
        run_dir = new_run_dir() if parallel is None else parallel.from_main(new_run_dir)
        if main:  # before config.json: until then `--resume` refuses the folder (find_run)
            hold.enter_context(runlock.run_lock(run_dir))
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / ckpt.STATE_DIR
    if main:
        (run_dir / "samples").mkdir(exist_ok=True)
        split = {"world_size": parallel.world_size, "per_process_batch": t.batch_size // parallel.world_size} if parallel else {}
        atomic_write_bytes(run_dir / "config.json", json.dumps({
            **provenance(), "starts": starts(run_dir / "config.json", start_step), "run": json.loads(dumps(cfg)),
            "resolved": {"device": str(device), "precision": precision, "torch": torch.__version__, **split,  # what actually ran
                         # the images as trained on: `ganforge eval RUN` checks its default reference against them
                         "data": {"num_images": batcher.num_images, "sha256": batcher.data_sha256},
                         **({"fake_labels": (f"the training labels' class frequencies {class_counts.tolist()}"
                                             + (", square-rooted" if t.fake_labels == "sqrt" else "")) if not uniform
                             else "uniform" + (" (balanced classes)" if t.fake_labels != "uniform" else "")} if conditional else {})},
        }, indent=2).encode())
    metrics = MetricsLog(run_dir / "metrics.jsonl") if main else distributed.NullLog()  # appends
    t_start = time.perf_counter() - elapsed_before  # the run's clock; a rollback does not turn it back
    if periodic is not None:
        periodic.attach(run_dir)

    def save_checkpoint(step: int) -> Path | None:
        if not main:
            return None  # rank 0 writes the state, which is the same on every rank
        return ckpt.save_state(ckpt_dir, step, training_state(step), cfg.checkpoint.keep_last)

    def roll_back(event: NonFinite) -> int:
        state, path = ckpt.load_latest_state(ckpt_dir)  # type: ignore[misc]  # rollback runs always have one
        step = restore(state, path, rewind_data=False)
        log.warning("%s: rolled back to %s (rollback %d of at most %d)", event, path.name, guard.rollbacks, t.max_rollbacks)
        metrics.write({"step": event.step + 1, "event": "rollback", "to_step": step, "net": event.net, "loss": str(event.loss)})
        return step

    def periodic_rows(done: int) -> list[dict]:
        """The periodic evaluation's metrics rows. If it raises (out of memory, an unwritable best/), the
        steps since the last checkpoint are kept first (nothing lost): the state at this boundary is
        saved unless a non-finite update is pending, then the error ends the run."""
        try:  # draws from its own generator under fork_rng: the run is unchanged
            return periodic(done, ema.model if ema is not None else G, G, ema.model if ema is not None else None)
        except Exception:
            keep_work(done, "the evaluation")
            raise

    def keep_work(done: int, what: str) -> None:
        """``what`` (the evaluation, a sample grid) failed at step ``done``, before this boundary's state
        was saved: save it now, unless a non-finite update is pending; the caller re-raises."""
        try:
            # guard.poll is a collective under torchrun, where the other ranks wait at a barrier: there
            # check_finite (in save_state) alone keeps a NaN state from being written
            if parallel is not None or guard.poll() is None:
                log.warning("%s at step %d failed; saved %s first: resume with `ganforge train --resume %s` once its "
                            "cause is fixed", what, done, save_checkpoint(done), run_dir)
        except Exception as exc:  # the first error is the one to report
            log.warning("%s at step %d failed, and no checkpoint could be saved: %s", what, done, exc)

    if t.on_nonfinite == "rollback" and not ckpt.list_states(ckpt_dir):
        save_checkpoint(start_step)  # a rollback needs a state to go back to

    def sample_grid(name: str) -> None:
        if not main:
            return
        G_s = ema.model if ema is not None else G
        was_training = G_s.training
        G_s.eval()
        with torch.no_grad(), autocast():
            imgs = G_s(fixed_z, fixed_y)
        G_s.train(was_training)
        save_png(image_grid(imgs, nrow=nrow), run_dir / "samples" / f"{name}.png")

    imgs_per_step = t.batch_size * (t.n_critic if t.update == "alternating" else 1)
    t_last = time.perf_counter()
    imgs_since = 0

    def write_log_row(done: int) -> None:
        nonlocal t_last, imgs_since
        now = time.perf_counter()
        elapsed = now - t_last
        row = {
            "step": done, "kimg": round(done * imgs_per_step / 1000, 3),
            **{k: round(v, 6) for k, v in acc.read().items()},  # the host sync of the log step
            "lr_g": opt_g.param_groups[0]["lr"], "lr_d": opt_d.param_groups[0]["lr"],
            "img_per_s": round(imgs_since / max(elapsed, 1e-9), 1),
            "sec_per_kimg": round(elapsed / max(imgs_since, 1) * 1000, 3),
            "elapsed_s": round(now - t_start, 2),
        }
        if t.on_nonfinite == "skip":
            row["skipped_updates"] = guard.skipped
        metrics.write(row)
        t_last, imgs_since = now, 0
        if bar is not None:
            bar.set_postfix(d=f"{row.get('d_loss', 0):.3f}", g=f"{row.get('g_loss', 0):.3f}", ips=f"{row['img_per_s']:.0f}")

    # --- the loop: one iteration = n_critic D steps + one G step
    iterate = make_iteration(cfg, G=G, D=D, opt_g=opt_g, opt_d=opt_d, objective=objective, batcher=batcher,
                             fake_labels=fake_labels, guard=guard, acc=acc, ema=ema, autocast=autocast, device=device,
                             parallel=parallel)
    bar = None
    if t.progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=t.total_steps, initial=start_step, unit="step", dynamic_ncols=True, desc=cfg.preset)
    stop = StopRequest()  # SIGTERM/SIGINT: finish the step, checkpoint, raise TrainingInterrupted
    G.train()
    D.train()
    step = start_step
    try:
        with stop.installed():
            while step < t.total_steps:
                iterate(step)  # n_critic D steps + one G step + EMA (training/step.py)
                imgs_since += imgs_per_step
                done = step + 1

                # --- cadence: non-finite check, log row, samples, checkpoint. Only the first two
                # sync with the device, and nothing here draws random numbers, so a checkpoint
                # holds exactly the RNG states of this step boundary.
                log_now = done % t.log_every == 0 or done == t.total_steps
                stopping = stop.requested if parallel is None else parallel.any_rank(stop.requested)  # ranks stop together
                save_now = done == t.total_steps or stopping or bool(cfg.checkpoint.every_steps and done % cfg.checkpoint.every_steps == 0)
                if log_now or save_now:
                    event = guard.poll()  # raises NonFiniteError under abort, or when rollbacks run out
                    if event is not None:
                        step = roll_back(event)
                        if bar is not None:
                            bar.n = step
                            bar.refresh()
                        continue
                if log_now:
                    write_log_row(done)
                if t.sample_every and done % t.sample_every == 0:
                    try:
                        sample_grid(f"step-{done:08d}")
                    except Exception:  # a full disk: the steps since the last state are kept first
                        keep_work(done, "the sample grid")
                        raise
                if cfg.eval.every and (done % cfg.eval.every == 0 or done == t.total_steps):
                    if periodic is not None:
                        for row in periodic_rows(done):
                            metrics.write(row)
                    if parallel is not None:
                        parallel.barrier()  # the other ranks wait for rank 0's evaluation
                if save_now:
                    saved = save_checkpoint(done)
                    if stopping:
                        if parallel is not None:
                            parallel.barrier()  # rank 0's checkpoint is on disk before any rank exits
                        raise TrainingInterrupted(stop.signum or signal.SIGTERM, done, saved or ckpt_dir, run_dir)
                if bar is not None:
                    bar.update(1)
                step = done
    finally:
        metrics.close()
        if bar is not None:
            bar.close()

    # --- what the run leaves behind (the last training state was written at the last step)
    if parallel is not None and (diff := parallel.max_param_difference(G, D)) > 0:
        log.warning("rank %d: parameters differ from rank 0's by up to %g", parallel.rank, diff)
    if not main:
        return run_dir
    sample_grid("final")
    ckpt.save_generator(
        run_dir / ckpt.MODEL_DIR, m, G, ema.model if ema is not None else None,
        meta={"preset": cfg.preset, "steps": t.total_steps, "class_names": data.class_names if m.num_classes else None,
              # the training images per class (K,): `ganforge sample --top-up N` draws what each class lacks of N
              **({"class_counts": class_counts.tolist()} if conditional else {})},
    )
    plot_losses(run_dir / "metrics.jsonl", run_dir / "loss.png")
    return run_dir
