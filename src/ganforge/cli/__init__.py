"""The ``ganforge`` command: a thin layer over the library. Every user mistake ends as one
line on stderr and exit code 2; tracebacks are for bugs only."""

from __future__ import annotations

import logging
import os
import sys

import click

from ganforge import __version__
from ganforge.cli.bench import bench_cmd
from ganforge.cli.data import data_cmd
from ganforge.cli.eval import compare_cmd, eval_cmd, eval_pair_cmd, evaluator_cmd
from ganforge.cli.modes import modes_cmd
from ganforge.cli.restore import RESTORE_GROUPS
from ganforge.cli.train import presets_cmd, sample_cmd, train_cmd
from ganforge.errors import GanforgeError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ganforge")
def cli() -> None:
    """Train, evaluate and apply GANs for images.

    \b
    Examples:
      ganforge presets
      ganforge train --preset dcgan-mnist
      ganforge train --preset sngan-cifar10 --data cifar10.zip --set train.total_steps=200
      ganforge sample runs/00001-dcgan-mnist --n 64 --out grid.png
    """


cli.add_command(train_cmd)
cli.add_command(sample_cmd)
cli.add_command(presets_cmd)
cli.add_command(data_cmd)
cli.add_command(eval_cmd)
cli.add_command(eval_pair_cmd)
cli.add_command(compare_cmd)
cli.add_command(evaluator_cmd)
cli.add_command(modes_cmd)
cli.add_command(bench_cmd)
for _group in RESTORE_GROUPS:  # sr, denoise, inpaint
    cli.add_command(_group)


# click >= 8.2 raises this UsageError for a group called without a command (the help, as "error: Usage: ...");
# 8.1 prints the help itself and exits 0
_NO_COMMAND = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        rv = cli.main(args=argv, prog_name="ganforge", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except _NO_COMMAND as exc:  # `ganforge`, `ganforge sr`: no command given
        cmd = exc.ctx.command_path if exc.ctx is not None else "ganforge"
        click.echo(f"{cmd}: no command given (the commands are listed below)\n", err=True)
        click.echo(exc.ctx.get_help() if exc.ctx is not None else "", err=True)
        return 2
    except click.exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx is not None else "ganforge"
        click.echo(f"{cmd}: error: {exc.format_message()}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("ganforge: aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.ClickException as exc:
        click.echo(f"ganforge: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except GanforgeError as exc:
        click.echo(f"ganforge: error: {exc}", err=True)
        return getattr(exc, "exit_code", 2)  # 2 = usage; a few errors carry their own (143 = SIGTERM)
    except KeyboardInterrupt:
        click.echo("ganforge: interrupted", err=True)
        return 130


def entry() -> None:
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun the process ends here, its files written and its process group destroyed,
        # without the interpreter's teardown: there gloo's C++ objects are destroyed too, and a rank
        # that had finished cleanly could abort ("terminate called without an active exception",
        # SIGABRT, no Python frame), failing the launch: 4 launches in 23 on a loaded 2-core CPU,
        # 0 in 60 since (docs/RELIABILITY.md, benchmarks/torchrun_repeat.sh).
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)
