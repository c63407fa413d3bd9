"""The `audiomatrix` command: a thin layer that runs the stages and prints what they found.

A user's mistake (bad matrix, bad --select) exits 2 with one line; a tool failure exits 1;
findings about cells (not buildable, unresolvable, index unreachable) are reported, not fatal.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audiomatrix import doctor as doctor_stage
from audiomatrix import lock as lock_stage
from audiomatrix import smoke as smoke_stage
from audiomatrix import tox as tox_stage
from audiomatrix.spec import Cell, Matrix, MatrixError, SelectError, load

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Lock, build and smoke-test torch x torchaudio x Python x GPU cells for audio ML.",
)
# Piped output keeps whole lines: rich would otherwise wrap at 80 columns.
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

MatrixOption = Annotated[
    Path | None, typer.Option("--matrix", "-m", help="The matrix file [default: matrix.yaml].")
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


@dataclass
class Options:
    matrix: Path = Path("matrix.yaml")
    select: tuple[str, ...] = ()


@app.callback()
def main(ctx: typer.Context, matrix: MatrixOption = None, select: SelectOption = None) -> None:
    """Global options; each command also takes --matrix and --select itself."""
    ctx.obj = Options(matrix or Path("matrix.yaml"), tuple(select or ()))


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _selected(
    ctx: typer.Context, matrix: Path | None, select: list[str] | None
) -> tuple[Matrix, list[Cell]]:
    opts: Options = ctx.obj
    path = matrix or opts.matrix
    try:
        loaded = load(path)
        return loaded, loaded.select([*opts.select, *(select or ())])
    except (MatrixError, SelectError) as exc:
        raise _fail(str(exc)) from None


def _environments(matrix: Matrix) -> Path:
    """Locks live beside the matrix file they came from."""
    return Path(matrix.path).parent / "environments"


@app.command()
def cells(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cells as JSON.")] = False,
) -> None:
    """List the expanded cells; unbuildable ones with the reason and its source."""
    loaded, chosen = _selected(ctx, matrix, select)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in chosen], indent=2))
        return
    table = Table(title=f"{len(chosen)} cells from {loaded.path}")
    table.add_column("cell", no_wrap=True)
    for column in ("torchaudio", "torchcodec", "device", "status"):
        table.add_column(column, overflow="fold")
    for c in chosen:
        status = (
            "[green]buildable[/]" if c.buildable else f"[yellow]not buildable:[/] {c.unbuildable}"
        )
        table.add_row(
            c.id, c.torch_value.torchaudio, c.torchcodec or "-", c.accelerator_value.device, status
        )
    out.print(table)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err,
        transient=True,
    )


_STATUS_STYLE = {
    lock_stage.Status.LOCKED: "green",
    lock_stage.Status.UNCHANGED: "dim",
    lock_stage.Status.NOT_BUILDABLE: "yellow",
    lock_stage.Status.INDEX_UNREACHABLE: "yellow",
    lock_stage.Status.UNRESOLVABLE: "red",
    lock_stage.Status.ERROR: "bold red",
}


def _run_lock(loaded: Matrix, chosen: list[Cell]) -> list[lock_stage.LockResult]:
    with _progress() as progress:
        task = progress.add_task("lock", total=len(chosen), last="")

        def done(result: lock_stage.LockResult) -> None:
            progress.update(task, advance=1, last=f"{result.cell}: {result.status}")

        results = lock_stage.lock_cells(chosen, loaded, _environments(loaded), on_done=done)
    table = Table(title="lock")
    for column in ("cell", "status", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.cell, f"[{_STATUS_STYLE[r.status]}]{r.status}[/]", r.detail)
    out.print(table)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return results


@app.command()
def lock(ctx: typer.Context, matrix: MatrixOption = None, select: SelectOption = None) -> None:
    """Lock each selected cell with uv into environments/<cell>/ (unchanged cells are skipped)."""
    loaded, chosen = _selected(ctx, matrix, select)
    results = _run_lock(loaded, chosen)
    if any(r.failed for r in results):
        raise typer.Exit(1)


@app.command("matrix")
def run_matrix(
    ctx: typer.Context, matrix: MatrixOption = None, select: SelectOption = None
) -> None:
    """Run the pipeline for the selection. Stages so far: lock."""
    loaded, chosen = _selected(ctx, matrix, select)
    results = _run_lock(loaded, chosen)
    if any(r.failed for r in results):
        raise typer.Exit(1)


def _status_line(result) -> str:
    parts = []
    for mode, checks in result.modes.items():
        shown = [
            f"{c.check}={c.status}" + (f"[{c.signature}]" if c.signature else "") for c in checks
        ]
        parts.append(f"{mode}: {' '.join(shown)}")
    return "; ".join(parts)


@app.command()
def smoke(
    ctx: typer.Context,
    cell_ids: Annotated[
        list[str] | None, typer.Argument(help="Cell ids (or use --select).")
    ] = None,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    native: Annotated[
        bool, typer.Option("--native", help="Run in a venv made from the lock, not an image.")
    ] = False,
    mode: Annotated[
        list[str] | None, typer.Option(help="raw and/or compat [default: both].")
    ] = None,
    check: Annotated[list[str] | None, typer.Option(help="Only these checks.")] = None,
    python: Annotated[
        str | None, typer.Option(help="Interpreter for native venvs [default: the cell's X.Y].")
    ] = None,
) -> None:
    """Run the smoke suite for each cell and write results/<cell>/<run>.json."""
    if not native:
        raise _fail("smoke: only --native runs exist so far (images come with the image stage)")
    loaded, chosen = _selected(ctx, matrix, [*(select or ()), *(cell_ids or ())])
    root = Path(loaded.path).parent
    failed = 0
    for cell in chosen:
        if not cell.buildable:
            continue
        try:
            lock_record = smoke_stage.read_lock(_environments(loaded), cell.id)
            with err.status(f"[bold]{cell.id}[/]: preparing the venv and running the suite"):
                result = smoke_stage.smoke_native(
                    lock_record,
                    root / "tests" / "smoke",
                    root / "results",
                    root / ".cache" / "venvs",
                    python=python,
                    modes=mode or smoke_stage.MODES,
                    checks=check or (),
                    echo=lambda line, cid=cell.id: err.print(f"{cid}: {line}", markup=False),
                )
        except smoke_stage.SmokeError as exc:
            failed += 1
            err.print(str(exc), markup=False)
            continue
        out.print(f"[bold]{cell.id}[/] {_status_line(result)}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def tox(ctx: typer.Context, matrix: MatrixOption = None) -> None:
    """Write tox.ini with one env per locked cell: `tox -e <cell>` runs the suite natively."""
    loaded, _ = _selected(ctx, matrix, None)
    root = Path(loaded.path).parent
    path = tox_stage.write(root, _environments(loaded))
    out.print(f"wrote {path}")


@app.command()
def doctor(ctx: typer.Context, matrix: MatrixOption = None) -> None:
    """What this machine can do: uv, Docker Engine, debootstrap, GPU, package indexes."""
    path = matrix or ctx.obj.matrix
    try:
        loaded: Matrix | None = load(path)
    except MatrixError as exc:
        err.print(f"{exc} (index checks skipped)", markup=False)
        loaded = None
    indexes = sorted({a.index for a in loaded.file.accelerator.values()}) if loaded else []
    table = Table(title="doctor")
    for column in ("what", "ok", "detail"):
        table.add_column(column, overflow="fold")
    for check in doctor_stage.checks(indexes):
        table.add_row(check.what, "[green]yes[/]" if check.ok else "[red]no[/]", check.detail)
    out.print(table)
