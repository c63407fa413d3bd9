"""What the command modules share: the typer options, the two consoles, the matrix and
selection every command starts from, and the one-line refusals."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.records import compatibility
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import MAX_CELLS, Matrix, load
from audiomatrix.views import outputs

# Piped output keeps whole lines: rich would otherwise wrap at 80 columns.
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

MatrixOption = Annotated[
    Path | None, typer.Option("--matrix", "-m", help="The matrix file (default: matrix.yaml).")
]
SelectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        "-s",
        help="Cell-id glob, axis=value (globs allowed) or a named selection; repeatable: "
        "the same axis ORs, different axes AND.",
    ),
]
MaxCellsOption = Annotated[
    int,
    typer.Option(
        "--max-cells",
        envvar="AUDIOMATRIX_MAX_CELLS",
        min=1,
        help="The most cells a matrix may expand to; a bigger one is refused before it is built.",
    ),
]
CaBundleOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        envvar="AUDIOMATRIX_CA_BUNDLE",
        help="Extra CA bundle for a TLS-intercepting proxy: served to the build on loopback "
        "and deleted within each install step, never in an image layer.",
    ),
]


@dataclass
class Options:
    """The global options, which each command's own --matrix and --select add to."""

    matrix: Path = Path("matrix.yaml")
    select: tuple[str, ...] = ()
    max_cells: int = MAX_CELLS


def fail(message: str, code: int = 2) -> AudiomatrixError:
    """A refusal the command line itself finds (2: the user's input; 1: a tool failed), told
    as one line where every AudiomatrixError is (cli.app)."""
    error = AudiomatrixError(message)
    error.exit_code = code
    return error


def say(message: str) -> None:
    """One line on stderr as it is: no markup, no highlighting, no wrapping."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def selected(
    ctx: typer.Context, matrix: Path | None, select: list[str] | None
) -> tuple[Matrix, list[Cell]]:
    opts: Options = ctx.obj
    loaded = load(matrix or opts.matrix, opts.max_cells)
    return loaded, loaded.select([*opts.select, *(select or ())])


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err,
        transient=True,
    )


def load_table(path: Path) -> compatibility.Compatibility:
    try:
        return compatibility.load(path)
    except OSError as exc:
        raise fail(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise fail(f"{path}: not a compatibility.json: {exc}; regenerate it with "
                   "`audiomatrix report`") from None  # fmt: skip


def show_written(root: Path, written: outputs.Written) -> None:
    """The report's files, and the damaged inputs it listed in the table."""
    for path in written.paths:
        out.print(f"wrote {path.relative_to(root)}")
    for damaged in written.table.damaged:
        err.print(f"{damaged.path}: {damaged.reason} (listed in the table)", markup=False)
