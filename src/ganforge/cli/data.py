"""`ganforge data check`: list every image a training run would refuse or only guess at."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ganforge.errors import UsageError


@click.group("data")
def data_cmd() -> None:
    """Inspect datasets before training on them."""


@data_cmd.command("check")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def check_cmd(source: str, as_json: bool) -> int:
    """List unreadable, truncated, zero-byte, non-image, oversized (decompression bomb) and
    odd-mode files in an image folder, a .zip (read in place) or an .npz.

    The summary line (stderr) also says how training would label the images: the classes of a
    class-per-folder tree, or "unlabelled" (warning about split folders such as train/ and test/
    taken for classes, and class folders without images).

    Exit code 0: every image is usable; 1: problems found (listed, one per line);
    2: SOURCE cannot be checked (empty, missing, a built-in dataset, not a folder/.zip/.npz,
    or a folder/.zip with no image files in it).

    \b
    Examples:
      ganforge data check my_faces/
      ganforge data check cifar10.zip --json
    """
    from ganforge.data import NAMED_SOURCES, check_images

    if not source.strip():  # Path("") is the current folder: never check that by accident
        raise UsageError("SOURCE is empty: give an image folder, a .zip or an .npz")  # built-in names are refused below
    path = Path(source).expanduser()
    if source in NAMED_SOURCES:
        raise UsageError(f"{source!r} is a built-in dataset (always valid); data check inspects image folders, .zip and .npz files")
    if not path.exists():
        raise UsageError(f"{source!r} does not exist; give an image folder, a .zip or an .npz")
    kind = "npz" if path.suffix.lower() == ".npz" and path.is_file() else "zip" if path.suffix.lower() == ".zip" else "folder"
    if kind == "folder" and not path.is_dir():
        raise UsageError(f"{source} is not a folder, .zip or .npz")

    checked: int | None = None
    classes: list[str] | None = None  # how training would label the images (None: unlabelled, or not read)
    try:
        if kind == "npz":
            from ganforge.data.npz import load_npz

            images, _, classes = load_npz(path)
            checked = len(images)
            problems = []
        else:
            checked, classes = _count_images(path)
            problems = [{"file": f, "reason": r} for f, r in check_images(str(path))] if checked else []
    except UsageError as exc:
        # The source exists but is refused as a whole (unsafe zip members, bad .npz):
        # that is a finding about the data, not a usage error.
        reason = str(exc).removeprefix(f"{path}: ")
        problems = [{"file": str(path), "reason": reason}]
    if checked == 0:  # no image files at all: nothing was checked, so no verdict (exit 2, as the help says)
        from ganforge.data.decode import IMAGE_EXTENSIONS

        raise UsageError(f"{source} holds no image files ({' '.join(IMAGE_EXTENSIONS)}, in sub-folders too): nothing to check")

    if as_json:
        click.echo(json.dumps({"source": str(path), "checked": checked, "ok": not problems, "problems": problems}, indent=2))
    else:
        for p in problems:
            click.echo(f"{p['file']}: {p['reason']}")
        counted = f"{checked} image(s) checked" if checked is not None else "not checked file by file"
        labels = "" if checked is None else _describe_classes(classes, kind)
        click.echo(f"{source}: {counted}, {len(problems)} problem(s){labels}", err=True)  # stdout: only the problems
    return 1 if problems else 0


def _describe_classes(classes: list[str] | None, kind: str) -> str:
    # what a conditional model would learn: "; 2 classes by folder (cat, dog)" or "; unlabelled"
    if classes is None:
        return "; unlabelled" + (" (one folder, or images outside class folders)" if kind != "npz" else "")
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    return f"; {len(classes)} classes{' by folder' if kind != 'npz' else ''} ({shown})"


def _count_images(path: Path) -> tuple[int, list[str] | None]:
    """The image files of a folder or zip and the classes training would give them (files.folder_labels,
    which also warns about images outside the class folders and split folders taken for classes)."""
    import logging

    from ganforge.data.files import ImageFiles, folder_labels

    # check_images lists the folder again and warns about what listing leaves out (other suffixes, a
    # symlink loop): this first listing only counts, so its warnings would repeat those
    listing_log = logging.getLogger("ganforge.data")
    level = listing_log.level
    listing_log.setLevel(logging.ERROR)
    try:
        with ImageFiles(path) as files:
            entries, folders = files.entries, files.folders
    finally:
        listing_log.setLevel(level)
    return len(entries), folder_labels(entries, path, folders)[1]
