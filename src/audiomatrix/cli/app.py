"""The `audiomatrix` command: a thin layer that runs the stages and prints what they found.

A user's mistake (bad matrix, bad --select) exits 2 with one line; a tool failure exits 1;
findings about cells (not buildable, unresolvable, index or channel unreachable) are reported,
not fatal. Every one-line failure is an AudiomatrixError, told here and nowhere else.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from audiomatrix.cli import boundaries, images, refresh, stages, table
from audiomatrix.cli.check import check
from audiomatrix.cli.options import MatrixOption, MaxCellsOption, Options, SelectOption, say
from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.spec.matrix import MAX_CELLS


class _Commands(TyperGroup):
    """The command group, which tells any AudiomatrixError a command raises as its one line
    and ends with its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AudiomatrixError as exc:
            say(str(exc))
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    help="Lock, build and smoke-test torch x torchaudio x Python x GPU cells for audio ML.",
)


@app.callback()
def main(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    max_cells: MaxCellsOption = MAX_CELLS,
) -> None:
    """Global options; each command also takes --matrix and --select itself."""
    ctx.obj = Options(matrix or Path("matrix.yaml"), tuple(select or ()), max_cells)


COMMANDS = (
    ("cells", stages.cells),
    ("lock", stages.lock),
    ("refresh", refresh.refresh),
    ("report", stages.report),
    ("tox", stages.tox),
    ("doctor", stages.doctor),
    ("boundaries", boundaries.boundaries_command),
    ("engine", images.engine),
    ("build", images.build),
    ("smoke", images.smoke),
    ("sweep", images.sweep),
    ("matrix", images.run_matrix),
    ("diff", table.diff_command),
    ("recommend", table.recommend),
    ("show", table.show),
    ("publish", table.publish),
    ("pull", table.pull),
    ("check", check),
)
"""Every command by its name, in the order --help lists them."""

for name, command in COMMANDS:
    app.command(name)(command)

ci_app = typer.Typer(help="CI files generated from the matrix: fan the cells out.")
ci_app.command("github")(stages.ci_github)
ci_app.command("bake")(stages.ci_bake)
app.add_typer(ci_app, name="ci")

INTERRUPTED = (
    "interrupted: finished work is kept and nothing was recorded for the work in progress; "
    "rerun the same command to resume"
)


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM. A BaseException of its own, so that no `except Exception` and not
    the command-line framework (which turns KeyboardInterrupt into `Aborted!`) stops it."""


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted


def os_error(exc: OSError) -> str:
    """A file that could not be written or read (a full disk, permissions), as one line."""
    where = f"{exc.filename}: " if exc.filename else ""
    return (
        f"{where}{exc.strerror or exc}: the files written before are intact and nothing "
        "half-written was kept; free space or fix permissions, then rerun the same command"
    )


def run() -> None:
    """The `audiomatrix` command. An interruption (SIGINT, SIGTERM) at any moment ends in one
    line, never a traceback: every output is written atomically, so what finished is kept and
    what was in flight leaves no trace. A file that cannot be written (a full disk) is one line
    and exit 1, for the same reason."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app(prog_name="audiomatrix")
    except Interrupted:
        say(INTERRUPTED)
        sys.exit(130)
    except OSError as exc:
        say(os_error(exc))
        sys.exit(1)
