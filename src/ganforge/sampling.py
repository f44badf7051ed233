"""Drawing images from a trained generator and writing them as .npz, a PNG grid or PNG files."""

from __future__ import annotations

import logging
import math
import numbers
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ganforge.config import check_seed
from ganforge.data.decode import is_image_name
from ganforge.errors import UsageError, is_int
from ganforge.io import atomic_write, check_can_write, image_grid, save_png
from ganforge.metrics.imagesets import MAX_IMAGES

log = logging.getLogger("ganforge.sampling")


def truncated_noise(n: int, z_dim: int, psi: float | None, gen: torch.Generator) -> torch.Tensor:
    """z (n, z_dim) from N(0, 1); with ``psi``, every entry with |z| > psi is drawn again until none is
    (the truncation trick, Brock et al. 2019: a smaller psi trades variety for typical, cleaner
    images). Same generator state, same z; psi=None draws exactly what plain sampling draws."""
    z = torch.randn(n, z_dim, generator=gen)
    if psi is None:
        return z
    while True:
        out = z.abs() > psi  # (n, z_dim) bool
        count = int(out.sum())
        if not count:
            return z
        z[out] = torch.randn(count, generator=gen)


# Most images one .png grid takes. A grid is for looking at: 100,000 28 px digits made a 302 x 300,002 px
# PNG (1.4 GB of memory to build, and Pillow refuses to open it); 1,000,000 would need about 14 GB, after
# minutes of drawing. More images belong in an .npz or a folder: refused before any is drawn.
MAX_GRID_IMAGES = 10_000

# Below this, almost every entry is redrawn again and again (P(|z| < 0.05) = 4 %): at 1e-6 one call ran
# for minutes. Truncation that strong leaves one image per class anyway.
MIN_TRUNCATION = 0.05


def _named(arg: str, value) -> str:
    """How a message names an argument ``arg``: a ``ganforge sample`` flag as it is typed ("--n 0"),
    or a Python parameter as it is passed ("n=2.5"). The checks below (their ``arg``) name the CLI's
    flags by default, since ``ganforge sample`` runs them itself before it loads or draws anything;
    generate() and save_samples() pass their parameters' names, so the Python API never answers
    with a flag it does not have."""
    return f"{arg} {value}" if arg.startswith("--") else f"{arg}={value!r}"


def check_truncation(psi: float | None, *, arg: str = "--truncation") -> None:
    if psi is not None and not (isinstance(psi, (int, float, np.floating)) and not isinstance(psi, bool)
                                and math.isfinite(psi) and psi >= MIN_TRUNCATION):
        raise UsageError(f"{_named(arg, psi)}: the threshold must be a number >= {MIN_TRUNCATION} (|z| above it is "
                         "redrawn; 0.5 to 1 is usual), or leave it out for plain N(0, 1) noise")


def check_count(n: int, *, arg: str = "--n") -> None:
    """Refuse an image count generate() could not hold (or would take hours to fill) before any work."""
    if not (is_int(n) and 1 <= n <= MAX_IMAGES):
        raise UsageError(f"{_named(arg, n)}: the number of images must be an integer from 1 to {MAX_IMAGES:,}")


def check_class_index(class_index: int | None, num_classes: int, *, arg: str = "--class") -> None:
    """Refuse a class a generator with ``num_classes`` classes (0: unconditional) cannot draw."""
    if class_index is None:
        return
    if not num_classes:
        raise UsageError(f"{_named(arg, class_index)}: this generator is unconditional (no classes)")
    if not (is_int(class_index) and 0 <= class_index < num_classes):
        raise UsageError(f"{_named(arg, class_index)} is out of range: this generator has classes 0..{num_classes - 1}")


def check_class_weights(weights, num_classes: int, *, class_index: int | None = None) -> np.ndarray:
    """``class_weights`` as generate() takes them -> float64 (K,): one finite weight >= 0 per class
    (counts or fractions; only their proportions matter), not all 0, and not beside ``class_index``."""
    if class_index is not None:
        raise UsageError(f"class_weights and class_index={class_index!r} both given: ask for one class or for "
                         "proportions of all of them, not both")
    if not num_classes:
        raise UsageError("class_weights: this generator is unconditional (no classes)")
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().numpy()
    if not (isinstance(weights, (list, tuple)) or (isinstance(weights, np.ndarray) and weights.ndim == 1)):
        name = type(weights).__name__
        what = f"an array of shape {weights.shape}" if isinstance(weights, np.ndarray) else \
            f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"
        raise UsageError(f"class_weights is {what}: give a list of {num_classes} numbers, one weight per class")
    items = list(weights)
    if len(items) != num_classes:
        raise UsageError(f"class_weights has {len(items)} entries but this generator has {num_classes} classes: "
                         "give one weight per class")
    for i, w in enumerate(items):
        if not (isinstance(w, (numbers.Real, np.integer, np.floating)) and not isinstance(w, (bool, np.bool_))
                and math.isfinite(w) and w >= 0):
            raise UsageError(f"class_weights[{i}]={w!r}: a weight must be a finite number >= 0")
    out = np.asarray([float(w) for w in items], dtype=np.float64)
    with np.errstate(over="ignore"):
        total = out.sum()
    if not total > 0:
        raise UsageError("class_weights are all 0: give at least one class a weight above 0")
    if not math.isfinite(total):
        raise UsageError(f"class_weights sum past {np.finfo(np.float64).max:.3g}: give counts or fractions")
    return out


def class_counts(n: int, weights) -> np.ndarray:
    """int64 (K,) images per class for n images in proportion to ``weights`` (K,), checked as
    ``check_class_weights`` does (>= 0, not all 0), by largest remainder: each class gets the floor
    of its exact share n * w_k / sum(w), and the images left over go one each to the largest
    fractional parts, ties to the lower class index. Exact arithmetic (fractions), so equal weights
    tie exactly and give what cycling gives: the first n % K classes one more."""
    shares = [Fraction(float(w)) for w in weights]
    total = sum(shares)
    quotas = [n * w / total for w in shares]
    counts = [math.floor(q) for q in quotas]
    left = n - sum(counts)
    by_remainder = sorted(range(len(counts)), key=lambda k: (-(quotas[k] - counts[k]), k))
    for k in by_remainder[:left]:
        counts[k] += 1
    return np.asarray(counts, dtype=np.int64)


def top_up_counts(have, to: int, *, arg: str = "--top-up") -> np.ndarray:
    """int64 (K,) images to draw per class so that a training set holding ``have`` (K,) images of each
    class reaches ``to`` in every class: max(0, to - have_k). A long tail's rare classes get the most;
    a class that already holds ``to`` gets none. Nothing to draw is a UsageError naming ``arg``."""
    if not is_int(to) or to < 1:
        raise UsageError(f"{arg} {to!r} must be a whole number >= 1 (images per class after topping up)")
    need = [max(0, int(to) - int(h)) for h in have]  # Python ints: a huge ``to`` must not wrap in int64
    if not any(need):
        raise UsageError(f"{arg} {to}: every class already has {min(have)} or more training images, "
                         f"so there is nothing to top up; give at least {min(have) + 1}")
    if sum(need) > MAX_IMAGES:
        raise UsageError(f"{arg} {to} asks for {sum(need):,} images; at most {MAX_IMAGES:,} can be drawn at once")
    return np.asarray(need, dtype=np.int64)


def spread_classes(counts) -> torch.Tensor:
    """int64 (sum(counts),) labels holding ``counts[k]`` of class k, spread evenly through the
    sequence: the j-th image of class k sits at key j / counts[k] in [0, 1), sorted by key, ties by
    class index. Equal counts give exactly the cycling 0, 1, ..., K-1, 0, ... (and so do cycling's
    own counts for any n: the first n % K classes one more), so a balanced class mix draws the very
    labels, and so the very images, plain generate() draws. Spread evenly, every prefix (a
    batch, a first subset) stays within an image or two of the asked proportions."""
    counts = np.asarray(counts, dtype=np.int64)  # (K,)
    cls = np.repeat(np.arange(len(counts)), counts)  # (n,) class of each slot, grouped by class
    rank = np.arange(len(cls)) - np.repeat(np.cumsum(counts) - counts, counts)  # (n,) j within its class
    key = rank / counts[cls]  # (n,) float division is correctly rounded: equal fractions, equal keys
    return torch.from_numpy(cls[np.lexsort((cls, key))])


def sample_labels(n: int, num_classes: int, class_index: int | None = None, class_weights=None) -> torch.Tensor | None:
    """The labels (n,) generate() asks for: ``class_index`` throughout, classes in proportion to
    ``class_weights`` (``class_counts`` + ``spread_classes``), or classes cycling 0..K-1; None for an
    unconditional generator (num_classes 0). A class_index the generator does not have is refused
    naming ``--class``: ``ganforge sample`` calls this to plan its file names before it generates."""
    check_class_index(class_index, num_classes)
    if class_weights is not None:
        weights = check_class_weights(class_weights, num_classes, class_index=class_index)  # (K,)
        return spread_classes(class_counts(n, weights))
    if not num_classes:
        return None
    return torch.full((n,), int(class_index)) if class_index is not None else torch.arange(n) % num_classes


@torch.no_grad()
def generate(
    G: torch.nn.Module, n: int, *, seed: int = 0, class_index: int | None = None, batch_size: int = 256, device=None,
    truncation: float | None = None, class_weights=None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """n images as uint8 NHWC (n, H, W, C), and their labels (n,) for conditional models.

    Noise comes from a CPU generator seeded with ``seed`` so the same call gives the same images
    on any device; ``truncation`` redraws noise entries beyond it (``truncated_noise``).
    Unconditional: labels None. Conditional: ``class_index`` for every image; or ``class_weights``,
    one weight >= 0 per class (counts or fractions, e.g. a reference set's class counts), for
    classes in those proportions (largest remainder, spread evenly: ``class_counts``,
    ``spread_classes``; equal weights give the cycling below); else classes cycling 0..K-1.
    G runs in eval mode (batch norm on its running statistics, so an image does not depend on the
    batch it was drawn in) and is put back in the mode it came in. ``device`` (cpu | cuda | cuda:N |
    auto; default: where G's weights are) is where G runs: a G elsewhere is moved there for the call
    and back after it."""
    check_count(n, arg="n")
    if not is_int(seed):
        raise UsageError(f"seed={seed!r} is not an integer: use one from 0 to 2**63 - 1")
    check_seed("seed", seed)  # torch generators take 64-bit seeds
    check_truncation(truncation, arg="truncation")
    if not (is_int(batch_size) and batch_size >= 1):
        raise UsageError(f"batch_size={batch_size!r}: images per forward pass must be an integer >= 1")
    if not isinstance(G, torch.nn.Module) or not is_int(getattr(G, "z_dim", None)) or G.z_dim < 1:
        raise UsageError(f"G is {type(G).__name__}{'' if isinstance(G, torch.nn.Module) else ' (not a torch module)'}: "
                         "generate() needs a generator module with an integer z_dim (its noise size), as "
                         "ganforge.load_generator returns")
    k = getattr(G, "num_classes", 0)
    check_class_index(class_index, k, arg="class_index")
    if class_weights is not None:
        class_weights = check_class_weights(class_weights, k, class_index=class_index)
    home = module_device(G)  # where G's weights are; None: a module without any
    if device is None:
        device = home if home is not None else torch.device("cpu")
    else:
        from ganforge.device import resolve_device

        device = resolve_device(str(device), "device")
        if device.type == "cuda" and device.index is None:  # "cuda" is the current GPU: compare with G's as cuda:N
            device = torch.device("cuda", torch.cuda.current_device())
    gen = torch.Generator().manual_seed(int(seed))
    z = truncated_noise(n, G.z_dim, truncation, gen)  # (n, z_dim)
    labels = sample_labels(n, k, class_index, class_weights)  # (n,) int64 | None
    out = []
    lowest = math.inf  # the smallest value G drew: a [0, 1] generator never goes below 0
    was_training = G.training
    moved = home is not None and home != device  # G on a GPU and device="cpu" (evaluate's default), or the reverse
    G.eval()  # a G handed over mid-training: train-mode batch norm would tie each image to its batch
    try:
        if moved:  # run it where asked; put back below, also when the move itself fails halfway (out of memory)
            G.to(device)
        for i in range(0, n, batch_size):
            y = labels[i : i + batch_size].to(device) if labels is not None else None
            x = G(z[i : i + batch_size].to(device), y).float()  # (b, C, H, W) in [-1, 1]
            lowest = min(lowest, _check_drawn(x, i))
            out.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu())
    finally:
        G.train(was_training)
        if moved:
            G.to(home)
    if lowest >= 0 and n >= 16:  # (one image may be bright all over; a set of them, from tanh, is not)
        log.warning("the generator drew no value below 0 in %d image(s): its output is read as [-1, 1] (tanh), so "
                    "a [0, 1] generator's images come out at half contrast (128..255); map its output with 2 * x - 1", n)
    images = torch.cat(out).numpy()
    return images, (labels.numpy() if labels is not None else None)


def module_device(net: torch.nn.Module) -> torch.device | None:
    """The device of ``net``'s first parameter (or buffer); None for a module holding neither."""
    first = next(net.parameters(), None)
    first = first if first is not None else next(net.buffers(), None)
    return None if first is None else first.device


def _check_drawn(x: torch.Tensor, first: int) -> float:
    """A batch G drew, (b, C, H, W) with C 1 or 3, must be finite and on the [-1, 1] scale (a little overshoot
    is clamped): NaN became black images and 0..255 output white ones, both then scored or saved without a word.
    Returns the batch's smallest value (generate() warns about a [0, 1] generator)."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise UsageError(f"the generator drew a batch of shape {tuple(x.shape)}: generate() needs images (b, C, H, W) "
                         "with C 1 (grey) or 3 (RGB), channels first")
    finite = torch.isfinite(x).flatten(1).all(dim=1)  # (b,)
    all_finite, lo, hi = torch.stack([finite.all().to(x.dtype), *torch.aminmax(x)]).tolist()  # one host sync a batch
    if not all_finite:
        bad = ~finite
        raise UsageError(f"the generator drew NaN or infinite values (image {first + int(bad.nonzero()[0, 0])} and "
                         f"{int(bad.sum()) - 1} more in its batch): its weights or inputs are broken")
    if lo < -2 or hi > 2:
        raise UsageError(f"the generator drew values in [{lo:.4g}, {hi:.4g}]: images are read as [-1, 1] (tanh "
                         "output); a 0..255 or unbounded output would be clamped to black and white")
    return lo


def folder_names(labels: np.ndarray | torch.Tensor | None, n: int, class_dirs: list[str] | None = None) -> list[str]:
    """The files a folder --out gets, relative to it: ``{i}_class{k}.png`` (``{i}.png`` without labels),
    or with ``class_dirs`` (one folder name per class) ``{class_dirs[k]}/{i}.png``."""
    width = len(str(n - 1))
    if class_dirs is not None and labels is not None:
        return [f"{class_dirs[int(labels[i])]}/{i:0{width}d}.png" for i in range(n)]
    return [f"{i:0{width}d}" + (f"_class{int(labels[i])}" if labels is not None else "") + ".png" for i in range(n)]


def check_out(out: str | Path, *, overwrite: bool = False, names: list[str] | None = None, arg: str = "--out") -> Path:
    """Refuse an --out that save_samples must not write, before any image is generated. ``names``: for
    a folder --out, the files this call writes there (``folder_names``). --overwrite replaces those, but
    a folder still holding other images would end as a mix of two sample sets, so that is refused too
    (nothing of the user's is deleted: they choose an empty or new folder). A .png grid of more than
    MAX_GRID_IMAGES (``len(names)``) is refused. ``arg``: how messages
    name the path (save_samples passes "out", and the overwrite hint becomes overwrite=True)."""
    out = Path(out)
    what, again = _named(arg, str(out)), "--overwrite" if arg.startswith("--") else "overwrite=True"
    suffix = out.suffix.lower()
    if suffix not in (".npz", ".png", ""):
        raise UsageError(f"{what}: use a .npz file, a .png grid, or a folder name without a suffix")
    if suffix and out.is_dir():
        raise UsageError(f"{what} is a folder: give a new {suffix} file name")
    if not suffix and out.exists() and not out.is_dir():
        raise UsageError(f"{what} is a file: a name without a suffix is a folder, a new or empty one")
    if suffix == ".png" and names is not None and len(names) > MAX_GRID_IMAGES:
        raise UsageError(f"{what}: a .png grid takes at most {MAX_GRID_IMAGES:,} images, not {len(names):,}; "
                         f"write them to an .npz file or a folder instead")
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise UsageError(f"{what} already exists: choose another path or pass {again}")
    if not suffix and out.is_dir() and names is not None:
        planned = {out / name for name in names}
        stale = sorted(p for p in out.rglob("*") if p.is_file() and is_image_name(p.name) and p not in planned)
        if stale:
            raise UsageError(f"{what} holds {len(stale)} image file(s) this call would not replace (e.g. "
                             f"{stale[0]}): {again} rewrites only its own {len(names)}, which would leave a mixed "
                             "set; give an empty or new folder")
    # a file or an unwritable folder on the path fails here, not after the images are generated
    check_can_write(out.parent if suffix else out, what)
    return out


def _check_samples(images, labels, class_dirs) -> None:
    """What save_samples writes must read back as it is meant: uint8 (N, H, W, C) with C 1 or 3 (what
    generate() returns; a float or NCHW array would be written and misread later), one integer label
    per image, and one plain folder name per class."""
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4 and images.shape[3] in (1, 3)
            and len(images)):
        what = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise UsageError(f"images is {what}: save_samples takes generate()'s uint8 numpy array (N, H, W, C), C 1 or 3")
    if labels is not None and not (isinstance(labels, np.ndarray) and labels.shape == (len(images),)
                                   and np.issubdtype(labels.dtype, np.integer) and (labels >= 0).all()):
        what = f"{labels.dtype} {labels.shape}" if isinstance(labels, np.ndarray) else type(labels).__name__
        raise UsageError(f"labels is {what}: give one class index >= 0 per image, shape ({len(images)},), or None")
    if class_dirs is not None and labels is not None:
        if int(labels.max()) >= len(class_dirs):
            raise UsageError(f"class_dirs has {len(class_dirs)} names but the labels go up to {int(labels.max())}: "
                             "give one folder name per class")
        bad = [d for d in class_dirs if not isinstance(d, str) or not d or d in (".", "..") or "/" in d or "\\" in d]
        if bad:
            raise UsageError(f"class_dirs {bad[0]!r} is not a plain folder name (no slashes, not . or ..)")


def save_samples(images: np.ndarray, labels: np.ndarray | None, out: str | Path, *, overwrite: bool = False,
                 class_dirs: list[str] | None = None) -> Path:
    """``out`` ending in .npz: uint8 NHWC ``images`` (+ ``labels``); .png: one grid; else a folder of PNGs,
    named ``{i}_class{k}.png``, or with ``class_dirs`` (one folder name per class) ``{class_dirs[k]}/{i}.png``:
    the class-folder layout that ``--data`` (and torchvision's ImageFolder) read as labels. ``check_out``
    decides what may be replaced."""
    _check_samples(images, labels, class_dirs)
    names = folder_names(labels, len(images), class_dirs)
    out = check_out(out, overwrite=overwrite, names=names, arg="out")
    suffix = out.suffix.lower()
    if suffix == ".npz":
        arrays = {"images": images} if labels is None else {"images": images, "labels": labels.astype(np.int64)}
        atomic_write(out, lambda f: np.savez_compressed(f, **arrays))
    elif suffix == ".png":
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        nrow = None
        if labels is not None and len(set(labels.tolist())) > 1:
            nrow = int(labels.max()) + 1
        save_png(image_grid(x, nrow=nrow), out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, img in zip(names, images):
            (out / name).parent.mkdir(exist_ok=True)
            save_png(img, out / name)
    return out
